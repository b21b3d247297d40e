"""Connections to the providers, with their sealed OAuth tokens."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
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
    sync_enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the dispatcher last queued a scheduled sync."
    )
    reference_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When tax codes, company info and preferences were read."
    )
    connected_at = models.DateTimeField(null=True, blank=True)
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


# --- QuickBooks source records ---------------------------------------------------------------


class RecordState(models.TextChoices):
    """Where a source record is in its life (architecture.md, "The lifecycle of a record")."""

    PULLED = "pulled", "Pulled"
    PROPOSED = "proposed", "Proposed"
    AUTO_APPROVED = "auto_approved", "Auto-approved"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REFUSED = "refused", "Refused"
    POSTING = "posting", "Posting"
    POSTED = "posted", "Posted"
    FAILED = "failed", "Failed"


class PayloadEncoder(DjangoJSONEncoder):
    """Decimals (QuickBooks money, parsed exactly) go back to JSON numbers when exact."""

    def default(self, o):
        if isinstance(o, Decimal):
            as_float = float(o)
            if o.is_finite() and Decimal(repr(as_float)) == o:
                return as_float
            return str(o)
        return super().default(o)


class SourceRecord(TenantModel):
    """One QuickBooks object as last pulled, with the mapping table's fields in typed columns.

    One row per (workspace, entity type, QuickBooks ID); a new SyncToken updates the row.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="records")
    entity_type = models.CharField(max_length=32)
    qbo_id = models.CharField(max_length=64)
    sync_token = models.CharField(max_length=32, blank=True)
    last_updated_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict, encoder=PayloadEncoder)
    payload_hash = models.CharField(max_length=64, blank=True)
    deleted = models.BooleanField(default=False)
    errored = models.BooleanField(default=False)
    error_reason = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=RecordState.choices, default=RecordState.PULLED)

    # The mapping table (issue 4): Bill, Purchase and Vendor fields, typed.
    total_amount = models.DecimalField(
        max_digits=19, decimal_places=4, null=True, blank=True, help_text="TotalAmt"
    )
    tax_amount = models.DecimalField(
        max_digits=19, decimal_places=4, null=True, blank=True, help_text="TxnTaxDetail.TotalTax"
    )
    currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217")
    issue_date = models.DateField(null=True, blank=True, help_text="TxnDate")
    due_date = models.DateField(null=True, blank=True)
    invoice_number = models.CharField(max_length=100, blank=True, help_text="DocNumber")
    label = models.TextField(blank=True, help_text="Purchase.PrivateNote")
    supplier_name = models.CharField(max_length=500, blank=True)
    supplier_website = models.CharField(max_length=1000, blank=True)
    supplier_tax_id = models.CharField(max_length=100, blank=True)
    vendor_qbo_id = models.CharField(max_length=64, blank=True)

    first_pulled_at = models.DateTimeField(default=timezone.now, editable=False)
    pulled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "entity_type", "qbo_id"], name="source_record_unique"
            ),
            models.CheckConstraint(
                name="source_record_state_valid",
                condition=models.Q(state__in=RecordState.values),
            ),
            models.CheckConstraint(
                name="source_record_amounts_not_negative",
                condition=(models.Q(total_amount__isnull=True) | models.Q(total_amount__gte=0))
                & (models.Q(tax_amount__isnull=True) | models.Q(tax_amount__gte=0)),
            ),
            models.CheckConstraint(
                name="source_record_error_has_reason",
                condition=models.Q(errored=False) | ~models.Q(error_reason=""),
            ),
            models.CheckConstraint(
                name="source_record_currency_iso",
                condition=models.Q(currency="") | models.Q(currency__regex=r"^[A-Z]{3}$"),
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "state"], name="source_record_state_idx"),
            models.Index(
                fields=["workspace", "entity_type", "vendor_qbo_id"],
                name="source_record_vendor_idx",
            ),
            # The review queue's sorts (state, then the column, then id for a stable order) and
            # the API's keyset pages (newest id first): each reads one index range, no sort.
            models.Index(
                fields=["workspace", "state", "total_amount", "id"], name="source_record_amount_idx"
            ),
            models.Index(
                fields=["workspace", "state", "issue_date", "id"], name="source_record_date_idx"
            ),
            models.Index(
                fields=["workspace", "state", "supplier_name", "id"],
                name="source_record_supplier_idx",
            ),
            models.Index(fields=["workspace", "id"], name="source_record_keyset_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.qbo_id}"


class SourceFile(TenantModel):
    """A QuickBooks attachment (an Attachable's file) downloaded for one transaction."""

    record = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="files")
    attachable = models.ForeignKey(
        SourceRecord, on_delete=models.CASCADE, related_name="attached_files"
    )
    attachable_sync_token = models.CharField(max_length=32, blank=True)
    file_name = models.CharField(max_length=300, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    file = models.FileField(upload_to="quickbooks/", max_length=300, blank=True)
    error = models.TextField(blank=True)
    retryable = models.BooleanField(
        default=False, help_text="The download failed for a reason a later sync may not meet."
    )
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "record", "attachable"], name="source_file_unique"
            ),
            models.CheckConstraint(
                name="source_file_content_or_error",
                condition=~models.Q(sha256="") | ~models.Q(error=""),
            ),
        ]

    def __str__(self) -> str:
        return self.file_name or f"attachment {self.attachable_id}"


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


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


from connectors.qonto.models import *  # noqa: E402, F403

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

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="onboarding_one_per_workspace"),
        ]

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
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "qbo_account_id"], name="bank_account_mapping_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"QuickBooks account {self.qbo_account_id} -> {self.qonto_bank_account_id}"
