"""Qonto connection services: connect, tokens, disconnect; each change writes its audit event.

Shaped like connectors/quickbooks/services.py; what both share is in connectors/services.py (the
connection row), connectors/tokens.py (tokens and refresh) and connectors/oauth.py (the callback).
Posting to Qonto: connectors/qonto/triggers.py, outbox.py, payments.py and posting.py.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
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
from connectors.qonto import client, oauth
from connectors.qonto.models import QontoBankAccount, QontoEntry
from connectors.qonto.outbox import SYSTEM
from connectors.services import (
    DisconnectResult,
    connection_claim_check,
    connection_for_grant,
    connection_tokens_forget,
)
from connectors.tokens import TokenProvider, access_token_get, connection_grant_store
from well.audit import Actor, audit_event_record
from well.encryption import secret_open
from well.http import ProviderError
from well.models import Workspace

OAUTH_SESSION_KEY = "qonto_oauth"
OAUTH = ProviderOAuth(
    provider=Provider.QONTO,
    name="Qonto",
    oauth=oauth,
    callback="qonto_oauth:callback",
    lifetime=timedelta(minutes=10),  # §2.2: the code itself lives 10 minutes
    actor=SYSTEM,
)


# --- Connect ---------------------------------------------------------------------------------


def qonto_authorization_begin(*, workspace: Workspace, user) -> tuple[str, dict]:
    """The consent URL and what the session must remember to check the callback."""
    return authorization_begin(how=OAUTH, workspace=workspace, user=user)


def qonto_authorization_complete(
    *, pending, user, state: str, code: str, error: str = ""
) -> ConnectOutcome:
    """Check the callback against the session's state, then store the grant (or nothing)."""
    workspace = oauth_callback_workspace(
        how=OAUTH, pending=pending, user=user, state=state, error=error
    )
    if not code:
        raise ConnectError("Qonto answered without an authorization code; nothing was stored.")
    tokens = authorization_code_exchange(how=OAUTH, code=code)
    api = client.QontoApi(
        base_url=settings.QONTO_API_URL,
        token=lambda rejected: tokens.access_token,
        staging_token=settings.QONTO_STAGING_TOKEN,
    )
    organization = client.organization(api)
    connection = qonto_connection_complete(
        workspace=workspace, tokens=tokens, organization=organization, actor=Actor.user(user)
    )
    return ConnectOutcome(
        workspace=workspace,
        connection=connection,
        message=_("Qonto is connected (%(name)s).")
        % {"name": connection.external_name or _("organisation")},
    )


@transaction.atomic
def qonto_connection_complete(
    *, workspace: Workspace, tokens: TokenSet, organization: dict, actor: Actor
) -> Connection:
    """Store the grant for the organization; another organization's candidates are dropped."""
    org_id = str(organization.get("id") or "")[:64]
    if not org_id:
        raise ConnectError("Qonto did not say which organization was connected.")
    connection_claim_check(workspace=workspace, provider=Provider.QONTO, external_id=org_id)
    connection, before = connection_for_grant(workspace=workspace, provider=Provider.QONTO)
    if connection.external_id and connection.external_id != org_id:
        # Candidates are a cache of the old organization; postings (what Well did) stay.
        removed, _ = QontoEntry.objects.filter(connection=connection).delete()
        QontoBankAccount.objects.filter(connection=connection).delete()
        connection.sync_marker = ""
        audit_event_record(
            workspace=workspace,
            actor=actor,
            verb="connection.organization_changed",
            obj=connection,
            before=before,
            after={"external_id": org_id, "candidates_removed": removed},
        )
    connection.external_id = org_id
    connection.external_name = str(
        organization.get("legal_name") or organization.get("name") or ""
    )[:200]
    connection_grant_store(
        connection=connection,
        tokens=tokens,
        actor=actor,
        verb="connection.connected" if before is None else "connection.reconnected",
        before=before,
    )
    sync_enqueue(connection=connection, trigger="connect")
    return connection


# --- Tokens ----------------------------------------------------------------------------------


# A valid Qonto access token (connectors/tokens.py), given `connection_id` (and `rejected`,
# `loaded`). Qonto rotates refresh tokens and keeps the old one only 60 seconds (§2.4), so the
# new pair is committed at once, in the transaction holding the lock.
qonto_access_token_get = partial(access_token_get, how=OAUTH)


def qonto_api_for(connection: Connection, **options) -> client.QontoApi:
    """The client configuration of one connection (tests pass `sleep`, `policy`, `timeout`)."""
    return client.QontoApi(
        base_url=settings.QONTO_API_URL,
        token=TokenProvider(connection.pk, fetch=qonto_access_token_get),
        staging_token=settings.QONTO_STAGING_TOKEN,
        **options,
    )


# --- Disconnect ------------------------------------------------------------------------------


def qonto_disconnect(*, connection: Connection, actor: Actor) -> DisconnectResult:
    """Revoke the consent and the tokens, delete the tokens; postings and candidates stay."""
    notes: list[str] = []
    revoked = False
    if connection.refresh_token and connection.status == ConnectionStatus.CONNECTED:
        try:
            client.consents_delete(qonto_api_for(connection, policy=client.http.NO_RETRY))
            revoked = True
        except ProviderError as exc:
            notes.append(
                _("Qonto did not confirm the consent removal (%(error)s).")
                % {"error": exc.message[:160]}
            )
    if connection.refresh_token:
        try:
            oauth.token_revoke(token=secret_open(connection, "refresh_token"))
            revoked = True
        except ProviderError as exc:
            notes.append(
                _("Qonto did not confirm the token revocation (%(error)s).")
                % {"error": exc.message[:160]}
            )
    connection_tokens_forget(
        connection=connection,
        actor=actor,
        reason=" ".join(notes) or "grant revoked; postings and review queue kept",
    )
    message = _("Qonto is disconnected. Everything already posted and the review queue are kept.")
    return DisconnectResult(revoked=revoked, message=" ".join([message, *notes]))
