"""A workspace's model is fitted on its books and the reviewers' answers it is given (plain data:
review holds the decisions and hands them over; matching reads none itself)."""

from __future__ import annotations

import pytest

from matching import selectors
from matching.core import CREATE, LINK
from matching.selectors import ReviewerAnswer
from matching.services import workspace_model_fit
from well.models import AuditEvent

pytestmark = pytest.mark.django_db


def link(record, entry) -> ReviewerAnswer:
    return ReviewerAnswer(record.pk, LINK, entry.kind, entry.qonto_id)


def create(record) -> ReviewerAnswer:
    return ReviewerAnswer(record.pk, CREATE, None, None)


def test_a_fit_learns_exactly_the_answers_it_is_given(books):
    entry = books.invoice(day="2025-01-12")
    linked, uploaded = books.bill(), books.bill(day="2025-03-01")

    without = workspace_model_fit(workspace=books.workspace, answers=[])
    assert without.reviewer_labels == 0

    model = workspace_model_fit(
        workspace=books.workspace.pk, answers=[link(linked, entry), create(uploaded)]
    )
    assert model.reviewer_labels == 2 and model.feedback_count == 0
    event = AuditEvent.objects.filter(verb="matching.model_fitted").latest("id")
    assert event.after["reviewer_labels"] == 2


def test_the_newest_answer_about_a_record_is_the_one_that_counts(books):
    entry = books.invoice(day="2025-01-12")
    bill = books.bill()

    inputs = selectors.fitting_inputs(
        workspace=books.workspace, answers=[create(bill), link(bill, entry)]
    )

    assert [(label.record.id, label.target) for label in inputs.labels] == [(bill.qbo_id, None)]


def test_another_workspaces_records_and_a_link_to_a_vanished_entry_are_no_labels(
    books, other_books
):
    entry = books.invoice(day="2025-01-12")
    bill, theirs = books.bill(), other_books.bill()
    vanished = ReviewerAnswer(bill.pk, LINK, None, None)  # the entry was deleted since

    inputs = selectors.fitting_inputs(
        workspace=books.workspace,
        answers=[vanished, link(theirs, entry), link(bill, entry)],
    )

    # The link whose entry vanished says nothing: the older answer about the bill counts.
    assert [label.target for label in inputs.labels] == [(entry.kind, entry.qonto_id)]
