"""QuickBooks connection services: connect, tokens, re-import, disconnect; each change audited.

Shaped like connectors/qonto/services.py; what both share is in connectors/services.py (the
connection row), connectors/tokens.py (tokens and refresh) and connectors/oauth.py (the callback).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors.dispatch import sync_enqueue
from connectors.models import Connection, ConnectionStatus, Provider
from connectors.oauth import (
    ConnectError,
    ConnectOutcome,
    ProviderOAuth,
    TokenSet,
    authorization_begin,
    authorization_code_exchange,
    oauth_callback_workspace,
)
from connectors.quickbooks import oauth
from connectors.quickbooks.client import parse_qbo_time, qbo_time
from connectors.quickbooks.models import SourceRecord
from connectors.services import (
    DisconnectResult,
    connection_claim_check,
    connection_for_grant,
    connection_tokens_forget,
)
from connectors.tokens import access_token_get as _access_token_get
from connectors.tokens import connection_grant_store
from well import formats
from well.audit import Actor, audit_event_record
from well.encryption import secret_open
from well.http import ProviderError
from well.models import Workspace

OAUTH_SESSION_KEY = "quickbooks_oauth"
OAUTH = ProviderOAuth(
    provider=Provider.QUICKBOOKS,
    name="QuickBooks",
    oauth=oauth,
    callback="quickbooks_oauth:callback",
    lifetime=timedelta(minutes=15),
    actor=Actor.system(),
)


class DifferentCompany(ConnectError):
    """The workspace already holds another QuickBooks company's records."""


# --- Connect ---------------------------------------------------------------------------------


def quickbooks_authorization_begin(
    *, workspace: Workspace, user, start_over: bool = False
) -> tuple[str, dict]:
    """The consent URL and what the session must remember to check the callback."""
    return authorization_begin(
        how=OAUTH, workspace=workspace, user=user, start_over=bool(start_over)
    )


def quickbooks_connection_check_realm(
    *, workspace: Workspace, realm_id: str, start_over: bool
) -> None:
    """Refuse another company before any token is fetched (nothing stored, nothing merged)."""
    connection_claim_check(workspace=workspace, provider=Provider.QUICKBOOKS, external_id=realm_id)
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
    tokens: TokenSet,
    actor: Actor,
    start_over: bool = False,
) -> Connection:
    """Store the grant for `realm_id`; the same company resumes from its marker."""
    if not realm_id or len(realm_id) > 64:
        raise ConnectError("QuickBooks did not say which company was connected.")
    connection_claim_check(workspace=workspace, provider=Provider.QUICKBOOKS, external_id=realm_id)
    connection, before = connection_for_grant(workspace=workspace, provider=Provider.QUICKBOOKS)
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
    connection_grant_store(
        connection=connection,
        tokens=tokens,
        actor=actor,
        verb="connection.connected"
        if before is None or not before["external_id"]
        else "connection.reconnected",
        before=before,
        reason="resumes from the last sync marker" if connection.sync_marker else "",
    )
    sync_enqueue(connection=connection, trigger="connect")
    return connection


def quickbooks_authorization_complete(
    *, pending, user, state: str, code: str, realm_id: str, error: str = ""
) -> ConnectOutcome:
    """Check the callback against the session's state, then store the grant (or nothing)."""
    workspace = oauth_callback_workspace(
        how=OAUTH, pending=pending, user=user, state=state, error=error
    )
    if not code or not realm_id:
        raise ConnectError("QuickBooks answered without a company; nothing was stored.")
    start_over = bool(pending.get("start_over"))
    quickbooks_connection_check_realm(workspace=workspace, realm_id=realm_id, start_over=start_over)
    tokens = authorization_code_exchange(how=OAUTH, code=code)
    connection = quickbooks_connection_complete(
        workspace=workspace,
        realm_id=realm_id,
        tokens=tokens,
        actor=Actor.user(user),
        start_over=start_over,
    )
    message = _("QuickBooks is connected; the first sync has been queued.")
    if connection.sync_marker:
        message = _("QuickBooks is reconnected; syncing resumes where it stopped.")
    return ConnectOutcome(workspace=workspace, connection=connection, message=message)


# --- Re-import -------------------------------------------------------------------------------


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
    *,
    connection: Connection | None,
    actor: Actor,
    since: date | None = None,
    everything: bool = False,
) -> ReimportOutcome:
    """Read QuickBooks again from `since` (the marker moves back) or in full, and queue it.

    Nothing stored is removed: a record comes back at the SyncToken Well holds and is a no-op,
    so what was posted is never posted again; a record QuickBooks changed since is handed to
    matching, which puts a posted one in review, flagged, instead of posting it twice.
    """
    if connection is None:
        raise ReimportRefused("QuickBooks is not connected: connect it first; nothing changed.")
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
    what = (
        _("everything") if everything else _("changes since %(day)s") % {"day": formats.day(since)}
    )
    return ReimportOutcome(
        marker_before=before,
        marker_after=after,
        everything=everything,
        message=_("A re-import of %(what)s was queued; this page shows its progress.")
        % {"what": what},
    )


# --- Tokens ----------------------------------------------------------------------------------


# A valid QuickBooks access token (connectors/tokens.py), given `connection_id` (and
# `rejected`, `loaded`).
access_token_get = partial(_access_token_get, how=OAUTH)


# --- Disconnect ------------------------------------------------------------------------------


def quickbooks_disconnect(*, connection: Connection, actor: Actor) -> DisconnectResult:
    """Revoke the grant, delete the tokens, stop syncing; every record and the marker stay."""
    revoked = False
    note = ""
    if connection.refresh_token:
        try:
            oauth.token_revoke(token=secret_open(connection, "refresh_token"))
            revoked = True
        except ProviderError as exc:
            note = _("QuickBooks did not confirm the revocation (%(error)s).") % {
                "error": exc.message[:200]
            }
    connection_tokens_forget(
        connection=connection,
        actor=actor,
        reason=note or "grant revoked; records and review queue kept",
    )
    message = _("QuickBooks is disconnected. Every record and the review queue are kept.")
    return DisconnectResult(revoked=revoked, message=f"{message} {note}".strip())
