"""Staff tools over tenants. Secrets (data keys, tokens, TOTP seeds) are never shown."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from well.models import AuditEvent, Membership, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "storage_region", "auto_threshold", "review_threshold"]
    list_filter = ["storage_region"]
    search_fields = ["name", "slug"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting shreds the workspace's data key; it goes through workspace_delete.
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__email", "workspace__name", "workspace__slug"]
    list_select_related = ["user", "workspace"]
    autocomplete_fields = ["user", "workspace"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "workspace", "actor_label", "verb", "object_type", "object_id"]
    list_filter = ["actor_type", "verb"]
    search_fields = ["verb", "object_id", "actor_label", "request_id"]
    list_select_related = ["workspace"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class WellUserAdmin(UserAdmin):
    list_display = ["email", "is_staff", "is_active", "last_login"]
    search_fields = ["email", "username"]


admin.site.unregister(Authenticator)


@admin.register(Authenticator)
class WellAuthenticatorAdmin(admin.ModelAdmin):
    """Staff may see that a user has MFA and remove it; never the sealed seed."""

    raw_id_fields = ["user"]
    list_display = ["user", "type", "created_at", "last_used_at"]
    list_filter = ["type"]
    search_fields = ["user__email"]
    exclude = ["data"]
    readonly_fields = ["user", "type", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False
