"""`manage.py create_api_key SLUG --scopes read,decide [--name NAME] [--expires-in-days N]`.

Prints the new key on stdout, alone on its line (for scripts and the demo); only its SHA-256
is stored, so it cannot be printed again.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from well.api_auth import ScopeError, api_key_create
from well.audit import Actor
from well.selectors import workspace_get_by_slug


class Command(BaseCommand):
    help = "Create an API key for a workspace and print it once."

    def add_arguments(self, parser):
        parser.add_argument("workspace_slug")
        parser.add_argument(
            "--scopes", default="read", help="comma-separated: read, decide, admin (default read)"
        )
        parser.add_argument("--name", default="command line")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=None,
            help="refuse the key after this many days (default: never expires)",
        )

    def handle(
        self, *args, workspace_slug: str, scopes: str, name: str, expires_in_days, **options
    ):
        workspace = workspace_get_by_slug(slug=workspace_slug)
        if workspace is None:
            raise CommandError(f"No workspace with the slug {workspace_slug!r}.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be 1 or more.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            key, secret = api_key_create(
                workspace=workspace,
                name=name,
                scopes=scopes.split(","),
                actor=Actor.system("create_api_key command"),
                expires_at=expires_at,
            )
        except ScopeError as exc:
            raise CommandError(str(exc)) from exc
        until = f", expiring {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
        self.stderr.write(
            f"Created key {key.prefix}… for {workspace.slug} with scopes "
            f"{','.join(key.scopes)}{until}."
        )
        self.stdout.write(secret)
