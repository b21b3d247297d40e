from django.apps import AppConfig

from sandbox.running_demo import running_demo_urls


class SandboxConfig(AppConfig):
    """The stand-ins for QuickBooks Online and Qonto, the demo and the soak (no models)."""

    name = "sandbox"

    def ready(self) -> None:
        urls = running_demo_urls()
        if urls is not None:
            # Beside a serving demo only, so no other process pays for it; imported here
            # because sandbox.demo imports models, which load once the app registry is ready.
            from sandbox.demo import DemoUrls, demo_settings_apply

            demo_settings_apply(DemoUrls(**urls))
