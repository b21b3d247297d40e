"""What Well holds of a QuickBooks company: each record as last pulled, and its files.

Registered under the `connectors` app through the import at the end of connectors/models.py.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from well.models import TenantModel, choice_valid, one_per_workspace

__all__ = ["DOCUMENT_KINDS", "PayloadEncoder", "RecordState", "SourceFile", "SourceRecord"]

# The QuickBooks kinds that become a document in Qonto: their files are fetched with them, and
# they are the kinds matching proposes for (matching.selectors.MATCHED_KINDS).
DOCUMENT_KINDS = frozenset({"Bill", "Purchase", "VendorCredit"})


class RecordState(models.TextChoices):
    """Where a source record is in its life (architecture.md, "The lifecycle of a record")."""

    PULLED = "pulled", _("Pulled")
    PROPOSED = "proposed", _("Proposed")
    AUTO_APPROVED = "auto_approved", _("Auto-approved")
    IN_REVIEW = "in_review", _("In review")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    REFUSED = "refused", _("Refused")
    WAITING_PAYMENT = "waiting_payment", _("Waiting for payment")
    POSTING = "posting", _("Posting")
    POSTED = "posted", _("Posted")
    FAILED = "failed", _("Failed")


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

    connection = models.ForeignKey(
        "connectors.Connection", on_delete=models.CASCADE, related_name="records"
    )
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
    # The supplier block (Vendor fields; on a Bill, VendorCredit or Purchase, its vendor's).
    supplier_name = models.CharField(max_length=500, blank=True, help_text="Vendor.DisplayName")
    supplier_legal_name = models.CharField(
        max_length=500, blank=True, help_text="Vendor.CompanyName"
    )
    supplier_address = models.TextField(
        blank=True, help_text="Vendor.BillAddr, one printed line per line"
    )
    supplier_website = models.CharField(max_length=1000, blank=True, help_text="Vendor.WebAddr")
    supplier_tax_id = models.CharField(
        max_length=100, blank=True, help_text="Vendor.TaxIdentifier (masked by QuickBooks)"
    )
    supplier_email = models.CharField(
        max_length=254, blank=True, help_text="Vendor.PrimaryEmailAddr"
    )
    vendor_qbo_id = models.CharField(max_length=64, blank=True)

    first_pulled_at = models.DateTimeField(default=timezone.now, editable=False)
    pulled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("QuickBooks record")
        verbose_name_plural = _("QuickBooks records")
        constraints = [
            one_per_workspace("entity_type", "qbo_id", name="source_record_unique"),
            choice_valid("state", RecordState, name="source_record_state_valid"),
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
        verbose_name = _("QuickBooks attachment")
        verbose_name_plural = _("QuickBooks attachments")
        constraints = [
            one_per_workspace("record", "attachable", name="source_file_unique"),
            models.CheckConstraint(
                name="source_file_content_or_error",
                condition=~models.Q(sha256="") | ~models.Q(error=""),
            ),
        ]

    def __str__(self) -> str:
        return self.file_name or f"attachment {self.attachable_id}"
