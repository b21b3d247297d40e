"""The one door from the syncs to matching, which sits above connectors: a task path, no import.

QuickBooks records that are new, changed or deleted are proposed at once (after their
transaction commits), then payments are settled (a posted bill's Qonto invoice marked paid);
new Qonto entries may be the match an open record was waiting for.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils.module_loading import import_string
from django_q.tasks import async_task

from connectors.qonto.payments import payments_settle
from connectors.quickbooks.models import SourceRecord

logger = logging.getLogger("well.connectors.handoff")

# Matching's tasks, named by their dotted paths (a public API, like the schedules' paths).
PROPOSE_TASK = "matching.tasks.records_propose_task"
REFRESH_TASK = "matching.tasks.proposals_refresh_task"


def records_changed(records: list[SourceRecord]) -> None:
    """A committed page of QuickBooks changes: one proposal batch (one Book) for all of them.

    `record.deleted` and `record.errored` (with `error_reason`) records come through too. The
    proposal task runs here, in the sync, right after the commit, as a worker would run it: a
    queued one could propose a purchase before or after its receipt is fetched, by chance.
    """
    by_workspace: dict[int, list[int]] = {}
    for record in records:
        by_workspace.setdefault(record.workspace_id, []).append(record.pk)
    try:
        propose = import_string(PROPOSE_TASK)
        for workspace_id, record_ids in by_workspace.items():
            propose(workspace_id, record_ids)
    except Exception:
        # The sync's data is committed; a record left `pulled` is proposed later by
        # matching.tasks.records_propose_pending_task, so one bad batch never fails a sync.
        logger.exception("proposing %d handed-over records failed", len(records))
    # Payments are not matched: they mark posted bills paid in Qonto (docs/triggers.md).
    payments_settle(records=records)


def qonto_entries_changed(*, workspace_id: int, since: datetime) -> None:
    """Qonto entries were added or changed since `since`: re-propose the open records."""
    async_task(REFRESH_TASK, workspace_id, since.isoformat())
