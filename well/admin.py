"""Staff tools over tenants. Secrets (data keys, tokens, TOTP seeds) are never shown."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from well.api_auth import api_key_create, api_key_revoke
from well.audit import Actor
from well.models import (
    ApiKey,
    ApiScope,
    AuditEvent,
    Membership,
    WebhookDelivery,
    WebhookEndpoint,
    Workspace,
)


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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff look; every change goes through the services and their audit events."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "workspace", "actor_label", "verb", "object_type", "object_id"]
    list_filter = ["actor_type", "verb"]
    search_fields = ["verb", "object_id", "actor_label", "request_id"]
    list_select_related = ["workspace"]


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


# --- partner API keys and webhooks ---------------------------------------------------------


class ApiKeyAddForm(forms.ModelForm):
    scope_choices = forms.MultipleChoiceField(
        choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple, label="Scopes"
    )

    class Meta:
        model = ApiKey
        fields = ["workspace", "name"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created here through the service (the secret is shown once) and revoked."""

    list_display = ["name", "workspace", "prefix", "scopes", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "workspace__slug"]
    list_select_related = ["workspace"]
    readonly_fields = ["prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]
    exclude = ["hashed"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["workspace", "name", "scope_choices"]
        return ["workspace", "name", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["workspace", "name", *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        if change:
            return
        key, secret = api_key_create(
            workspace=form.cleaned_data["workspace"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scope_choices"],
            actor=Actor.user(request.user),
            created_by=request.user,
        )
        obj.pk = key.pk
        messages.warning(request, f"The new key, shown only this once: {secret}")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        done = sum(api_key_revoke(key=key, actor=Actor.user(request.user)) for key in queryset)
        messages.info(request, f"{done} key(s) revoked.")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the audit trail keeps naming the key


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "workspace", "events", "active", "created_at"]
    list_filter = ["active"]
    list_select_related = ["workspace"]
    exclude = ["secret"]
    readonly_fields = ["workspace", "url", "events", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event", "endpoint", "state", "attempts", "response_status"]
    list_filter = ["state", "event"]
    list_select_related = ["endpoint"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
