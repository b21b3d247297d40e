"""OAuth 2.0 with Intuit: authorization URL, code exchange, refresh, revoke (no database).

Reference: quickbooks-api.md §1 (endpoints, Basic client auth, rotation, invalid_grant, revoke).
"""

from __future__ import annotations

import base64
import logging
import os
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from oauthlib.oauth2 import OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from connectors.oauth import InvalidGrant, TokenSet, token_set_from
from well import http
from well.http import PermanentError, ProviderError, TransientError

logger = logging.getLogger("well.connectors.quickbooks")

SCOPE = "com.intuit.quickbooks.accounting"

# requests-oauthlib logs whole token responses at DEBUG level ("Obtained token {...}"): those
# loggers never go below INFO, whatever the logging configuration says (reliability #20).
for _name in ("requests_oauthlib", "oauthlib"):
    if logging.getLogger(_name).level < logging.INFO:  # NOTSET (0) included
        logging.getLogger(_name).setLevel(logging.INFO)


def _allow_loopback_http(url: str) -> None:
    """oauthlib refuses http:// URLs; the local sandbox on 127.0.0.1 is the one exception."""
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def _session(*, redirect_uri: str | None = None, state: str | None = None) -> OAuth2Session:
    session = OAuth2Session(
        settings.QUICKBOOKS_CLIENT_ID, redirect_uri=redirect_uri, scope=[SCOPE], state=state
    )
    session.headers["User-Agent"] = http.USER_AGENT
    session.trust_env = False
    return session


def _basic() -> HTTPBasicAuth:
    return HTTPBasicAuth(settings.QUICKBOOKS_CLIENT_ID, settings.QUICKBOOKS_CLIENT_SECRET)


def authorization_url(*, state: str, redirect_uri: str) -> str:
    """Where to send the browser to ask the user's consent (§1.2)."""
    _allow_loopback_http(settings.QUICKBOOKS_AUTHORIZE_URL)
    url, _ = _session(redirect_uri=redirect_uri, state=state).authorization_url(
        settings.QUICKBOOKS_AUTHORIZE_URL
    )
    return url


def _token_set(token: dict) -> TokenSet:
    now = timezone.now()
    refresh_in = token.get("x_refresh_token_expires_in")
    try:
        refresh_expires = now + timedelta(seconds=int(refresh_in)) if refresh_in else None
    except (TypeError, ValueError):
        refresh_expires = None
    return token_set_from(
        token,
        now=now,
        refresh_expires_at=refresh_expires,
        default_scope=SCOPE,
        missing="The QuickBooks token answer is missing its tokens",
    )


def _token_call(what: str, call) -> dict:
    """Run one token-endpoint call; map oauthlib and network failures to named errors."""
    _allow_loopback_http(settings.QUICKBOOKS_TOKEN_URL)
    try:
        return call()
    except OAuth2Error as exc:
        logger.warning("quickbooks %s refused: %s (%s)", what, exc.error, exc.status_code)
        if exc.error == "invalid_grant":
            raise InvalidGrant(f"QuickBooks refused the {what}: invalid_grant") from None
        if exc.error in ("invalid_client", "unauthorized_client"):
            raise PermanentError(
                f"QuickBooks refused Well's app credentials ({exc.error})"
            ) from None
        if exc.status_code and exc.status_code >= 500:
            raise TransientError(f"QuickBooks {what} failed ({exc.error})") from None
        raise PermanentError(f"QuickBooks refused the {what} ({exc.error})") from None
    except requests.RequestException as exc:
        raise TransientError(f"QuickBooks {what} failed ({type(exc).__name__})") from None
    except ValueError as exc:
        # oauthlib raises ValueError/Warning on bodies that are not a token (e.g. an HTML page).
        raise TransientError(f"QuickBooks {what} answered something unexpected: {exc}") from None


def code_exchange(*, code: str, redirect_uri: str) -> TokenSet:
    """Trade the callback's authorization code for the first token pair (§1.4)."""
    session = _session(redirect_uri=redirect_uri)
    token = _token_call(
        "authorization",
        lambda: session.fetch_token(
            settings.QUICKBOOKS_TOKEN_URL,
            code=code,
            auth=_basic(),
            include_client_id=False,
            timeout=settings.HTTP_TIMEOUT_SECONDS,
        ),
    )
    return _token_set(token)


def token_refresh(*, refresh_token: str) -> TokenSet:
    """A new pair from the latest refresh token; never retried (rotation, §1.6)."""
    session = _session()
    token = _token_call(
        "token refresh",
        lambda: session.refresh_token(
            settings.QUICKBOOKS_TOKEN_URL,
            refresh_token=refresh_token,
            auth=_basic(),
            timeout=settings.HTTP_TIMEOUT_SECONDS,
        ),
    )
    return _token_set(token)


def token_revoke(*, token: str) -> None:
    """Revoke the grant (§1.9); a failure is raised, the caller decides."""
    basic = base64.b64encode(
        f"{settings.QUICKBOOKS_CLIENT_ID}:{settings.QUICKBOOKS_CLIENT_SECRET}".encode()
    ).decode()
    try:
        http.request(
            http.new_session(),
            "POST",
            settings.QUICKBOOKS_REVOKE_URL,
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
            json={"token": token},
            policy=http.NO_RETRY,
        )
    except ProviderError as exc:
        logger.warning("quickbooks revoke failed: %s", exc)
        raise
