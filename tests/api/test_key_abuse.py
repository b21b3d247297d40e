"""Wrong API keys are throttled per client address, and keys may expire (issue 19, finding 11)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from well.models import ApiKey

pytestmark = pytest.mark.django_db

WRONG = "Bearer well_" + "x" * 43


def _get(secret_header: str, *, remote: str = "198.51.100.7", **meta):
    client = APIClient()
    return client.get(
        "/api/v1/records/", HTTP_AUTHORIZATION=secret_header, REMOTE_ADDR=remote, **meta
    )


def test_wrong_keys_from_one_address_are_throttled_with_retry_after(books, make_key, settings):
    settings.WELL_API_AUTH_FAILURE_RATE = "5/min"
    _, secret = make_key(books.workspace)
    for _ in range(5):
        assert _get(WRONG).status_code == 401

    throttled = _get(WRONG)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert int(throttled["Retry-After"]) >= 1
    # While throttled, this address gets nowhere, not even with a right key ...
    assert _get(f"Bearer {secret}").status_code == 429
    # ... and other addresses are not affected.
    assert _get(WRONG, remote="198.51.100.8").status_code == 401
    assert _get(f"Bearer {secret}", remote="198.51.100.8").status_code == 200


def test_the_window_passes_and_the_address_may_try_again(books, make_key, settings):
    settings.WELL_API_AUTH_FAILURE_RATE = "2/min"
    _, secret = make_key(books.workspace)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(3):
            _get(WRONG)
        assert _get(f"Bearer {secret}").status_code == 429
        clock.shift(timedelta(seconds=61))
        assert _get(f"Bearer {secret}").status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled_not_the_proxy(
    books, make_key, settings
):
    settings.WELL_API_AUTH_FAILURE_RATE = "3/min"
    settings.WELL_TRUSTED_PROXIES = ["10.0.0.0/8"]
    _, secret = make_key(books.workspace)
    for _ in range(3):
        _get(WRONG, remote="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.3")

    assert _get(WRONG, remote="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    # Another client behind the same proxy is not affected.
    ok = _get(f"Bearer {secret}", remote="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.10")
    assert ok.status_code == 200


def test_a_forwarded_header_from_an_untrusted_address_is_ignored(books, settings):
    settings.WELL_API_AUTH_FAILURE_RATE = "3/min"
    settings.WELL_TRUSTED_PROXIES = ["10.0.0.0/8"]
    # A client rotating a forged X-Forwarded-For is still counted by its own address.
    for n in range(3):
        _get(WRONG, remote="198.51.100.20", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")

    assert _get(WRONG, remote="198.51.100.20", HTTP_X_FORWARDED_FOR="1.2.3.4").status_code == 429


def test_a_key_created_to_expire_is_refused_after_its_expiry_with_a_clear_message(books):
    out, err = StringIO(), StringIO()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        call_command(
            "create_api_key",
            books.workspace.slug,
            "--expires-in-days",
            "30",
            stdout=out,
            stderr=err,
        )
        secret = out.getvalue().strip()
        key = ApiKey.objects.get(workspace=books.workspace)
        assert key.expires_at == timezone.now() + timedelta(days=30)
        assert "expiring" in err.getvalue()
        assert _get(f"Bearer {secret}").status_code == 200

        clock.shift(timedelta(days=30, seconds=1))
        expired = _get(f"Bearer {secret}")

    assert expired.status_code == 401
    assert "expired on" in expired.json()["error"]["detail"]


def test_keys_without_expiry_never_expire_and_the_command_refuses_nonsense(books):
    call_command("create_api_key", books.workspace.slug, stdout=StringIO(), stderr=StringIO())
    assert ApiKey.objects.get(workspace=books.workspace).expires_at is None
    with pytest.raises(CommandError):
        call_command("create_api_key", books.workspace.slug, "--expires-in-days", "0")


def test_the_api_creates_a_key_with_an_expiry_and_shows_it(books, client_for):
    client = client_for(books.workspace, scopes=["admin"])
    when = (timezone.now() + timedelta(days=7)).isoformat()

    created = client.post(
        "/api/v1/api-keys/", {"name": "ci", "scopes": ["read"], "expires_at": when}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["expires_at"] is not None
    past = (timezone.now() - timedelta(days=1)).isoformat()
    refused = client.post(
        "/api/v1/api-keys/", {"name": "old", "scopes": ["read"], "expires_at": past}, format="json"
    )
    assert refused.status_code == 400
    assert "expires_at" in refused.json()["error"]["fields"]
