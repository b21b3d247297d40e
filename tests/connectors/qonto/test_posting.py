"""The outbox end to end, over real HTTP against the Qonto sandbox on 127.0.0.1."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import connection as db_connection
from django.utils import timezone

from connectors.models import Connection, Onboarding
from connectors.onboarding import first_sync_start
from connectors.qonto.models import Posting, PostingAction, PostingState, QontoEntry
from connectors.qonto.outbox import NotPostable, posting_enqueue
from connectors.qonto.posting import (
    MAX_TRANSIENT_ATTEMPTS,
    Document,
    document_for,
    postings_send,
)
from connectors.qonto.posting_states import posting_claim
from connectors.qonto.services import qonto_api_for
from connectors.qonto.sync import qonto_sync
from connectors.qonto.triggers import record_post
from connectors.quickbooks.models import RecordState, SourceFile, SourceRecord
from connectors.selectors import qonto_connection_get
from tests.connectors.test_pdf_active_content import OPEN_ACTION_JS
from well.audit import Actor
from well.http import RetryPolicy
from well.models import AuditEvent

pytestmark = pytest.mark.django_db

REVIEWER = Actor.system("tests")
BULK = "POST /v2/supplier_invoices/bulk"


def fast_api(connection, **options):
    """The real client, with no backoff sleeps and a short timeout."""
    options.setdefault("sleep", lambda seconds: None)
    options.setdefault("timeout", 1.0)
    options.setdefault("policy", RetryPolicy(max_attempts=3, backoff_base=0.01))
    return qonto_api_for(connection, **options)


def send(**kwargs):
    kwargs.setdefault("api_for", fast_api)
    return postings_send(**kwargs)


def refreshed(posting: Posting) -> Posting:
    return Posting.objects.get(pk=posting.pk)


def test_an_approved_bill_posts_once_verified_with_its_qonto_link(connected, bill, qonto):
    posting = record_post(record=bill, actor=REVIEWER)
    assert posting.action == PostingAction.UPLOAD and posting.idempotency_key

    first = send()
    second = send()

    posting = refreshed(posting)
    assert posting.state == PostingState.DONE and posting.outcome == "created"
    assert posting.qonto_id and posting.qonto_url.endswith(posting.qonto_id)
    assert posting.file_sha256 and posting.file_name.endswith(".pdf")
    assert first.done == 1 and second.claimed == 0
    uploads = qonto.uploads()
    assert len(uploads) == 1
    assert uploads[0]["idempotency_key"] == posting.idempotency_key
    assert uploads[0]["id"] == posting.qonto_id
    assert uploads[0]["sha256"] == posting.file_sha256
    assert SourceRecord.objects.get(pk=bill.pk).state == RecordState.POSTED
    verbs = set(AuditEvent.objects.filter(object_id=str(posting.pk)).values_list("verb", flat=True))
    assert {"posting.enqueued", "posting.claimed", "posting.done"} <= verbs


def test_enqueueing_twice_for_one_version_gives_one_posting(connected, bill, qonto):
    first = posting_enqueue(record=bill, action=PostingAction.UPLOAD, actor=REVIEWER)
    again = posting_enqueue(record=bill, action=PostingAction.UPLOAD, actor=REVIEWER)
    assert first.pk == again.pk
    bill.sync_token = "1"
    bill.save(update_fields=["sync_token"])
    changed = posting_enqueue(record=bill, action=PostingAction.UPLOAD, actor=REVIEWER)
    assert changed.idempotency_key != first.idempotency_key


def test_a_timeout_then_success_sends_the_same_key(connected, bill, qonto):
    qonto.control(
        "faults", {"queue": ["timeout"], "timeout_seconds": 2.0, "timeout_phase": "after"}
    )
    posting = record_post(record=bill, actor=REVIEWER)

    report = send()

    posting = refreshed(posting)
    assert posting.state == PostingState.DONE
    assert qonto.calls(BULK) == 2  # the timed-out request and its retry
    uploads = qonto.uploads()
    assert len(uploads) == 1 and uploads[0]["idempotency_key"] == posting.idempotency_key
    assert report.done == 1


def test_a_crash_between_the_post_and_the_commit_creates_one_invoice(connected, bill, qonto):
    posting = record_post(record=bill, actor=REVIEWER)

    def crash(postings):
        raise RuntimeError("worker killed after Qonto answered")

    with pytest.raises(RuntimeError):
        send(after_send=crash)
    assert refreshed(posting).state == PostingState.IN_FLIGHT
    assert len(qonto.uploads()) == 1

    # The worker restarts; the dead claim's lease is over.
    send(lease=timedelta(0))

    posting = refreshed(posting)
    assert posting.state == PostingState.DONE and posting.outcome == "replayed"
    assert qonto.calls(BULK) == 2
    assert len(qonto.uploads()) == 1
    assert qonto.control("state")["duplicates"] == 0


def test_an_unknown_posting_older_than_qonto_key_memory_is_reconciled_not_resent(
    connected, bill, qonto
):
    posting = record_post(record=bill, actor=REVIEWER)
    with pytest.raises(RuntimeError):
        send(after_send=lambda postings: (_ for _ in ()).throw(RuntimeError("killed")))
    send(lease=timedelta(0), max_claims=0)  # recovery only: the claim becomes unknown
    assert refreshed(posting).state == PostingState.UNKNOWN
    # Forty minutes pass, on both sides: Qonto has forgotten the key.
    Posting.objects.filter(pk=posting.pk).update(sent_at=timezone.now() - timedelta(minutes=40))
    qonto.control("clock", {"advance_seconds": 40 * 60})
    assert qonto.control("state")["idempotency_keys"] == 1
    bulk_before = qonto.calls(BULK)

    report = send()

    posting = refreshed(posting)
    assert posting.state == PostingState.DONE and posting.outcome == "reconciled"
    assert report.reconciled == 1
    assert qonto.calls(BULK) == bulk_before
    assert len(qonto.uploads()) == 1


def test_a_qonto_side_item_error_leaves_the_item_to_be_sent_again_with_its_key(
    connected, make_record, qonto
):
    first = record_post(record=make_record("Bill"), actor=REVIEWER)
    second = record_post(record=make_record("Bill"), actor=REVIEWER)
    qonto.control("faults", {"queue": ["partial_bulk"]})

    report = send(max_claims=1)

    first, second = refreshed(first), refreshed(second)
    assert first.state == PostingState.DONE
    assert second.state == PostingState.UNKNOWN
    assert "could not be processed" in second.message
    assert second.error_code == "internal_server_error"
    assert SourceRecord.objects.get(pk=second.record_id).state == RecordState.POSTING
    assert report.bulk_requests == 1

    send()

    second = refreshed(second)
    assert second.state == PostingState.DONE
    assert SourceRecord.objects.get(pk=second.record_id).state == RecordState.POSTED
    assert sorted(u["idempotency_key"] for u in qonto.uploads()) == sorted(
        [first.idempotency_key, second.idempotency_key]
    )


def test_a_qonto_side_item_error_that_never_clears_fails_after_the_last_attempt(
    connected, bill, qonto
):
    posting = record_post(record=bill, actor=REVIEWER)
    qonto.control("faults", {"queue": ["partial_bulk"] * MAX_TRANSIENT_ATTEMPTS})

    for _ in range(MAX_TRANSIENT_ATTEMPTS):
        send()

    posting = refreshed(posting)
    assert posting.attempts == MAX_TRANSIENT_ATTEMPTS
    assert posting.state == PostingState.FAILED
    assert posting.message.startswith("Qonto refused it: ")
    assert SourceRecord.objects.get(pk=posting.record_id).state == RecordState.FAILED
    assert qonto.uploads() == []


def test_an_item_qonto_refuses_for_its_content_fails_with_the_reason(connected, make_record, qonto):
    good = record_post(record=make_record("Bill"), actor=REVIEWER)
    bad = record_post(record=make_record("Bill"), actor=REVIEWER)

    def documents(posting):
        if posting.pk != bad.pk:
            return document_for(posting)
        content = b"plain text, not a PDF"
        name = f"note--well-{posting.idempotency_key[:8]}.pdf"
        return Document(name, content, "application/pdf", hashlib.sha256(content).hexdigest())

    send(documents=documents)

    good, bad = refreshed(good), refreshed(bad)
    assert good.state == PostingState.DONE
    assert bad.state == PostingState.FAILED
    assert bad.message.startswith("Qonto refused it: ")
    assert bad.error_code == "invalid"
    assert SourceRecord.objects.get(pk=bad.record_id).state == RecordState.FAILED


def test_bulk_requests_hold_at_most_twenty_items(connected, make_record, qonto):
    postings = [record_post(record=make_record("Bill"), actor=REVIEWER) for _ in range(45)]

    report = send()

    assert report.bulk_requests == 3
    assert Posting.objects.filter(pk__in=[p.pk for p in postings], state="done").count() == 45
    assert len(qonto.uploads()) == 45


def test_an_invoice_already_in_qonto_is_linked_not_uploaded(connected, make_record, qonto):
    qonto_sync(connection_id=connected.pk)
    assert QontoEntry.objects.filter(invoice_number="PM-2024-001").exists()
    bill = make_record(
        "Bill",
        invoice_number="PM-2024-001",
        total_amount=Decimal("120.00"),
        supplier_name="Papeterie Martin",
    )

    posting = record_post(record=bill, actor=REVIEWER)
    send()

    posting = refreshed(posting)
    assert posting.action == PostingAction.LINK
    assert posting.state == PostingState.DONE and posting.outcome == "linked"
    existing = QontoEntry.objects.get(invoice_number="PM-2024-001")
    assert posting.qonto_id == existing.qonto_id
    assert qonto.uploads() == []


def test_postings_wait_for_the_first_qonto_read_then_link_what_qonto_already_holds(
    connected, make_record, qonto
):
    Connection.objects.filter(pk=connected.pk).update(last_good_sync_at=None)
    bill = make_record(
        "Bill",
        invoice_number="PM-2024-001",
        total_amount=Decimal("120.00"),
        supplier_name="Papeterie Martin",
    )
    posting = record_post(record=bill, actor=REVIEWER)

    waiting = send()

    assert waiting.claimed == 0 and refreshed(posting).state == PostingState.READY
    assert qonto.calls(BULK) == 0

    qonto_sync(connection_id=connected.pk)
    send()

    posting = refreshed(posting)
    assert posting.state == PostingState.DONE and posting.outcome == "linked"
    assert qonto.uploads() == []


def test_nothing_is_written_to_qonto_before_the_owner_starts_the_first_sync(
    connected, make_record, qonto
):
    """Issue 16: Well uploaded 2 invoices and marked 127 paid right after Qonto was connected,
    a minute before the owner pressed "Start the first sync"."""
    workspace = connected.workspace
    owner = workspace.memberships.first().user
    Onboarding.objects.create(workspace=workspace, mapping_confirmed_at=timezone.now())
    bill = make_record("Bill", invoice_number="GATE-1", total_amount=Decimal("80.00"))
    upload = record_post(record=bill, actor=REVIEWER)

    waiting = send()

    assert waiting.claimed == 0 and refreshed(upload).state == PostingState.READY
    writes = {r: n for r, n in qonto.control("stats")["calls"].items() if r.startswith("POST /v2")}
    assert writes == {}

    assert first_sync_start(workspace=workspace, actor=Actor.user(owner))
    send()

    assert refreshed(upload).state == PostingState.DONE
    assert qonto.calls(BULK) == 1


def test_a_payment_of_a_posted_bill_marks_the_qonto_invoice_paid(
    connected, bill, make_record, qonto
):
    bill_posting = record_post(record=bill, actor=REVIEWER)
    send()
    bill_posting = refreshed(bill_posting)
    payment = make_record(
        "BillPayment",
        issue_date=date(2026, 3, 14),
        payload={
            "Id": "900",
            "SyncToken": "0",
            "Line": [{"Amount": 240, "LinkedTxn": [{"TxnId": bill.qbo_id, "TxnType": "Bill"}]}],
        },
    )

    posting = record_post(record=payment, actor=REVIEWER)
    send()

    posting = refreshed(posting)
    assert posting.action == PostingAction.MARK_PAID
    assert posting.state == PostingState.DONE and posting.outcome == "paid"
    assert posting.qonto_id == bill_posting.qonto_id
    invoice = qonto.app.store.state["supplier_invoices"][bill_posting.qonto_id]
    assert invoice["status"] == "paid" and invoice["payment_date"] == "2026-03-14"


def test_a_payment_of_a_bill_never_posted_is_not_postable(connected, make_record, qonto):
    payment = make_record(
        "BillPayment",
        payload={"Id": "901", "Line": [{"LinkedTxn": [{"TxnId": "77", "TxnType": "Bill"}]}]},
    )
    with pytest.raises(NotPostable):
        record_post(record=payment, actor=REVIEWER)


def test_a_vendor_credit_is_uploaded_as_a_credit_note(connected, make_record, qonto):
    credit = make_record("VendorCredit", total_amount=Decimal("35.00"), invoice_number="AV-9")
    posting = record_post(record=credit, actor=REVIEWER)
    assert posting.action == PostingAction.CREDIT_NOTE

    send()

    assert refreshed(posting).state == PostingState.DONE
    assert len(qonto.uploads()) == 1


@pytest.mark.parametrize("kind", ["Invoice", "PurchaseOrder", "Vendor", "Customer", "Account"])
def test_kinds_that_mean_nothing_to_upload_are_refused_with_a_reason(connected, make_record, kind):
    with pytest.raises(NotPostable) as refusal:
        record_post(record=make_record(kind), actor=REVIEWER)
    assert str(refusal.value)
    assert not Posting.objects.exists()


def test_a_purchase_without_receipt_is_linked_to_its_qonto_transaction(
    connected, make_record, qonto
):
    qonto_sync(connection_id=connected.pk)
    debits = QontoEntry.objects.filter(kind="transaction", side="debit").exclude(date=None)
    # One whose amount and day no other debit shares: the payment is then this one, whatever
    # order the database returns them in.
    seen = Counter((d.amount, d.date) for d in debits)
    debit = next(d for d in debits.order_by("qonto_id") if seen[(d.amount, d.date)] == 1)
    purchase = make_record(
        "Purchase", total_amount=abs(debit.amount), issue_date=debit.date, currency=debit.currency
    )

    posting = record_post(record=purchase, actor=REVIEWER)
    send()

    posting = refreshed(posting)
    assert posting.target_kind == "transaction" and posting.outcome == "linked"
    assert posting.qonto_id == debit.qonto_id
    assert "/transactions/" in posting.qonto_url


def _attach(record: SourceRecord, name: str, content: bytes) -> SourceFile:
    attachable = SourceRecord.objects.create(
        workspace_id=record.workspace_id,
        connection_id=record.connection_id,
        entity_type="Attachable",
        qbo_id=f"A{record.qbo_id}",
        sync_token="0",
    )
    source = SourceFile(
        workspace_id=record.workspace_id,
        record=record,
        attachable=attachable,
        file_name=name,
        size=len(content),
        sha256="0" * 64,
    )
    source.file.save(f"test-{record.qbo_id}-{name}", ContentFile(content), save=False)
    source.save()
    return source


HOSTILE = {
    "html": ("invoice.pdf", b"<!doctype html><html><body>Please sign in</body></html>"),
    "encrypted": (
        "locked.pdf",
        b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R/Encrypt<<>>>>\n%%EOF",
    ),
    "truncated": ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R"),
    # Stored before the sync checked PDFs for scripts: the outbox checks again (issue 19).
    "javascript": ("script.pdf", OPEN_ACTION_JS),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_pdfs_are_refused_and_the_batch_goes_on(connected, make_record, qonto, case):
    hostile = make_record("Bill")
    _attach(hostile, *HOSTILE[case])
    good = make_record("Bill")
    bad_posting = record_post(record=hostile, actor=REVIEWER)
    good_posting = record_post(record=good, actor=REVIEWER)

    send()

    bad_posting, good_posting = refreshed(bad_posting), refreshed(good_posting)
    assert bad_posting.state == PostingState.FAILED
    assert bad_posting.message and bad_posting.error_code
    if case == "javascript":
        assert "JavaScript" in bad_posting.message
    assert good_posting.state == PostingState.DONE
    assert len(qonto.uploads()) == 1


def test_a_real_attachment_is_uploaded_as_is(connected, make_record, qonto):
    from connectors.pdf import RenderFields, render_record_pdf

    content = render_record_pdf(
        RenderFields(
            record_type="Bill",
            record_id="1",
            vendor_name="ACME",
            total=Decimal("9.99"),
            currency="EUR",
        )
    )
    record = make_record("Bill")
    _attach(record, "acme-scan.pdf", content)
    posting = record_post(record=record, actor=REVIEWER)

    send()

    posting = refreshed(posting)
    assert posting.state == PostingState.DONE
    assert posting.file_name.startswith("acme-scan--well-")
    import hashlib

    assert qonto.uploads()[0]["sha256"] == hashlib.sha256(content).hexdigest()


@pytest.mark.django_db(transaction=True)
def test_two_claimers_over_forty_ready_postings_get_disjoint_sets_covering_all(
    connected, make_record
):
    for _ in range(40):
        posting_enqueue(record=make_record("Bill"), action="upload", actor=REVIEWER)
    barrier = threading.Barrier(2)
    results: list[list] = [[], []]

    def claimer(index: int) -> None:
        try:
            barrier.wait()
            results[index] = [p.pk for p in posting_claim(limit=20)]
        finally:
            db_connection.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    first, second = set(results[0]), set(results[1])
    assert len(first) == 20 and len(second) == 20
    assert not first & second
    assert first | second == set(Posting.objects.values_list("pk", flat=True))


def test_enqueueing_in_a_transaction_that_rolls_back_leaves_no_posting_and_no_task(connected, bill):
    from django.db import transaction
    from django_q.models import OrmQ

    before = OrmQ.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        posting_enqueue(record=bill, action="upload", actor=REVIEWER)
        raise RuntimeError("approval failed")
    assert not Posting.objects.exists()
    assert OrmQ.objects.count() == before


def test_a_revoked_grant_releases_postings_and_marks_the_connection(connected, bill, qonto):
    posting = record_post(record=bill, actor=REVIEWER)
    grant = qonto.control("grants")["grants"][0]["id"]
    qonto.control("revoke", {"grant_id": grant})
    # The stored access token is still "fresh" on our side: Qonto answers 401.

    send()

    connected.refresh_from_db()
    assert connected.status == "needs_reconnect"
    assert refreshed(posting).state == PostingState.READY
    assert qonto.uploads() == []
    assert qonto_connection_get(workspace=connected.workspace_id) is not None


def test_a_qonto_that_keeps_failing_stops_the_run_instead_of_spinning(connected, bill, qonto):
    posting = record_post(record=bill, actor=REVIEWER)
    qonto.control("faults", {"rate_5xx": 1.0})

    report = send()

    assert report.claimed == 1
    assert refreshed(posting).state == PostingState.UNKNOWN
    qonto.control("faults", {"clear": True})
    send()
    assert refreshed(posting).state == PostingState.DONE
    assert len(qonto.uploads()) == 1
