"""The one door from the sync to matching: every new, changed or deleted record passes here.

Called after the record's transaction commits; matching proposes (matching.services).
"""

from __future__ import annotations

from connectors.models import SourceRecord


def record_changed(record: SourceRecord) -> None:
    """A QuickBooks record is new, has a new SyncToken, or was deleted (`record.deleted`).

    `record.errored` records (malformed payloads) are handed over too, with `error_reason`.
    """
    records_changed([record])


def records_changed(records: list[SourceRecord]) -> None:
    """A committed page of changes: one proposal batch (one Book) for all of them."""
    from matching.services import records_propose

    records_propose(records=records)
