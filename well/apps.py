from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class WellConfig(AppConfig):
    default = True
    name = "well"
    verbose_name = "Well"

    def ready(self) -> None:
        from well import checks  # noqa: F401 - registers the deploy checks


class WellAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "well.admin_site.WellAdminSite"
