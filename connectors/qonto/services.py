"""Qonto connection services: connect, tokens, disconnect; each change writes its audit event.

Shaped like connectors/quickbooks/services.py; what both share is in connectors/services.py (the
connection row), connectors/tokens.py (tokens and refresh) and connectors/oauth.py (the callback).
Posting to Qonto: connectors/qonto/triggers.py, outbox.py, payments.py and posting.py.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from connectors.dispatch import sync_enqueue
from connectors.models import Connection, ConnectionStatus, Provider
from connectors.oauth import (
    ConnectError,
    ConnectOutcome,
    TokenSet,
    authorization_pending,
    new_state,
    oauth_callback_workspace,
)
from connectors.qonto import client, oauth
from connectors.qonto.models import QontoBankAccount, QontoEntry
from connectors.qonto.outbox import SYSTEM
from connectors.services import (
    DisconnectResult,
    connection_claim_check,
    connection_locked_or_new,
    connection_public,
    connection_tokens_forget,
)
from connectors.tokens import TokenProvider, TokenRefresh, connection_grant_store
from connectors.tokens import access_token_get as _access_token_get
from well.audit import Actor, audit_event_record
from well.encryption import secret_open
from well.http import ProviderError
from well.models import Workspace

OAUTH_SESSION_KEY = "qonto_oauth"
PENDING_LIFETIME = timedelta(minutes=10)  # §2.2: the code itself lives 10 minutes
TOKENS = TokenRefresh(provider=Provider.QONTO, name="Qonto", oauth=oauth, actor=SYSTEM)


def qonto_redirect_uri() -> str:
    return settings.SITE_URL.rstrip("/") + reverse("qonto_oauth:callback")


# --- Connect ---------------------------------------------------------------------------------


def qonto_authorization_begin(*, workspace: Workspace, user) -> tuple[str, dict]:
    """The consent URL and what the session must remember to check the callback."""
    state = new_state()
    pending = authorization_pending(state=state, workspace=workspace, user=user)
    return oauth.authorization_url(state=state, redirect_uri=qonto_redirect_uri()), pending


def qonto_authorization_complete(
    *, pending, user, state: str, code: str, error: str = ""
) -> ConnectOutcome:
    """Check the callback against the session's state, then store the grant (or nothing)."""
    workspace = oauth_callback_workspace(
        pending=pending,
        user=user,
        state=state,
        error=error,
        provider_name="Qonto",
        lifetime=PENDING_LIFETIME,
    )
    if not code:
        raise ConnectError("Qonto answered without an authorization code; nothing was stored.")
    tokens = oauth.code_exchange(code=code, redirect_uri=qonto_redirect_uri())
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
    connection, created = connection_locked_or_new(workspace=workspace, provider=Provider.QONTO)
    before = None if created else connection_public(connection)
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
        verb="connection.connected" if created else "connection.reconnected",
        before=before,
    )
    sync_enqueue(connection=connection, trigger="connect")
    return connection


# --- Tokens ----------------------------------------------------------------------------------


def qonto_access_token_get(
    *, connection_id, rejected: str | None = None, loaded: Connection | None = None
) -> str:
    """A valid Qonto access token (connectors/tokens.py).

    Qonto rotates refresh tokens and keeps the old one only 60 seconds (§2.4), so the new pair
    is committed at once, in the transaction holding the lock.
    """
    return _access_token_get(
        connection_id=connection_id, how=TOKENS, rejected=rejected, loaded=loaded
    )


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
