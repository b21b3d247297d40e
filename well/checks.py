"""Django system checks for production settings (`manage.py check --deploy`)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from well.env import is_development_master_key


@checks.register(checks.Tags.security, deploy=True)
def mail_is_delivered(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Mail that goes to the logs hands password-reset links to whoever reads them."""
    backend = settings.EMAIL_BACKEND
    if backend not in settings.LOG_EMAIL_BACKENDS:
        return []
    allowed = getattr(settings, "WELL_ALLOW_CONSOLE_EMAIL", False)
    message = (
        f"EMAIL_BACKEND is {backend}: password-reset and verification links are written to "
        "the logs (or a file, or memory), never delivered."
    )
    hint = "Configure SMTP (EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS ...)."
    if allowed:
        return [
            checks.Warning(message, hint=hint + " WELL_ALLOW_CONSOLE_EMAIL is on.", id="well.W001")
        ]
    return [checks.Error(message, hint=hint, id="well.E001")]


@checks.register(checks.Tags.security, deploy=True)
def no_development_master_key(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The development master key is public: refused by its bytes, under any ID."""
    if settings.DEBUG:
        return []
    if any(is_development_master_key(k) for k in settings.WELL_MASTER_KEYS):
        return [
            checks.Error(
                "WELL_MASTER_KEYS holds the development master key (whatever its ID).",
                hint="Generate a key with `manage.py rotate_master_key --generate`.",
                id="well.E002",
            )
        ]
    return []
