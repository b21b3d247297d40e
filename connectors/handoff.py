"""The one door from the sync to matching: every new, changed or deleted record passes here.

Called after the record's transaction commits. Until the matching service exists the record
simply waits in state `pulled`; the matching engineer replaces the body of `record_changed`.
"""

from __future__ import annotations

from connectors.models import SourceRecord


def record_changed(record: SourceRecord) -> None:
    """A QuickBooks record is new, has a new SyncToken, or was deleted (`record.deleted`).

    `record.errored` records (malformed payloads) are handed over too, with `error_reason`.
    """
    return None
