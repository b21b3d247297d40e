from __future__ import annotations

from django.db.models import Count, QuerySet

from connectors.models import Connection, ConnectionStatus, Provider, SyncRun
from connectors.quickbooks.models import SourceRecord
from well.models import Workspace


def connections_for_workspace(*, workspace: Workspace) -> QuerySet[Connection]:
    return Connection.objects.for_workspace(workspace).order_by("provider")


def connection_get(*, workspace: Workspace | int, provider: str) -> Connection | None:
    return Connection.objects.for_workspace(workspace).filter(provider=provider).first()


def quickbooks_connection_get(*, workspace: Workspace | int) -> Connection | None:
    return connection_get(workspace=workspace, provider=Provider.QUICKBOOKS)


def qonto_connection_get(*, workspace: Workspace | int) -> Connection | None:
    return connection_get(workspace=workspace, provider=Provider.QONTO)


def sync_runs_recent(*, workspace: Workspace, limit: int = 10) -> QuerySet[SyncRun]:
    return (
        SyncRun.objects.for_workspace(workspace)
        .select_related("connection")
        .order_by("-started_at")[:limit]
    )


def source_records_for_workspace(*, workspace: Workspace) -> QuerySet[SourceRecord]:
    return SourceRecord.objects.for_workspace(workspace).select_related("connection")


def source_record_counts(*, workspace: Workspace) -> dict[str, int]:
    """How many live records of each kind the workspace holds."""
    rows = (
        SourceRecord.objects.for_workspace(workspace)
        .filter(deleted=False)
        .values("entity_type")
        .annotate(n=Count("id"))
        .order_by("entity_type")
    )
    return {row["entity_type"]: row["n"] for row in rows}


def connections_needing_reconnect(*, workspace: Workspace) -> list[Connection]:
    """The workspace's connections whose grant was revoked or refused: no call until reconnected."""
    return list(
        Connection.objects.for_workspace(workspace)
        .filter(status=ConnectionStatus.NEEDS_RECONNECT)
        .order_by("provider")
    )
