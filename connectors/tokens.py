"""Access tokens for both providers: sealed in the connection row, refreshed once across workers.

Both providers rotate refresh tokens (quickbooks-api.md §1.6, qonto-api.md §2.4): a refresh
happens under the row lock and the new pair is committed at once, so two workers never spend the
same refresh token; the loser of a race reads the winner's pair.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus
from connectors.oauth import InvalidGrant, ProviderOAuth, TokenSet
from connectors.services import connection_needs_reconnect_locked, connection_public
from well.audit import Actor, audit_event_record
from well.encryption import secret_open, secret_seal
from well.http import AuthRevoked

# Refresh a little before expiry so a token never dies in the middle of a page.
REFRESH_MARGIN = timedelta(minutes=5)


def tokens_seal(connection: Connection, tokens: TokenSet) -> None:
    """Put a new token pair on the row (sealed with the workspace's key); the caller saves."""
    connection.access_token = secret_seal(connection, "access_token", tokens.access_token)
    connection.refresh_token = secret_seal(connection, "refresh_token", tokens.refresh_token)
    connection.access_expires_at = tokens.access_expires_at
    connection.refresh_expires_at = tokens.refresh_expires_at


def connection_grant_store(
    *, connection: Connection, tokens: TokenSet, actor: Actor, verb: str, before, reason: str = ""
) -> None:
    """Store a new grant on the (locked or new) row: sealed tokens, connected, its audit event."""
    tokens_seal(connection, tokens)
    connection.scopes = tokens.scope[:300]
    connection.status = ConnectionStatus.CONNECTED
    connection.last_error = ""
    connection.last_error_at = None
    connection.connected_at = timezone.now()
    connection.save()
    audit_event_record(
        workspace=connection.workspace_id,
        actor=actor,
        verb=verb,
        obj=connection,
        before=before,
        after=connection_public(connection),
        reason=reason,
    )


def _usable(connection: Connection, how: ProviderOAuth) -> None:
    if connection.status != ConnectionStatus.CONNECTED or not connection.refresh_token:
        raise AuthRevoked(
            f"{how.name} needs to be reconnected for this workspace; no call was made."
        )


def _fresh(connection: Connection, rejected: str | None, now: datetime) -> str | None:
    """The stored access token when it is still good and not the one just refused."""
    if connection.access_expires_at is None or connection.access_expires_at <= now + REFRESH_MARGIN:
        return None
    token = secret_open(connection, "access_token")
    if not token or token == rejected:
        return None
    return token


def access_token_get(
    *,
    connection_id,
    how: ProviderOAuth,
    rejected: str | None = None,
    loaded: Connection | None = None,
) -> str:
    """A valid access token; refreshes at most once across every worker (row lock).

    `rejected` is a token the provider just answered 401 to: it is refreshed even if not expired.
    `loaded` is the row the caller has just read (a sync, under its lock): its token is used
    when still good, saving a read; any refresh re-reads the row under the row lock anyway.
    """
    if loaded is not None and str(loaded.pk) == str(connection_id):
        connection = loaded
    else:
        connection = Connection.objects.get(pk=connection_id, provider=how.provider)
    _usable(connection, how)
    token = _fresh(connection, rejected, timezone.now())
    if token:
        return token
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection_id)
        _usable(connection, how)
        # Re-read under the lock: another worker may have refreshed while we waited.
        token = _fresh(connection, rejected, timezone.now())
        if token:
            return token
        used = secret_open(connection, "refresh_token")
        try:
            tokens = how.oauth.token_refresh(refresh_token=used)
        except InvalidGrant:
            connection.refresh_from_db()
            if secret_open(connection, "refresh_token") != used:
                # Someone else refreshed (and stored) first: their pair is the good one.
                token = _fresh(connection, rejected, timezone.now())
                if token:
                    return token
            revoked = f"{how.name} refused the refresh token (invalid_grant): reconnect {how.name}."
            connection_needs_reconnect_locked(connection, reason=revoked, actor=how.actor)
        else:
            before_expiry = connection.access_expires_at
            tokens_seal(connection, tokens)
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
                actor=how.actor,
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


class TokenProvider:
    """The token callable a client is given: kept in memory, refreshed through the service.

    The client calls it with None for a token, or with the token the provider just refused.
    `ttl` bounds how long a token is reused without looking at the row again.
    """

    def __init__(
        self,
        connection_id,
        *,
        fetch: Callable[..., str],
        loaded: Connection | None = None,
        ttl: timedelta | None = None,
    ) -> None:
        self.connection_id = connection_id
        self.fetch = fetch
        # The row a sync just read under its lock: the first token comes from it, no re-read.
        self.loaded = loaded
        self.ttl = ttl
        self.token: str | None = None
        self.until: datetime | None = None
        self.lock = threading.Lock()

    def __call__(self, rejected: str | None) -> str:
        with self.lock:
            now = timezone.now()
            if self.token and rejected is None and (self.until is None or now < self.until):
                return self.token
            loaded, self.loaded = self.loaded, None
            self.token = self.fetch(
                connection_id=self.connection_id, rejected=rejected, loaded=loaded
            )
            self.until = now + self.ttl if self.ttl else None
            return self.token
