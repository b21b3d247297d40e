"""Every periodic task, declared once; `manage.py setup_schedules` upserts them by name.

Task dotted paths are a public API: a renamed task keeps its old path (connectors/tasks.py,
matching/tasks.py) for the rows and queued tasks that still name it; `setup_schedules` moves the
rows to the new one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    minutes: int


SCHEDULES: list[ScheduleSpec] = [
    # Every minute; each connection syncs at its own minute of the hour (at most 24 a day), never
    # queued again while its last sync is queued or running (connectors/dispatch.py).
    ScheduleSpec(
        name="quickbooks-sync-dispatch",
        func="connectors.quickbooks.tasks.quickbooks_sync_dispatch",
        minutes=1,
    ),
    ScheduleSpec(
        name="qonto-sync-dispatch", func="connectors.qonto.tasks.qonto_sync_dispatch", minutes=1
    ),
    # The outbox; postings are also queued on approval, this catches retries and unknowns.
    ScheduleSpec(
        name="qonto-postings-send", func="connectors.qonto.tasks.postings_send_task", minutes=1
    ),
    # Records whose hand-over to matching failed stay `pulled`; this sweep proposes them.
    ScheduleSpec(
        name="matching-propose-pending",
        func="matching.tasks.records_propose_pending_task",
        minutes=10,
    ),
    # Each workspace's matching model is fitted again on its own books as they grow, and on its
    # reviewers' answers: review gathers them (its old path, matching.tasks, still runs it).
    ScheduleSpec(
        name="matching-models-refresh",
        func="review.tasks.workspace_models_refresh_task",
        minutes=60,
    ),
]
