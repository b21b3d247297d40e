"""What each QuickBooks record means in Qonto once it is approved (docs/triggers.md).

The one place that turns an approved outcome (link to this entry, or upload as new) into the
posting it means: `posting_plan` says it without writing (the decision service's check words it
for a person), `record_outcome_post` enqueues it.

A bill or a vendor credit is uploaded as a supplier invoice (or linked to the one Qonto already
holds); a purchase with a receipt is uploaded, one without is linked to its Qonto transaction; a
bill payment marks the bills' invoices paid (connectors/qonto/payments.py); the other kinds are
never posted.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from connectors.onboarding import purchase_qonto_bank_account
from connectors.qonto import selectors
from connectors.qonto.errors import NotPostable, WaitingForPayment
from connectors.qonto.models import Posting, PostingAction, PostingState, QontoEntry
from connectors.qonto.outbox import posting_enqueue
from connectors.qonto.payments import PAYMENT_KINDS, payment_settle
from connectors.quickbooks.models import SourceRecord
from well.audit import Actor

LINK, CREATE = "link", "create"  # the outcomes a decision approves (matching.core's words)

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


@dataclass(frozen=True)
class PostingPlan:
    """What an approved outcome means in Qonto: one posting, and the entry it links to."""

    action: str  # PostingAction
    target_qonto_id: str = ""
    target_kind: str = ""  # "invoice" or "transaction" for a link
    reason: str = ""
    entry: QontoEntry | None = None

    def words(self) -> str:
        """The plan as a person reads it before deciding."""
        if self.action == PostingAction.LINK:
            if self.entry is not None:
                what = (
                    _("Qonto transaction")
                    if self.target_kind == "transaction"
                    else _("Qonto supplier invoice")
                )
                details = " ".join(
                    part
                    for part in (
                        self.entry.counterparty,
                        f"{self.entry.amount:.2f} {self.entry.currency}"
                        if self.entry.amount is not None
                        else "",
                        self.entry.date.isoformat() if self.entry.date else "",
                        self.entry.invoice_number,
                    )
                    if part
                )
                return _("Link to %(what)s %(details)s") % {"what": what, "details": details}
            return _("Link to the Qonto object it was posted as (%(id)s)") % {
                "id": self.target_qonto_id
            }
        if self.action == PostingAction.CREDIT_NOTE:
            return _("Upload to Qonto as a new credit note")
        return _("Upload to Qonto as a new supplier invoice")


def _earlier_posted(record: SourceRecord) -> Posting | None:
    """A posting of an older version that reached Qonto: the record is linked to it again."""
    return (
        Posting.objects.for_workspace(record.workspace_id)
        .filter(record=record, state=PostingState.DONE)
        .exclude(source_version=record.sync_token or "0")
        .exclude(qonto_id="")
        .exclude(action__in=[PostingAction.MARK_PAID, PostingAction.UNMARK_PAID])
        .order_by("-done_at")
        .first()
    )


def _link(entry: QontoEntry, reason: str = "") -> PostingPlan:
    kind = "transaction" if entry.kind == "transaction" else "invoice"
    return PostingPlan(PostingAction.LINK, entry.qonto_id, kind, reason, entry)


def posting_plan(
    *, record: SourceRecord, action: str = CREATE, target: QontoEntry | None = None
) -> PostingPlan:
    """What this approved outcome means in Qonto, without writing anything (docs/triggers.md).

    A bill or a credit is a supplier invoice: it links to one Qonto holds or is uploaded, never
    closed by a bank transaction. A purchase with a receipt is uploaded; one without is its bank
    transaction (WaitingForPayment until Qonto has it). A record posted before and changed since
    links to what it was posted as: never posted twice. Raises NotPostable with the reason.
    """
    kind = record.entity_type
    if kind in NEVER_POSTED:
        raise NotPostable(NEVER_POSTED[kind])
    if kind in PAYMENT_KINDS:
        raise NotPostable(_("A payment is not decided: it marks its bills' invoices paid."))
    earlier = _earlier_posted(record)
    if earlier is not None:
        return PostingPlan(
            PostingAction.LINK,
            earlier.qonto_id,
            earlier.target_kind or "invoice",
            "changed in QuickBooks after posting: linked to what Qonto holds",
        )
    linking = action == LINK and target is not None
    if kind in UPLOAD_KINDS:
        if linking and target.kind == "transaction":
            raise NotPostable(
                _(
                    "A bill or a credit is a supplier invoice in Qonto: link it to a supplier "
                    "invoice or upload it as new; a bank transaction never closes it."
                )
            )
        if linking:
            return _link(target)
        existing = selectors.qonto_invoice_existing(record=record)
        if existing is not None:
            return _link(
                existing,
                f"Qonto already holds this invoice ({existing.invoice_number}); linked.",
            )
        return PostingPlan(UPLOAD_KINDS[kind])
    if kind == "Purchase":
        if linking and target.kind != "transaction":
            return _link(target)  # the receipt Qonto already holds
        if selectors.record_has_file(record=record):
            return PostingPlan(PostingAction.UPLOAD)
        if linking:
            return _link(target)
        paid_from = purchase_qonto_bank_account(record=record)  # the user's pairing wins
        transaction_entry = selectors.qonto_transaction_for(
            record=record, bank_account_id=paid_from.qonto_id if paid_from else ""
        )
        if transaction_entry is None:
            raise WaitingForPayment(_("No Qonto transaction matches this purchase yet."))
        return _link(transaction_entry)
    raise NotPostable(_("Well posts nothing to Qonto for a QuickBooks %(kind)s.") % {"kind": kind})


def record_outcome_post(
    *,
    record: SourceRecord,
    actor: Actor,
    action: str = CREATE,
    target: QontoEntry | None = None,
    reason: str = "",
) -> Posting:
    """Enqueue what this approved outcome means in Qonto, in the caller's transaction.

    Raises NotPostable (EntryTaken when another record holds the entry) with the reason.
    """
    if record.entity_type in PAYMENT_KINDS:
        settled = payment_settle(record=record, actor=actor)
        if not settled.postings:
            raise NotPostable(settled.reason)
        return settled.postings[-1]
    plan = posting_plan(record=record, action=action, target=target)
    posting = posting_enqueue(
        record=record,
        action=plan.action,
        actor=actor,
        target_qonto_id=plan.target_qonto_id,
        target_kind=plan.target_kind,
        reason=plan.reason or reason,
    )
    if posting.state == PostingState.FAILED and posting.error_code == "withdrawn":
        # The outbox keeps one row per (record, version, action): a withdrawn one is not reused.
        raise NotPostable(
            _(
                "a %(action)s of this version was withdrawn; it can be posted again once "
                "QuickBooks has a new version of the record"
            )
            % {"action": posting.get_action_display().lower()}
        )
    return posting


def record_post(*, record: SourceRecord, actor: Actor) -> Posting:
    """Post what this approved record means in Qonto when nobody chose an entry for it."""
    return record_outcome_post(record=record, actor=actor)
