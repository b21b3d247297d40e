"""What the matching model learns from people: review gathers the reviewers' answers from the
decisions and hands them to matching's fit, on every path that fits a model."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string

from matching import services as matching_services
from matching import tasks as matching_tasks
from matching.models import WorkspaceModel
from matching.selectors import ReviewerAnswer
from matching.services import record_propose
from review import decisions, tasks
from review.models import Decision, DecisionKind
from review.selectors.learning import reviewer_answers
from review.services import workspace_model_refit
from well.models import AuditEvent
from well.schedules import SCHEDULES

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def decided(books, record, kind, *, action="", entry=None, minutes_ago=0, note="") -> Decision:
    return Decision.objects.create(
        workspace=books.workspace,
        record=record,
        kind=kind,
        note=note or ("why" if kind == DecisionKind.OVERRIDE else ""),
        actor_type="user",
        actor_label="Ada",
        right_action=action,
        right_target=entry,
        state_before="in_review",
        state_after="approved",
        created_at=NOW - timedelta(minutes=minutes_ago),
    )


def answered(books, count: int = 3) -> list:
    """`count` bills a reviewer uploaded as new, one a minute."""
    bills = [books.bill(day=f"2025-01-{10 + i:02d}") for i in range(count)]
    for i, bill in enumerate(bills):
        decided(books, bill, DecisionKind.UPLOAD_AS_NEW, action="create", minutes_ago=i)
    return bills


def test_the_answers_are_the_decisions_that_say_what_a_record_is_newest_first(books, other_books):
    entry = books.invoice(day="2025-01-12")
    first, second, third = books.bill(), books.bill(day="2025-02-01"), books.bill(day="2025-03-01")
    decided(books, first, DecisionKind.APPROVE, action="link", entry=entry, minutes_ago=30)
    decided(books, second, DecisionKind.UPLOAD_AS_NEW, action="create", minutes_ago=20)
    decided(books, third, DecisionKind.OVERRIDE, action="create", minutes_ago=10)
    # A rejection only says what a record is not; an edit, nothing; another workspace, not ours.
    decided(books, first, DecisionKind.REJECT, action="create", minutes_ago=5)
    decided(books, second, DecisionKind.EDIT, minutes_ago=1)
    decided(other_books, other_books.bill(), DecisionKind.PIN, action="link")

    assert reviewer_answers(workspace=books.workspace) == [
        ReviewerAnswer(third.pk, "create", None, None),
        ReviewerAnswer(second.pk, "create", None, None),
        ReviewerAnswer(first.pk, "link", entry.kind, entry.qonto_id),
    ]


def test_the_answers_take_one_query(books, django_assert_num_queries):
    answered(books, 3)
    with django_assert_num_queries(1):
        reviewer_answers(workspace=books.workspace.pk)


def test_a_refit_learns_the_workspaces_answers_and_is_audited_as_matchings_work(books):
    answered(books, 3)

    model = workspace_model_refit(workspace=books.workspace)

    assert model.reviewer_labels == 3
    event = AuditEvent.objects.filter(verb="matching.model_fitted").latest("id")
    assert event.actor_label == "matching" and event.after["reviewer_labels"] == 3


def test_the_hourly_refresh_fits_a_stale_model_on_the_answers_given_since(books):
    workspace_model_refit(workspace=books.workspace)
    answered(books, 2)
    WorkspaceModel.objects.filter(workspace=books.workspace).update(
        fitted_at=NOW - timedelta(days=8)
    )

    assert tasks.workspace_models_refresh_task() == 1
    assert WorkspaceModel.objects.get(workspace=books.workspace).reviewer_labels == 2
    assert tasks.workspace_models_refresh_task() == 0  # fitted now: nothing stale


def test_a_model_lost_is_fitted_again_on_the_answers_at_the_next_proposal(books):
    answered(books, 2)
    WorkspaceModel.objects.filter(workspace=books.workspace).delete()

    record_propose(record=books.bill(day="2025-04-01"))

    assert WorkspaceModel.objects.get(workspace=books.workspace).reviewer_labels == 2


def test_the_fit_tasks_old_matching_paths_still_run_reviews(books):
    """Dotted paths are a public API: schedule rows and queued tasks made before the move."""
    answered(books, 2)

    matching_tasks.workspace_model_fit_task(books.workspace.pk)
    assert WorkspaceModel.objects.get(workspace=books.workspace).reviewer_labels == 2

    WorkspaceModel.objects.filter(workspace=books.workspace).update(fitted_at=None)
    assert matching_tasks.workspace_models_refresh_task() == 1


def test_every_task_named_by_its_dotted_path_resolves():
    paths = [spec.func for spec in SCHEDULES] + [
        matching_services.FIT_TASK,
        matching_services.ROUTE_TASK,
        matching_tasks.REFRESH_TASK,
        decisions.REFIT_TASK,
    ]
    assert all(callable(import_string(path)) for path in paths)
    assert "review.tasks.workspace_models_refresh_task" in paths
