"""Connections to the providers (sealed OAuth tokens), their sync runs, onboarding and mapping.

Each provider's own rows are in its folder (connectors/quickbooks/models.py: the records pulled
from QuickBooks; connectors/qonto/models.py: what Qonto holds and the posting outbox), registered
under this app through the imports at the end of this module.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from well.models import TenantModel, one_per_workspace


class Provider(models.TextChoices):
    QUICKBOOKS = "quickbooks", _("QuickBooks Online")
    QONTO = "qonto", _("Qonto")


class ConnectionStatus(models.TextChoices):
    CONNECTED = "connected", _("Connected")
    NEEDS_RECONNECT = "needs_reconnect", _("Needs reconnect")
    DISCONNECTED = "disconnected", _("Disconnected")


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
    sync_enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the dispatcher last queued a scheduled sync."
    )
    reference_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When tax codes, company info and preferences were read."
    )
    connected_at = models.DateTimeField(null=True, blank=True)
    # Qonto only: what the organization's plan lets Well read (connectors/qonto/plan.py).
    # Unknown until the first read of the supplier-invoice list; False on Solo Basic.
    supplier_invoice_list_available = models.BooleanField(
        null=True,
        blank=True,
        help_text="Qonto: GET /v2/supplier_invoices answered (False: the plan does not allow it).",
    )
    plan_checked_at = models.DateTimeField(null=True, blank=True)
    plan_detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("connection")
        verbose_name_plural = _("connections")
        constraints = [
            one_per_workspace("provider", name="connection_one_per_provider"),
            models.CheckConstraint(
                name="connection_sync_minute_in_hour", condition=models.Q(sync_minute__lt=60)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} ({self.get_status_display()})"


class SyncStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


class SyncRun(TenantModel):
    """One sync of one connection: what it pulled, how many calls it made, how it ended."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_runs")
    status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    full = models.BooleanField(default=False)
    trigger = models.CharField(max_length=20, default="schedule")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    marker_before = models.CharField(max_length=40, blank=True)
    marker_after = models.CharField(max_length=40, blank=True)
    counts = models.JSONField(
        default=dict, blank=True, help_text="{entity: {new, updated, unchanged, deleted, errored}}"
    )
    api_calls = models.PositiveIntegerField(default=0)
    progress = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("sync run")
        verbose_name_plural = _("sync runs")
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["connection", "started_at"], name="sync_run_connection_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                name="sync_run_finished_after_start",
                condition=models.Q(finished_at__isnull=True)
                | models.Q(finished_at__gte=models.F("started_at")),
            ),
        ]

    def __str__(self) -> str:
        return f"sync {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    def total(self, outcome: str) -> int:
        """The count of one outcome over every entity."""
        return sum(per.get(outcome, 0) for per in (self.counts or {}).values())

    @property
    def total_new(self) -> int:
        return self.total("new")

    @property
    def total_updated(self) -> int:
        return self.total("updated")

    @property
    def total_deleted(self) -> int:
        return self.total("deleted")

    @property
    def total_errored(self) -> int:
        return self.total("errored")


# --- Onboarding (issue 10) -------------------------------------------------------------------


class Onboarding(TenantModel):
    """A workspace's way through the setup wizard: what its owner confirmed, and when.

    The wizard's current step is derived from the connections and these dates, never stored.
    """

    started_at = models.DateTimeField(default=timezone.now, editable=False)
    mapping_confirmed_at = models.DateTimeField(null=True, blank=True)
    default_expense_account_qbo_id = models.CharField(
        max_length=64, blank=True, help_text="QuickBooks Account Id of the default ledger account"
    )
    first_sync_started_at = models.DateTimeField(null=True, blank=True)
    # When the owner last pressed "Retry" after a failed step of the first sync: failures
    # before it are history, not what the page shows.
    first_sync_retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("onboarding")
        verbose_name_plural = _("onboardings")
        constraints = [one_per_workspace(name="onboarding_one_per_workspace")]

    def __str__(self) -> str:
        return f"onboarding of workspace {self.workspace_id}"


class BankAccountMapping(TenantModel):
    """The user's pairing of one QuickBooks bank Account with a Qonto bank account.

    It wins over the automatic pairing by IBAN or account number; no Qonto account means the
    user said this QuickBooks account is not a Qonto account.
    """

    qbo_account_id = models.CharField(max_length=64, help_text="QuickBooks Account Id")
    qonto_bank_account = models.ForeignKey(
        "connectors.QontoBankAccount",
        null=True,
        blank=True,
        # Another Qonto organization drops its accounts: the pairing falls back to automatic.
        on_delete=models.CASCADE,
        related_name="mappings",
    )
    confirmed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("bank account mapping")
        verbose_name_plural = _("bank account mappings")
        constraints = [one_per_workspace("qbo_account_id", name="bank_account_mapping_unique")]

    def __str__(self) -> str:
        return f"QuickBooks account {self.qbo_account_id} -> {self.qonto_bank_account_id}"


# Each provider's models belong to this app; importing them here registers them with it.
from connectors.qonto.models import *  # noqa: E402, F403
from connectors.quickbooks.models import *  # noqa: E402, F403
