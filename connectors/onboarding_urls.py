"""The onboarding wizard's routes: a new workspace, then /w/<slug>/onboarding/<step>/."""

from django.urls import path

from connectors import onboarding_views as views

app_name = "onboarding"

STEPS = "w/<slug:workspace_slug>/onboarding/"

urlpatterns = [
    path("onboarding/new/", views.workspace_new, name="new"),
    path(STEPS, views.wizard, name="wizard"),
    path(f"{STEPS}quickbooks/", views.step_quickbooks, name="quickbooks"),
    path(f"{STEPS}mapping/", views.step_mapping, name="mapping"),
    path(f"{STEPS}mapping/discover/", views.discovery_request, name="discover"),
    path(
        f"{STEPS}mapping/accounts/<int:record_id>/automatic/",
        views.bank_mapping_reset,
        name="bank_mapping_reset",
    ),
    path(f"{STEPS}qonto/", views.step_qonto, name="qonto"),
    path(f"{STEPS}sync/", views.step_sync, name="sync"),
    path(f"{STEPS}sync/start/", views.sync_start, name="sync_start"),
    path(f"{STEPS}sync/retry/", views.sync_retry, name="sync_retry"),
    path(f"{STEPS}sync/progress/", views.sync_progress, name="sync_progress"),
]
