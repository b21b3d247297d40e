"""The one door from the syncs to matching.

QuickBooks records that are new, changed or deleted are proposed at once (after their
transaction commits) and payments settled (a posted bill's Qonto invoice marked paid); new
Qonto entries may be the match an open record was waiting for.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django_q.tasks import async_task

from connectors.models import SourceRecord

logger = logging.getLogger("well.connectors.handoff")


def records_changed(records: list[SourceRecord]) -> None:
    """A committed page of QuickBooks changes: one proposal batch (one Book) for all of them.

    `record.deleted` and `record.errored` (with `error_reason`) records come through too.
    """
    from connectors.qonto.services import payments_settle
    from matching.services import records_propose

    try:
        records_propose(records=records)
    except Exception:
        # The sync's data is committed; a record left `pulled` is proposed later by
        # matching.tasks.records_propose_pending_task, so one bad batch never fails a sync.
        logger.exception("proposing %d handed-over records failed", len(records))
    # Payments are not matched: they mark posted bills paid in Qonto (docs/triggers.md).
    payments_settle(records=records)


def qonto_entries_changed(*, workspace_id: int, since: datetime) -> None:
    """Qonto entries were added or changed since `since`: re-propose the open records."""
    async_task("matching.tasks.proposals_refresh_task", workspace_id, since.isoformat())
