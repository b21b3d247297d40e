"""Background tasks (django-q2). Dotted paths are a public API (well/schedules.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.services import sync_enqueue


def _slot_start(now: datetime, minute: int) -> datetime:
    """The latest moment at or before `now` whose minute is `minute` (this hour's slot)."""
    slot = now.replace(minute=minute, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(hours=1)


# A queued sync is at least this far from the previous one: with one slot an hour this keeps
# any 24 hours to 24 scheduled syncs even when the dispatcher ran late.
MIN_GAP = timedelta(minutes=59)
# A slot missed by more than this (dispatcher down) is skipped: the next hour catches up.
LATE_WINDOW = timedelta(minutes=15)


def sync_dispatch() -> int:
    """Queue every connection whose minute of the hour has come and that has no sync queued
    for this hour's slot: at most one scheduled sync an hour, 24 a day."""
    now = timezone.now()
    queued = 0
    with transaction.atomic():
        candidates = (
            Connection.objects.select_for_update(skip_locked=True)
            .filter(provider=Provider.QUICKBOOKS, status=ConnectionStatus.CONNECTED)
            .only("id", "workspace_id", "sync_minute", "sync_enqueued_at")
        )
        for connection in candidates:
            slot = _slot_start(now, connection.sync_minute)
            last = connection.sync_enqueued_at
            if now - slot > LATE_WINDOW:
                continue
            if last is not None and (last >= slot or now - last < MIN_GAP):
                continue
            connection.sync_enqueued_at = now
            connection.save(update_fields=["sync_enqueued_at"])
            sync_enqueue(connection=connection, trigger="schedule")
            queued += 1
    return queued


def sync_connection(connection_id: str, full: bool = False, trigger: str = "schedule") -> dict:
    """Run one sync; harmless when run twice (lock, then dedup by SyncToken)."""
    from connectors.quickbooks.sync import connection_sync

    run = connection_sync(connection_id=uuid.UUID(str(connection_id)), full=full, trigger=trigger)
    return {"run": run.pk, "status": run.status, "counts": run.counts, "calls": run.api_calls}
