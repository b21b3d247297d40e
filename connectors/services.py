"""Connection services: connect, refresh, disconnect; each change writes its audit event."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from connectors.http import AuthRevoked, ProviderError
from connectors.models import (
    Connection,
    ConnectionStatus,
    Provider,
    SourceRecord,
    SyncRun,
    SyncStatus,
)
from connectors.quickbooks import oauth
from well.audit import Actor, audit_event_record
from well.encryption import secret_open, secret_seal
from well.models import Workspace
from well.webhooks import connection_summary, webhooks_emit

logger = logging.getLogger("well.connectors")

# Refresh a little before expiry so a token never dies in the middle of a page.
REFRESH_MARGIN = timedelta(minutes=5)
OAUTH_SESSION_KEY = "quickbooks_oauth"


class ConnectError(Exception):
    """The connection could not be made; the message is safe to show."""


class DifferentCompany(ConnectError):
    """The workspace already holds another QuickBooks company's records."""


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


def quickbooks_redirect_uri() -> str:
    return settings.SITE_URL.rstrip("/") + reverse("quickbooks_oauth:callback")


def _sync_minute(connection: Connection) -> int:
    """A stable minute of the hour per connection, so workspaces do not all call at :00."""
    return int(hashlib.sha256(str(connection.pk).encode()).hexdigest(), 16) % 60


# --- Connect ---------------------------------------------------------------------------------


def quickbooks_authorization_begin(
    *, workspace: Workspace, user, start_over: bool = False
) -> tuple[str, dict]:
    """The consent URL and what the session must remember to check the callback."""
    state = oauth.new_state()
    pending = {
        "state": state,
        "workspace_id": workspace.pk,
        "user_id": user.pk,
        "start_over": bool(start_over),
        "started_at": timezone.now().isoformat(),
    }
    return oauth.authorization_url(state=state, redirect_uri=quickbooks_redirect_uri()), pending


def _seal_tokens(connection: Connection, tokens: oauth.TokenSet) -> None:
    connection.access_token = secret_seal(connection, "access_token", tokens.access_token)
    connection.refresh_token = secret_seal(connection, "refresh_token", tokens.refresh_token)
    connection.access_expires_at = tokens.access_expires_at
    connection.refresh_expires_at = tokens.refresh_expires_at


def quickbooks_connection_check_realm(
    *, workspace: Workspace, realm_id: str, start_over: bool
) -> None:
    """Refuse another company before any token is fetched (nothing stored, nothing merged)."""
    existing = Connection.objects.for_workspace(workspace).filter(provider=Provider.QUICKBOOKS)
    previous = existing.values_list("external_id", flat=True).first()
    if previous and previous != realm_id and not start_over:
        raise DifferentCompany(
            "This workspace is linked to another QuickBooks company. To use this one, "
            "choose “Start over with another company”: the old company's records are removed."
        )


@transaction.atomic
def quickbooks_connection_complete(
    *,
    workspace: Workspace,
    realm_id: str,
    tokens: oauth.TokenSet,
    actor: Actor,
    start_over: bool = False,
) -> Connection:
    """Store the grant for `realm_id`; the same company resumes from its marker."""
    if not realm_id or len(realm_id) > 64:
        raise ConnectError("QuickBooks did not say which company was connected.")
    connection = (
        Connection.objects.select_for_update()
        .filter(workspace=workspace, provider=Provider.QUICKBOOKS)
        .first()
    )
    created = connection is None
    if connection is None:
        connection = Connection(workspace=workspace, provider=Provider.QUICKBOOKS)
        connection.sync_minute = _sync_minute(connection)
    before = None if created else connection_public(connection)
    if connection.external_id and connection.external_id != realm_id:
        if not start_over:
            raise DifferentCompany(
                "This workspace is linked to another QuickBooks company; nothing was changed."
            )
        removed, _ = SourceRecord.objects.filter(connection=connection).delete()
        audit_event_record(
            workspace=workspace,
            actor=actor,
            verb="connection.started_over",
            obj=connection,
            before=before,
            after={"external_id": realm_id, "records_removed": removed},
            reason="The user chose to start over with another QuickBooks company.",
        )
        connection.sync_marker = ""
        connection.reference_synced_at = None
        connection.last_good_sync_at = None
    connection.external_id = realm_id
    _seal_tokens(connection, tokens)
    connection.scopes = tokens.scope[:300]
    connection.status = ConnectionStatus.CONNECTED
    connection.last_error = ""
    connection.last_error_at = None
    connection.connected_at = timezone.now()
    connection.save()
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="connection.connected"
        if created or not before["external_id"]
        else "connection.reconnected",
        obj=connection,
        before=before,
        after=connection_public(connection),
        reason="resumes from the last sync marker" if connection.sync_marker else "",
    )
    sync_enqueue(connection=connection, trigger="connect")
    return connection


def sync_enqueue(*, connection: Connection, trigger: str, full: bool = False) -> None:
    """Queue one sync in the current transaction (ORM broker: a rollback un-queues it)."""
    from django_q.tasks import async_task

    async_task(
        "connectors.tasks.sync_connection",
        str(connection.pk),
        full,
        trigger,
        task_name=f"sync {connection.pk}"[:100],
        group="sync",
    )


@dataclass(frozen=True)
class ConnectOutcome:
    workspace: Workspace
    connection: Connection
    message: str


PENDING_LIFETIME = timedelta(minutes=15)


def _pending_workspace(*, pending, user) -> Workspace | None:
    """The workspace that started the flow, if this user may still connect it."""
    if not isinstance(pending, dict) or pending.get("user_id") != user.pk:
        return None
    from well.models import Membership, Role

    membership = (
        Membership.objects.filter(user=user, workspace_id=pending.get("workspace_id"))
        .select_related("workspace")
        .first()
    )
    if membership is None or not membership.allows(Role.OWNER):
        return None
    return membership.workspace


def oauth_callback_workspace(
    *, pending, user, state: str, error: str, provider_name: str, lifetime: timedelta
) -> Workspace:
    """The workspace an OAuth callback belongs to, once state, user and age check out."""
    expected = pending.get("state") if isinstance(pending, dict) else None
    if not expected or not state or not secrets.compare_digest(str(expected), str(state)):
        raise ConnectError(
            f"This {provider_name} answer does not match a connection started here "
            "(state mismatch); nothing was stored."
        )
    workspace = _pending_workspace(pending=pending, user=user)
    if workspace is None:
        raise ConnectError(f"You can no longer connect {provider_name} for that workspace.")
    try:
        started = datetime.fromisoformat(pending.get("started_at", ""))
    except (TypeError, ValueError):
        started = None
    if started is None or started < timezone.now() - lifetime:
        raise ConnectError(f"The {provider_name} connection took too long; please start again.")
    if error:
        if error == "access_denied":
            raise ConnectError(
                f"You cancelled the {provider_name} connection; nothing was changed."
            )
        raise ConnectError(f"{provider_name} did not connect ({error[:60]}); nothing was changed.")
    return workspace


def oauth_next_clean(*, next_url: str | None, host: str, secure: bool) -> str:
    """A same-host path to return to after an OAuth callback, or "" for anything else.

    Only a path ("/..."): never a scheme, another host, or a protocol-relative "//host".
    """
    if not next_url or len(next_url) > 500 or not next_url.startswith("/"):
        return ""
    if next_url.startswith(("//", "/\\")):
        return ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={host}, require_https=secure):
        return ""
    return next_url


def oauth_callback_next(*, pending, user, host: str, secure: bool) -> str:
    """The `next` remembered with this user's own OAuth state, checked again; "" if none."""
    if _pending_workspace(pending=pending, user=user) is None:
        return ""
    return oauth_next_clean(next_url=pending.get("next"), host=host, secure=secure)


def pending_workspace_slug(*, pending, user) -> str | None:
    workspace = _pending_workspace(pending=pending, user=user)
    return workspace.slug if workspace else None


def quickbooks_authorization_complete(
    *, pending, user, state: str, code: str, realm_id: str, error: str = ""
) -> ConnectOutcome:
    """Check the callback against the session's state, then store the grant (or nothing)."""
    workspace = oauth_callback_workspace(
        pending=pending,
        user=user,
        state=state,
        error=error,
        provider_name="QuickBooks",
        lifetime=PENDING_LIFETIME,
    )
    if not code or not realm_id:
        raise ConnectError("QuickBooks answered without a company; nothing was stored.")
    start_over = bool(pending.get("start_over"))
    quickbooks_connection_check_realm(workspace=workspace, realm_id=realm_id, start_over=start_over)
    tokens = oauth.code_exchange(code=code, redirect_uri=quickbooks_redirect_uri())
    connection = quickbooks_connection_complete(
        workspace=workspace,
        realm_id=realm_id,
        tokens=tokens,
        actor=Actor.user(user),
        start_over=start_over,
    )
    message = "QuickBooks is connected; the first sync has been queued."
    if connection.sync_marker:
        message = "QuickBooks is reconnected; syncing resumes where it stopped."
    return ConnectOutcome(workspace=workspace, connection=connection, message=message)


@transaction.atomic
def sync_request(*, connection: Connection, actor: Actor, full: bool = False) -> bool:
    """Queue a sync now at a person's request; False when the connection cannot sync."""
    if connection.status != ConnectionStatus.CONNECTED:
        return False
    audit_event_record(
        workspace=connection.workspace_id,
        actor=actor,
        verb="connection.sync_requested",
        obj=connection,
        after={"full": full},
    )
    sync_enqueue(connection=connection, trigger="manual", full=full)
    return True


class ReimportRefused(ConnectError):
    """A re-import that cannot start; the message says why."""


@dataclass(frozen=True)
class ReimportOutcome:
    marker_before: str
    marker_after: str
    everything: bool
    message: str


@transaction.atomic
def quickbooks_reimport(
    *, connection: Connection, actor: Actor, since: date | None = None, everything: bool = False
) -> ReimportOutcome:
    """Read QuickBooks again from `since` (the marker moves back) or in full, and queue it.

    Nothing stored is removed: a record comes back at the SyncToken Well holds and is a no-op,
    so what was posted is never posted again; a record QuickBooks changed since is handed to
    matching, which puts a posted one in review, flagged, instead of posting it twice.
    """
    from connectors.quickbooks.client import parse_qbo_time, qbo_time

    locked = Connection.objects.select_for_update().get(pk=connection.pk)
    if locked.provider != Provider.QUICKBOOKS or locked.status != ConnectionStatus.CONNECTED:
        raise ReimportRefused("QuickBooks is not connected: reconnect it first; nothing changed.")
    if not everything and since is None:
        raise ReimportRefused("Choose a date to re-import from, or everything.")
    before = locked.sync_marker
    after = before
    if not everything:
        if since > timezone.localdate():
            raise ReimportRefused("The re-import date is in the future; nothing changed.")
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        # The marker only ever moves back here: a later date would skip changes not yet read.
        if not before or start < parse_qbo_time(before):
            after = qbo_time(start)
    if after != before:
        locked.sync_marker = after
        locked.save(update_fields=["sync_marker", "updated_at"])
    audit_event_record(
        workspace=locked.workspace_id,
        actor=actor,
        verb="connection.reimport_requested",
        obj=locked,
        before={"sync_marker": before},
        after={
            "sync_marker": after,
            "since": since.isoformat() if since and not everything else None,
            "everything": everything,
        },
        reason="re-import requested: records already posted are recognised by QuickBooks ID",
    )
    sync_enqueue(connection=locked, trigger="reimport", full=everything)
    what = "everything" if everything else f"changes since {since.isoformat()}"
    return ReimportOutcome(
        marker_before=before,
        marker_after=after,
        everything=everything,
        message=f"A re-import of {what} was queued; this page shows its progress.",
    )


# --- Tokens ----------------------------------------------------------------------------------


def _usable(connection: Connection) -> None:
    if connection.status != ConnectionStatus.CONNECTED or not connection.refresh_token:
        raise AuthRevoked(
            "QuickBooks needs to be reconnected for this workspace; no call was made."
        )


def _fresh(connection: Connection, rejected: str | None, now) -> str | None:
    """The stored access token when it is still good and not the one just refused."""
    if connection.access_expires_at is None or connection.access_expires_at <= now + REFRESH_MARGIN:
        return None
    token = secret_open(connection, "access_token")
    if not token or token == rejected:
        return None
    return token


def access_token_get(
    *, connection_id, rejected: str | None = None, loaded: Connection | None = None
) -> str:
    """A valid access token; refreshes at most once across every worker (row lock).

    `rejected` is a token QuickBooks just answered 401 to: it is refreshed even if not expired.
    `loaded` is the row the caller has just read (a sync, under its lock): its token is used
    when still good, saving a read; any refresh re-reads the row under the row lock anyway.
    """
    now = timezone.now()
    if loaded is not None and str(loaded.pk) == str(connection_id):
        connection = loaded
    else:
        connection = Connection.objects.get(pk=connection_id)
    _usable(connection)
    token = _fresh(connection, rejected, now)
    if token:
        return token
    revoked: str | None = None
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection_id)
        _usable(connection)
        # Re-read under the lock: another worker may have refreshed while we waited.
        token = _fresh(connection, rejected, timezone.now())
        if token:
            return token
        used = secret_open(connection, "refresh_token")
        try:
            tokens = oauth.token_refresh(refresh_token=used)
        except oauth.InvalidGrant:
            connection.refresh_from_db()
            if secret_open(connection, "refresh_token") != used:
                # Someone else refreshed (and stored) first: their pair is the good one.
                token = _fresh(connection, rejected, timezone.now())
                if token:
                    return token
            revoked = "QuickBooks refused the refresh token (invalid_grant): reconnect QuickBooks."
            _needs_reconnect(connection, reason=revoked, actor=Actor.system())
        else:
            before_expiry = connection.access_expires_at
            _seal_tokens(connection, tokens)
            connection.save(
                update_fields=[
                    "access_token",
                    "refresh_token",
                    "access_expires_at",
                    "refresh_expires_at",
                    "updated_at",
                ]
            )
            audit_event_record(
                workspace=connection.workspace_id,
                actor=Actor.system(),
                verb="connection.token_refreshed",
                obj=connection,
                before={"access_expires_at": before_expiry},
                after={
                    "access_expires_at": connection.access_expires_at,
                    "refresh_expires_at": connection.refresh_expires_at,
                },
            )
            return tokens.access_token
    raise AuthRevoked(revoked)


def _needs_reconnect(connection: Connection, *, reason: str, actor: Actor) -> None:
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
        _needs_reconnect(locked, reason=reason, actor=actor)


@transaction.atomic
def connection_error_record(*, connection: Connection, error: str) -> None:
    """Remember the last error for the health panel (not a state change: no audit event)."""
    Connection.objects.filter(pk=connection.pk).update(
        last_error=error[:2000], last_error_at=timezone.now()
    )


# --- Disconnect ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DisconnectResult:
    revoked: bool
    message: str


def quickbooks_disconnect(*, connection: Connection, actor: Actor) -> DisconnectResult:
    """Revoke the grant, delete the tokens, stop syncing; every record and the marker stay."""
    revoked = False
    note = ""
    if connection.refresh_token:
        try:
            oauth.token_revoke(token=secret_open(connection, "refresh_token"))
            revoked = True
        except ProviderError as exc:
            note = f"QuickBooks did not confirm the revocation ({exc.message[:200]})."
    connection_tokens_forget(
        connection=connection,
        actor=actor,
        reason=note or "grant revoked; records and review queue kept",
    )
    message = "QuickBooks is disconnected. Every record and the review queue are kept."
    return DisconnectResult(revoked=revoked, message=f"{message} {note}".strip())


# --- Sync runs -------------------------------------------------------------------------------


def sync_run_begin(*, connection: Connection, trigger: str, full: bool = False) -> SyncRun:
    """Open the run of a sync that holds the connection's lock.

    Holding the lock proves no other sync of this connection is alive, so a run still marked
    running belonged to a worker that died mid-sync: it is closed as failed, and said so.
    """
    # A read first: the hourly no-change poll should not pay a write for the rare dead run.
    abandoned = list(
        SyncRun.objects.filter(connection=connection, status=SyncStatus.RUNNING).values_list(
            "pk", flat=True
        )
    )
    if abandoned:
        SyncRun.objects.filter(pk__in=abandoned, status=SyncStatus.RUNNING).update(
            status=SyncStatus.FAILED,
            finished_at=timezone.now(),
            error="The worker stopped during this run; the next sync took over from its marker.",
        )
        audit_event_record(
            workspace=connection.workspace_id,
            actor=Actor.system("sync"),
            verb="sync.abandoned",
            obj=connection,
            after={"runs": len(abandoned)},
            reason="a worker stopped during a sync",
        )
    return SyncRun.objects.create(
        workspace_id=connection.workspace_id,
        connection=connection,
        full=full,
        trigger=trigger,
        marker_before=connection.sync_marker,
    )


def sync_run_skip(*, connection: Connection, trigger: str, full: bool, reason: str) -> SyncRun:
    """Record a sync that did not run (another one holds the lock, or not connected)."""
    now = timezone.now()
    return SyncRun.objects.create(
        workspace_id=connection.workspace_id,
        connection=connection,
        status=SyncStatus.SKIPPED,
        full=full,
        trigger=trigger,
        started_at=now,
        finished_at=now,
        marker_before=connection.sync_marker,
        marker_after=connection.sync_marker,
        error=reason,
    )
