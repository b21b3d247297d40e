from __future__ import annotations

from django.contrib import admin

from matching.models import Decision, Proposal, VendorRule, WorkspaceModel


@admin.register(Proposal)
class ProposalAdmin(admin.ModelAdmin):
    """Read-only: proposals are written by matching.services only."""

    list_display = ["record", "workspace", "action", "confidence", "band", "is_current"]
    list_filter = ["band", "is_current", "action"]
    list_select_related = ["record", "workspace"]
    raw_id_fields = ["record", "target"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ["record", "workspace", "kind", "actor_label", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["record", "workspace"]
    raw_id_fields = ["record", "proposal", "right_target", "user"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WorkspaceModel)
class WorkspaceModelAdmin(admin.ModelAdmin):
    list_display = ["workspace", "version", "feedback_count", "updated_at"]
    list_select_related = ["workspace"]
    readonly_fields = ["workspace", "data", "version", "feedback_count", "updated_at"]


@admin.register(VendorRule)
class VendorRuleAdmin(admin.ModelAdmin):
    list_display = ["workspace", "vendor_name", "vendor_qbo_id", "auto_threshold", "never_auto"]
    list_select_related = ["workspace"]
