"""The one door from the sync to matching: every new, changed or deleted record passes here.

Called after the record's transaction commits; matching proposes (matching.services).
"""

from __future__ import annotations

import logging

from connectors.models import SourceRecord

logger = logging.getLogger("well.connectors.handoff")


def record_changed(record: SourceRecord) -> None:
    """A QuickBooks record is new, has a new SyncToken, or was deleted (`record.deleted`).

    `record.errored` records (malformed payloads) are handed over too, with `error_reason`.
    """
    records_changed([record])


def records_changed(records: list[SourceRecord]) -> None:
    """A committed page of changes: one proposal batch (one Book) for all of them."""
    from matching.services import records_propose

    try:
        records_propose(records=records)
    except Exception:
        # The sync's data is committed; a record left `pulled` is proposed later by
        # matching.tasks.records_propose_pending_task, so one bad batch never fails a sync.
        logger.exception("proposing %d handed-over records failed", len(records))
