from __future__ import annotations

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction

from well.audit import Actor, audit_event_record
from well.context import request_id_bound
from well.models import AuditEvent
from well.services import workspace_thresholds_update

pytestmark = pytest.mark.django_db

_REJECTED = (IntegrityError, InternalError, ProgrammingError)


def test_an_event_records_who_what_and_why(make_workspace, make_user):
    workspace = make_workspace("Acme")
    user = make_user("ann@example.com")

    with request_id_bound("req-1234abcd"):
        event = audit_event_record(
            workspace=workspace,
            actor=Actor.user(user),
            verb="record.approved",
            object_type="matching.proposal",
            object_id=42,
            before={"state": "in_review"},
            after={"state": "approved"},
            reason="checked the PDF",
        )

    event.refresh_from_db()
    assert (event.actor_type, event.actor_label) == ("user", "ann@example.com")
    assert (event.object_type, event.object_id) == ("matching.proposal", "42")
    assert event.before == {"state": "in_review"} and event.after == {"state": "approved"}
    assert event.request_id == "req-1234abcd"


def test_the_event_is_part_of_the_callers_transaction(make_workspace):
    workspace = make_workspace("Acme")
    count = AuditEvent.objects.count()

    with pytest.raises(RuntimeError), transaction.atomic():
        audit_event_record(workspace=workspace, actor=Actor.system(), verb="sync.started")
        raise RuntimeError("the change failed")

    assert AuditEvent.objects.count() == count


def test_a_service_change_writes_its_event(make_workspace, make_user):
    workspace = make_workspace("Acme")
    user = make_user("ann@example.com")

    workspace_thresholds_update(
        workspace=workspace, auto_threshold=0.9, review_threshold=0.6, actor=Actor.user(user)
    )

    event = AuditEvent.objects.for_workspace(workspace).get(verb="workspace.thresholds_changed")
    assert event.before["auto_threshold"] == 0.85
    assert event.after["auto_threshold"] == 0.9


def test_postgresql_rejects_updating_an_event(make_workspace, on_postgresql):
    event = audit_event_record(workspace=make_workspace("Acme"), actor=Actor.system(), verb="x")

    with pytest.raises(_REJECTED, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(verb="rewritten")

    event.refresh_from_db()
    assert event.verb == "x"


def test_postgresql_rejects_deleting_an_event(make_workspace, on_postgresql):
    event = audit_event_record(workspace=make_workspace("Acme"), actor=Actor.system(), verb="x")

    with pytest.raises(_REJECTED, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_raw_sql_cannot_bypass_the_trigger(make_workspace, on_postgresql):
    event = audit_event_record(workspace=make_workspace("Acme"), actor=Actor.system(), verb="x")

    with (
        pytest.raises(_REJECTED, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM well_auditevent WHERE id = %s", [event.pk])
