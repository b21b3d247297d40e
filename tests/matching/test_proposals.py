"""records_propose on PostgreSQL with real rows: bands, thresholds, rules, gates, re-proposal."""

from __future__ import annotations

import json

import pytest

from connectors import handoff
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.quickbooks.models import RecordState, SourceRecord
from matching import selectors
from matching.core.io import run
from matching.models import Band, Candidate, Proposal, VendorRule
from matching.services import proposals_refresh_for_entries, record_propose, records_propose
from well.models import AuditEvent

pytestmark = pytest.mark.django_db


def state_of(record) -> str:
    return SourceRecord.objects.get(pk=record.pk).state


def current(record) -> Proposal:
    return Proposal.objects.get(record=record, is_current=True)


def test_a_certain_match_is_auto_approved_and_its_posting_enqueued(books):
    invoice = books.invoice(number="INV-42")
    bill = books.bill(doc="INV-42")

    proposal = record_propose(record=bill)

    assert proposal.band == Band.AUTO and proposal.action == "link"
    assert proposal.target == invoice and proposal.confidence >= 0.85
    assert state_of(bill) == RecordState.POSTING
    posting = Posting.objects.get(record=bill)
    assert posting.action == PostingAction.LINK and posting.qonto_id == invoice.qonto_id
    assert posting.target_kind == "invoice" and posting.state == PostingState.READY
    verbs = list(
        AuditEvent.objects.filter(object_id=str(bill.pk))
        .order_by("created_at", "id")
        .values_list("verb", flat=True)
    )
    # Matching proposes; the decision service approves it automatically (review.decisions).
    assert verbs == ["record.proposed", "record.auto_approve", "record.posting"]


def test_the_proposal_audit_event_carries_scores_and_thresholds_in_force(books):
    books.invoice(number="INV-42")
    bill = books.bill(doc="INV-42")

    proposal = record_propose(record=bill)

    event = AuditEvent.objects.get(verb="record.proposed", object_id=str(bill.pk))
    assert event.actor_type == "system" and event.actor_label == "matching"
    assert event.before == {"state": "pulled"}
    assert event.after["state"] == RecordState.PROPOSED and event.after["band"] == "auto"
    assert event.after["confidence"] == proposal.confidence
    assert event.after["thresholds"] == {"auto": 0.85, "review": 0.55}
    assert event.after["model_version"] and event.after["reasons"]
    assert any("same amount" in r["detail"] for r in event.after["reasons"])


def test_a_middling_record_goes_to_review_with_its_candidates(books):
    # Two invoices of the vendor for the bill's amount, two and five days after it.
    books.invoice(day="2025-01-15")
    invoice = books.invoice(day="2025-01-12")
    bill = books.bill()

    proposal = record_propose(record=bill)

    assert proposal.band == Band.REVIEW and 0.55 <= proposal.confidence < 0.85
    assert state_of(bill) == RecordState.IN_REVIEW
    assert not Posting.objects.filter(record=bill).exists()
    assert any("below 0.85" in r["detail"] for r in proposal.reasons)
    targets = [c.target for c in proposal.candidates.order_by("rank")]
    assert invoice in targets
    ranked = list(proposal.candidates.order_by("rank"))
    assert ranked[0].action == proposal.action and ranked[0].confidence == proposal.confidence
    linked = next(c for c in ranked if c.target == invoice)
    assert linked.signals["amount"]["level"] and linked.reasons


def test_refused_record_keeps_its_candidates(books):
    # The vendor's only invoice is a month later and a sixth smaller: not this bill, maybe.
    invoice = books.invoice(amount_text="100.00", day="2025-02-10")
    bill = books.bill()

    proposal = record_propose(record=bill)

    assert proposal.band == Band.REFUSED and proposal.confidence < 0.55
    assert state_of(bill) == RecordState.REFUSED
    assert Candidate.objects.filter(proposal=proposal, target=invoice).exists()
    assert any("refused" in r["detail"] for r in proposal.reasons)


@pytest.mark.parametrize(
    ("rule", "band"),
    [
        (None, Band.REVIEW),
        ({"auto_threshold": 0.6}, Band.AUTO),
        ({"auto_threshold": 0.95}, Band.REVIEW),
    ],
)
def test_a_vendor_rule_sets_its_own_auto_threshold(books, rule, band):
    books.invoice(day="2025-01-12")
    books.invoice(day="2025-01-15")
    if rule:
        VendorRule.objects.create(workspace=books.workspace, vendor_qbo_id="1", **rule)
    bill = books.bill()

    proposal = record_propose(record=bill)

    assert 0.6 <= proposal.confidence < 0.85 and not proposal.gates_failed
    assert proposal.band == band
    assert proposal.auto_threshold == (rule or {}).get("auto_threshold", 0.85)
    assert Posting.objects.filter(record=bill).exists() == (band == Band.AUTO)


def test_a_never_auto_rule_sends_even_a_certain_match_to_review(books):
    books.invoice(number="INV-42")
    VendorRule.objects.create(workspace=books.workspace, vendor_qbo_id="1", never_auto=True)
    bill = books.bill(doc="INV-42")

    proposal = record_propose(record=bill)

    assert proposal.confidence >= 0.85 and proposal.band == Band.REVIEW
    assert proposal.rule["never_auto"] is True
    assert any("never auto-post" in r["detail"] for r in proposal.reasons)
    assert state_of(bill) == RecordState.IN_REVIEW
    assert not Posting.objects.exists()


def test_a_failed_gate_sends_a_strong_match_to_review_with_the_reason(books):
    books.reference("Preferences", "1", {"AccountingInfoPrefs": {"BookCloseDate": "2025-01-31"}})
    books.invoice(number="INV-42")
    bill = books.bill(doc="INV-42")

    proposal = record_propose(record=bill)

    assert proposal.band == Band.REVIEW
    assert proposal.gates_failed and "period closed" in proposal.gates_failed[0]
    assert any("period closed" in r["detail"] for r in proposal.reasons)
    assert state_of(bill) == RecordState.IN_REVIEW
    event = AuditEvent.objects.get(verb="record.proposed", object_id=str(bill.pk))
    assert "period closed" in event.reason


def test_an_entry_already_linked_to_another_record_is_not_auto_posted_again(books):
    invoice = books.invoice(number="INV-42")
    first = books.bill(doc="INV-42")
    record_propose(record=first)
    second = books.bill(doc="INV-42")

    proposal = record_propose(record=second)

    assert proposal.band != Band.AUTO
    assert proposal.target != invoice  # linked already: never offered to another record
    assert any("already Bill" in g and "duplicate" in g for g in proposal.gates_failed)
    assert Posting.objects.filter(qonto_id=invoice.qonto_id).count() == 1


def test_new_qonto_entries_re_propose_open_records(books):
    books.invoice(day="2025-01-12")
    books.invoice(day="2025-01-15")
    bill = books.bill(doc="F-118")
    first = record_propose(record=bill)
    assert first.band == Band.REVIEW

    arrived = books.invoice(day="2025-01-10", number="F-118")
    made = proposals_refresh_for_entries(workspace=books.workspace, entries=[arrived])

    assert [p.record_id for p in made] == [bill.pk]
    now = current(bill)
    assert now.target == arrived and now.band == Band.AUTO
    assert Proposal.objects.filter(record=bill).count() == 2  # the history is kept
    assert not Proposal.objects.get(pk=first.pk).is_current
    assert state_of(bill) == RecordState.POSTING


def test_entries_do_not_re_propose_settled_or_far_records(books):
    books.invoice(number="INV-42")
    settled = books.bill(doc="INV-42")
    record_propose(record=settled)
    far = books.bill(amount="999.00", day="2023-06-01")
    record_propose(record=far)

    arrived = books.invoice(amount_text="55.00", day="2025-01-11")
    made = proposals_refresh_for_entries(workspace=books.workspace, entries=[arrived])

    assert made == []
    assert Proposal.objects.filter(record=settled).count() == 1


def test_a_settled_record_is_not_proposed_twice_for_the_same_version(books):
    books.invoice(number="INV-42")
    bill = books.bill(doc="INV-42")

    record_propose(record=bill)
    again = records_propose(records=[bill])

    assert again == []
    assert Proposal.objects.filter(record=bill).count() == 1
    assert Posting.objects.filter(record=bill).count() == 1


def test_a_record_changed_after_it_was_posted_is_flagged_and_never_posted_twice(books):
    books.invoice(number="INV-42")
    bill = books.bill(doc="INV-42")
    record_propose(record=bill)
    posting = Posting.objects.get(record=bill)
    Posting.objects.filter(pk=posting.pk).update(state=PostingState.DONE)
    SourceRecord.objects.filter(pk=bill.pk).update(state=RecordState.POSTED)

    # QuickBooks changes the bill: a new SyncToken and amount.
    bill.refresh_from_db()
    bill.sync_token = "1"
    bill.payload = {**bill.payload, "SyncToken": "1", "TotalAmt": "130.00"}
    bill.save(update_fields=["sync_token", "payload"])
    handoff.records_changed([bill])

    proposal = current(bill)
    assert proposal.changed_after_posting and proposal.band == Band.REVIEW
    assert proposal.record_version == "1"
    assert "after Well posted it" in proposal.reasons[0]["detail"]
    assert state_of(bill) == RecordState.IN_REVIEW
    assert Posting.objects.filter(record=bill).count() == 1


def test_a_deleted_record_that_was_never_posted_leaves_the_queue(books, in_review):
    bill = in_review(books)
    SourceRecord.objects.filter(pk=bill.pk).update(deleted=True)
    bill.refresh_from_db()

    handoff.records_changed([bill])

    assert state_of(bill) == RecordState.REJECTED
    assert not Proposal.objects.filter(record=bill, is_current=True).exists()
    assert AuditEvent.objects.filter(verb="record.rejected", object_id=str(bill.pk)).exists()


def test_kinds_the_engine_does_not_match_stay_pulled(books):
    vendor = SourceRecord.objects.get(workspace=books.workspace, entity_type="Vendor")

    handoff.records_changed([vendor])

    assert state_of(vendor) == RecordState.PULLED
    assert not Proposal.objects.exists()


def test_one_batch_proposes_records_one_to_one(books):
    """Two bills as likely to be the one invoice: neither takes it alone, nothing is posted
    twice; a person settles which (approving one takes it, the other is proposed again)."""
    books.invoice(number="INV-42")
    bills = [books.bill(doc="INV-42"), books.bill(doc="INV-42")]

    made = records_propose(records=bills)

    assert all(p.band != Band.AUTO for p in made)
    shared = [p for p in made if p.target_id]
    if len(shared) == 2 and shared[0].target_id == shared[1].target_id:
        assert all("as likely to be this entry" in " ".join(p.gates_failed) for p in shared)
    assert Posting.objects.count() == 0


def test_proposals_use_only_their_own_workspace_rows(books, other_books):
    other_books.invoice(number="INV-42")
    bill = books.bill(doc="INV-42")

    proposal = record_propose(record=bill)

    assert proposal.action == "create" and proposal.target is None
    assert not Candidate.objects.filter(target__workspace=other_books.workspace).exists()


def test_the_inputs_of_a_batch_take_the_same_queries_for_3_or_30_records(
    books, django_assert_max_num_queries
):
    for i in range(30):
        books.invoice(amount_text=f"{100 + i}.00", day=f"2025-01-{1 + i % 28:02d}")
    few = [books.bill(amount=f"{100 + i}.00") for i in range(3)]
    many = few + [books.bill(amount=f"{200 + i}.00", doc=f"D-{i}") for i in range(27)]

    with django_assert_max_num_queries(10) as few_queries:
        selectors.matching_inputs(workspace=books.workspace, records=few)
    with django_assert_max_num_queries(len(few_queries.captured_queries)):
        selectors.matching_inputs(workspace=books.workspace, records=many)


def test_record_propose_decides_exactly_as_match_eval_does(books, tmp_path):
    """The database path and matching.core.io.run (match_eval) give the same decision."""
    books.invoice(number="INV-42")
    books.invoice(amount_text="121.00", day="2025-01-20")
    books.transaction(amount_text="120.00", day="2025-01-12")
    bill = books.bill(amount="121.00", day="2025-01-18")

    proposal = record_propose(record=bill)

    (tmp_path / "quickbooks").mkdir()
    (tmp_path / "qonto").mkdir()
    rows = SourceRecord.objects.filter(workspace=books.workspace)

    def dump(path, items):
        path.write_text("".join(json.dumps(item) + "\n" for item in items))

    dump(
        tmp_path / "quickbooks/vendors.jsonl",
        [r.payload for r in rows.filter(entity_type="Vendor")],
    )
    dump(
        tmp_path / "quickbooks/accounts.jsonl",
        [r.payload for r in rows.filter(entity_type="Account")],
    )
    entries = selectors.QontoEntry.objects.filter(workspace=books.workspace)
    dump(
        tmp_path / "qonto/supplier_invoices.jsonl",
        [e.payload for e in entries if e.kind != "transaction"],
    )
    dump(
        tmp_path / "qonto/transactions.jsonl",
        [e.payload for e in entries if e.kind == "transaction"],
    )
    dump(tmp_path / "incoming.jsonl", [{"type": "Bill", "object": bill.payload}])
    run(tmp_path, tmp_path / "decisions.jsonl")
    decision = json.loads((tmp_path / "decisions.jsonl").read_text())

    assert decision["action"] == proposal.action
    assert decision["confidence"] == proposal.confidence
    expected = (
        {"type": proposal.target.kind, "id": proposal.target.qonto_id} if proposal.target else None
    )
    assert decision["target"] == expected
    assert decision["model_version"] == proposal.model_version


def test_entries_re_propose_only_the_records_they_could_match(books, in_review):
    bill = in_review(books)

    unrelated = books.invoice(amount_text="55.00", day="2025-01-06", name="Boulangerie Paul")
    assert proposals_refresh_for_entries(workspace=books.workspace, entries=[unrelated]) == []

    by_number = books.invoice(amount_text="999.00", day="2024-06-01", number="X-1")
    SourceRecord.objects.filter(pk=bill.pk).update(invoice_number="X-1")
    made = proposals_refresh_for_entries(workspace=books.workspace.pk, entries=[by_number])
    assert [p.record_id for p in made] == [bill.pk]


def test_a_failing_proposal_never_fails_the_sync_and_is_proposed_later(books, monkeypatch):
    from matching import services, tasks

    books.invoice(number="INV-42")
    bill = books.bill(doc="INV-42")

    def broken(*args, **kwargs):
        raise RuntimeError("engine down")

    with monkeypatch.context() as patch:
        patch.setattr(services, "_propose_workspace", broken)
        handoff.records_changed([bill])
    assert state_of(bill) == RecordState.PULLED

    assert tasks.records_propose_pending_task(books.workspace.pk) == 1
    assert state_of(bill) == RecordState.POSTING
