"""The dispatcher at scale: spread over the hour, bounded queue, constant queries per tick."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from connectors.models import Connection, ConnectionStatus, Provider, SyncRun, SyncStatus
from connectors.qonto import tasks as qonto_tasks
from connectors.quickbooks import tasks
from well.models import Workspace

pytestmark = pytest.mark.django_db

HOUR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_connections(
    count: int, *, provider: str = Provider.QUICKBOOKS, minute: int | None = None, **fields
) -> list[Connection]:
    """`count` workspaces, each with one connection at a stable minute (hashed, as on connect)."""
    tag = uuid.uuid4().hex[:8]
    workspaces = Workspace.objects.bulk_create(
        Workspace(name=f"Scale {tag} {i}", slug=f"scale-{tag}-{i}") for i in range(count)
    )
    fields.setdefault("status", ConnectionStatus.CONNECTED)
    connections = []
    for workspace in workspaces:
        pk = uuid.uuid4()
        connections.append(
            Connection(
                pk=pk,
                workspace=workspace,
                provider=provider,
                sync_minute=minute if minute is not None else pk.int % 60,
                **fields,
            )
        )
    return Connection.objects.bulk_create(connections)


def queued_connection_ids() -> list[str]:
    """The connection of every task in the queue (the first argument of a sync task)."""
    return [row.task["args"][0] for row in OrmQ.objects.all()]


def workers_pick_up_everything() -> None:
    """What workers do first with each queued sync: start a run; the queue empties."""
    runs = [
        SyncRun(
            workspace_id=c.workspace_id,
            connection=c,
            status=SyncStatus.SUCCEEDED,
            started_at=c.sync_enqueued_at + timedelta(seconds=30),
            finished_at=c.sync_enqueued_at + timedelta(minutes=2),
        )
        for c in Connection.objects.filter(pk__in=queued_connection_ids())
    ]
    SyncRun.objects.bulk_create(runs)
    OrmQ.objects.all().delete()


def tick(at: datetime, dispatch=tasks.quickbooks_sync_dispatch) -> int:
    with time_machine.travel(at, tick=False):
        return dispatch()


def test_every_connection_is_queued_exactly_once_an_hour_at_its_own_minute():
    connections = make_connections(300)
    minute_of = {str(c.pk): c.sync_minute for c in connections}
    assert len(set(minute_of.values())) > 50  # the hashed minutes really are spread

    for hour in range(2):
        seen: list[str] = []
        for minute in range(60):
            before = set(queued_connection_ids())
            tick(HOUR + timedelta(hours=hour, minutes=minute, seconds=5))
            this_tick = [c for c in queued_connection_ids() if c not in before]
            # Each tick queues exactly the connections of its own minute: ~1/60, never a herd.
            assert sorted(this_tick) == sorted(c for c, m in minute_of.items() if m == minute)
            seen += this_tick
        assert Counter(seen) == Counter(minute_of.keys())  # each once, none forgotten
        workers_pick_up_everything()


def test_a_connection_already_queued_or_running_is_not_queued_again():
    queued, running, idle = make_connections(3, minute=17)
    tick(HOUR + timedelta(minutes=17))
    assert sorted(queued_connection_ids()) == sorted(str(c.pk) for c in (queued, running, idle))
    # An hour later: `queued` was never picked up (backlog), `running` is in the middle of its
    # sync, `idle` finished its sync long ago.
    picked_up = [row.pk for row in OrmQ.objects.all() if row.task["args"][0] != str(queued.pk)]
    OrmQ.objects.filter(pk__in=picked_up).delete()
    next_slot = HOUR + timedelta(hours=1, minutes=17)
    SyncRun.objects.create(
        workspace_id=idle.workspace_id,
        connection=idle,
        status=SyncStatus.SUCCEEDED,
        started_at=HOUR + timedelta(minutes=18),
        finished_at=HOUR + timedelta(minutes=19),
    )
    SyncRun.objects.create(
        workspace_id=running.workspace_id,
        connection=running,
        status=SyncStatus.RUNNING,
        started_at=next_slot - timedelta(minutes=2),
        trigger="manual",
    )

    assert tick(next_slot) == 1
    assert Counter(queued_connection_ids()) == {str(queued.pk): 1, str(idle.pk): 1}


def test_the_queries_of_a_tick_do_not_grow_with_the_number_of_workspaces():
    def queries_for_a_tick(count: int, hour: int) -> tuple[int, int]:
        OrmQ.objects.all().delete()
        Connection.objects.update(status=ConnectionStatus.DISCONNECTED)
        make_connections(count, minute=17)
        make_connections(count, minute=40)  # not due at :17, on the table all the same
        with CaptureQueriesContext(db) as queries:
            queued = tick(HOUR + timedelta(hours=hour, minutes=17))
        return queued, len(queries)

    small_queued, small_queries = queries_for_a_tick(5, hour=0)
    large_queued, large_queries = queries_for_a_tick(200, hour=1)
    assert (small_queued, large_queued) == (5, 200)
    assert small_queries == large_queries <= 5
    assert OrmQ.objects.count() == 200


def test_disconnected_and_needs_reconnect_workspaces_are_skipped():
    live = make_connections(4, minute=17)
    make_connections(3, minute=17, status=ConnectionStatus.NEEDS_RECONNECT)
    make_connections(3, minute=17, status=ConnectionStatus.DISCONNECTED)

    assert tick(HOUR + timedelta(minutes=17)) == 4
    assert sorted(queued_connection_ids()) == sorted(str(c.pk) for c in live)


def test_the_qonto_dispatcher_spreads_and_bounds_its_reads_the_same_way():
    connections = make_connections(120, provider=Provider.QONTO)
    make_connections(5, provider=Provider.QUICKBOOKS, minute=17)
    for minute in range(60):
        tick(HOUR + timedelta(minutes=minute), dispatch=qonto_tasks.qonto_sync_dispatch)
    assert Counter(queued_connection_ids()) == Counter(str(c.pk) for c in connections)
    assert {row.task["func"] for row in OrmQ.objects.all()} == {
        "connectors.qonto.tasks.qonto_sync_task"
    }
    # Nothing was picked up: a second hour queues nothing more.
    for minute in range(60):
        tick(HOUR + timedelta(hours=1, minutes=minute), dispatch=qonto_tasks.qonto_sync_dispatch)
    assert OrmQ.objects.count() == len(connections)
