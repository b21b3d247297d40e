"""The partner API's routes: one router under /api/v1/, the schema and the interactive docs.

Included from well/urls.py by name: `well` imports no app, and this package sits above them all.
"""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from api.audit import AuditEventViewSet
from api.base import not_found_view
from api.connections import ConnectionViewSet, PostingViewSet, SyncRunViewSet
from api.docs import SCHEMA_SETTINGS, DocsView
from api.records import DecisionViewSet, RecordViewSet
from api.vendor_rules import VendorRuleViewSet
from api.webhooks import WebhookViewSet
from api.workspace import ApiKeyViewSet, WorkspaceView

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

V1 = [
    path("workspace/", WorkspaceView.as_view(), name="workspace"),
    *router.urls,
    # Anything else under /api/v1/ is a 404 in the API's error shape.
    re_path(r"^.*$", not_found_view, name="not-found"),
]
# Route names are namespaced `api:` (api:record-list); the schema documents these paths only.
API_V1 = [path("api/v1/", include((V1, "api")))]

urlpatterns = [
    *API_V1,
    path(
        "api/schema/",
        SpectacularAPIView.as_view(patterns=API_V1, custom_settings=SCHEMA_SETTINGS),
        name="api-schema",
    ),
    path("api/docs/", DocsView.as_view(), name="api-docs"),
]
