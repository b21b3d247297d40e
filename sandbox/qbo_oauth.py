"""OAuth 2.0 grants of the QuickBooks sandbox: codes, access tokens, rotating refresh tokens.

Reference: quickbooks-api.md §1.4-1.9. Access tokens live `access_token_ttl` seconds (3600 in
production). Refresh tokens roll over 100 days and are capped at 5 years; their *value* rotates
per `rotation`: "always" (every refresh), "daily" (when the value is 24 h old, as Intuit staff
describe it, §1.6) or "never". A superseded value is dead at once: `invalid_grant` (§1.6, §1.8).
Times are epoch seconds from the sandbox's adjustable clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

ROTATIONS = ("always", "daily", "never")
REFRESH_LIFETIME = 8_726_400  # observed x_refresh_token_expires_in on first issue (§1.5)
HARD_LIFETIME = 5 * 365 * 86_400  # 5-year cap (§1.6)
CODE_LIFETIME = 600
ACCOUNTING_SCOPES = ("com.intuit.quickbooks.accounting", "com.intuit.quickbooks.payment")


class OAuthError(Exception):
    """A token-endpoint failure with its OAuth error code and HTTP status."""

    def __init__(self, error: str, status: int = 400, description: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.description = description

    def body(self) -> dict:
        payload = {"error": self.error}
        if self.description:
            payload["error_description"] = self.description
        return payload


@dataclass
class Grant:
    id: str
    realm_id: str
    client_id: str
    scope: str
    refresh_token: str
    refresh_issued_at: float
    refresh_expires_at: float
    hard_expires_at: float
    revoked: bool = False
    superseded: list[str] = field(default_factory=list)


@dataclass
class OAuthState:
    """All grants of one sandbox; callers hold the sandbox lock and persist after changes."""

    now: Callable[[], float]
    access_token_ttl: int = 3600
    rotation: str = "always"
    codes: dict[str, dict] = field(default_factory=dict)
    access: dict[str, dict] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rotation not in ROTATIONS:
            raise ValueError(f"refresh_rotation must be one of {ROTATIONS}")

    # ---- authorize ----------------------------------------------------------------------
    def issue_code(self, *, client_id: str, redirect_uri: str, scope: str, realm_id: str) -> str:
        """A single-use authorization code (max 512 chars per §1.3; ours are short)."""
        code = "AB11" + secrets.token_urlsafe(36)
        self.codes[code] = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "realm_id": realm_id,
            "expires_at": self.now() + CODE_LIFETIME,
        }
        return code

    def exchange_code(self, *, client_id: str, code: str, redirect_uri: str) -> dict:
        """Trade a code for the first token pair; the code dies on first use (§1.8)."""
        entry = self.codes.pop(code, None)
        if entry is None or entry["expires_at"] < self.now():
            raise OAuthError("invalid_grant")
        if entry["client_id"] != client_id or entry["redirect_uri"] != redirect_uri:
            raise OAuthError("invalid_grant")
        moment = self.now()
        grant = Grant(
            id=secrets.token_hex(8),
            realm_id=entry["realm_id"],
            client_id=client_id,
            scope=entry["scope"],
            refresh_token=self._new_refresh(),
            refresh_issued_at=moment,
            refresh_expires_at=moment + REFRESH_LIFETIME,
            hard_expires_at=moment + HARD_LIFETIME,
        )
        self.grants[grant.id] = grant
        return self._token_response(grant)

    # ---- refresh ------------------------------------------------------------------------
    def refresh(self, *, client_id: str, refresh_token: str) -> dict:
        """Rotate per schedule; superseded, revoked or expired values get invalid_grant."""
        grant = self._grant_by_refresh(refresh_token)
        moment = self.now()
        if (
            grant is None
            or grant.client_id != client_id
            or grant.revoked
            or refresh_token != grant.refresh_token
            or moment >= min(grant.refresh_expires_at, grant.hard_expires_at)
        ):
            raise OAuthError("invalid_grant", description="Incorrect or invalid refresh token")
        if self._should_rotate(grant, moment):
            self.rotate(grant)
        return self._token_response(grant)

    def _should_rotate(self, grant: Grant, moment: float) -> bool:
        if self.rotation == "always":
            return True
        if self.rotation == "daily":
            return moment - grant.refresh_issued_at >= 86_400
        return False

    def rotate(self, grant: Grant) -> str:
        """Give the grant a new refresh value; the old one stops working at once."""
        grant.superseded.append(grant.refresh_token)
        grant.superseded = grant.superseded[-20:]
        grant.refresh_token = self._new_refresh()
        grant.refresh_issued_at = self.now()
        grant.refresh_expires_at = self.now() + REFRESH_LIFETIME
        return grant.refresh_token

    # ---- revoke / check -----------------------------------------------------------------
    def revoke(self, token: str) -> bool:
        """Revoke the grant behind a refresh or access token (§1.9); False when unknown."""
        grant = self._grant_by_refresh(token)
        if grant is None and token in self.access:
            grant = self.grants.get(self.access[token]["grant_id"])
        if grant is None:
            return False
        grant.revoked = True
        return True

    def check_access(self, token: str) -> tuple[str, Grant | None]:
        """("ok" | "unknown" | "expired" | "revoked", grant) for a bearer token."""
        entry = self.access.get(token)
        if entry is None:
            return "unknown", None
        grant = self.grants.get(entry["grant_id"])
        if grant is None or grant.revoked:
            return "revoked", grant
        if entry["expires_at"] <= self.now():
            return "expired", grant
        return "ok", grant

    def expire_access(self) -> int:
        """Expire every live access token now (a soak's forced refresh); how many expired."""
        moment = self.now()
        live = [entry for entry in self.access.values() if entry["expires_at"] > moment]
        for entry in live:
            entry["expires_at"] = moment
        return len(live)

    def live_grants(self) -> list[Grant]:
        return [grant for grant in self.grants.values() if not grant.revoked]

    # ---- internals ----------------------------------------------------------------------
    def _grant_by_refresh(self, token: str) -> Grant | None:
        for grant in self.grants.values():
            if token == grant.refresh_token or token in grant.superseded:
                return grant
        return None

    def _new_refresh(self) -> str:
        return "AB11" + secrets.token_urlsafe(36)

    def _token_response(self, grant: Grant) -> dict:
        moment = self.now()
        access_token = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2In0." + secrets.token_urlsafe(48)
        self.access[access_token] = {
            "grant_id": grant.id,
            "expires_at": moment + self.access_token_ttl,
        }
        self._prune(moment)
        remaining = min(grant.refresh_expires_at, grant.hard_expires_at) - moment
        return {
            "token_type": "bearer",
            "access_token": access_token,
            "expires_in": self.access_token_ttl,
            "refresh_token": grant.refresh_token,
            "x_refresh_token_expires_in": int(remaining),
            "_hard_expires_in": int(grant.hard_expires_at - moment),
        }

    def _prune(self, moment: float) -> None:
        """Forget access tokens expired for a day, so the state file stays small."""
        dead = [key for key, entry in self.access.items() if entry["expires_at"] < moment - 86_400]
        for key in dead:
            del self.access[key]

    def dump(self) -> dict:
        return {
            "codes": self.codes,
            "access": self.access,
            "grants": {key: asdict(grant) for key, grant in self.grants.items()},
        }

    def load(self, data: dict) -> None:
        self.codes = dict(data.get("codes", {}))
        self.access = dict(data.get("access", {}))
        self.grants = {key: Grant(**value) for key, value in data.get("grants", {}).items()}
