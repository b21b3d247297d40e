"""QuickBooks background tasks (django-q2). Dotted paths are a public API (well/schedules.py)."""

from __future__ import annotations

import uuid

from connectors.dispatch import connections_dispatch
from connectors.models import Provider
from connectors.quickbooks.sync import quickbooks_sync


def quickbooks_sync_task(connection_id: str, full: bool = False, trigger: str = "schedule") -> dict:
    """Run one sync; harmless when run twice (lock, then dedup by SyncToken)."""
    run = quickbooks_sync(connection_id=uuid.UUID(str(connection_id)), full=full, trigger=trigger)
    return {"run": run.pk, "status": run.status, "counts": run.counts, "calls": run.api_calls}


def quickbooks_sync_dispatch() -> int:
    """Queue the QuickBooks connections whose minute of the hour has come (connectors.dispatch)."""
    return connections_dispatch(provider=Provider.QUICKBOOKS)
