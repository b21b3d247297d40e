from __future__ import annotations

from django.contrib import admin

from connectors.models import Connection


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    """Connection health for staff; the sealed tokens are excluded from every view."""

    list_display = ["workspace", "provider", "status", "external_name", "last_good_sync_at"]
    list_filter = ["provider", "status"]
    search_fields = ["workspace__name", "workspace__slug", "external_id", "external_name"]
    list_select_related = ["workspace"]
    exclude = ["access_token", "refresh_token"]
    readonly_fields = [
        "workspace",
        "provider",
        "external_id",
        "access_expires_at",
        "refresh_expires_at",
        "sync_marker",
        "last_good_sync_at",
        "last_error",
        "last_error_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False
