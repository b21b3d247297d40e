"""Qonto background tasks (django-q2). Dotted paths are a public API (well/schedules.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus, Provider


def qonto_sync_task(connection_id: str, trigger: str = "schedule") -> dict:
    """Read one Qonto connection; harmless when run twice (advisory lock, upsert by Qonto ID)."""
    from connectors.qonto.sync import qonto_sync

    connection = Connection.objects.get(pk=uuid.UUID(str(connection_id)), provider=Provider.QONTO)
    run = qonto_sync(connection, trigger=trigger)
    return {"run": run.pk, "status": run.status, "counts": run.counts, "calls": run.api_calls}


def qonto_sync_dispatch() -> int:
    """Queue each connected Qonto connection once an hour, at its own minute."""
    from connectors.qonto.services import qonto_sync_enqueue

    now = timezone.now()
    queued = 0
    with transaction.atomic():
        candidates = Connection.objects.select_for_update(skip_locked=True).filter(
            provider=Provider.QONTO, status=ConnectionStatus.CONNECTED
        )
        for connection in candidates:
            slot = now.replace(minute=connection.sync_minute, second=0, microsecond=0)
            if slot > now:
                slot -= timedelta(hours=1)
            if connection.sync_enqueued_at is not None and connection.sync_enqueued_at >= slot:
                continue
            connection.sync_enqueued_at = now
            connection.save(update_fields=["sync_enqueued_at"])
            qonto_sync_enqueue(connection=connection, trigger="schedule")
            queued += 1
    return queued


def postings_send_task() -> dict:
    """Send the outbox; two workers at once take disjoint postings (skip_locked)."""
    from connectors.qonto.posting import postings_send

    return postings_send().as_dict()
