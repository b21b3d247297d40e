"""The partner API's one router under /api/v1/ (included from well/urls.py).

It lives outside `well` because it gathers every app's endpoints, and `well` imports no app.
"""

from __future__ import annotations

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from connectors.api import ConnectionViewSet, PostingViewSet, SyncRunViewSet
from review.api import DecisionViewSet, RecordViewSet, VendorRuleViewSet
from well.api import (
    ApiKeyViewSet,
    AuditEventViewSet,
    WebhookViewSet,
    WorkspaceView,
    not_found_view,
)

router = SimpleRouter(use_regex_path=False)
router.register("records", RecordViewSet, basename="record")
router.register("decisions", DecisionViewSet, basename="decision")
router.register("vendor-rules", VendorRuleViewSet, basename="vendor-rule")
router.register("connections", ConnectionViewSet, basename="connection")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")
router.register("postings", PostingViewSet, basename="posting")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("webhooks", WebhookViewSet, basename="webhook")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

app_name = "api"

urlpatterns = [
    path("workspace/", WorkspaceView.as_view(), name="workspace"),
    *router.urls,
    # Anything else under /api/v1/ is a 404 in the API's error shape.
    re_path(r"^.*$", not_found_view, name="not-found"),
]
