"""One outbound HTTP helper: timeout, bounded retries, Retry-After, rate limits, named errors."""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings

logger = logging.getLogger("well.http")


def _version() -> str:
    """Well's installed version, for the User-Agent."""
    try:
        return metadata.version("well")
    except metadata.PackageNotFoundError:
        return "0"


USER_AGENT = f"Well/{_version()} (+https://well.example)"
DEFAULT_TIMEOUT_SECONDS = 30.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Headers that carry a provider's request/trace id: QuickBooks `intuit_tid` (both spellings are
# seen, quickbooks-api.md §2), Qonto `X-Tyk-Trace-Id` / `x-request-id` (qonto-api.md §7.1).
REQUEST_ID_HEADERS = (
    "intuit_tid",
    "intuit-tid",
    "x-tyk-trace-id",
    "x-request-id",
    "x-amz-request-id",
)

# Query parameters whose values are secrets (OAuth codes, pre-signed URL signatures, API keys).
_SECRET_QUERY = re.compile(
    r"(token|secret|password|passwd|signature|sig|key|code|credential|auth|session|state)",
    re.IGNORECASE,
)
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-qonto-staging-token"}
)


# --- Errors ----------------------------------------------------------------------------------


class ProviderError(Exception):
    """A provider call failed; `.permanent` says whether retrying the same call can help."""

    permanent: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider_request_id: str | None = None,
        permanent: bool | None = None,
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.provider_request_id = provider_request_id
        # The response stays on the error so clients can parse a provider's error body;
        # it is never part of str(error).
        self.response = response
        if permanent is not None:
            self.permanent = permanent

    def __str__(self) -> str:
        suffix = f" (request id {self.provider_request_id})" if self.provider_request_id else ""
        return f"{self.message}{suffix}"


class TransientError(ProviderError):
    """Temporary failure (network, timeout, 5xx): the same call may succeed later."""

    permanent = False


class PermanentError(ProviderError):
    """The provider refused the call; repeating it unchanged will fail the same way."""

    permanent = True


class AuthExpired(ProviderError):
    """The access token was refused; refresh it and try again."""

    permanent = False


class AuthRevoked(PermanentError):
    """The grant is gone (revoked or refresh token dead); the user must reconnect."""


class RateLimited(TransientError):
    """The provider throttled us; `.retry_after` says how many seconds to wait."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


# --- Attempt reporting -----------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One outbound try, as reported to the `on_attempt` hook (no secrets in it)."""

    method: str
    url: str
    status: int | None
    duration: float
    attempt: int
    provider_request_id: str | None
    error: str | None = None
    limiter_key: str | None = None


AttemptHook = Callable[[Attempt], None]


def redact_url(url: str) -> str:
    """The URL without userinfo and with secret-looking query values replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = urlencode(
        [
            (name, "***" if _SECRET_QUERY.search(name) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class _RedactQueryFilter(logging.Filter):
    """Scrub secret query values from urllib3's DEBUG lines, which print each request path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(arg) if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        return True


_URLLIB3_FILTER = _RedactQueryFilter()
logging.getLogger("urllib3.connectionpool").addFilter(_URLLIB3_FILTER)


def _secrets_of(headers: Mapping[str, str] | None, url: str) -> list[str]:
    """Every secret value this request carries, so messages can be scrubbed of them."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        if name.lower() in _SECRET_HEADERS and value:
            found.append(str(value))
            found.extend(part for part in str(value).split() if len(part) >= 6)
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    if parts.password:
        found.append(parts.password)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_QUERY.search(name) and len(value) >= 4:
            found.append(value)
    return sorted(set(found), key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced, for exception messages built from library errors."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def provider_request_id(response: requests.Response) -> str | None:
    """The provider's request/trace id from the response headers, if it sent one."""
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value[:200]
    return None


# --- Retry policy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try, and how long to wait in between."""

    max_attempts: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    # QuickBooks documents "wait 60 s" on 429 and sends no Retry-After (quickbooks-api.md §5.3).
    default_429_wait: float = 60.0
    # A wait longer than this is not slept through inside one call: RateLimited is raised so
    # the sync can stop and resume later instead of pinning a worker.
    max_wait: float = 300.0


DEFAULT_POLICY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, capped."""
    ceiling = min(policy.backoff_max, policy.backoff_base * (2 ** (attempt - 1)))
    return ceiling / 2 + rand() * ceiling / 2


# --- Rate limiter ----------------------------------------------------------------------------


@dataclass
class _KeyState:
    started: deque[float] = field(default_factory=deque)
    in_flight: int = 0


class RateLimiter:
    """At most `per_window` starts per rolling window and `max_in_flight` at once, per key."""

    def __init__(
        self,
        *,
        per_window: int,
        max_in_flight: int,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_window < 1 or max_in_flight < 1:
            raise ValueError("rate limits must be positive")
        self.per_window = per_window
        self.max_in_flight = max_in_flight
        self.window_seconds = window_seconds
        self._clock = clock
        self._cond = threading.Condition()
        self._keys: dict[str, _KeyState] = {}

    def _wait_needed(self, state: _KeyState, now: float) -> float | None:
        """None when a slot is free now; else seconds to wait (0 = until a release)."""
        while state.started and state.started[0] <= now - self.window_seconds:
            state.started.popleft()
        if state.in_flight >= self.max_in_flight:
            return 0.0
        if len(state.started) >= self.per_window:
            return max(0.001, state.started[0] + self.window_seconds - now)
        return None

    def acquire(self, key: str) -> None:
        """Block until `key` may start one more request, then count it."""
        with self._cond:
            state = self._keys.setdefault(key, _KeyState())
            while (wait := self._wait_needed(state, self._clock())) is not None:
                # A release notifies; a window expiry is waited for with a timeout.
                self._cond.wait(timeout=wait or None)
            state.started.append(self._clock())
            state.in_flight += 1

    def release(self, key: str) -> None:
        """Mark one request on `key` finished."""
        with self._cond:
            state = self._keys[key]
            state.in_flight -= 1
            if state.in_flight == 0 and not state.started:
                del self._keys[key]
            self._cond.notify_all()

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        """Hold one in-flight slot on `key` for the duration of the block."""
        self.acquire(key)
        try:
            yield
        finally:
            self.release(key)

    def in_flight(self, key: str) -> int:
        """Requests currently running on `key` (for tests and metrics)."""
        with self._cond:
            state = self._keys.get(key)
            return state.in_flight if state else 0


# --- Session and request ---------------------------------------------------------------------


def new_session(*, user_agent: str = USER_AGENT) -> requests.Session:
    """A requests.Session with Well's User-Agent; use it only through `request()`."""
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    # Proxies and netrc from the environment must not change where credentials go.
    session.trust_env = False
    return session


def _default_timeout() -> float:
    """settings.HTTP_TIMEOUT_SECONDS when Django is configured, else 30 s."""
    try:
        return float(getattr(settings, "HTTP_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
    except Exception:  # Django not configured: the helper also works in plain scripts.
        return DEFAULT_TIMEOUT_SECONDS


def _error_for_status(
    response: requests.Response, method: str, safe_url: str, now: float | None = None
) -> ProviderError:
    """The named error for a non-2xx response."""
    status = response.status_code
    request_id = provider_request_id(response)
    where = f"{method} {safe_url}"
    common: dict[str, Any] = {
        "status": status,
        "provider_request_id": request_id,
        "response": response,
    }
    if status == 401:
        return AuthExpired(f"{where} was refused: the access token is not valid (401)", **common)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return RateLimited(
            f"{where} was rate limited (429)",
            retry_after=retry_after if retry_after is not None else -1.0,
            **common,
        )
    if status in (408, 425) or 500 <= status <= 599:
        return TransientError(f"{where} failed with HTTP {status}", **common)
    if 300 <= status <= 399:
        return PermanentError(f"{where} answered an unexpected redirect ({status})", **common)
    return PermanentError(f"{where} was refused with HTTP {status}", **common)


def _report(hook: AttemptHook | None, attempt: Attempt) -> None:
    """Log the attempt and pass it to the hook; a failing hook never fails the call."""
    # Every call at DEBUG; failures (no answer or an error status) at INFO for operators.
    failed = attempt.status is None or attempt.status >= 400
    logger.log(
        logging.INFO if failed else logging.DEBUG,
        "http %s %s -> %s in %.3fs (attempt %d, request id %s%s)",
        attempt.method,
        attempt.url,
        attempt.status if attempt.status is not None else attempt.error,
        attempt.duration,
        attempt.attempt,
        attempt.provider_request_id,
        f", key {attempt.limiter_key}" if attempt.limiter_key else "",
    )
    if hook is None:
        return
    try:
        hook(attempt)
    except Exception:
        logger.exception("on_attempt hook failed for %s %s", attempt.method, attempt.url)


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    retry_safe: bool | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    files: Any = None,
    timeout: float | tuple[float, float] | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    limiter: RateLimiter | None = None,
    limiter_key: str | None = None,
    on_attempt: AttemptHook | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    raise_for_status: bool = True,
    allow_redirects: bool = False,
) -> requests.Response:
    """Send one logical request, retrying only when `retry_safe`; raise a named error on failure.

    `retry_safe` defaults to True for GET/HEAD/OPTIONS and False otherwise: pass True for a POST
    only when it carries an idempotency key. A request that is not retry-safe is tried once.
    """
    method = method.upper()
    if retry_safe is None:
        retry_safe = method in SAFE_METHODS
    max_attempts = policy.max_attempts if retry_safe else 1
    if timeout is None:
        timeout = _default_timeout()
    if limiter is not None and limiter_key is None:
        raise ValueError("limiter needs a limiter_key (e.g. the QuickBooks realm id)")
    full_url = requests.Request(method, url, params=params).prepare().url or url
    safe_url = redact_url(full_url)
    secrets = _secrets_of({**session.headers, **(headers or {})}, full_url)

    def send() -> requests.Response:
        return session.request(
            method,
            url,
            headers=dict(headers or {}),
            params=params,
            json=json,
            data=data,
            files=files,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )

    attempt = 0
    while True:
        attempt += 1
        started = time.monotonic()
        response: requests.Response | None = None
        try:
            if limiter is not None and limiter_key is not None:
                # Only the request itself holds a slot; backoff sleeps happen outside it.
                with limiter.slot(limiter_key):
                    started = time.monotonic()
                    response = send()
            else:
                response = send()
        except (requests.Timeout, requests.ConnectionError) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "could not connect"
            # The library's message can embed the full URL (query secrets included): scrub it.
            detail = _scrub(str(exc), secrets)[:300]
            failure: ProviderError = TransientError(
                f"{method} {safe_url} {kind} ({type(exc).__name__}: {detail})"
                + ("" if retry_safe else "; not retried: the provider may have processed it")
            )
            status = None
            error_name: str | None = type(exc).__name__
        except requests.RequestException as exc:
            # Malformed URL, invalid header: repeating will not help.
            raise PermanentError(
                f"{method} {safe_url} could not be sent ({type(exc).__name__})"
            ) from None
        else:
            status = response.status_code
            error_name = None

        _report(
            on_attempt,
            Attempt(
                method=method,
                url=safe_url,
                status=status,
                duration=time.monotonic() - started,
                attempt=attempt,
                provider_request_id=provider_request_id(response) if response is not None else None,
                error=error_name,
                limiter_key=limiter_key,
            ),
        )
        if response is not None:
            if response.status_code < 300:
                return response
            failure = _error_for_status(response, method, safe_url)

        retryable = (
            retry_safe
            and attempt < max_attempts
            and not failure.permanent
            and not isinstance(failure, AuthExpired)
        )
        if isinstance(failure, RateLimited) and failure.retry_after < 0:
            failure.retry_after = policy.default_429_wait
        wait = 0.0
        if retryable:
            if isinstance(failure, RateLimited):
                wait = failure.retry_after
            else:
                hinted = (
                    parse_retry_after(response.headers.get("Retry-After"))
                    if response is not None
                    else None
                )
                wait = hinted if hinted is not None else backoff_delay(attempt, policy, rand)
            # A wait this long is not slept through inside one call: the error goes up with
            # its retry_after so the sync can stop and resume later instead of pinning a worker.
            if wait > policy.max_wait:
                retryable = False
        if not retryable:
            if response is not None and not raise_for_status:
                return response
            raise failure
        logger.info("retrying %s %s in %.2fs (attempt %d)", method, safe_url, wait, attempt + 1)
        sleep(wait)
