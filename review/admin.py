from __future__ import annotations

from django.contrib import admin

from review.models import Decision


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    """Read-only: decisions are written by the decision service only (review.decisions)."""

    list_display = ["record", "workspace", "kind", "actor_label", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["record", "workspace"]
    raw_id_fields = ["record", "proposal", "right_target", "user"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
