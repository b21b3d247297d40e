from __future__ import annotations

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from connectors import handoff

pytestmark = pytest.mark.django_db


def test_new_qonto_entries_enqueue_a_re_proposal_of_that_workspace(make_workspace):
    workspace = make_workspace("Alpha")
    since = timezone.now()

    handoff.qonto_entries_changed(workspace_id=workspace.pk, since=since)

    task = OrmQ.objects.get().task
    assert task["func"] == "matching.tasks.proposals_refresh_task"
    assert task["args"] == (workspace.pk, since.isoformat())


def test_a_failing_proposal_batch_never_fails_the_sync(monkeypatch, caplog):
    def explode(*, records):
        raise RuntimeError("matching is down")

    monkeypatch.setattr("matching.services.records_propose", explode)

    handoff.records_changed([])

    assert "proposing 0 handed-over records failed" in caplog.text
