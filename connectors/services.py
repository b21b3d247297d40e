"""Connection services both providers share: what the audit trail keeps, disconnect, errors.

Each provider's `services.py` (connectors/quickbooks/, connectors/qonto/) connects, refreshes
(connectors/tokens.py) and disconnects its own connections through these; each change writes
its audit event.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.oauth import ConnectError
from well.audit import Actor, audit_event_record
from well.models import Workspace
from well.webhooks import connection_summary, webhooks_emit

# How each provider is named in messages (Provider's labels are the products' full names).
PROVIDER_NAMES = {Provider.QUICKBOOKS: "QuickBooks", Provider.QONTO: "Qonto"}


@dataclass(frozen=True)
class DisconnectResult:
    revoked: bool
    message: str


def connection_public(connection: Connection) -> dict:
    """What the audit trail keeps about a connection (never a token)."""
    return {
        "provider": connection.provider,
        "status": connection.status,
        "external_id": connection.external_id,
        "external_name": connection.external_name,
        "scopes": connection.scopes,
        "sync_marker": connection.sync_marker,
    }


def connection_for_grant(*, workspace: Workspace, provider: str) -> tuple[Connection, dict | None]:
    """The workspace's connection to `provider` under a row lock, or a new unsaved one; and
    what the audit trail knew of it before this grant (None for a new one)."""
    connection = (
        Connection.objects.select_for_update()
        .filter(workspace=workspace, provider=provider)
        .first()
    )
    if connection is not None:
        return connection, connection_public(connection)
    connection = Connection(workspace=workspace, provider=provider)
    # A stable minute of the hour per connection, so workspaces do not all call at :00.
    digest = hashlib.sha256(str(connection.pk).encode()).hexdigest()
    connection.sync_minute = int(digest, 16) % 60
    return connection, None


@transaction.atomic
def connection_tokens_forget(*, connection: Connection, actor: Actor, reason: str) -> None:
    """Delete a connection's tokens and mark it disconnected; every record stays."""
    locked = Connection.objects.select_for_update().get(pk=connection.pk)
    before = connection_public(locked)
    locked.access_token = ""
    locked.refresh_token = ""
    locked.access_expires_at = None
    locked.refresh_expires_at = None
    locked.status = ConnectionStatus.DISCONNECTED
    locked.save(
        update_fields=[
            "access_token",
            "refresh_token",
            "access_expires_at",
            "refresh_expires_at",
            "status",
            "updated_at",
        ]
    )
    audit_event_record(
        workspace=locked.workspace_id,
        actor=actor,
        verb="connection.disconnected",
        obj=locked,
        before=before,
        after=connection_public(locked),
        reason=reason,
    )


def connection_needs_reconnect_locked(connection: Connection, *, reason: str, actor: Actor) -> None:
    """Mark a row the caller holds locked as needing reconnection, with its event and webhook."""
    before = connection_public(connection)
    connection.status = ConnectionStatus.NEEDS_RECONNECT
    connection.last_error = reason[:2000]
    connection.last_error_at = timezone.now()
    connection.save(update_fields=["status", "last_error", "last_error_at", "updated_at"])
    webhooks_emit(
        workspace=connection.workspace_id,
        event="connection.needs_reconnect",
        payload=connection_summary(connection),
    )
    audit_event_record(
        workspace=connection.workspace_id,
        actor=actor,
        verb="connection.needs_reconnect",
        obj=connection,
        before=before,
        after=connection_public(connection),
        reason=reason,
    )


@transaction.atomic
def connection_mark_needs_reconnect(*, connection: Connection, reason: str, actor: Actor) -> None:
    """Stop calling the provider until the user reconnects (a permanent auth error)."""
    locked = Connection.objects.select_for_update().get(pk=connection.pk)
    if locked.status == ConnectionStatus.CONNECTED:
        connection_needs_reconnect_locked(locked, reason=reason, actor=actor)


@transaction.atomic
def connection_error_record(*, connection: Connection, error: str) -> None:
    """Remember the last error for the health panel (not a state change: no audit event)."""
    Connection.objects.filter(pk=connection.pk).update(
        last_error=error[:2000], last_error_at=timezone.now()
    )


# --- One company, one workspace (issue 17) ---------------------------------------------------


class AlreadyConnectedElsewhere(ConnectError):
    """The QuickBooks company or Qonto organization is connected to another workspace."""


_WHAT = {Provider.QUICKBOOKS: "QuickBooks company", Provider.QONTO: "Qonto organization"}


def connection_claim_check(*, workspace: Workspace | int, provider: str, external_id: str) -> None:
    """Refuse a company or organization another workspace holds (connected or to reconnect).

    Two workspaces on one company would each propose and post the same bills. The other
    workspace is not named: the person connecting may not be a member of it.
    """
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    taken = (
        Connection.objects.filter(provider=provider, external_id=external_id)
        .exclude(workspace_id=workspace_id)
        .exclude(status=ConnectionStatus.DISCONNECTED)
        .exists()
    )
    if external_id and taken:
        what = _WHAT.get(provider, "account")
        raise AlreadyConnectedElsewhere(
            f"This {what} is already connected to another Well workspace, so nothing was "
            f"connected here. Disconnect it in that workspace first (Connections, "
            f"Disconnect), or ask Well support to move it to this workspace."
        )


def connection_release(*, connection: Connection, actor: Actor, reason: str = "") -> None:
    """Staff: let another workspace connect this company or organization (admin action).

    The tokens are deleted and the connection marked disconnected; its records and postings
    stay in this workspace. Audit event `connection.released`.
    """
    connection_tokens_forget(
        connection=connection,
        actor=actor,
        reason=reason or "Released by staff so another workspace can connect it.",
    )
    audit_event_record(
        workspace=connection.workspace_id,
        actor=actor,
        verb="connection.released",
        obj=connection,
        after={"provider": connection.provider, "external_id": connection.external_id},
        reason=reason or "Released by staff so another workspace can connect it.",
    )
