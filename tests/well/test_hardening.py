from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from well.encryption import master_key_generate

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    inherited = {"SECRET_KEY", "WELL_MASTER_KEYS", "DJANGO_ALLOW_ASYNC_UNSAFE", "DEBUG"}
    clean = {k: v for k, v in os.environ.items() if k not in inherited}
    clean.update(DJANGO_SETTINGS_MODULE="well.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-enough-0123456789abcdef",
    "ALLOWED_HOSTS": "well.example",
}


def test_the_deploy_check_passes_with_production_settings():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        WELL_MASTER_KEYS=master_key_generate(),
        **PRODUCTION,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "WELL_MASTER_KEYS"])
def test_production_refuses_to_start_without_its_secrets(missing):
    env = {**PRODUCTION, "WELL_MASTER_KEYS": master_key_generate()}
    del env[missing]

    result = _manage("check", **env)

    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


def test_production_refuses_the_development_master_key():
    result = _manage(
        "check", WELL_MASTER_KEYS="dev:d2VsbC1kZXZlbG9wbWVudC1tYXN0ZXIta2V5LTAwMDE", **PRODUCTION
    )

    assert result.returncode != 0


def test_a_malformed_setting_stops_the_start():
    result = _manage("check", DEBUG="maybe")

    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_and_a_request_id(client):
    response = client.get("/accounts/login/")

    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert len(response["X-Request-ID"]) >= 8


@pytest.mark.django_db
def test_healthz_reports_the_database(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_json_logging_writes_one_json_object_per_line():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, logging; django.setup(); logging.getLogger('well').warning('hello')",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "well.settings", "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    import json

    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello" and line["levelname"] == "WARNING"
