from __future__ import annotations

from django.contrib import admin, messages

from connectors.models import Connection, SyncRun
from connectors.qonto.models import Posting, QontoEntry
from connectors.quickbooks.models import SourceRecord
from connectors.services import connection_release
from well.admin import ReadOnlyAdmin
from well.audit import Actor


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

    actions = ["release"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Release: disconnect here so another workspace can connect it")
    def release(self, request, queryset) -> None:
        """Move a QuickBooks company or Qonto organization to another workspace (issue 17):
        release it here, then an owner of the other workspace connects it there."""
        for connection in queryset:
            connection_release(
                connection=connection,
                actor=Actor.user(request.user),
                reason=f"Released by staff ({request.user}) so another workspace can connect it.",
            )
        self.message_user(
            request,
            f"{queryset.count()} connection(s) released; another workspace can now connect them.",
            messages.SUCCESS,
        )


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "workspace", "connection", "status", "trigger", "api_calls"]
    list_filter = ["status", "trigger", "full"]
    search_fields = ["workspace__name", "workspace__slug", "error"]
    list_select_related = ["workspace", "connection"]
    date_hierarchy = "started_at"


@admin.register(SourceRecord)
class SourceRecordAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "entity_type", "qbo_id", "state", "supplier_name", "total_amount"]
    list_filter = ["entity_type", "state", "deleted", "errored"]
    search_fields = ["qbo_id", "invoice_number", "supplier_name", "workspace__slug"]
    list_select_related = ["workspace"]
    exclude = ["payload"]


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "workspace", "action", "state", "qonto_id", "attempts"]
    list_filter = ["state", "action"]
    search_fields = ["qonto_id", "idempotency_key", "workspace__slug", "message"]
    list_select_related = ["workspace"]


@admin.register(QontoEntry)
class QontoEntryAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "kind", "qonto_id", "amount", "currency", "status"]
    list_filter = ["kind", "status"]
    search_fields = ["qonto_id", "invoice_number", "workspace__slug"]
    list_select_related = ["workspace"]
    exclude = ["payload"]
