from __future__ import annotations

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from connectors import handoff
from connectors.models import Connection, ConnectionStatus, Provider
from connectors.quickbooks.models import RecordState, SourceRecord

pytestmark = pytest.mark.django_db


def test_new_qonto_entries_enqueue_a_re_proposal_of_that_workspace(make_workspace):
    workspace = make_workspace("Alpha")
    since = timezone.now()

    handoff.qonto_entries_changed(workspace_id=workspace.pk, since=since)

    task = OrmQ.objects.get().task
    assert task["func"] == "matching.tasks.proposals_refresh_task"
    assert task["args"] == (workspace.pk, since.isoformat())


def test_the_handoff_names_matchings_tasks_that_exist():
    assert callable(import_string(handoff.PROPOSE_TASK))
    assert callable(import_string(handoff.REFRESH_TASK))


def test_a_failing_proposal_batch_never_fails_the_sync(make_workspace, monkeypatch, caplog):
    workspace = make_workspace("Alpha")
    connection = Connection.objects.create(
        workspace=workspace, provider=Provider.QUICKBOOKS, status=ConnectionStatus.CONNECTED
    )
    bill = SourceRecord.objects.create(
        workspace=workspace, connection=connection, entity_type="Bill", qbo_id="1", payload={}
    )

    def explode(*, records):
        raise RuntimeError("matching is down")

    monkeypatch.setattr("matching.tasks.records_propose", explode)

    handoff.records_changed([bill])

    assert "proposing 1 handed-over records failed" in caplog.text
    bill.refresh_from_db()
    assert bill.state == RecordState.PULLED  # the sweep proposes it later
