"""Qonto background tasks (django-q2). Dotted paths are a public API (well/schedules.py)."""

from __future__ import annotations

import uuid

from connectors.dispatch import connections_dispatch
from connectors.models import Connection, Provider


def qonto_sync_task(connection_id: str, trigger: str = "schedule") -> dict:
    """Read one Qonto connection; harmless when run twice (advisory lock, upsert by Qonto ID)."""
    from connectors.qonto.sync import qonto_sync

    connection = Connection.objects.get(pk=uuid.UUID(str(connection_id)), provider=Provider.QONTO)
    run = qonto_sync(connection, trigger=trigger)
    return {"run": run.pk, "status": run.status, "counts": run.counts, "calls": run.api_calls}


def qonto_sync_dispatch() -> int:
    """Queue the Qonto connections whose minute of the hour has come (connectors.dispatch)."""
    return connections_dispatch(provider=Provider.QONTO)


def postings_send_task() -> dict:
    """Send the outbox; two workers at once take disjoint postings (skip_locked)."""
    from connectors.qonto.posting import postings_send

    return postings_send().as_dict()
