"""Sign-in customisation: allauth's MFA secrets sealed at rest, MFA required for staff, and the
e-mail verification link shown on the page where mail is not delivered (development only)."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.utils.translation import gettext

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


def verification_link_shown() -> bool:
    """Where mail goes nowhere a person reads it: a development run (the demo, the tests) with a
    backend that logs or keeps mail in memory. Never in production, whatever the backend."""
    return not settings.PRODUCTION and settings.EMAIL_BACKEND in settings.LOG_EMAIL_BACKENDS


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up with mandatory verification; the demo shows the link it cannot deliver."""

    def send_confirmation_mail(self, request, emailconfirmation, signup: bool) -> None:
        super().send_confirmation_mail(request, emailconfirmation, signup)
        if request is not None and verification_link_shown():
            url = self.get_email_confirmation_url(request, emailconfirmation)
            messages.info(
                request,
                gettext("Development only (mail is not delivered): verify at %(url)s")
                % {"url": url},
                extra_tags="verification-link",
            )
