"""Benchmark the sync dispatcher with 1,000 and 10,000 workspaces on one PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/well .venv/bin/python -m benchmarks.bench_scale

Creates the workspaces in a throwaway `well_bench_scale` database, each with a QuickBooks and a
Qonto connection (1 in 20 disconnected or needing reconnection) and a day of sync-run history,
then simulates four hours minute by minute: each minute both dispatchers tick (the
`quickbooks-sync-dispatch` and `qonto-sync-dispatch` schedules), then simulated workers start up
to their capacity of queued syncs (a run row, as a real sync writes first) and finish them three
minutes later. Workers stop for the last two hours: the queue must stay at one task per
connection instead of growing by an hour's worth each hour. It measures the dispatcher, not syncs.

Prints one JSON line: per size, tick p50/p95/max seconds (one dispatcher call), queries per tick
(min and max), database seconds per tick (p95), tasks enqueued per tick (p50 and max), the max
queue depth while workers run and while they are stopped, whether each connected connection
was queued exactly once in each hour the workers ran, and how many were queued in each hour
without workers (all of them once, then none).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RUN_MINUTES = 3  # how long a simulated sync holds its connection
HISTORY_RUNS = 24  # a day of hourly runs per connection, so the run table is not empty
WORKERS_STOP_AT_HOUR = 2
HOURS = 4  # two with workers, then two without: the second must queue nothing more


# Django and Well's modules are imported inside the functions, after `_setup_django` has set
# the settings this script runs with (its own database); the rest is imported at the top.
def _setup_django() -> None:
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/well")
    os.environ["DJANGO_SETTINGS_MODULE"] = "well.settings"
    import django

    django.setup()
    from django.conf import settings

    settings.DATABASES["default"]["TEST"].update(NAME="well_bench_scale")
    logging.disable(logging.WARNING)  # django-q logs one INFO line per task queued


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def _populate(workspaces: int) -> set[str]:
    """The workspaces, their connections and run history; the connected connection IDs."""
    from django.db import connection as db

    from connectors.models import Connection, ConnectionStatus, Provider
    from well.models import Workspace

    tag = uuid.uuid4().hex[:6]
    rows = Workspace.objects.bulk_create(
        (Workspace(name=f"W {tag} {i}", slug=f"w-{tag}-{i}") for i in range(workspaces)),
        batch_size=2000,
    )
    connections = []
    for i, workspace in enumerate(rows):
        for provider in (Provider.QUICKBOOKS, Provider.QONTO):
            pk = uuid.uuid4()
            status = ConnectionStatus.CONNECTED
            if i % 20 == 7:
                status = ConnectionStatus.NEEDS_RECONNECT
            elif i % 20 == 13:
                status = ConnectionStatus.DISCONNECTED
            connections.append(
                Connection(
                    pk=pk,
                    workspace=workspace,
                    provider=provider,
                    status=status,
                    external_id=str(i),
                    # As connectors.services does on connect: a stable hash of the ID.
                    sync_minute=pk.int % 60,
                )
            )
    Connection.objects.bulk_create(connections, batch_size=2000)
    with db.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO connectors_syncrun (workspace_id, connection_id, status, "full", trigger,
                started_at, finished_at, marker_before, marker_after, counts, api_calls,
                progress, error)
            SELECT c.workspace_id, c.id, 'succeeded', false, 'schedule',
                   %s - h * interval '1 hour', %s - h * interval '1 hour' + interval '1 minute',
                   '', '', '{}', 0, '{}', ''
            FROM connectors_connection c CROSS JOIN generate_series(1, %s) AS h
            """,
            [START, START, HISTORY_RUNS],
        )
        cursor.execute("ANALYZE")
    return {str(c.pk) for c in connections if c.status == ConnectionStatus.CONNECTED}


def _workers_step(now: datetime, capacity: int) -> None:
    """Finish the runs older than RUN_MINUTES, then start up to `capacity` queued syncs."""
    from django_q.models import OrmQ

    from connectors.models import Connection, SyncRun, SyncStatus

    SyncRun.objects.filter(
        status=SyncStatus.RUNNING, started_at__lte=now - timedelta(minutes=RUN_MINUTES)
    ).update(status=SyncStatus.SUCCEEDED, finished_at=now)
    taken = list(OrmQ.objects.order_by("id")[:capacity])
    ids = [row.task["args"][0] for row in taken]
    SyncRun.objects.bulk_create(
        SyncRun(workspace_id=c.workspace_id, connection=c, started_at=now)
        for c in Connection.objects.filter(pk__in=ids).only("id", "workspace_id")
    )
    OrmQ.objects.filter(pk__in=[row.pk for row in taken]).delete()


def _simulate(workspaces: int) -> dict:
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext
    from django_q.models import OrmQ

    from connectors.dispatch import connections_dispatch
    from connectors.models import Provider

    connected = _populate(workspaces)
    # Enough workers for the steady load (2 connections per workspace, 1/60 each a minute) with
    # headroom, as an operator would size them.
    capacity = math.ceil(len(connected) / 60 * 2)
    tick_seconds, db_seconds, queries, enqueued = [], [], [], []
    depth_running, depth_stopped = [], []
    queued_per_hour: list[Counter] = [Counter() for _ in range(HOURS)]
    for minute in range(HOURS * 60):
        now = START + timedelta(minutes=minute, seconds=2)
        hour = minute // 60
        before = {row.pk for row in OrmQ.objects.only("id")}
        for provider in (Provider.QUICKBOOKS, Provider.QONTO):
            db.queries_log.clear()  # the log keeps 9,000 queries; a full one captures nothing
            with CaptureQueriesContext(db) as captured:
                started = time.perf_counter()
                count = connections_dispatch(provider=provider, now=now)
                tick_seconds.append(time.perf_counter() - started)
            queries.append(len(captured))
            db_seconds.append(sum(float(q["time"]) for q in captured.captured_queries))
            enqueued.append(count)
        new_rows = OrmQ.objects.exclude(pk__in=before)
        queued_per_hour[hour].update(row.task["args"][0] for row in new_rows)
        depth = OrmQ.objects.count()
        (depth_running if hour < WORKERS_STOP_AT_HOUR else depth_stopped).append(depth)
        if hour < WORKERS_STOP_AT_HOUR:
            _workers_step(now + timedelta(seconds=30), capacity)
    once = [queued_per_hour[h] == Counter(connected) for h in range(WORKERS_STOP_AT_HOUR)]
    return {
        "workspaces": workspaces,
        "connected_connections": len(connected),
        "tick_p50_s": round(statistics.median(tick_seconds), 4),
        "tick_p95_s": round(_percentile(tick_seconds, 0.95), 4),
        "tick_max_s": round(max(tick_seconds), 4),
        "queries_per_tick_min": min(queries),
        "queries_per_tick_max": max(queries),
        "db_seconds_per_tick_p95": round(_percentile(db_seconds, 0.95), 4),
        "enqueued_per_tick_p50": statistics.median(enqueued),
        "enqueued_per_tick_max": max(enqueued),
        "max_queue_depth_workers_running": max(depth_running),
        "max_queue_depth_workers_stopped": max(depth_stopped),
        "queued_once_each_hour_with_workers": all(once),
        "queued_per_hour_without_workers": [
            sum(queued_per_hour[h].values()) for h in range(WORKERS_STOP_AT_HOUR, HOURS)
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated workspace counts")
    args = parser.parse_args(argv)
    _setup_django()
    from django.db import connection as db

    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        db.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            results.append(_simulate(size))
        finally:
            db.creation.destroy_test_db("well_bench_scale", verbosity=0)
    print(json.dumps({"cpus": os.cpu_count(), "runs": results}))


if __name__ == "__main__":
    main()
