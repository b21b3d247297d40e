"""What each QuickBooks record means in Qonto once it is approved (docs/triggers.md).

A bill or a vendor credit is uploaded as a supplier invoice (or linked to the one Qonto already
holds); a purchase with a receipt is uploaded, one without is linked to its Qonto transaction; a
bill payment marks the bills' invoices paid (connectors/qonto/payments.py); the other kinds are
never posted.
"""

from __future__ import annotations

from connectors.onboarding import purchase_qonto_bank_account
from connectors.qonto import selectors
from connectors.qonto.models import Posting, PostingAction
from connectors.qonto.outbox import NotPostable, posting_enqueue
from connectors.qonto.payments import PAYMENT_KINDS, payment_settle
from connectors.quickbooks.models import SourceRecord
from well.audit import Actor

# What each QuickBooks kind means in Qonto (docs/triggers.md).
UPLOAD_KINDS = {"Bill": PostingAction.UPLOAD, "VendorCredit": PostingAction.CREDIT_NOTE}
NEVER_POSTED = {
    # A CreditMemo is a credit to a customer (CustomerRef, no vendor): money Well's company owes
    # back to a client, the context of a customer refund, never a supplier credit note.
    "CreditMemo": "A credit memo is a credit to a customer (a sales document): context for a "
    "customer refund, never uploaded to Qonto as a supplier credit note.",
    "Invoice": "A sales invoice is context for reconciliation only; it is never uploaded to "
    "Qonto as a supplier invoice.",
    "PurchaseOrder": "A purchase order is not posted; it is the policy fit for the bill that "
    "arrives against it (vendor and amount within the order).",
    "Account": "A bank account is mapped to a Qonto bank account by IBAN or number, not posted.",
    "Vendor": "Vendors feed the counterparty graph used by enrichment; nothing is posted.",
    "Customer": "Customers feed the counterparty graph used by enrichment; nothing is posted.",
    "Attachable": "An attachment is posted as the PDF of its bill or purchase.",
}


def record_post(*, record: SourceRecord, actor: Actor) -> Posting:
    """Decide what this approved record means in Qonto and enqueue it (docs/triggers.md)."""
    kind = record.entity_type
    if kind in NEVER_POSTED:
        raise NotPostable(NEVER_POSTED[kind])
    if kind in UPLOAD_KINDS:
        existing = selectors.qonto_invoice_existing(record=record)
        if existing is not None:
            return posting_enqueue(
                record=record,
                action=PostingAction.LINK,
                actor=actor,
                target_qonto_id=existing.qonto_id,
                target_kind="invoice",
                reason=f"Qonto already holds this invoice ({existing.invoice_number}); linked.",
            )
        return posting_enqueue(record=record, action=UPLOAD_KINDS[kind], actor=actor)
    if kind in PAYMENT_KINDS:
        settled = payment_settle(record=record, actor=actor)
        if not settled.postings:
            raise NotPostable(settled.reason)
        return settled.postings[-1]
    if kind == "Purchase":
        if selectors.record_has_file(record=record):
            return posting_enqueue(record=record, action=PostingAction.UPLOAD, actor=actor)
        paid_from = purchase_qonto_bank_account(record=record)  # the user's pairing wins
        transaction_entry = selectors.qonto_transaction_for(
            record=record, bank_account_id=paid_from.qonto_id if paid_from else ""
        )
        if transaction_entry is None:
            raise NotPostable("No Qonto transaction matches this purchase yet.")
        return posting_enqueue(
            record=record,
            action=PostingAction.LINK,
            actor=actor,
            target_qonto_id=transaction_entry.qonto_id,
            target_kind="transaction",
        )
    raise NotPostable(f"Well posts nothing to Qonto for a QuickBooks {kind}.")
