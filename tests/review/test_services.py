"""Review decisions on PostgreSQL: roles, one transaction, exactly one posting, edits, override."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_q.models import OrmQ

from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.quickbooks.models import RecordState, SourceRecord
from matching.core.fitting import SPLIT_MIN
from matching.models import Band, Proposal, WorkspaceModel
from matching.services import record_propose
from review import decisions
from review.models import Decision, DecisionKind
from review.services import (
    DecisionError,
    record_approve,
    record_override,
    record_pin,
    record_reject,
    record_upload_as_new,
    records_bulk_approve,
)
from review.tasks import workspace_model_fit_task
from well.audit import Actor
from well.models import AuditEvent, Membership, Role, Workspace

pytestmark = pytest.mark.django_db


def state_of(record) -> str:
    return SourceRecord.objects.get(pk=record.pk).state


def owner_of(books):
    membership = Membership.objects.get(workspace=books.workspace, user=books.owner)
    return Actor.user(books.owner), membership


def in_review(books, **kwargs):
    """A bill sent to review: 'upload as new' (a vendor never seen, too thin to upload alone),
    a month-later invoice of another vendor kept as a candidate."""
    books.invoice(amount_text="100.00", day="2025-02-10")
    bill = books.bill(vendor_id="999", vendor_name="Zeta", **kwargs)
    proposal = record_propose(record=bill)
    assert proposal.band == Band.REVIEW
    return bill


def refused(books):
    # The vendor's only invoice is a month later and a sixth smaller: not this bill, maybe.
    entry = books.invoice(amount_text="100.00", day="2025-02-10")
    bill = books.bill()
    assert record_propose(record=bill).band == Band.REFUSED
    return bill, entry


def verbs(record) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_id=str(record.pk))
        .order_by("created_at", "id")
        .values_list("verb", flat=True)
    )


# --- roles ---------------------------------------------------------------------------------


ACTIONS = {
    "approve": lambda record, entry, **kw: record_approve(record=record, **kw),
    "reject": lambda record, entry, **kw: record_reject(record=record, **kw),
    "pin": lambda record, entry, **kw: record_pin(record=record, entry=entry, **kw),
    "upload_as_new": lambda record, entry, **kw: record_upload_as_new(record=record, **kw),
    "override": lambda record, entry, **kw: record_override(record=record, note="no", **kw),
    "bulk_approve": lambda record, entry, **kw: records_bulk_approve(records=[record], **kw),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_viewer_cannot_act(books, make_user, action):
    bill = in_review(books)
    entry = books.invoice(amount_text="121.00", day="2025-02-20")
    user, membership = books.member(make_user, "viewer@atelier.example", Role.VIEWER)
    before = AuditEvent.objects.count()

    with pytest.raises(PermissionDenied):
        ACTIONS[action](bill, entry, actor=Actor.user(user), membership=membership)

    assert state_of(bill) == RecordState.IN_REVIEW
    assert not Decision.objects.exists() and not Posting.objects.exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_member_of_another_workspace_cannot_act(books, other_books, action):
    bill = in_review(books)
    entry = books.invoice(amount_text="121.00", day="2025-02-20")
    actor, membership = owner_of(other_books)

    with pytest.raises(PermissionDenied):
        ACTIONS[action](bill, entry, actor=actor, membership=membership)

    assert state_of(bill) == RecordState.IN_REVIEW and not Decision.objects.exists()


def test_a_person_without_membership_cannot_act(books):
    bill = in_review(books)
    with pytest.raises(PermissionDenied):
        record_approve(record=bill, actor=Actor.user(books.owner), membership=None)


def test_an_accountant_may_act(books, make_user):
    bill = in_review(books)
    user, membership = books.member(make_user, "acc@atelier.example", Role.ACCOUNTANT)

    decision = record_approve(record=bill, actor=Actor.user(user), membership=membership)

    assert decision.user == user and decision.actor_label == user.username


# --- approve -------------------------------------------------------------------------------


def test_approving_writes_the_decision_state_audit_and_one_posting(books):
    bill = in_review(books)
    actor, membership = owner_of(books)

    decision = record_approve(record=bill, actor=actor, membership=membership, note="fine")

    assert decision.kind == DecisionKind.APPROVE and decision.note == "fine"
    assert decision.state_before == RecordState.IN_REVIEW
    assert decision.proposal == Proposal.objects.get(record=bill, is_current=True)
    assert decision.right_action == "create"
    assert state_of(bill) == RecordState.POSTING
    posting = Posting.objects.get(record=bill)
    assert posting.action == PostingAction.UPLOAD and posting.state == PostingState.READY
    assert verbs(bill)[-3:] == ["record.proposed", "record.approve", "record.posting"]
    event = AuditEvent.objects.get(verb="record.approve", object_id=str(bill.pk))
    assert event.actor_type == "user" and event.actor_id == str(books.owner.pk)
    assert event.after["proposed"]["band"] == Band.REVIEW and event.reason == "fine"


def test_approving_twice_enqueues_one_posting(books):
    bill = in_review(books)
    actor, membership = owner_of(books)

    record_approve(record=bill, actor=actor, membership=membership)
    with pytest.raises(DecisionError, match="cannot be approved now"):
        record_approve(record=bill, actor=actor, membership=membership)

    assert Posting.objects.filter(record=bill).count() == 1
    assert Decision.objects.filter(record=bill).count() == 1


def test_a_failure_rolls_back_the_decision_the_state_and_the_audit(books, monkeypatch):
    bill = in_review(books)
    actor, membership = owner_of(books)
    events = AuditEvent.objects.count()

    def broken(**kwargs):
        raise RuntimeError("the outbox is down")

    monkeypatch.setattr(decisions, "record_outcome_post", broken)
    with pytest.raises(RuntimeError):
        record_approve(
            record=bill, actor=actor, membership=membership, edits={"invoice_number": "N-1"}
        )

    assert state_of(bill) == RecordState.IN_REVIEW
    assert SourceRecord.objects.get(pk=bill.pk).invoice_number == ""
    assert not Decision.objects.exists() and not Posting.objects.exists()
    assert AuditEvent.objects.count() == events
    assert WorkspaceModel.objects.get(workspace=books.workspace).feedback_count == 0


def test_approving_with_edits_of_mapped_fields(books):
    bill = in_review(books)
    actor, membership = owner_of(books)

    decision = record_approve(
        record=bill,
        actor=actor,
        membership=membership,
        edits={"invoice_number": "AL-7", "due_date": "2025-02-05", "ledger_account": "6251"},
    )

    row = SourceRecord.objects.get(pk=bill.pk)
    assert row.invoice_number == "AL-7" and row.due_date == date(2025, 2, 5)
    proposal = Proposal.objects.get(record=bill, is_current=True)
    assert proposal.counterparty["ledger_account"] == "6251"
    assert proposal.counterparty["provenance"]["ledger_account"].startswith("set by")
    assert decision.edits["invoice_number"] == ["", "AL-7"]
    event = AuditEvent.objects.get(verb="record.approve", object_id=str(bill.pk))
    assert event.after["edits"]["due_date"] == ["2025-01-10", "2025-02-05"]


def test_invalid_edits_change_nothing_and_name_each_field(books):
    bill = in_review(books)
    actor, membership = owner_of(books)
    edits = {"invoice_number": "x" * 101, "due_date": "05/02/2025", "ledger_account": "9999"}

    with pytest.raises(ValidationError) as caught:
        record_approve(record=bill, actor=actor, membership=membership, edits=edits)

    assert set(caught.value.message_dict) == {"invoice_number", "due_date", "ledger_account"}
    assert state_of(bill) == RecordState.IN_REVIEW and not Decision.objects.exists()
    assert edits["invoice_number"] == "x" * 101  # the caller's input is untouched, to show again


# --- reject, pin, upload as new --------------------------------------------------------------


def test_rejecting_posts_nothing(books):
    bill = in_review(books)
    actor, membership = owner_of(books)

    decision = record_reject(record=bill, actor=actor, membership=membership, note="not ours")

    assert state_of(bill) == RecordState.REJECTED and decision.state_after == "rejected"
    assert not Posting.objects.exists()
    assert "record.reject" in verbs(bill)


def test_a_refused_record_is_pinned_by_hand_and_linked(books):
    bill, entry = refused(books)
    actor, membership = owner_of(books)

    decision = record_pin(record=bill, entry=entry, actor=actor, membership=membership)

    assert decision.right_target == entry and decision.state_before == RecordState.REFUSED
    posting = Posting.objects.get(record=bill)
    assert posting.action == PostingAction.LINK and posting.qonto_id == entry.qonto_id
    assert state_of(bill) == RecordState.POSTING


def test_pinning_another_workspaces_entry_is_refused(books, other_books):
    bill = in_review(books)
    foreign = other_books.invoice()
    actor, membership = owner_of(books)

    with pytest.raises(PermissionDenied):
        record_pin(record=bill, entry=foreign, actor=actor, membership=membership)
    assert not Decision.objects.exists()


def test_pinning_an_entry_linked_to_another_record_is_refused(books):
    entry = books.invoice(number="INV-42")
    record_propose(record=books.bill(doc="INV-42"))  # auto-linked to the invoice
    bill = in_review(books)
    actor, membership = owner_of(books)

    with pytest.raises(DecisionError, match="already linked"):
        record_pin(record=bill, entry=entry, actor=actor, membership=membership)


def test_uploading_as_new(books):
    bill, _ = refused(books)
    actor, membership = owner_of(books)

    decision = record_upload_as_new(record=bill, actor=actor, membership=membership)

    assert decision.right_action == "create"
    assert Posting.objects.get(record=bill).action == PostingAction.UPLOAD


# --- override ------------------------------------------------------------------------------


def auto_approved(books):
    """A bill linked automatically to a Qonto invoice (same amount and vendor, no number)."""
    entry = books.invoice()
    bill = books.bill(day="2025-01-05")
    assert record_propose(record=bill).band == Band.AUTO
    return bill, entry


def test_an_override_needs_a_note(books):
    bill, _ = auto_approved(books)
    actor, membership = owner_of(books)
    with pytest.raises(ValidationError):
        record_override(record=bill, actor=actor, membership=membership, note="  ")


def test_overriding_an_automatic_decision_before_it_is_sent_withdraws_its_posting(books):
    bill, _ = auto_approved(books)
    actor, membership = owner_of(books)

    decision = record_override(
        record=bill, actor=actor, membership=membership, note="wrong vendor", outcome="create"
    )

    assert decision.kind == DecisionKind.OVERRIDE and decision.state_before == "posting"
    postings = {p.action: p for p in Posting.objects.filter(record=bill)}
    assert postings[PostingAction.LINK].state == PostingState.FAILED
    assert postings[PostingAction.LINK].error_code == "withdrawn"
    assert postings[PostingAction.UPLOAD].state == PostingState.READY
    assert {"posting.withdrawn", "record.override"} <= set(
        AuditEvent.objects.values_list("verb", flat=True)
    )


def test_overriding_a_posted_record_flags_it_and_posts_nothing_again(books):
    bill, _ = auto_approved(books)
    Posting.objects.filter(record=bill).update(state=PostingState.DONE)
    SourceRecord.objects.filter(pk=bill.pk).update(state=RecordState.POSTED)
    actor, membership = owner_of(books)

    decision = record_override(
        record=bill, actor=actor, membership=membership, note="duplicate", outcome="reject"
    )

    assert decision.state_after == RecordState.IN_REVIEW == state_of(bill)
    assert Posting.objects.filter(record=bill).count() == 1
    assert "already sent to Qonto" in decision.note


# --- bulk ----------------------------------------------------------------------------------


def test_bulk_approve_decides_each_open_record_and_skips_the_others(books):
    bills = [books.bill(amount="121.00", day="2025-01-17") for _ in range(3)]
    for bill in bills:
        record_propose(record=bill)
    done, _ = auto_approved(books)
    actor, membership = owner_of(books)

    result = records_bulk_approve(records=[*bills, done], actor=actor, membership=membership)

    assert len(result.decided) == 3 and list(result.skipped) == [done.pk]
    assert Posting.objects.filter(record__in=bills).count() == 3
    assert WorkspaceModel.objects.get(workspace=books.workspace).feedback_count == 3


# --- feedback ------------------------------------------------------------------------------


def pair(books, i: int):
    """A bill of a Qonto invoice's amount two days before it: a likely link, not a certain one."""
    day = date(2025, 1, 1) + timedelta(days=20 * i)
    entry = books.invoice(amount_text=f"{100 + 10 * i}.00", day=day.isoformat())
    bill = books.bill(amount=f"{100 + 10 * i}.00", day=(day - timedelta(days=2)).isoformat())
    return bill, entry


def link_confidence(proposal: Proposal, entry) -> float:
    """What the engine gives the link to this entry, proposed or runner-up."""
    found = [c.confidence for c in proposal.candidates.all() if c.target_id == entry.pk]
    return found[0] if found else 0.0


def test_a_reviewers_decisions_change_later_proposals_of_that_workspace_only(
    make_books, django_capture_on_commit_callbacks
):
    """Reviewers who upload as new, again and again, the bills the engine would link to the
    invoice two days later: once their answers are fitted, that workspace's later proposals of
    the same kind lose their confidence, and another workspace's do not."""
    ours, theirs = make_books("Ours"), make_books("Theirs")
    for books in (ours, theirs):
        Workspace.objects.filter(pk=books.workspace.pk).update(auto_threshold=0.999)
    actor, membership = owner_of(ours)
    answers = SPLIT_MIN + 5
    first = None
    for i in range(answers):
        pair(theirs, i)  # the same books, where nobody decides
        bill, entry = pair(ours, i)
        proposal = record_propose(record=bill)
        first = first or link_confidence(proposal, entry)
        with django_capture_on_commit_callbacks(execute=True):
            record_upload_as_new(record=bill, actor=actor, membership=membership, note="not this")

    model = WorkspaceModel.objects.get(workspace=ours.workspace)
    assert model.feedback_count == answers  # counted, and a fit queued past REFIT_AFTER_ANSWERS
    queued = [q.task["func"] for q in OrmQ.objects.all()]
    assert "review.tasks.workspace_model_fit_task" in queued
    workspace_model_fit_task(ours.workspace.pk)  # what the worker runs

    later = {}
    for books in (ours, theirs):
        bill, entry = pair(books, answers + 1)
        later[books.workspace.name] = link_confidence(record_propose(record=bill), entry)

    assert first > 0.9 and later["Theirs"] > 0.75, later
    assert later["Ours"] < later["Theirs"] - 0.3, later
    model.refresh_from_db()
    assert model.feedback_count == 0 and model.reviewer_labels == answers
    assert WorkspaceModel.objects.get(workspace=theirs.workspace).reviewer_labels == 0


# --- queue ---------------------------------------------------------------------------------


def test_the_queue_takes_the_same_queries_for_3_or_30_records(books, django_assert_max_num_queries):
    from review.selectors.queue import review_queue

    books.invoice(day="2025-01-12")
    books.invoice(day="2025-01-15")

    def show():  # what a queue row shows: the record and the proposed entry
        for proposal in review_queue(workspace=books.workspace):
            _ = proposal.record.supplier_name, proposal.target and proposal.target.counterparty

    for _ in range(3):
        record_propose(record=books.bill())
    with django_assert_max_num_queries(3) as few:
        show()
    for _ in range(27):
        record_propose(record=books.bill())
    with django_assert_max_num_queries(len(few.captured_queries)):
        show()
    assert review_queue(workspace=books.workspace).count() == 30
