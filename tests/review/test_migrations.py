"""Decision moved from matching to review (review 0001-0002, matching 0006): a database that held
decisions before the move keeps every row, and their permissions follow them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from review.models import Decision, DecisionKind

pytestmark = pytest.mark.django_db

BEFORE = [("matching", "0005_model_names_in_both_languages"), ("review", None)]


@pytest.fixture(autouse=True)
def _content_types_cleared():
    yield
    ContentType.objects.clear_cache()  # the rollback undoes the moves the cache may have seen


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    return executor


def test_decisions_stored_before_the_move_are_reviews_after_it(books):
    # PostgreSQL changes its schema in the test's transaction: it is all rolled back after.
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    bill = books.bill()
    for kind in (DecisionKind.APPROVE, DecisionKind.UPLOAD_AS_NEW):
        Decision.objects.create(
            workspace=books.workspace,
            record=bill,
            kind=kind,
            actor_type="user",
            actor_label="Ada",
            right_action="create",
            state_before="in_review",
            state_after="approved",
        )
    stored = list(Decision.objects.order_by("pk").values_list("pk", "kind", "record_id"))
    readers = Group.objects.create(name="decision readers")
    readers.permissions.add(Permission.objects.get(codename="view_decision"))

    state = migrate(BEFORE).loader.project_state(BEFORE[0])
    assert ("review", "decision") not in state.models
    rows = state.apps.get_model("matching", "Decision").objects.order_by("pk")
    assert list(rows.values_list("pk", "kind", "record_id")) == stored
    assert ContentType.objects.get(model="decision").app_label == "matching"

    migrate(latest)
    assert list(Decision.objects.order_by("pk").values_list("pk", "kind", "record_id")) == stored
    assert readers.permissions.get().content_type.app_label == "review"
    assert Decision.objects.create(
        workspace=books.workspace,
        record=bill,
        kind=DecisionKind.PIN,
        actor_type="user",
        actor_label="Ada",
        state_before="in_review",
        state_after="approved",
    ).pk > max(pk for pk, _, _ in stored)
