"""What both syncs share: one sync per connection at a time, and every run kept as a row.

`sync_run` takes the connection's advisory lock (a second sync at once is recorded as skipped),
reads the row, opens its SyncRun, runs the provider's work and closes the run with its counts,
calls and errors (reliability #5, house-style #12): a permanent auth error marks the connection
as needing reconnection, any other provider error is remembered for the health panel.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus, Provider, SyncRun, SyncStatus
from connectors.services import (
    PROVIDER_NAMES,
    connection_error_record,
    connection_mark_needs_reconnect,
)
from well.audit import Actor, audit_event_record
from well.http import AuthRevoked, ProviderError
from well.locks import advisory_lock, lock_key
from well.webhooks import sync_run_summary, webhooks_emit

logger = logging.getLogger("well.connectors.sync")

# One lock key per connection and provider; the salt keeps Qonto's apart from QuickBooks'.
LOCK_SALTS = {Provider.QUICKBOOKS: 0, Provider.QONTO: 0x51}
BUSY = {
    Provider.QUICKBOOKS: "Another sync of this connection was running; this one did nothing.",
    Provider.QONTO: "Another read of this Qonto connection was running; this one did nothing.",
}


@dataclass(frozen=True)
class SyncKind:
    """One provider's syncs, as its sync.py declares them once.

    `outcomes` are the counts a run keeps per kind. `marker_at_end`: the sync moves its marker
    once the whole run is committed (QuickBooks), not page by page (Qonto). `actor` is who marks
    the connection as needing reconnection when the provider refuses its grant.
    """

    provider: str
    outcomes: tuple[str, ...]
    marker_at_end: bool
    actor: Actor


class CallCounter:
    """Counts every attempt that reached the provider (the http helper's on_attempt hook)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, attempt) -> None:
        with self.lock:
            self.count += 1


@dataclass
class SyncTally:
    """What a run has done so far: counts per kind and outcome, calls, and notes on skipped rows.

    `records_done` and `mode` are kept by syncs that show them while running (QuickBooks).
    `marker_at_end`: the sync moves its marker once the whole run is committed (QuickBooks),
    not page by page (Qonto).
    """

    run: SyncRun
    outcomes: tuple[str, ...]
    marker_at_end: bool = False
    calls: CallCounter = field(default_factory=CallCounter)
    errors: list[str] = field(default_factory=list)
    records_done: int | None = None
    mode: str | None = None

    def __post_init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(self.outcomes, 0)
        )

    def skip(self, kind: str, reason: str) -> None:
        self.counts[kind]["errored"] += 1
        self.errors.append(f"{kind}: {reason}")


def sync_run_begin(*, connection: Connection, trigger: str, full: bool = False) -> SyncRun:
    """Open the run of a sync that holds the connection's lock.

    Holding the lock proves no other sync of this connection is alive, so a run still marked
    running belonged to a worker that died mid-sync: it is closed as failed, and said so.
    """
    # A read first: the hourly no-change poll should not pay a write for the rare dead run.
    abandoned = list(
        SyncRun.objects.filter(connection=connection, status=SyncStatus.RUNNING).values_list(
            "pk", flat=True
        )
    )
    if abandoned:
        SyncRun.objects.filter(pk__in=abandoned, status=SyncStatus.RUNNING).update(
            status=SyncStatus.FAILED,
            finished_at=timezone.now(),
            error="The worker stopped during this run; the next sync took over from its marker.",
        )
        audit_event_record(
            workspace=connection.workspace_id,
            actor=Actor.system("sync"),
            verb="sync.abandoned",
            obj=connection,
            after={"runs": len(abandoned)},
            reason="a worker stopped during a sync",
        )
    return SyncRun.objects.create(
        workspace_id=connection.workspace_id,
        connection=connection,
        full=full,
        trigger=trigger,
        marker_before=connection.sync_marker,
    )


def sync_run_skip(*, connection: Connection, trigger: str, full: bool, reason: str) -> SyncRun:
    """Record a sync that did not run (another one holds the lock, or not connected)."""
    now = timezone.now()
    return SyncRun.objects.create(
        workspace_id=connection.workspace_id,
        connection=connection,
        status=SyncStatus.SKIPPED,
        full=full,
        trigger=trigger,
        started_at=now,
        finished_at=now,
        marker_before=connection.sync_marker,
        marker_after=connection.sync_marker,
        error=reason,
    )


def sync_run_finish(
    tally: SyncTally, status: str, *, marker: str | None = None, error: str = ""
) -> SyncRun:
    """Close the run. A sync that moves its marker at the end moves it here, on success, in the
    same transaction; one that moves it page by page has the run record where it left it."""
    run = tally.run
    succeeded = status == SyncStatus.SUCCEEDED
    with transaction.atomic():
        now = timezone.now()
        run.status = status
        run.finished_at = now
        run.counts = {k: dict(v) for k, v in tally.counts.items()}
        run.api_calls = tally.calls.count
        run.progress = {"phase": "done"}
        if tally.records_done is not None:
            run.progress.update(records=tally.records_done, mode=tally.mode)
        notes = "; ".join(tally.errors[:20])
        run.error = "\n".join(part for part in (error, notes) if part)[:10000]
        connection = Connection.objects.filter(pk=run.connection_id)
        if not tally.marker_at_end:
            run.marker_after = connection.values_list("sync_marker", flat=True).first() or ""
        else:
            run.marker_after = marker if succeeded else run.marker_before
        if succeeded:
            updates: dict = {"last_good_sync_at": now, "last_error": "", "last_error_at": None}
            if tally.marker_at_end:
                # A re-import may have moved the marker back while this run went on: keep that.
                updates["sync_marker"] = Case(
                    When(sync_marker=run.marker_before, then=Value(marker)),
                    default=F("sync_marker"),
                )
            connection.update(**updates)
        else:
            webhooks_emit(
                workspace=run.workspace_id, event="sync.failed", payload=sync_run_summary(run)
            )
        run.save(
            update_fields=[
                "status",
                "finished_at",
                "counts",
                "api_calls",
                "progress",
                "error",
                "marker_after",
            ]
        )
    return run


def sync_run(
    *,
    connection_id,
    kind: SyncKind,
    trigger: str,
    work: Callable[[Connection, SyncTally], str | None],
    full: bool = False,
) -> SyncRun:
    """Run a provider's `work` once for this connection, under its lock, as one SyncRun.

    `work` returns the new marker when `kind.marker_at_end` (it moves only after the whole run is
    committed), else None (the sync moves its markers page by page).
    """
    provider = kind.provider
    name = PROVIDER_NAMES[provider]
    key = lock_key(uuid.UUID(str(connection_id)), salt=LOCK_SALTS[provider])
    # The lock first, then one read of the row: what it says is what this run works from.
    with advisory_lock(key) as got:
        connection = Connection.objects.get(pk=connection_id, provider=provider)
        if connection.status != ConnectionStatus.CONNECTED:
            return sync_run_skip(
                connection=connection,
                trigger=trigger,
                full=full,
                reason=f"{name} is {connection.get_status_display().lower()}; no call was made.",
            )
        if not got:
            return sync_run_skip(
                connection=connection, trigger=trigger, full=full, reason=BUSY[provider]
            )
        run = sync_run_begin(connection=connection, trigger=trigger, full=full)
        tally = SyncTally(run=run, outcomes=kind.outcomes, marker_at_end=kind.marker_at_end)
        try:
            marker = work(connection, tally)
        except AuthRevoked as exc:
            connection_mark_needs_reconnect(
                connection=connection, reason=str(exc), actor=kind.actor
            )
            return sync_run_finish(tally, SyncStatus.FAILED, error=str(exc))
        except ProviderError as exc:
            connection_error_record(connection=connection, error=str(exc))
            return sync_run_finish(tally, SyncStatus.FAILED, error=str(exc))
        except Exception as exc:
            logger.exception("%s sync of connection %s failed", name, connection.pk)
            unexpected = f"Unexpected error ({type(exc).__name__})."
            sync_run_finish(tally, SyncStatus.FAILED, error=unexpected)
            raise
        return sync_run_finish(tally, SyncStatus.SUCCEEDED, marker=marker)
