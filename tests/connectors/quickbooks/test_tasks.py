"""The dispatcher, the sync task and the `sync` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django_q.models import OrmQ

from connectors.models import Connection, ConnectionStatus, Provider, SyncRun, SyncStatus
from connectors.quickbooks import tasks
from well.schedules import SCHEDULES

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(make_workspace):
    workspace = make_workspace("Dispatch Co")
    return Connection.objects.create(
        workspace=workspace,
        provider=Provider.QUICKBOOKS,
        status=ConnectionStatus.CONNECTED,
        sync_minute=17,
        external_id="1",
    )


def queued() -> int:
    return OrmQ.objects.count()


def worker_picks_up(connection: Connection) -> None:
    """What a worker does first with a queued sync: start a run (the sync itself is not needed)."""
    OrmQ.objects.all().delete()
    SyncRun.objects.create(
        workspace_id=connection.workspace_id, connection=connection, status=SyncStatus.SUCCEEDED
    )


def test_the_dispatcher_is_scheduled_every_minute():
    spec = next(
        s for s in SCHEDULES if s.func == "connectors.quickbooks.tasks.quickbooks_sync_dispatch"
    )
    assert spec.minutes == 1


def test_a_connection_is_queued_once_per_hour_at_its_own_minute(live):
    OrmQ.objects.all().delete()
    with time_machine.travel(datetime(2026, 3, 1, 10, 16, tzinfo=UTC), tick=False):
        # This hour's minute has not come; the last hour's slot is long past: nothing.
        assert tasks.quickbooks_sync_dispatch() == 0
    with time_machine.travel(datetime(2026, 3, 1, 10, 17, 30, tzinfo=UTC), tick=False):
        assert tasks.quickbooks_sync_dispatch() == 1
        assert tasks.quickbooks_sync_dispatch() == 0
        worker_picks_up(live)
    with time_machine.travel(datetime(2026, 3, 1, 10, 59, tzinfo=UTC), tick=False):
        assert tasks.quickbooks_sync_dispatch() == 0
    with time_machine.travel(datetime(2026, 3, 1, 11, 17, tzinfo=UTC), tick=False):
        assert tasks.quickbooks_sync_dispatch() == 1


def test_at_most_24_scheduled_syncs_a_day(live):
    OrmQ.objects.all().delete()
    start = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    total = 0
    for minute in range(0, 24 * 60, 1):
        with time_machine.travel(start + timedelta(minutes=minute), tick=False):
            queued_now = tasks.quickbooks_sync_dispatch()
            total += queued_now
            if queued_now:
                worker_picks_up(live)
    assert total == 24


def test_a_sync_still_queued_an_hour_later_is_not_queued_again(live):
    OrmQ.objects.all().delete()
    with time_machine.travel(datetime(2026, 3, 1, 10, 17, tzinfo=UTC), tick=False):
        assert tasks.quickbooks_sync_dispatch() == 1
    with time_machine.travel(datetime(2026, 3, 1, 11, 17, tzinfo=UTC), tick=False):
        # No worker started it (a backlog): the queue keeps one task for this connection.
        assert tasks.quickbooks_sync_dispatch() == 0
    assert queued() == 1
    with time_machine.travel(datetime(2026, 3, 1, 12, 17, tzinfo=UTC), tick=False):
        # Two hours without a run: the task is presumed lost and the connection queued again.
        assert tasks.quickbooks_sync_dispatch() == 1


def test_a_connection_whose_sync_is_running_is_not_queued(live):
    OrmQ.objects.all().delete()
    with time_machine.travel(datetime(2026, 3, 1, 11, 17, tzinfo=UTC), tick=False):
        SyncRun.objects.create(
            workspace_id=live.workspace_id, connection=live, trigger="manual"
        )  # started now, still running
        assert tasks.quickbooks_sync_dispatch() == 0
    with time_machine.travel(datetime(2026, 3, 1, 12, 17, tzinfo=UTC), tick=False):
        # An hour later that run is past the task timeout: its worker died, it holds nothing.
        assert tasks.quickbooks_sync_dispatch() == 1


def test_a_missed_minute_is_caught_up_within_the_late_window(live):
    OrmQ.objects.all().delete()
    with time_machine.travel(datetime(2026, 3, 1, 10, 17, tzinfo=UTC), tick=False):
        assert tasks.quickbooks_sync_dispatch() == 1
        worker_picks_up(live)
    # The dispatcher was down from 11:10 to 11:30: the 11:17 slot is caught up at 11:30 ...
    with time_machine.travel(datetime(2026, 3, 1, 11, 30, tzinfo=UTC), tick=False):
        assert tasks.quickbooks_sync_dispatch() == 1
        worker_picks_up(live)
    # ... but a slot missed by more than 15 minutes waits for the next hour.
    with time_machine.travel(datetime(2026, 3, 1, 13, 33, tzinfo=UTC), tick=False):
        assert tasks.quickbooks_sync_dispatch() == 0
    with time_machine.travel(datetime(2026, 3, 1, 14, 17, tzinfo=UTC), tick=False):
        assert tasks.quickbooks_sync_dispatch() == 1


def test_the_queued_task_runs_the_sync_of_that_connection(live):
    OrmQ.objects.all().delete()
    with time_machine.travel(datetime(2026, 3, 1, 10, 17, tzinfo=UTC), tick=False):
        assert tasks.quickbooks_sync_dispatch() == 1
    task = OrmQ.objects.get().task
    assert task["func"] == "connectors.quickbooks.tasks.quickbooks_sync_task"
    assert task["args"] == (str(live.pk), False, "schedule")
    assert task["group"] == "sync"


def test_disconnected_and_needs_reconnect_connections_are_not_queued(live):
    OrmQ.objects.all().delete()
    for status in (ConnectionStatus.DISCONNECTED, ConnectionStatus.NEEDS_RECONNECT):
        Connection.objects.filter(pk=live.pk).update(status=status, sync_enqueued_at=None)
        assert tasks.quickbooks_sync_dispatch() == 0
    assert queued() == 0


def test_enqueueing_is_transactional(live):
    OrmQ.objects.all().delete()
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.quickbooks_sync_dispatch()
        raise RuntimeError("rolled back")
    assert queued() == 0
    live.refresh_from_db()
    assert live.sync_enqueued_at is None


def test_the_sync_task_run_twice_is_harmless(connected, qbo, monkeypatch):
    from connectors.quickbooks import sync as sync_module

    original = sync_module.api_for
    monkeypatch.setattr(
        sync_module, "api_for", lambda c, **kw: original(c, sleep=lambda s: None, **kw)
    )
    first = tasks.quickbooks_sync_task(str(connected.pk))
    second = tasks.quickbooks_sync_task(str(connected.pk))
    assert first["status"] == second["status"] == SyncStatus.SUCCEEDED
    assert sum(per["new"] for per in second["counts"].values()) == 0


def test_the_sync_command_prints_the_counts(connected, qbo):
    out = StringIO()
    call_command("sync", connected.workspace.slug, stdout=out)
    result = json.loads(out.getvalue())
    assert result["status"] == "succeeded"
    assert result["counts"]["Bill"]["new"] > 0
    out = StringIO()
    call_command("sync", connected.workspace.slug, "--full", stdout=out)
    result = json.loads(out.getvalue())
    assert result["full"] is True
    assert result["counts"]["Bill"]["new"] == 0
    assert SyncRun.objects.filter(connection=connected, trigger="command").count() == 2
