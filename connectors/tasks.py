"""The QuickBooks tasks' dotted paths from before they moved to connectors/quickbooks/tasks.py.

Dotted paths are a public API: schedules created before `setup_schedules` ran again, and tasks
already queued, still name these two, so they stay and run the same work.
"""

from __future__ import annotations

from connectors.quickbooks.tasks import quickbooks_sync_dispatch, quickbooks_sync_task


def sync_dispatch() -> int:
    """Old path of connectors.quickbooks.tasks.quickbooks_sync_dispatch."""
    return quickbooks_sync_dispatch()


def sync_connection(connection_id: str, full: bool = False, trigger: str = "schedule") -> dict:
    """Old path of connectors.quickbooks.tasks.quickbooks_sync_task."""
    return quickbooks_sync_task(connection_id, full, trigger)
