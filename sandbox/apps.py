from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The stand-ins for QuickBooks Online and Qonto, the demo and the soak (no models)."""

    name = "sandbox"

    def ready(self) -> None:
        # A `python manage.py` command on a serving demo's data folder (`sync demo`, the worker,
        # in another terminal) calls the demo's sandboxes, as the demo does, never the real
        # providers with the sandboxes' tokens. Imported here: sandbox.demo imports models,
        # which only load once the app registry is ready.
        from sandbox.demo import demo_settings_adopt

        demo_settings_adopt()
