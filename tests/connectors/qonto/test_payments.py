"""A QuickBooks BillPayment of a bill Well posted marks its Qonto invoice paid, over the real path:
sync → handoff → `payment_settle` → outbox → Qonto sandbox (docs/triggers.md); a deleted or
re-dated payment takes that mark back (unmark_paid), or withdraws it when it was never sent."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests

from connectors.models import Connection, Provider
from connectors.qonto import client
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.qonto.payments import payment_settle, payments_settle
from connectors.qonto.posting import WAITING_FOR_EARLIER, postings_recover, postings_send
from connectors.qonto.posting_states import posting_claim, posting_finish, posting_retry
from connectors.qonto.services import qonto_api_for
from connectors.qonto.triggers import record_post
from connectors.quickbooks.models import RecordState, SourceRecord
from sandbox.demo import (
    demo_sync_and_post,
)
from well.audit import Actor
from well.models import AuditEvent

MARK_PAID = "POST /v2/supplier_invoices/<invoice_id>/mark_as_paid"
UNMARK_PAID = "POST /v2/supplier_invoices/<invoice_id>/unmark_as_paid"
REVIEWER = Actor.system("tests")


def _mark_paid_calls(qonto_url: str) -> int:
    calls = requests.get(f"{qonto_url}/_sandbox/stats", timeout=30).json()["calls"]
    return calls.get(MARK_PAID, 0)


def _bill_invoices(workspace) -> dict[str, tuple[str, str]]:
    """QuickBooks bill ID → (Qonto invoice, upload or link) Well posted for it."""
    rows = (
        Posting.objects.for_workspace(workspace)
        .filter(
            record__entity_type="Bill",
            state=PostingState.DONE,
            action__in=[PostingAction.UPLOAD, PostingAction.LINK],
            target_kind="invoice",
        )
        .values_list("record__qbo_id", "qonto_id", "action")
    )
    return {bill: (invoice, action) for bill, invoice, action in rows}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_synced_bill_payment_marks_the_posted_bill_paid_in_qonto_once(sandboxes):
    workspace, urls = sandboxes

    demo_sync_and_post(workspace=workspace)

    posted = _bill_invoices(workspace)
    payments = SourceRecord.objects.for_workspace(workspace).filter(
        entity_type="BillPayment", deleted=False
    )
    expected: dict[str, tuple[str, str]] = {}  # Qonto invoice → (TxnDate, upload or link)
    for payment in payments:
        for line in payment.payload.get("Line") or []:
            for linked in line.get("LinkedTxn") or []:
                if linked.get("TxnType") == "Bill" and str(linked["TxnId"]) in posted:
                    invoice_id, action = posted[str(linked["TxnId"])]
                    expected[invoice_id] = (payment.payload["TxnDate"], action)
    uploaded = [i for i, (_, action) in expected.items() if action == PostingAction.UPLOAD]
    assert uploaded, "the sandbox world pays some of the bills Well uploaded"

    connection = Connection.objects.get(workspace=workspace, provider=Provider.QONTO)
    api = qonto_api_for(connection)
    for invoice_id, (paid_on, action) in expected.items():
        invoice = client.supplier_invoice(api, invoice_id)
        assert invoice["status"] == "paid", invoice_id
        if action == PostingAction.UPLOAD:
            # A linked invoice Qonto already held as paid keeps its own date (idempotent).
            assert invoice["payment_date"][:10] == paid_on
    paid = Posting.objects.for_workspace(workspace).filter(action=PostingAction.MARK_PAID)
    assert paid.count() == len(expected)
    assert set(paid.values_list("state", flat=True)) == {PostingState.DONE}
    calls = _mark_paid_calls(urls.qonto)
    assert calls == len(expected)

    # A customer Payment is context: no posting, no error, an audit event saying so.
    customer = SourceRecord.objects.for_workspace(workspace).filter(entity_type="Payment").first()
    if customer is not None:
        assert not Posting.objects.filter(record=customer).exists()
        assert customer.state == RecordState.PULLED
        assert AuditEvent.objects.filter(
            object_id=str(customer.pk), verb="payment.context"
        ).exists()

    demo_sync_and_post(workspace=workspace)

    assert _mark_paid_calls(urls.qonto) == calls
    assert paid.count() == len(expected)


def _payment(make_record, bill, *, qbo_id="950", paid_on=date(2026, 3, 20)):
    return make_record(
        "BillPayment",
        qbo_id=qbo_id,
        issue_date=paid_on,
        payload={
            "Id": qbo_id,
            "SyncToken": "0",
            "TxnDate": paid_on.isoformat(),
            "Line": [{"Amount": 240, "LinkedTxn": [{"TxnId": bill.qbo_id, "TxnType": "Bill"}]}],
        },
    )


def _send():
    return postings_send(api_for=lambda c, **o: qonto_api_for(c, sleep=lambda s: None, **o))


@pytest.mark.django_db
def test_a_payment_synced_before_its_bill_is_posted_marks_it_paid_once_posted(
    connected, bill, make_record, qonto
):
    payment = _payment(make_record, bill)

    settled = payment_settle(record=payment)

    assert settled.postings == [] and settled.waiting == [bill.qbo_id]
    assert AuditEvent.objects.filter(object_id=str(payment.pk), verb="payment.settled").exists()

    record_post(record=bill, actor=REVIEWER)
    _send()  # the bill is uploaded; its finish enqueues the payment's mark_paid, sent next

    bill_posting = Posting.objects.get(record=bill, action=PostingAction.UPLOAD)
    paid = Posting.objects.get(record=payment, action=PostingAction.MARK_PAID)
    assert paid.state == PostingState.DONE and paid.qonto_id == bill_posting.qonto_id
    invoice = qonto.app.store.state["supplier_invoices"][bill_posting.qonto_id]
    assert invoice["status"] == "paid" and invoice["payment_date"] == "2026-03-20"
    assert qonto.calls(MARK_PAID) == 1

    again = payment_settle(record=payment)  # a re-sync of the same version
    _send()

    assert again.postings == [paid]
    assert Posting.objects.filter(record=payment).count() == 1
    assert qonto.calls(MARK_PAID) == 1


@pytest.mark.django_db
def test_one_payment_of_two_posted_bills_marks_each_paid(connected, bill, make_record, qonto):
    other = make_record("Bill", invoice_number="F-2", total_amount=bill.total_amount)
    for each in (bill, other):
        record_post(record=each, actor=REVIEWER)
    _send()
    payment = _payment(make_record, bill)
    payment.payload["Line"].append(
        {"Amount": 1, "LinkedTxn": [{"TxnId": other.qbo_id, "TxnType": "Bill"}]}
    )
    payment.save(update_fields=["payload"])

    settled = payment_settle(record=payment)
    _send()

    assert len(settled.postings) == 2 and settled.waiting == []
    assert qonto.calls(MARK_PAID) == 2
    assert payment_settle(record=payment).postings == settled.postings


@pytest.mark.django_db
def test_a_customer_payment_is_context_never_posted(connected, make_record, qonto):
    payment = make_record(
        "Payment",
        payload={"Id": "960", "Line": [{"LinkedTxn": [{"TxnId": "12", "TxnType": "Invoice"}]}]},
    )

    settled = payment_settle(record=payment)
    payment_settle(record=payment)

    assert settled.postings == [] and "never uploaded" in settled.reason
    assert not Posting.objects.filter(record=payment).exists()
    events = AuditEvent.objects.filter(object_id=str(payment.pk), verb="payment.context")
    assert events.count() == 1


# --- Taking a mark back ------------------------------------------------------------------------


def _posted_bill_invoice(bill, qonto) -> dict:
    """Post the bill to the sandbox; its Qonto invoice as the sandbox holds it."""
    record_post(record=bill, actor=REVIEWER)
    _send()
    upload = Posting.objects.get(record=bill, action=PostingAction.UPLOAD)
    assert upload.state == PostingState.DONE
    return qonto.app.store.state["supplier_invoices"][upload.qonto_id]


def _delete(payment) -> SourceRecord:
    """What the QuickBooks sync does with a deleted payment: the row is kept, flagged."""
    SourceRecord.objects.filter(pk=payment.pk).update(deleted=True)
    payment.refresh_from_db()
    return payment


def _redate(payment, paid_on: date, version: str) -> SourceRecord:
    payment.payload = {**payment.payload, "TxnDate": paid_on.isoformat(), "SyncToken": version}
    payment.issue_date = paid_on
    payment.sync_token = version
    payment.save(update_fields=["payload", "issue_date", "sync_token"])
    return payment


@pytest.mark.django_db
def test_a_deleted_payment_puts_the_invoice_back_to_its_status_once(
    connected, bill, make_record, qonto
):
    invoice = _posted_bill_invoice(bill, qonto)
    status_before = invoice["status"]
    assert status_before != "paid"
    payment = _payment(make_record, bill)
    payment_settle(record=payment)
    _send()
    assert invoice["status"] == "paid" and invoice["payment_date"] == "2026-03-20"

    _delete(payment)
    payments_settle(records=[payment])  # the sync hands the deletion over ...
    payments_settle(records=[payment])  # ... and again, from a later page or a re-run
    _send()
    _send()

    assert invoice["status"] == status_before and invoice["payment_date"] is None
    assert qonto.calls(UNMARK_PAID) == 1 and qonto.calls(MARK_PAID) == 1
    mark = Posting.objects.get(record=payment, action=PostingAction.MARK_PAID)
    unmark = Posting.objects.get(record=payment, action=PostingAction.UNMARK_PAID)
    assert unmark.state == PostingState.DONE and unmark.outcome == "unpaid"
    assert unmark.qonto_id == mark.qonto_id and unmark.source_version == mark.source_version
    assert unmark.idempotency_key not in (mark.idempotency_key, "")
    verbs = list(
        AuditEvent.objects.filter(object_id=str(unmark.pk))
        .order_by("created_at", "id")
        .values_list("verb", flat=True)
    )
    assert verbs == ["posting.enqueued", "posting.claimed", "posting.done"]
    settled = AuditEvent.objects.filter(
        object_id=str(payment.pk), verb="payment.settled", after__deleted=True
    )
    assert settled.count() == 1
    assert settled.get().after["unmarked"] == [mark.qonto_id]


@pytest.mark.django_db
def test_a_redated_payment_is_unmarked_then_marked_paid_with_its_new_date(
    connected, bill, make_record, qonto
):
    invoice = _posted_bill_invoice(bill, qonto)
    payment = _payment(make_record, bill)
    payment_settle(record=payment)
    _send()

    _redate(payment, date(2026, 3, 27), version="1")
    settled = payment_settle(record=payment)
    payment_settle(record=payment)  # the same version again changes nothing
    _send()

    assert invoice["status"] == "paid" and invoice["payment_date"] == "2026-03-27"
    assert qonto.calls(UNMARK_PAID) == 1 and qonto.calls(MARK_PAID) == 2
    [unmark] = settled.undone
    assert unmark.source_version == "0"
    rows = Posting.objects.filter(record=payment).order_by("created_at")
    assert [(p.action, p.source_version, p.state) for p in rows] == [
        (PostingAction.MARK_PAID, "0", PostingState.DONE),
        (PostingAction.UNMARK_PAID, "0", PostingState.DONE),
        (PostingAction.MARK_PAID, "1", PostingState.DONE),
    ]

    # A new version paying on the same date keeps the mark that holds: nothing sent.
    payment.sync_token = "2"
    payment.save(update_fields=["sync_token"])
    assert payment_settle(record=payment).postings == [rows[2]]
    _send()
    assert Posting.objects.filter(record=payment).count() == 3
    assert qonto.calls(MARK_PAID) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["deleted", "redated"])
def test_a_mark_that_never_reached_qonto_is_withdrawn_without_a_request(
    connected, bill, make_record, qonto, change
):
    invoice = _posted_bill_invoice(bill, qonto)
    status_before = invoice["status"]
    payment = _payment(make_record, bill)
    [mark] = payment_settle(record=payment).postings  # queued, not sent yet

    if change == "deleted":
        settled = payment_settle(record=_delete(payment))
    else:
        settled = payment_settle(record=_redate(payment, date(2026, 3, 27), version="1"))
    _send()

    assert settled.withdrawn == [mark.qonto_id] and settled.undone == []
    assert not Posting.objects.filter(pk=mark.pk).exists()
    assert not Posting.objects.filter(record=payment, action=PostingAction.UNMARK_PAID).exists()
    withdrawn = AuditEvent.objects.get(object_id=str(mark.pk), verb="posting.withdrawn")
    assert withdrawn.before["idempotency_key"] == mark.idempotency_key
    assert qonto.calls(UNMARK_PAID) == 0
    if change == "deleted":
        assert qonto.calls(MARK_PAID) == 0
        assert invoice["status"] == status_before
        payment.refresh_from_db()
        assert payment.state == RecordState.PULLED
    else:
        assert qonto.calls(MARK_PAID) == 1
        assert invoice["status"] == "paid" and invoice["payment_date"] == "2026-03-27"


@pytest.mark.django_db
def test_an_unmark_waits_for_the_mark_in_flight_then_undoes_it(connected, bill, make_record, qonto):
    invoice = _posted_bill_invoice(bill, qonto)
    status_before = invoice["status"]
    payment = _payment(make_record, bill)
    payment_settle(record=payment)
    [mark] = posting_claim(limit=10)  # a worker holds the mark; its request may be on its way

    settled = payment_settle(record=_delete(payment))
    _send()

    [unmark] = settled.undone
    unmark.refresh_from_db()
    assert unmark.state == PostingState.READY and unmark.message == WAITING_FOR_EARLIER
    assert qonto.calls(UNMARK_PAID) == 0

    # That worker died: its mark is resent with its key (it reaches Qonto), then undone.
    assert postings_recover(lease=timedelta(0)) == 1
    _send()

    unmark.refresh_from_db()
    assert Posting.objects.get(pk=mark.pk).state == PostingState.DONE
    assert unmark.state == PostingState.DONE and unmark.outcome == "unpaid"
    assert invoice["status"] == status_before
    assert qonto.calls(MARK_PAID) == 1 and qonto.calls(UNMARK_PAID) == 1


@pytest.mark.django_db
def test_an_invoice_qonto_had_paid_before_well_stays_paid_when_the_payment_is_deleted(
    connected, bill, make_record, qonto
):
    invoice = _posted_bill_invoice(bill, qonto)
    invoice.update(status="paid", payment_date="2026-01-05")  # paid in Qonto by a person
    payment = _payment(make_record, bill)
    payment_settle(record=payment)
    _send()
    mark = Posting.objects.get(record=payment, action=PostingAction.MARK_PAID)
    assert mark.state == PostingState.DONE and mark.outcome == "already_paid"

    payment_settle(record=_delete(payment))
    _send()

    unmark = Posting.objects.get(record=payment, action=PostingAction.UNMARK_PAID)
    assert unmark.state == PostingState.DONE and unmark.outcome == "nothing_to_undo"
    assert invoice["status"] == "paid" and invoice["payment_date"] == "2026-01-05"
    assert qonto.calls(UNMARK_PAID) == 0


@pytest.mark.django_db
def test_a_mark_refused_after_its_unmark_was_queued_is_never_sent_nor_retried(
    connected, bill, make_record, qonto
):
    invoice = _posted_bill_invoice(bill, qonto)
    status_before = invoice["status"]
    payment = _payment(make_record, bill)
    payment_settle(record=payment)
    [mark] = posting_claim(limit=10)
    [unmark] = payment_settle(record=_delete(payment)).undone
    assert posting_finish(posting=mark, state=PostingState.FAILED, message="Qonto refused it.")

    _send()

    unmark.refresh_from_db()
    assert unmark.state == PostingState.DONE and unmark.outcome == "nothing_to_undo"
    assert posting_retry(posting=mark, actor=REVIEWER) is False
    _send()
    assert Posting.objects.get(pk=mark.pk).state == PostingState.FAILED
    assert invoice["status"] == status_before
    assert qonto.calls(MARK_PAID) == 0 and qonto.calls(UNMARK_PAID) == 0
