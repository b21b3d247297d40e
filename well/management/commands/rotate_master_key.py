from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.core.management.base import BaseCommand
from django.db import transaction

from well.auth import MFA_PURPOSE
from well.encryption import (
    master_key_generate,
    master_keys,
    system_open,
    system_seal,
    system_sealed_with_current_key,
    workspace_keys_rewrap,
)

_MFA_SEALED_FIELDS = ("secret", "seed")


class Command(BaseCommand):
    help = (
        "Rewrap every workspace data key (and reseal MFA seeds) under the first key of "
        "WELL_MASTER_KEYS. Keep the old key configured until this has finished."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--generate", action="store_true", help="Print a new master key entry and exit."
        )

    def handle(self, *args, generate: bool = False, **options):
        if generate:
            self.stdout.write(master_key_generate())
            return
        current_id, _ = master_keys()
        rewrapped = workspace_keys_rewrap()
        resealed = self._reseal_mfa()
        self.stdout.write(
            f"master key {current_id}: {rewrapped} data keys rewrapped, "
            f"{resealed} MFA secrets resealed"
        )

    def _reseal_mfa(self) -> int:
        count = 0
        for pk in Authenticator.objects.values_list("pk", flat=True):
            with transaction.atomic():
                authenticator = Authenticator.objects.select_for_update().get(pk=pk)
                data = dict(authenticator.data)
                changed = False
                for field in _MFA_SEALED_FIELDS:
                    token = data.get(field)
                    if token and not system_sealed_with_current_key(token):
                        plaintext = system_open(token, purpose=MFA_PURPOSE)
                        data[field] = system_seal(plaintext, purpose=MFA_PURPOSE)
                        changed = True
                if changed:
                    authenticator.data = data
                    authenticator.save(update_fields=["data"])
                    count += 1
        return count
