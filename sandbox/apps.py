from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The stand-ins for QuickBooks Online and Qonto, the demo and the soak (no models)."""

    name = "sandbox"
