"""The schema's settings and the interactive docs, served from our own static files (CSP: no
CDN)."""

from __future__ import annotations

from django.templatetags.static import static
from drf_spectacular.views import SpectacularSwaggerSplitView


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI from drf-spectacular-sidecar's files under /static/, its script split out."""

    url_name = "api-schema"

    @staticmethod
    def _swagger_ui_resource(filename):
        return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon():
        return static("drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")


SCHEMA_SETTINGS = {
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SECURITY": [{"apiKey": []}],
    "DESCRIPTION": (
        "Partner API of Well: everything an accountant does in the review pages. "
        "Send `Authorization: Bearer <key>`. Errors are always "
        '`{"error": {"code", "detail", "fields"}}`. See docs/api.md.'
    ),
}
