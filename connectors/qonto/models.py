"""Qonto side of the connectors app: what Qonto holds (candidates) and the posting outbox.

Registered under the `connectors` app through the import at the end of connectors/models.py.
"""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from well.models import TenantModel, choice_valid, one_per_workspace

__all__ = [
    "Posting",
    "PostingAction",
    "PostingState",
    "QontoBankAccount",
    "QontoEntry",
    "QontoEntryKind",
    "QontoLink",
]


class QontoEntryKind(models.TextChoices):
    SUPPLIER_INVOICE = "supplier_invoice", _("Supplier invoice")
    TRANSACTION = "transaction", _("Transaction")


class QontoEntry(TenantModel):
    """One Qonto supplier invoice or transaction as last read: a candidate for matching.

    One row per (workspace, kind, Qonto ID); a later read updates it in place.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey(
        "connectors.Connection", on_delete=models.CASCADE, related_name="qonto_entries"
    )
    kind = models.CharField(max_length=20, choices=QontoEntryKind.choices)
    qonto_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    payload_hash = models.CharField(max_length=64, blank=True)

    # Typed columns for matching (qonto-api.md §4.5, §5.3). Amounts are signed: a debit or a
    # credit note is negative.
    amount = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    local_amount = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    local_currency = models.CharField(max_length=3, blank=True)
    net_amount = models.DecimalField(
        max_digits=19,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="a supplier invoice's total_amount_excluding_taxes",
    )
    date = models.DateField(null=True, blank=True, help_text="issue date or settled/emitted day")
    due_date = models.DateField(null=True, blank=True)
    counterparty = models.CharField(max_length=500, blank=True)
    label = models.TextField(blank=True)
    reference = models.TextField(blank=True)
    invoice_number = models.CharField(max_length=100, blank=True)
    vat_number = models.CharField(max_length=100, blank=True)
    iban = models.CharField(max_length=64, blank=True)
    side = models.CharField(max_length=8, blank=True)
    status = models.CharField(max_length=24, blank=True)
    is_credit_note = models.BooleanField(default=False)
    bank_account_id = models.CharField(max_length=64, blank=True)
    attachment_ids = models.JSONField(default=list, blank=True)
    matched_ids = models.JSONField(
        default=list, blank=True, help_text="matched transactions (invoice) or invoices"
    )
    file_name = models.CharField(max_length=300, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    provider_updated_at = models.DateTimeField(null=True, blank=True)
    pulled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("Qonto entry")
        verbose_name_plural = _("Qonto entries")
        constraints = [
            one_per_workspace("kind", "qonto_id", name="qonto_entry_unique"),
            choice_valid("kind", QontoEntryKind, name="qonto_entry_kind_valid"),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "kind", "invoice_number"], name="qonto_entry_number_idx"
            ),
            models.Index(fields=["workspace", "file_name"], name="qonto_entry_file_idx"),
        ]

    def __str__(self) -> str:
        return f"Qonto {self.kind} {self.qonto_id}"


class QontoBankAccount(TenantModel):
    """A bank account of the connected Qonto organization (QBO bank Accounts map onto these)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey(
        "connectors.Connection", on_delete=models.CASCADE, related_name="qonto_bank_accounts"
    )
    qonto_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    iban = models.CharField(max_length=64, blank=True)
    bic = models.CharField(max_length=16, blank=True)
    account_number = models.CharField(max_length=64, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    main = models.BooleanField(default=False)
    status = models.CharField(max_length=20, blank=True)
    is_external = models.BooleanField(default=False)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    transactions_synced_to = models.CharField(
        max_length=40, blank=True, help_text="Qonto updated_at of the newest committed transaction"
    )
    pulled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("Qonto bank account")
        verbose_name_plural = _("Qonto bank accounts")
        constraints = [one_per_workspace("qonto_id", name="qonto_bank_account_unique")]

    def __str__(self) -> str:
        return f"{self.name or 'Qonto account'} ({self.iban[-4:] if self.iban else '?'})"


class PostingAction(models.TextChoices):
    UPLOAD = "upload", _("Upload as supplier invoice")
    CREDIT_NOTE = "credit_note", _("Upload as credit note")
    LINK = "link", _("Link to an existing Qonto object")
    MARK_PAID = "mark_paid", _("Mark the Qonto invoice as paid")
    UNMARK_PAID = "unmark_paid", _("Undo Well's mark as paid")


# One row per (payment version, Qonto invoice) for these: a payment of several bills marks each
# bill's invoice paid, and undoes each mark, separately.
PAYMENT_ACTIONS = ["mark_paid", "unmark_paid"]


class PostingState(models.TextChoices):
    READY = "ready", _("Ready")
    IN_FLIGHT = "in_flight", _("In flight")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    UNKNOWN = "unknown", _("Outcome unknown")


class Posting(TenantModel):
    """The outbox: one thing Well must do in Qonto for one version of one QuickBooks record.

    The idempotency key is derived from (workspace, entity, QuickBooks ID, version, action) and
    stored when the row is created, before any request; every retry sends the same key.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    record = models.ForeignKey(
        "connectors.SourceRecord", on_delete=models.CASCADE, related_name="postings"
    )
    source_version = models.CharField(max_length=32, help_text="the SyncToken posted")
    action = models.CharField(max_length=12, choices=PostingAction.choices)
    idempotency_key = models.CharField(max_length=64, unique=True)
    state = models.CharField(
        max_length=10, choices=PostingState.choices, default=PostingState.READY
    )
    attempt_id = models.UUIDField(null=True, blank=True, help_text="fence of the current claim")
    attempts = models.PositiveIntegerField(default=0)
    # For link, mark_paid and unmark_paid: the Qonto object acted on; for uploads: what Qonto
    # created.
    qonto_id = models.CharField(max_length=64, blank=True)
    qonto_url = models.URLField(max_length=500, blank=True)
    target_kind = models.CharField(max_length=20, blank=True, help_text="invoice or transaction")
    payment_date = models.DateField(null=True, blank=True)
    file_name = models.CharField(max_length=300, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    file_size = models.PositiveIntegerField(default=0)
    outcome = models.CharField(
        max_length=20, blank=True, help_text="created, replayed, linked, reconciled, paid, matched"
    )
    message = models.TextField(blank=True, help_text="Qonto's message, or why Well refused")
    error_code = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        constraints = [
            one_per_workspace(
                "record",
                "source_version",
                "action",
                condition=~models.Q(action__in=PAYMENT_ACTIONS),
                name="posting_once_per_version",
            ),
            # A payment of several bills marks each bill's Qonto invoice paid once per version;
            # an unmark carries the version of the mark it undoes, so each mark is undone once.
            one_per_workspace(
                "record",
                "source_version",
                "action",
                "qonto_id",
                condition=models.Q(action__in=PAYMENT_ACTIONS),
                name="posting_paid_once_per_invoice",
            ),
            choice_valid("state", PostingState, name="posting_state_valid"),
            models.CheckConstraint(
                name="posting_done_has_qonto_id",
                condition=~models.Q(state="done") | ~models.Q(qonto_id=""),
            ),
            models.CheckConstraint(
                name="posting_failed_has_message",
                condition=~models.Q(state="failed") | ~models.Q(message=""),
            ),
        ]
        indexes = [
            models.Index(fields=["state", "created_at"], name="posting_state_idx"),
            models.Index(fields=["workspace", "state"], name="posting_workspace_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.record_id} v{self.source_version} ({self.state})"


class QontoLink(TenantModel):
    """A record's claim on one Qonto supplier invoice or transaction: what it is linked to.

    Written with the link posting that makes it (connectors/qonto/links.py). A claim is live
    while its posting is queued, in flight or done, and released when the posting fails or is
    withdrawn. The database holds the promise that a Qonto entry is the target of at most one
    live link: a second record's claim on the same entry is an IntegrityError.
    """

    record = models.ForeignKey(
        "connectors.SourceRecord", on_delete=models.CASCADE, related_name="qonto_links"
    )
    target_kind = models.CharField(max_length=20, help_text="invoice or transaction")
    qonto_id = models.CharField(max_length=64)
    live = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Qonto link")
        verbose_name_plural = _("Qonto links")
        constraints = [
            one_per_workspace(
                "target_kind",
                "qonto_id",
                condition=models.Q(live=True),
                name="qonto_link_one_live_per_entry",
            ),
            models.UniqueConstraint(
                fields=["record", "target_kind", "qonto_id"], name="qonto_link_once_per_record"
            ),
        ]

    def __str__(self) -> str:
        released = "" if self.live else " (released)"
        return f"{self.record_id} -> {self.target_kind} {self.qonto_id}{released}"
