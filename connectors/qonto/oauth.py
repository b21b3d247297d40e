"""OAuth 2.0 with Qonto: authorization URL, code exchange, refresh, revoke (no database).

Reference: qonto-api.md §2 (client_secret_post only, rotation with a 60-second grace, Hydra-style
errors) and §1 (the staging-token header on the token endpoint too).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import quote, urlencode

from django.conf import settings
from django.utils import timezone

from connectors.oauth import InvalidGrant, TokenSet, token_set_from
from well import http
from well.http import PermanentError, ProviderError, TransientError

logger = logging.getLogger("well.connectors.qonto")

SCOPES = (
    "offline_access",
    "organization.read",
    "supplier_invoice.read",
    "supplier_invoice.write",
    "attachment.read",
)
SCOPE = " ".join(SCOPES)
REFRESH_LIFETIME = timedelta(days=90)  # §2.4


def _headers() -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if settings.QONTO_STAGING_TOKEN:
        headers["X-Qonto-Staging-Token"] = settings.QONTO_STAGING_TOKEN
    return headers


def authorization_url(*, state: str, redirect_uri: str) -> str:
    """Where to send the browser to ask the user's consent.

    # Reference (§2.2): https://docs.qonto.com/api-reference/business-api/authentication/oauth2/create_tokens
    """
    query = urlencode(
        {
            "client_id": settings.QONTO_CLIENT_ID,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": SCOPE,
            "state": state,
        },
        quote_via=quote,  # §2.2: scopes space-separated as %20, not +
    )
    return f"{settings.QONTO_AUTHORIZE_URL}?{query}"


def _token_set(body: dict) -> TokenSet:
    now = timezone.now()
    return token_set_from(
        body,
        now=now,
        refresh_expires_at=now + REFRESH_LIFETIME,
        default_scope=SCOPE,
        missing="Qonto's token answer has no refresh token (was offline_access granted?)",
    )


def _token_call(what: str, form: dict) -> dict:
    """POST the token endpoint with the client credentials in the form body (§2.3)."""
    data = {
        **form,
        "client_id": settings.QONTO_CLIENT_ID,
        "client_secret": settings.QONTO_CLIENT_SECRET,
    }
    try:
        response = http.request(
            http.new_session(),
            "POST",
            settings.QONTO_TOKEN_URL,
            headers=_headers(),
            data=data,
            policy=http.NO_RETRY,
            raise_for_status=False,
        )
    except ProviderError as exc:
        raise TransientError(f"Qonto {what} failed: {exc.message}") from None
    try:
        body = response.json()
    except ValueError:
        # §1: an HTML body on a token call means the staging-token header is missing.
        raise PermanentError(
            f"Qonto {what} answered a page that is not JSON (HTTP {response.status_code}); "
            "in the sandbox, check QONTO_STAGING_TOKEN"
        ) from None
    if not isinstance(body, dict):
        raise PermanentError(f"Qonto {what} answered unexpected JSON")
    if response.status_code == 200:
        return body
    error = str(body.get("error") or f"HTTP {response.status_code}")[:60]
    logger.warning("qonto %s refused: %s (%s)", what, error, response.status_code)
    if error == "invalid_grant":
        raise InvalidGrant(f"Qonto refused the {what}: invalid_grant")
    if error in ("invalid_client", "unauthorized_client"):
        raise PermanentError(f"Qonto refused Well's app credentials ({error})")
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(f"Qonto {what} failed ({error})", status=response.status_code)
    raise PermanentError(f"Qonto refused the {what} ({error})", status=response.status_code)


def code_exchange(*, code: str, redirect_uri: str) -> TokenSet:
    """Trade the callback's code (valid 10 minutes) for the first token pair (§2.3)."""
    return _token_set(
        _token_call(
            "authorization",
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        )
    )


def token_refresh(*, refresh_token: str) -> TokenSet:
    """A new pair from the latest refresh token; never retried (rotation, §2.4)."""
    return _token_set(
        _token_call(
            "token refresh", {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
    )


def token_revoke(*, token: str) -> None:
    """Revoke a token and its grant (RFC 7009 style, §1 [client]); a failure is raised."""
    try:
        http.request(
            http.new_session(),
            "POST",
            settings.QONTO_REVOKE_URL,
            headers=_headers(),
            data={
                "token": token,
                "client_id": settings.QONTO_CLIENT_ID,
                "client_secret": settings.QONTO_CLIENT_SECRET,
            },
            policy=http.NO_RETRY,
        )
    except ProviderError as exc:
        logger.warning("qonto revoke failed: %s", exc)
        raise
