"""Sign-in customisation: allauth's MFA secrets sealed at rest, MFA required for staff."""

from __future__ import annotations

from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator

from well.encryption import system_open, system_seal

MFA_PURPOSE = "allauth.mfa"


class MFAAdapter(DefaultMFAAdapter):
    """allauth stores TOTP seeds in clear by default; we seal them with the master key."""

    def encrypt(self, text: str) -> str:
        return system_seal(text, purpose=MFA_PURPOSE)

    def decrypt(self, encrypted_text: str) -> str:
        return system_open(encrypted_text, purpose=MFA_PURPOSE)


def user_has_mfa(user) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
