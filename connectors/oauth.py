"""What both providers' OAuth flows share: the token pair, its errors, the callback's checks.

Each provider's `oauth.py` speaks its own token endpoint (quickbooks-api.md §1, qonto-api.md §2)
and returns these types; every callback checks the same things before anything is stored: the
`state` bound to this session, the user who started, their role in that workspace, the age.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from connectors.models import Connection
from well.audit import Actor
from well.http import AuthRevoked, PermanentError
from well.models import Membership, Role, Workspace


class InvalidGrant(AuthRevoked):
    """The token endpoint answered invalid_grant: the refresh token is dead (or superseded)."""


@dataclass(frozen=True)
class TokenSet:
    """A token response; the tokens never appear in repr or logs."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    scope: str


@dataclass(frozen=True)
class ProviderOAuth:
    """One provider's OAuth, as its services.py declares it once.

    `oauth` is the provider's oauth.py; its functions are looked up at each call. `callback` is
    the route registered with the provider, `lifetime` how long a consent may take, and `actor`
    who Well is in the audit trail when it refreshes a token on its own.
    """

    provider: str
    name: str
    oauth: ModuleType
    callback: str
    lifetime: timedelta
    actor: Actor

    def redirect_uri(self) -> str:
        return settings.SITE_URL.rstrip("/") + reverse(self.callback)


def token_set_from(
    body: dict,
    *,
    now: datetime,
    refresh_expires_at: datetime | None,
    default_scope: str,
    missing: str,
) -> TokenSet:
    """A token endpoint's answer (RFC 6749 §5.1) as a TokenSet; `missing` says a token is absent.

    The access token lives `expires_in` seconds (an hour when unsaid); the refresh token's end is
    the provider's to say. `scope` may come as a list.
    """
    try:
        access = str(body["access_token"])
        refresh = str(body["refresh_token"])
        expires_in = int(body.get("expires_in") or 3600)
    except (KeyError, TypeError, ValueError):
        raise PermanentError(missing) from None
    scope = body.get("scope")
    if isinstance(scope, list):
        scope = " ".join(scope)
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        access_expires_at=now + timedelta(seconds=expires_in),
        refresh_expires_at=refresh_expires_at,
        scope=str(scope or default_scope),
    )


class ConnectError(Exception):
    """The connection could not be made; the message is safe to show."""


@dataclass(frozen=True)
class ConnectOutcome:
    workspace: Workspace
    connection: Connection
    message: str


def new_state() -> str:
    return secrets.token_urlsafe(32)


def authorization_pending(*, state: str, workspace: Workspace, user, **extra) -> dict:
    """What the session remembers while the user is on the provider's consent page."""
    return {
        "state": state,
        "workspace_id": workspace.pk,
        "user_id": user.pk,
        **extra,
        "started_at": timezone.now().isoformat(),
    }


def authorization_begin(
    *, how: ProviderOAuth, workspace: Workspace, user, **extra
) -> tuple[str, dict]:
    """The consent URL and what the session must remember to check the callback."""
    state = new_state()
    pending = authorization_pending(state=state, workspace=workspace, user=user, **extra)
    return how.oauth.authorization_url(state=state, redirect_uri=how.redirect_uri()), pending


def authorization_code_exchange(*, how: ProviderOAuth, code: str) -> TokenSet:
    """Trade the callback's code for the first token pair (at the redirect URI that asked)."""
    return how.oauth.code_exchange(code=code, redirect_uri=how.redirect_uri())


def _pending_workspace(*, pending, user) -> Workspace | None:
    """The workspace that started the flow, if this user may still connect it."""
    if not isinstance(pending, dict) or pending.get("user_id") != user.pk:
        return None
    membership = (
        Membership.objects.filter(user=user, workspace_id=pending.get("workspace_id"))
        .select_related("workspace")
        .first()
    )
    if membership is None or not membership.allows(Role.OWNER):
        return None
    return membership.workspace


def oauth_callback_workspace(
    *, how: ProviderOAuth, pending, user, state: str, error: str
) -> Workspace:
    """The workspace an OAuth callback belongs to, once state, user and age check out."""
    expected = pending.get("state") if isinstance(pending, dict) else None
    if not expected or not state or not secrets.compare_digest(str(expected), str(state)):
        raise ConnectError(
            f"This {how.name} answer does not match a connection started here "
            "(state mismatch); nothing was stored."
        )
    workspace = _pending_workspace(pending=pending, user=user)
    if workspace is None:
        raise ConnectError(
            _("You can no longer connect %(provider)s for that workspace.") % {"provider": how.name}
        )
    try:
        started = datetime.fromisoformat(pending.get("started_at", ""))
    except (TypeError, ValueError):
        started = None
    if started is None or started < timezone.now() - how.lifetime:
        raise ConnectError(
            _("The %(provider)s connection took too long; please start again.")
            % {"provider": how.name}
        )
    if error:
        if error == "access_denied":
            raise ConnectError(
                _("You cancelled the %(provider)s connection; nothing was changed.")
                % {"provider": how.name}
            )
        raise ConnectError(f"{how.name} did not connect ({error[:60]}); nothing was changed.")
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
