from __future__ import annotations

from django.contrib import admin

from matching.models import Proposal, VendorRule, WorkspaceModel


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


@admin.register(WorkspaceModel)
class WorkspaceModelAdmin(admin.ModelAdmin):
    """Read-only: each workspace's matching model, what it was fitted on and when."""

    list_display = [
        "workspace",
        "version",
        "fitted_at",
        "history_links",
        "reviewer_labels",
        "open_records",
        "entries",
        "feedback_count",
    ]
    list_select_related = ["workspace"]
    fields = [
        "workspace",
        "version",
        "fitted_at",
        "history_links",
        "reviewer_labels",
        "open_records",
        "entries",
        "feedback_count",
        "link_priors",
        "calibrator",
        "fitted_report",
    ]
    readonly_fields = fields

    @admin.display(description="share of records with an entry, by kind")
    def link_priors(self, obj: WorkspaceModel) -> str:
        groups = (obj.data or {}).get("groups") or {}
        return ", ".join(f"{kind}: {g.get('pi', 0):.2f}" for kind, g in groups.items()) or "-"

    @admin.display(description="calibrator")
    def calibrator(self, obj: WorkspaceModel) -> str:
        coefficients = (obj.data or {}).get("calibrator") or {}
        return ", ".join(f"{name} {value:+.2f}" for name, value in coefficients.items()) or "-"

    @admin.display(description="time split and samples")
    def fitted_report(self, obj: WorkspaceModel) -> str:
        fitted = (obj.data or {}).get("fitted") or {}
        shown = {k: v for k, v in fitted.items() if k not in ("at",)}
        return ", ".join(f"{k}: {v}" for k, v in shown.items()) or "-"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(VendorRule)
class VendorRuleAdmin(admin.ModelAdmin):
    list_display = ["workspace", "vendor_name", "vendor_qbo_id", "auto_threshold", "never_auto"]
    list_select_related = ["workspace"]
