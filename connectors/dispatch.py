"""The hourly dispatcher: each connection syncs at its own minute, at most one sync queued.

Also the one place a provider's sync task is queued (`sync_enqueue`: on connecting, a person's
request through connectors/sync_requests.py, a re-import, the first sync of onboarding).

A tick costs the same few queries whatever the number of workspaces: one locked SELECT of the
connections due, one UPDATE of their `sync_enqueued_at`, one INSERT of their tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from connectors.models import Connection, ConnectionStatus, Provider, SyncRun, SyncStatus

# A scheduled sync is at least this far from the previous one: with one slot an hour this keeps
# any 24 hours to 24 scheduled syncs even when the dispatcher ran a little late.
MIN_GAP = timedelta(minutes=59)
# A slot missed by at most this (dispatcher down, a tick skipped) is caught up; older, the next
# hour's slot takes over. It also bounds a catch-up burst to 16 minutes' worth of connections.
LATE_WINDOW = timedelta(minutes=15)
# A queued sync that no worker started within this is presumed lost (its task exhausted its
# attempts before the sync could record a run): the connection may be queued again.
QUEUED_LOST_AFTER = timedelta(hours=2)


@dataclass(frozen=True)
class SyncTask:
    """The task a provider's sync runs (dotted paths are a public API) and how it is called."""

    func: str
    name_prefix: str
    takes_full: bool  # QuickBooks can re-read everything; Qonto always reads incrementally

    def args(self, connection_id, *, trigger: str, full: bool = False) -> tuple:
        if self.takes_full:
            return (str(connection_id), full, trigger)
        return (str(connection_id), trigger)


SYNC_TASKS = {
    Provider.QUICKBOOKS: SyncTask(
        "connectors.quickbooks.tasks.quickbooks_sync_task", "sync", takes_full=True
    ),
    Provider.QONTO: SyncTask("connectors.qonto.tasks.qonto_sync_task", "qonto sync", False),
}


def sync_enqueue(*, connection: Connection, trigger: str, full: bool = False) -> None:
    """Queue one sync in the current transaction (ORM broker: a rollback un-queues it)."""
    task = SYNC_TASKS[connection.provider]
    async_task(
        task.func,
        *task.args(connection.pk, trigger=trigger, full=full),
        task_name=f"{task.name_prefix} {connection.pk}"[:100],
        group="sync",
    )


def _minutes_back(now: datetime, span: timedelta) -> list[int]:
    """The minutes of the hour from `now` back over `span`, `now`'s own minute first."""
    return [(now.minute - back) % 60 for back in range(int(span.total_seconds() // 60) + 1)]


def connections_due(*, provider: str, now: datetime) -> QuerySet[Connection]:
    """Connected connections whose minute has come, with no sync queued or running."""
    runs = SyncRun.objects.filter(connection=OuterRef("pk"))
    running = runs.filter(
        status=SyncStatus.RUNNING,
        # A worker killed mid-sync leaves its run `running`; past the task timeout it is dead.
        started_at__gte=now - timedelta(seconds=settings.Q_CLUSTER["timeout"]),
    )
    started_since_queued = runs.filter(started_at__gte=OuterRef("sync_enqueued_at"))
    on_time = Q(sync_minute=now.minute)
    # Catching up late slots is for connections already on the schedule: a first deploy (every
    # `sync_enqueued_at` empty) then starts with 1/60 of the connections, not 16/60.
    late = Q(sync_minute__in=_minutes_back(now, LATE_WINDOW)[1:], sync_enqueued_at__isnull=False)
    # The last queued sync was picked up (a run started since) or is presumed lost.
    previous_done = Exists(started_since_queued) | Q(sync_enqueued_at__lte=now - QUEUED_LOST_AFTER)
    return (
        Connection.objects.filter(provider=provider, status=ConnectionStatus.CONNECTED)
        .filter(on_time | late)
        # Every late slot is less than MIN_GAP old, so "not queued since the slot" reduces to this.
        .filter(
            Q(sync_enqueued_at__isnull=True)
            | (Q(sync_enqueued_at__lte=now - MIN_GAP) & previous_done)
        )
        .exclude(Exists(running))
    )


class _CollectingBroker:
    """Stands in for the broker in `async_task`, so the packages go to the queue in one INSERT."""

    def __init__(self, list_key: str):
        self.list_key = list_key
        self.packages: list[str] = []

    def enqueue(self, package: str) -> None:
        self.packages.append(package)


def _enqueue_many(task: SyncTask, connection_ids: list) -> None:
    """Queue one task per connection in the caller's transaction (ORM broker: one INSERT)."""
    broker = get_broker()
    collector = _CollectingBroker(broker.list_key or Conf.CLUSTER_NAME)
    for connection_id in connection_ids:
        # async_task builds and signs the package exactly as for any other task.
        async_task(
            task.func,
            *task.args(connection_id, trigger="schedule"),
            task_name=f"{task.name_prefix} {connection_id}"[:100],
            group="sync",
            broker=collector,
        )
    if isinstance(broker, ORM):
        now = timezone.now()
        OrmQ.objects.using(Conf.ORM).bulk_create(
            [OrmQ(key=collector.list_key, payload=p, lock=now) for p in collector.packages]
        )
    else:  # Redis and the other brokers take one package at a time (no database query).
        for package in collector.packages:
            broker.enqueue(package)


def connections_dispatch(*, provider: str, now: datetime | None = None) -> int:
    """Queue a scheduled sync for every connection of `provider` that is due; the count queued.

    Two dispatchers at once (two clusters) take disjoint connections (skip_locked), and a
    connection queued by one is no longer due for the other.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            connections_due(provider=provider, now=now)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        if not due:
            return 0
        Connection.objects.filter(pk__in=due).update(sync_enqueued_at=now)
        _enqueue_many(SYNC_TASKS[provider], due)
    return len(due)
