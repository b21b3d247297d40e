"""Tenancy (workspaces, memberships, data keys) and the append-only audit trail."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StorageRegion(models.TextChoices):
    EU = "eu", _("European Union")
    US = "us", _("United States")


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ACCOUNTANT = "accountant", _("Accountant")
    VIEWER = "viewer", _("Viewer")


# Higher ranks may do everything lower ranks may.
ROLE_RANK = {Role.VIEWER: 1, Role.ACCOUNTANT: 2, Role.OWNER: 3}


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    storage_region = models.CharField(
        max_length=2, choices=StorageRegion.choices, default=StorageRegion.EU
    )
    auto_threshold = models.FloatField(default=0.85)
    review_threshold = models.FloatField(default=0.55)
    # The pages' language when neither the person nor the browser chose one (the creator's);
    # empty: the site's default for pages, the QuickBooks company's for drawn PDFs.
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, blank=True, default=""
    )
    # Times are shown in this zone, with its name (IANA), for every member.
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Paris")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("workspace")
        verbose_name_plural = _("workspaces")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="workspace_thresholds_ordered",
                condition=Q(review_threshold__gte=0)
                & Q(auto_threshold__lte=1)
                & Q(review_threshold__lte=F("auto_threshold")),
            )
        ]

    def __str__(self) -> str:
        return self.name


class TenantQuerySet(models.QuerySet):
    def for_workspace(self, workspace: Workspace | int) -> TenantQuerySet:
        workspace_id = workspace if isinstance(workspace, int) else workspace.pk
        return self.filter(workspace_id=workspace_id)


class TenantModel(models.Model):
    """Base for every model holding one workspace's data."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


def one_per_workspace(*fields: str, name: str, **options) -> models.UniqueConstraint:
    """A tenant model's uniqueness: at most one row of a workspace per value of `fields`."""
    return models.UniqueConstraint(fields=["workspace", *fields], name=name, **options)


def choice_valid(field: str, choices: type[models.Choices], *, name: str) -> models.CheckConstraint:
    """A choices column holds one of its choices, in the database too."""
    return models.CheckConstraint(name=name, condition=Q(**{f"{field}__in": choices.values}))


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.ACCOUNTANT)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    def allows(self, role: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class WorkspaceKey(models.Model):
    """The workspace's data key, stored only wrapped by a master key.

    Deleting the workspace deletes this row, which makes every secret sealed with it
    unreadable, copies and backups of other tables included (crypto-shredding).
    """

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="data_key")
    master_key_id = models.CharField(max_length=40)
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("workspace data key")
        verbose_name_plural = _("workspace data keys")

    def __str__(self) -> str:
        return f"data key of workspace {self.workspace_id} (master {self.master_key_id})"


class ActorType(models.TextChoices):
    USER = "user", _("User")
    API_KEY = "api_key", _("API key")
    SYSTEM = "system", _("System")


class AuditEvent(models.Model):
    """One thing that happened, forever. PostgreSQL rejects UPDATE and DELETE on this table.

    Actors and workspaces are kept by value (no foreign key constraint) so that deleting a
    user or a workspace never needs to touch the trail.
    """

    workspace = models.ForeignKey(
        Workspace,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        null=True,
        blank=True,
    )
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200)
    verb = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["workspace", "object_type", "object_id", "created_at"],
                name="audit_object_idx",
            ),
            models.Index(fields=["workspace", "created_at"], name="audit_workspace_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.verb}"


# --- Partner API: keys, idempotent replays, outgoing webhooks -------------------------------


class ApiScope(models.TextChoices):
    READ = "read", _("Read")
    DECIDE = "decide", _("Decide")
    ADMIN = "admin", _("Administer")


# What a key may do, as the role a person would need for the same thing.
SCOPE_ROLE = {
    ApiScope.READ: Role.VIEWER,
    ApiScope.DECIDE: Role.ACCOUNTANT,
    ApiScope.ADMIN: Role.OWNER,
}


class ApiKey(TenantModel):
    """A partner's key to one workspace. Only the SHA-256 of the secret is kept."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=16, help_text="the start of the key, shown to recognise it"
    )
    hashed = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="refused from this moment on; empty: never expires"
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "created_at"], name="api_key_workspace_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def role(self) -> str:
        """The strongest role the key's scopes amount to."""
        roles = [SCOPE_ROLE[ApiScope(s)] for s in self.scopes if s in ApiScope.values]
        return max(roles, key=lambda r: ROLE_RANK[r], default=Role.VIEWER)

    def allows(self, role: str) -> bool:
        return bool(self.scopes) and ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class ApiIdempotency(TenantModel):
    """The answer given to one (API key, Idempotency-Key): a retry gets it again, unchanged."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("API idempotency record")
        verbose_name_plural = _("API idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="api_idempotency_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key} -> {self.status_code}"


class WebhookEvent(models.TextChoices):
    RECORD_NEEDS_REVIEW = "record.needs_review", _("A record needs review")
    RECORD_POSTED = "record.posted", _("A record was posted to Qonto")
    RECORD_FAILED = "record.failed", _("Qonto refused a record")
    SYNC_FAILED = "sync.failed", _("A sync failed")
    CONNECTION_NEEDS_RECONNECT = "connection.needs_reconnect", _("A connection needs reconnecting")


class WebhookEndpoint(TenantModel):
    """Where a partner wants events; the signing secret is sealed with the workspace's key."""

    url = models.URLField(max_length=500)
    secret = models.TextField(blank=True, editable=False)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    RETRYING = "retrying", _("Retrying")
    FAILED = "failed", _("Failed")


class WebhookDelivery(TenantModel):
    """One event sent (or being sent) to one endpoint: the delivery log."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    payload = models.JSONField(default=dict)
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "created_at"], name="webhook_delivery_endpoint_idx")
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint_id} ({self.state})"
