"""Connections to the providers, with their sealed OAuth tokens."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from well.models import TenantModel


class Provider(models.TextChoices):
    QUICKBOOKS = "quickbooks", "QuickBooks Online"
    QONTO = "qonto", "Qonto"


class ConnectionStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"
    DISCONNECTED = "disconnected", "Disconnected"


class Connection(TenantModel):
    """One workspace's link to one provider account (a QuickBooks company, a Qonto org).

    Tokens are sealed with the workspace's data key (well.encryption), bound to this row.
    """

    SECRET_FIELDS = ("access_token", "refresh_token")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=12, choices=Provider.choices)
    status = models.CharField(
        max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.DISCONNECTED
    )
    external_id = models.CharField(
        max_length=64, blank=True, help_text="QuickBooks realmId or Qonto organization ID."
    )
    external_name = models.CharField(max_length=200, blank=True)
    access_token = models.TextField(blank=True, editable=False)
    refresh_token = models.TextField(blank=True, editable=False)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.CharField(max_length=300, blank=True)
    sync_marker = models.CharField(
        max_length=40, blank=True, help_text="Provider time of the newest committed change."
    )
    sync_minute = models.PositiveSmallIntegerField(default=0)
    last_good_sync_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "provider"], name="connection_one_per_provider"
            ),
            models.CheckConstraint(
                name="connection_sync_minute_in_hour", condition=models.Q(sync_minute__lt=60)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} ({self.get_status_display()})"
