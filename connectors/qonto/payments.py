"""What a QuickBooks payment does in Qonto: the one place that marks invoices paid (and takes
a mark back), once per (payment version, invoice), with one audit event per decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from django.db import transaction
from django.utils import timezone

from connectors.lifecycle import record_transition
from connectors.qonto import selectors
from connectors.qonto.models import PAYMENT_ACTIONS, Posting, PostingAction, PostingState
from connectors.qonto.outbox import SYSTEM, posting_enqueue
from connectors.quickbooks.models import RecordState, SourceRecord
from well.audit import Actor, audit_event_record
from well.models import AuditEvent

logger = logging.getLogger("well.connectors.qonto")

PAYMENT_KINDS = frozenset({"BillPayment", "Payment"})

CUSTOMER_PAYMENT = (
    "A customer payment settles sales invoices, which are context for reconciliation only and "
    "never uploaded to Qonto; nothing to mark paid."
)
NO_POSTED_BILL = "This payment is not against a bill Well has posted; nothing to mark paid."


@dataclass(frozen=True)
class PaymentSettled:
    """What one version of a QuickBooks payment means in Qonto."""

    postings: list[Posting]  # one mark_paid per Qonto invoice paid (new or already queued)
    waiting: list[str]  # QuickBooks IDs of paid bills not in Qonto yet
    reason: str = ""  # why nothing (more) is posted
    undone: list[Posting] = field(default_factory=list)  # unmark_paid of marks no longer true
    withdrawn: list[str] = field(default_factory=list)  # Qonto invoices of marks never sent


def _payment_date(record: SourceRecord) -> date:
    if record.issue_date:
        return record.issue_date
    try:
        return date.fromisoformat(str(record.payload.get("TxnDate") or "")[:10])
    except ValueError:
        return timezone.localdate()


def _marks_in_effect(record: SourceRecord) -> dict[str, list[Posting]]:
    """The payment's mark_paid postings not undone yet, by Qonto invoice (oldest first)."""
    postings = Posting.objects.for_workspace(record.workspace_id).filter(
        record=record, action__in=PAYMENT_ACTIONS
    )
    undone = {
        (p.source_version, p.qonto_id) for p in postings if p.action == PostingAction.UNMARK_PAID
    }
    marks: dict[str, list[Posting]] = {}
    for posting in postings.order_by("created_at", "id"):
        if posting.action != PostingAction.MARK_PAID:
            continue
        if (posting.source_version, posting.qonto_id) not in undone:
            marks.setdefault(posting.qonto_id, []).append(posting)
    return marks


def _mark_undo(*, mark: Posting, record: SourceRecord, actor: Actor, reason: str) -> Posting | None:
    """Take back one mark_paid: withdrawn if it never reached Qonto, else an unmark_paid.

    Returns the unmark_paid posting, or None when the mark was withdrawn. A ready or failed mark
    was never accepted by Qonto (a failure is Qonto's refusal), so its row is deleted under a
    state condition (a worker that claimed it meanwhile wins, and the mark is undone instead).
    In flight, unknown or done, it may be in Qonto: the unmark is sent once it has settled.
    """
    withdrawable = [PostingState.READY, PostingState.FAILED]
    deleted, _ = Posting.objects.filter(pk=mark.pk, state__in=withdrawable).delete()
    if deleted:
        audit_event_record(
            workspace=record.workspace_id,
            actor=actor,
            verb="posting.withdrawn",
            obj=mark,
            before={
                "state": mark.state,
                "action": mark.action,
                "version": mark.source_version,
                "qonto_id": mark.qonto_id,
                "payment_date": mark.payment_date,
                "idempotency_key": mark.idempotency_key,
            },
            reason=f"{reason}; the mark never reached Qonto, so nothing is undone there",
        )
        return None
    return posting_enqueue(
        record=record,
        action=PostingAction.UNMARK_PAID,
        actor=actor,
        target_qonto_id=mark.qonto_id,
        target_kind="invoice",
        payment_date=mark.payment_date,
        reason=reason,
        undoes_version=mark.source_version,
    )


def payment_settle(*, record: SourceRecord, actor: Actor = SYSTEM) -> PaymentSettled:
    """The one place that decides what a QuickBooks payment does in Qonto (docs/triggers.md).

    A BillPayment marks paid, with its TxnDate, the Qonto supplier invoice of each bill it pays
    that Well posted or linked: one mark_paid posting per (payment version, invoice), so running
    it again changes nothing. A paid bill not in Qonto yet is waited for: when its posting is
    done, `bill_payments_settle` runs this again. A customer Payment pays sales invoices, which
    are never uploaded: recorded as context, nothing posted. One audit event per decision.

    A mark that is no longer true is taken back (`_mark_undo`): the payment was deleted, no
    longer pays that bill, or pays it on another date. Qonto keeps the first date when an
    invoice already paid is marked again (qonto-api.md §4.1), so a new date is an unmark then a
    new mark; the worker sends one invoice's payment postings in order.
    """
    version = record.sync_token or "0"
    if record.entity_type == "Payment" or record.errored:
        reason = (
            CUSTOMER_PAYMENT
            if record.entity_type == "Payment"
            else "A malformed QuickBooks payment marks nothing paid."
        )
        _payment_audit(record, actor, "payment.context", {"version": version}, reason, once=True)
        return PaymentSettled(postings=[], waiting=[], reason=reason)
    bills = [] if record.deleted else selectors.payment_bill_ids(record=record)
    invoices = {} if record.deleted else selectors.paid_bill_invoices(record=record)
    waiting = [bill for bill in bills if bill not in invoices]
    day = _payment_date(record)
    postings: list[Posting] = []
    undone: list[Posting] = []
    withdrawn: list[str] = []
    with transaction.atomic():
        # One decision at a time per payment: a sync and a bill's finish may settle it at once.
        SourceRecord.objects.select_for_update().filter(pk=record.pk).first()
        in_effect = _marks_in_effect(record)
        standing: dict[str, Posting] = {}  # invoice → the mark that still holds
        for invoice, marks in in_effect.items():
            for mark in marks:
                if invoice in invoices.values() and mark.payment_date == day:
                    standing.setdefault(invoice, mark)
                    continue
                if record.deleted:
                    why = f"QuickBooks payment {record.qbo_id} was deleted"
                elif invoice not in invoices.values():
                    why = f"QuickBooks payment {record.qbo_id} no longer pays this invoice's bill"
                else:
                    why = f"QuickBooks payment {record.qbo_id} is now dated {day.isoformat()}"
                unmark = _mark_undo(mark=mark, record=record, actor=actor, reason=why)
                if unmark is None:
                    withdrawn.append(invoice)
                else:
                    undone.append(unmark)
        new: dict[str, str] = {}
        for bill, invoice in invoices.items():
            if invoice in standing:
                postings.append(standing[invoice])
                continue
            postings.append(
                posting_enqueue(
                    record=record,
                    action=PostingAction.MARK_PAID,
                    actor=actor,
                    target_qonto_id=invoice,
                    target_kind="invoice",
                    payment_date=day,
                    reason=f"pays QuickBooks bill {bill}",
                )
            )
            new[bill] = invoice
        reason = ""
        if record.deleted:
            reason = "The QuickBooks payment was deleted: Well takes back what it marked paid."
        elif waiting:
            reason = f"Waiting for bill(s) {', '.join(waiting)} to be in Qonto to mark them paid."
        elif not invoices:
            reason = NO_POSTED_BILL
        after = {
            "version": version,
            "payment_date": day,
            "bills": bills,
            "marked_paid": new,
            "waiting": waiting,
            "deleted": record.deleted,
            "unmarked": [p.qonto_id for p in undone],
            "withdrawn": withdrawn,
        }
        if withdrawn and not Posting.objects.filter(record=record).exists():
            # Its only marks were withdrawn: the payment is back to where the sync left it.
            record_transition(
                record=record, state=RecordState.PULLED, actor=actor, reason="marks withdrawn"
            )
        changed = bool(new or undone or withdrawn)
        _payment_audit(record, actor, "payment.settled", after, reason, once=not changed)
    return PaymentSettled(
        postings=postings, waiting=waiting, reason=reason, undone=undone, withdrawn=withdrawn
    )


def _payment_audit(
    record: SourceRecord, actor: Actor, verb: str, after: dict, reason: str, *, once: bool
) -> None:
    """The decision's audit event; with `once`, only the first for this version."""
    object_type = "quickbooks." + record.entity_type.lower()
    same = {"after__version": after["version"]}
    if after.get("deleted"):
        same["after__deleted"] = True  # the deletion is its own decision for that version
    if (
        once
        and AuditEvent.objects.filter(
            workspace_id=record.workspace_id,
            object_type=object_type,
            object_id=str(record.pk),
            verb=verb,
            **same,
        ).exists()
    ):
        return
    audit_event_record(
        workspace=record.workspace_id,
        actor=actor,
        verb=verb,
        obj=record,
        object_type=object_type,
        after=after,
        reason=reason,
    )


def payments_settle(*, records: list[SourceRecord], actor: Actor = SYSTEM) -> int:
    """`payment_settle` for each payment of a synced batch; one failure never stops the rest."""
    made = 0
    for record in records:
        if record.entity_type not in PAYMENT_KINDS:
            continue
        try:
            settled = payment_settle(record=record, actor=actor)
            made += len(settled.postings) + len(settled.undone)
        except Exception:
            logger.exception("settling QuickBooks payment %s failed", record.pk)
    return made


def bill_payments_settle(*, bill: SourceRecord, actor: Actor = SYSTEM) -> int:
    """A bill is now in Qonto: the payments that arrived before it mark its invoice paid."""
    return payments_settle(records=list(selectors.payments_of_bill(bill=bill)), actor=actor)
