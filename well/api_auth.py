"""Partner API keys and idempotent replays: the services behind `Authorization: Bearer`.

A key is `well_` + 43 random URL-safe characters (256 bits). Only its SHA-256 is stored: a fast
hash is right for a random secret of that strength (nothing to brute-force), and it lets each
request find its key with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from well.audit import Actor, audit_event_record
from well.models import ApiIdempotency, ApiKey, ApiScope, Workspace

KEY_PREFIX = "well_"
SHOWN_CHARS = 12  # "well_" and 7 random characters: enough to recognise, useless to guess
TOUCH_EVERY = timedelta(minutes=1)  # last-used time is kept to the minute, not written per call


class ScopeError(ValueError):
    pass


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def scopes_clean(scopes) -> list[str]:
    """The scopes in canonical order; raises ScopeError on an unknown or empty list."""
    wanted = {s.strip() for s in scopes if s and s.strip()}
    unknown = wanted - set(ApiScope.values)
    if unknown:
        raise ScopeError(f"Unknown scopes: {', '.join(sorted(unknown))}.")
    if not wanted:
        raise ScopeError("Give at least one scope: read, decide or admin.")
    return [s for s in ApiScope.values if s in wanted]


@transaction.atomic
def api_key_create(
    *,
    workspace: Workspace,
    name: str,
    scopes,
    actor: Actor,
    created_by=None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key; the secret is returned once and never stored."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ScopeError("The expiry must be in the future.")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        workspace=workspace,
        name=(name or "API key").strip()[:100],
        prefix=secret[:SHOWN_CHARS],
        hashed=_digest(secret),
        scopes=scopes_clean(scopes),
        created_by=created_by,
        expires_at=expires_at,
    )
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="api_key.created",
        obj=key,
        after={
            "name": key.name,
            "prefix": key.prefix,
            "scopes": key.scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return key, secret


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: Actor) -> bool:
    """Refuse the key from now on; False when it was already revoked."""
    updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated:
        audit_event_record(
            workspace=key.workspace_id,
            actor=actor,
            verb="api_key.revoked",
            obj=key,
            before={"name": key.name, "prefix": key.prefix, "scopes": key.scopes},
        )
    return bool(updated)


class KeyExpired(Exception):
    """The secret names a key whose expiry has passed."""

    def __init__(self, expires_at: datetime) -> None:
        super().__init__(f"This API key expired on {expires_at:%Y-%m-%d %H:%M} UTC.")
        self.expires_at = expires_at


def api_key_authenticate(*, secret: str) -> ApiKey | None:
    """The live key for this secret (one query), its last-used time touched now and then;
    raises KeyExpired for a key past its expiry."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 100:
        return None
    key = (
        ApiKey.objects.filter(hashed=_digest(secret), revoked_at__isnull=True)
        .select_related("workspace")
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.expires_at is not None and key.expires_at <= now:
        raise KeyExpired(key.expires_at)
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def api_key_actor(key: ApiKey) -> Actor:
    return Actor.api_key(key.pk, f"API key {key.name} ({key.prefix}…)")


def api_keys_for_workspace(*, workspace: Workspace | int):
    return ApiKey.objects.for_workspace(workspace).select_related("created_by")


# --- Idempotency-Key ------------------------------------------------------------------------


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def idempotency_get(*, key: ApiKey, idempotency_key: str) -> ApiIdempotency | None:
    return ApiIdempotency.objects.filter(api_key=key, key=idempotency_key).first()


def idempotency_claim(*, key: ApiKey, idempotency_key: str, fingerprint: str) -> bool:
    """Reserve the key inside the caller's transaction; False when another request holds it.

    A concurrent request with the same key waits on the unique index until the first one
    commits (then it replays its answer) or rolls back (then it runs itself).
    """
    try:
        with transaction.atomic():
            ApiIdempotency.objects.create(
                workspace_id=key.workspace_id,
                api_key=key,
                key=idempotency_key,
                fingerprint=fingerprint,
                status_code=0,
            )
    except IntegrityError:
        return False
    return True


def idempotency_store(*, key: ApiKey, idempotency_key: str, status_code: int, body) -> None:
    ApiIdempotency.objects.filter(api_key=key, key=idempotency_key).update(
        status_code=status_code, body=body
    )


# --- Failed key authentications, per client address ------------------------------------------


def _failure_window() -> tuple[int, int]:
    """(failures allowed, window in seconds) from WELL_API_AUTH_FAILURE_RATE, e.g. "10/min"."""
    count, _, period = settings.WELL_API_AUTH_FAILURE_RATE.partition("/")
    seconds = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}[period]
    return int(count), seconds


def _failure_cache_key(address: str, seconds: int) -> tuple[str, int]:
    window = int(time.time()) // seconds
    return f"api_auth_failures:{address}:{window}", (window + 1) * seconds


def auth_failures_wait(*, address: str) -> int | None:
    """Seconds this address must wait before trying a key again, or None."""
    allowed, seconds = _failure_window()
    key, window_end = _failure_cache_key(address, seconds)
    if cache.get(key, 0) >= allowed:
        return max(1, window_end - int(time.time()))
    return None


def auth_failure_record(*, address: str) -> None:
    """Count one wrong, revoked or expired key from this address."""
    _, seconds = _failure_window()
    key, _ = _failure_cache_key(address, seconds)
    if not cache.add(key, 1, timeout=seconds + 1):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=seconds + 1)


def client_address(meta: dict) -> str:
    """The caller's address: REMOTE_ADDR, or, when that is one of WELL_TRUSTED_PROXIES, the
    nearest X-Forwarded-For entry that is not a trusted proxy (a client cannot forge it)."""
    remote = meta.get("REMOTE_ADDR", "") or "unknown"
    proxies = [ipaddress.ip_network(p, strict=False) for p in settings.WELL_TRUSTED_PROXIES]

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in proxies)

    if not proxies or not trusted(remote):
        return remote
    hops = [h.strip() for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # garbage from beyond the proxies: count it against the proxy
    return remote
