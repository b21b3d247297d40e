"""Qonto background tasks (django-q2). Dotted paths are a public API (well/schedules.py)."""

from __future__ import annotations

import uuid

from connectors.dispatch import connections_dispatch
from connectors.models import Provider
from connectors.qonto.posting import postings_send
from connectors.qonto.sync import qonto_sync


def qonto_sync_task(connection_id: str, trigger: str = "schedule") -> dict:
    """Read one Qonto connection; harmless when run twice (advisory lock, upsert by Qonto ID)."""
    run = qonto_sync(connection_id=uuid.UUID(str(connection_id)), trigger=trigger)
    return {"run": run.pk, "status": run.status, "counts": run.counts, "calls": run.api_calls}


def qonto_sync_dispatch() -> int:
    """Queue the Qonto connections whose minute of the hour has come (connectors.dispatch)."""
    return connections_dispatch(provider=Provider.QONTO)


def postings_send_task() -> dict:
    """Send the outbox; two workers at once take disjoint postings (skip_locked)."""
    return postings_send().as_dict()
