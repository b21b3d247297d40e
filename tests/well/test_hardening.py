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


# --- Issue 19: production defaults -----------------------------------------------------------


@pytest.mark.parametrize("backend", ["console", "dummy", "locmem", "filebased"])
def test_production_refuses_to_start_with_a_mail_backend_that_delivers_nothing(backend):
    result = _manage(
        "check",
        WELL_MASTER_KEYS=master_key_generate(),
        EMAIL_BACKEND=f"django.core.mail.backends.{backend}.EmailBackend",
        **PRODUCTION,
    )

    assert result.returncode != 0
    assert "writes password-reset links to the logs" in result.stderr


def test_the_console_mail_backend_allowed_explicitly_starts_but_fails_the_deploy_check():
    env = {
        **PRODUCTION,
        "WELL_MASTER_KEYS": master_key_generate(),
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "WELL_ALLOW_CONSOLE_EMAIL": "true",
    }

    assert _manage("check", **env).returncode == 0
    deploy = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert deploy.returncode != 0
    assert "well.W001" in deploy.stdout + deploy.stderr


def test_production_delivers_mail_over_smtp_by_default():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.EMAIL_BACKEND)",
        WELL_MASTER_KEYS=master_key_generate(),
        **PRODUCTION,
    )

    assert result.stdout.strip().splitlines()[-1] == "django.core.mail.backends.smtp.EmailBackend"


@pytest.mark.parametrize(
    "entry",
    [
        "prod:d2VsbC1kZXZlbG9wbWVudC1tYXN0ZXIta2V5LTAwMDE",
        "mk2026:d2VsbC1kZXZlbG9wbWVudC1tYXN0ZXIta2V5LTAwMDE=",
    ],
)
def test_production_refuses_the_development_master_key_by_its_bytes_under_any_id(entry):
    result = _manage("check", WELL_MASTER_KEYS=f"{master_key_generate()},{entry}", **PRODUCTION)

    assert result.returncode != 0
    assert "development master key" in result.stderr


def test_production_forms_may_post_only_to_well_and_the_providers_consent_pages():
    result = _manage(
        "shell",
        "-c",
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.CONTENT_SECURITY_POLICY['DIRECTIVES'], default=str))",
        WELL_MASTER_KEYS=master_key_generate(),
        **PRODUCTION,
    )

    import json

    directives = json.loads(result.stdout.strip().splitlines()[-1])
    assert directives["form-action"] == [
        "'self'",
        "https://appcenter.intuit.com",
        "https://oauth.qonto.com",
    ]
    assert directives["base-uri"] == ["'none'"]


@pytest.mark.django_db
def test_each_page_gets_its_own_nonce_in_the_policy_and_on_its_scripts(books, in_review):
    import re

    from django.test import Client

    record = in_review(books)
    client = Client()
    client.force_login(books.owner)
    url = f"/w/{books.workspace.slug}/records/{record.pk}/"
    nonces = []
    for _ in range(2):
        response = client.get(url)
        policy = response["Content-Security-Policy"]
        assert "'nonce'" not in policy
        assert "base-uri 'none'" in policy
        nonce = re.search(r"script-src [^;]*'nonce-([A-Za-z0-9+/=_-]+)'", policy).group(1)
        assert f'nonce="{nonce}"' in response.content.decode()
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
