"""Background tasks (django-q2). Dotted paths are a public API (well/schedules.py)."""

from __future__ import annotations

import uuid

from connectors.dispatch import connections_dispatch
from connectors.models import Provider


def sync_dispatch() -> int:
    """Queue the QuickBooks connections whose minute of the hour has come (connectors.dispatch)."""
    return connections_dispatch(provider=Provider.QUICKBOOKS)


def sync_connection(connection_id: str, full: bool = False, trigger: str = "schedule") -> dict:
    """Run one sync; harmless when run twice (lock, then dedup by SyncToken)."""
    from connectors.quickbooks.sync import connection_sync

    run = connection_sync(connection_id=uuid.UUID(str(connection_id)), full=full, trigger=trigger)
    return {"run": run.pk, "status": run.status, "counts": run.counts, "calls": run.api_calls}
