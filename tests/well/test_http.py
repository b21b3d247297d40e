from __future__ import annotations

import email.utils
import logging
import threading
import time

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

from sandbox.server import serve_in_thread
from well import http

API = "https://api.example.test/v3/company/123/query"
SENTINEL = "SENTINEL-TOKEN-7f3a9c"


class Sleeps:
    """A fake sleep that records how long each wait would have been."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def session() -> requests.Session:
    return http.new_session()


@responses.activate
def test_requests_carry_the_well_user_agent(session, sleeps):
    responses.get(API, json={"ok": True})
    http.request(session, "GET", API, sleep=sleeps)
    agent = responses.calls[0].request.headers["User-Agent"]
    assert agent.startswith("Well/")
    assert agent.endswith("(+https://well.example)")


def test_default_timeout_comes_from_settings_and_can_be_overridden(settings, session, sleeps):
    seen: list[object] = []

    def fake_request(method, url, **kwargs):
        seen.append(kwargs["timeout"])
        response = requests.Response()
        response.status_code = 200
        return response

    session.request = fake_request
    settings.HTTP_TIMEOUT_SECONDS = 12.5
    http.request(session, "GET", API, sleep=sleeps)
    http.request(session, "GET", API, timeout=3.0, sleep=sleeps)
    assert seen == [12.5, 3.0]


@responses.activate
def test_a_get_is_retried_after_5xx_with_growing_jittered_backoff(session, sleeps):
    responses.get(API, status=503)
    responses.get(API, status=502)
    responses.get(API, json={"ok": True})
    policy = http.RetryPolicy(max_attempts=4, backoff_base=1.0, backoff_max=30.0)
    response = http.request(session, "GET", API, policy=policy, sleep=sleeps)
    assert response.json() == {"ok": True}
    assert len(responses.calls) == 3
    assert 0.5 <= sleeps.waits[0] <= 1.0
    assert 1.0 <= sleeps.waits[1] <= 2.0


@responses.activate
def test_the_next_attempt_waits_what_retry_after_says(session, sleeps):
    responses.get(API, status=429, headers={"Retry-After": "7"})
    responses.get(API, json={"ok": True})
    http.request(session, "GET", API, sleep=sleeps)
    assert sleeps.waits == [7.0]
    assert len(responses.calls) == 2


@responses.activate
def test_retry_after_as_an_http_date_is_honoured(session, sleeps):
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    responses.get(API, status=503, headers={"Retry-After": when})
    responses.get(API, json={"ok": True})
    http.request(session, "GET", API, sleep=sleeps)
    assert 110 <= sleeps.waits[0] <= 121


@responses.activate
def test_429_without_retry_after_waits_the_per_call_default(session, sleeps):
    responses.get(API, status=429)
    responses.get(API, json={"ok": True})
    http.request(session, "GET", API, sleep=sleeps)
    http_default = http.DEFAULT_POLICY.default_429_wait
    assert sleeps.waits == [http_default] == [60.0]

    responses.get(API, status=429)
    responses.get(API, json={"ok": True})
    http.request(session, "GET", API, policy=http.RetryPolicy(default_429_wait=5.0), sleep=sleeps)
    assert sleeps.waits[-1] == 5.0


@responses.activate
def test_repeated_429_gives_up_with_rate_limited_carrying_retry_after(session, sleeps):
    responses.get(API, status=429, headers={"Retry-After": "2", "intuit_tid": "tid-1"})
    with pytest.raises(http.RateLimited) as caught:
        http.request(session, "GET", API, policy=http.RetryPolicy(max_attempts=3), sleep=sleeps)
    assert len(responses.calls) == 3
    assert sleeps.waits == [2.0, 2.0]
    error = caught.value
    assert error.retry_after == 2.0
    assert error.permanent is False
    assert error.status == 429
    assert error.provider_request_id == "tid-1"


@responses.activate
def test_a_wait_longer_than_the_cap_is_not_slept_but_raised(session, sleeps):
    responses.get(API, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(http.RateLimited) as caught:
        http.request(session, "GET", API, sleep=sleeps)
    assert sleeps.waits == []
    assert caught.value.retry_after == 3600.0
    assert len(responses.calls) == 1


@responses.activate
def test_a_plain_post_is_never_retried(session, sleeps):
    responses.post(API, status=503)
    with pytest.raises(http.TransientError):
        http.request(session, "POST", API, json={"a": 1}, sleep=sleeps)
    responses.replace(responses.POST, API, status=429, headers={"Retry-After": "1"})
    with pytest.raises(http.RateLimited) as caught:
        http.request(session, "POST", API, json={"a": 1}, sleep=sleeps)
    assert caught.value.retry_after == 1.0
    responses.replace(responses.POST, API, body=requests.ConnectionError("reset"))
    with pytest.raises(http.TransientError, match="not retried"):
        http.request(session, "POST", API, json={"a": 1}, sleep=sleeps)
    assert len(responses.calls) == 3
    assert sleeps.waits == []


@responses.activate
def test_a_post_marked_retry_safe_is_retried_with_the_same_idempotency_key(session, sleeps):
    responses.post(API, status=500)
    responses.post(API, body=requests.ConnectionError("reset"))
    responses.post(API, json={"id": 1})
    key = {"X-Qonto-Idempotency-Key": "b7f4c1f2-0c1e-4a5e-9a3e-1d2f3c4b5a69"}
    response = http.request(
        session, "POST", API, headers=key, json={"a": 1}, retry_safe=True, sleep=sleeps
    )
    assert response.json() == {"id": 1}
    keys = {call.request.headers["X-Qonto-Idempotency-Key"] for call in responses.calls}
    assert keys == {key["X-Qonto-Idempotency-Key"]}
    assert len(responses.calls) == 3


@responses.activate
def test_connection_errors_and_timeouts_are_retried_then_raised_as_transient(session, sleeps):
    responses.get(API, body=requests.ConnectTimeout("slow"))
    responses.get(API, body=requests.ConnectionError("refused"))
    with pytest.raises(http.TransientError) as caught:
        http.request(session, "GET", API, policy=http.RetryPolicy(max_attempts=2), sleep=sleeps)
    assert caught.value.permanent is False
    assert len(sleeps.waits) == 1


@pytest.mark.parametrize(
    ("status", "error", "permanent"),
    [
        (400, http.PermanentError, True),
        (403, http.PermanentError, True),
        (404, http.PermanentError, True),
        (422, http.PermanentError, True),
        (401, http.AuthExpired, False),
    ],
)
@responses.activate
def test_client_errors_are_named_and_not_retried(session, sleeps, status, error, permanent):
    responses.get(API, status=status, json={"errors": []}, headers={"X-Tyk-Trace-Id": "tr-9"})
    with pytest.raises(error) as caught:
        http.request(session, "GET", API, sleep=sleeps)
    assert len(responses.calls) == 1
    assert caught.value.permanent is permanent
    assert caught.value.status == status
    assert caught.value.provider_request_id == "tr-9"
    assert caught.value.response is not None
    assert caught.value.response.json() == {"errors": []}


def test_auth_revoked_is_permanent_and_rate_limited_is_not():
    assert http.AuthRevoked("gone").permanent is True
    assert isinstance(http.AuthRevoked("gone"), http.PermanentError)
    assert http.RateLimited("slow down", retry_after=1).permanent is False
    assert http.ProviderError("x", permanent=True).permanent is True


@responses.activate
def test_raise_for_status_off_returns_the_final_response(session, sleeps):
    responses.get(API, status=404, json={"missing": True})
    response = http.request(session, "GET", API, raise_for_status=False, sleep=sleeps)
    assert response.status_code == 404
    responses.replace(responses.GET, API, status=500)
    response = http.request(
        session,
        "GET",
        API,
        raise_for_status=False,
        policy=http.RetryPolicy(max_attempts=2),
        sleep=sleeps,
    )
    assert response.status_code == 500
    assert len(responses.calls) == 3


@responses.activate
def test_every_attempt_is_reported_to_the_hook_without_query_secrets(session, sleeps):
    attempts: list[http.Attempt] = []
    url = f"{API}?query=select%20*%20from%20Bill&access_token={SENTINEL}"
    responses.get(url, status=503, headers={"intuit_tid": "t-1"})
    responses.get(url, json={}, headers={"intuit_tid": "t-2"})
    http.request(session, "GET", url, on_attempt=attempts.append, sleep=sleeps)
    assert [(a.attempt, a.status, a.provider_request_id) for a in attempts] == [
        (1, 503, "t-1"),
        (2, 200, "t-2"),
    ]
    assert all(a.method == "GET" and a.duration >= 0 for a in attempts)
    assert SENTINEL not in attempts[0].url
    assert "query=select" in attempts[0].url
    assert "access_token=***" in attempts[0].url


@responses.activate
def test_a_failing_hook_never_fails_the_call(session, sleeps):
    responses.get(API, json={"ok": True})

    def broken(attempt):
        raise RuntimeError("metrics down")

    assert http.request(session, "GET", API, on_attempt=broken, sleep=sleeps).ok


@responses.activate
def test_tokens_never_appear_in_logs_or_exception_messages(session, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    headers = {"Authorization": f"Bearer {SENTINEL}"}
    secret_url = f"https://user:{SENTINEL}@api.example.test/x?api_key={SENTINEL}&code={SENTINEL}"
    errors: list[BaseException] = []
    responses.get(API, status=500)
    responses.get(
        "https://api.example.test/x",
        body=requests.ConnectionError(f"Max retries exceeded with url: /x?api_key={SENTINEL}"),
    )
    responses.post(API, status=401, body=f"token {SENTINEL} expired")
    responses.put(API, status=429)
    calls = [
        lambda: http.request(session, "GET", API, headers=headers, sleep=sleeps),
        lambda: http.request(session, "GET", secret_url, headers=headers, sleep=sleeps),
        lambda: http.request(session, "POST", API, headers=headers, data={"t": 1}, sleep=sleeps),
        lambda: http.request(session, "PUT", API, headers=headers, sleep=sleeps),
    ]
    for call in calls:
        with pytest.raises(http.ProviderError) as caught:
            call()
        errors.append(caught.value)
    assert len(errors) == 4
    for error in errors:
        assert SENTINEL not in str(error)
        assert SENTINEL not in repr(error)
        assert error.__cause__ is None or SENTINEL not in str(error.__cause__)
    for record in caplog.records:
        assert SENTINEL not in record.getMessage()
    assert caplog.records, "attempts should have been logged"


def test_real_requests_keep_secrets_out_of_debug_logs(session, sleeps, caplog):
    def app(environ, start_response):
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"boom"]

    server = serve_in_thread(app)
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(http.TransientError) as caught:
            http.request(
                session,
                "GET",
                f"{server.base_url}/download?X-Amz-Signature={SENTINEL}&page=1",
                headers={"Authorization": f"Bearer {SENTINEL}"},
                policy=http.RetryPolicy(max_attempts=2),
                sleep=sleeps,
            )
    finally:
        server.stop()
    assert SENTINEL not in str(caught.value)
    assert any(record.name.startswith("urllib3") for record in caplog.records)
    for record in caplog.records:
        assert SENTINEL not in record.getMessage()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_parsing(header, expected):
    assert http.parse_retry_after(header) == expected


def test_retry_after_http_date_is_relative_to_now():
    now = time.time()
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert http.parse_retry_after(header, now=now) == pytest.approx(30, abs=1)


@given(attempt=st.integers(min_value=1, max_value=40), r=st.floats(min_value=0, max_value=1))
def test_backoff_is_bounded_and_never_negative(attempt, r):
    policy = http.RetryPolicy(backoff_base=1.0, backoff_max=30.0)
    delay = http.backoff_delay(attempt, policy, lambda: r)
    assert 0 <= delay <= 30.0


def test_redact_url_keeps_useful_parts_and_hides_secrets():
    url = "https://u:p@h.example/v3/x?minorversion=75&X-Amz-Signature=abc&state=s1&page=2"
    assert http.redact_url(url) == (
        "https://h.example/v3/x?minorversion=75&X-Amz-Signature=***&state=***&page=2"
    )


def test_rate_limiter_caps_requests_in_flight_per_key():
    limiter = http.RateLimiter(per_window=1000, max_in_flight=3)
    lock = threading.Lock()
    running = {"now": 0, "peak": 0}

    def work():
        with limiter.slot("realm-1"):
            with lock:
                running["now"] += 1
                running["peak"] = max(running["peak"], running["now"])
            time.sleep(0.02)
            with lock:
                running["now"] -= 1

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert running["peak"] == 3
    assert limiter.in_flight("realm-1") == 0


def test_rate_limiter_blocks_until_the_rolling_window_frees_a_slot():
    limiter = http.RateLimiter(per_window=3, max_in_flight=10, window_seconds=0.3)
    started = time.monotonic()
    for _ in range(6):
        with limiter.slot("realm-1"):
            pass
    elapsed = time.monotonic() - started
    assert elapsed >= 0.3  # the fourth call waited for the window to roll


def test_rate_limiter_keys_are_independent():
    limiter = http.RateLimiter(per_window=1, max_in_flight=1, window_seconds=30)
    with limiter.slot("realm-a"):
        started = time.monotonic()
        with limiter.slot("realm-b"):
            pass
    assert time.monotonic() - started < 0.5


def test_quickbooks_limiter_stays_under_the_documented_budget():
    from connectors.quickbooks.client import LIMITER as limiter

    assert limiter.per_window <= 500
    assert limiter.max_in_flight == 10
    assert limiter.window_seconds == 60


@responses.activate
def test_request_through_a_limiter_holds_a_slot_and_names_the_key(session, sleeps):
    limiter = http.RateLimiter(per_window=10, max_in_flight=1)
    attempts: list[http.Attempt] = []
    seen_in_flight: list[int] = []

    def callback(request):
        seen_in_flight.append(limiter.in_flight("realm-9"))
        return (200, {}, "{}")

    responses.add_callback(responses.GET, API, callback=callback)
    http.request(
        session,
        "GET",
        API,
        limiter=limiter,
        limiter_key="realm-9",
        on_attempt=attempts.append,
        sleep=sleeps,
    )
    assert seen_in_flight == [1]
    assert limiter.in_flight("realm-9") == 0
    assert attempts[0].limiter_key == "realm-9"


def test_a_limiter_without_a_key_is_a_programming_error(session):
    with pytest.raises(ValueError):
        http.request(session, "GET", API, limiter=http.RateLimiter(per_window=1, max_in_flight=1))
