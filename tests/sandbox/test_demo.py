from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from sandbox.demo import DemoUrls, demo_settings_apply

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_run(settings, tmp_path, capsys, provider_settings_restored):
    settings.DATA_DIR = tmp_path

    def run() -> dict:
        call_command("demo", once=True, port=0, quickbooks_port=0, qonto_port=0, bills=40)
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    return run


def test_the_demo_connects_syncs_and_posts_and_a_second_run_posts_nothing_new(demo_run):
    first = demo_run()
    second = demo_run()

    assert first["pulled"] > 40
    assert first["posted"] > 0 and first["failed"] == 0
    assert first["qonto_duplicates"] == 0
    assert second["qonto_supplier_invoices"] == first["qonto_supplier_invoices"]
    assert second["posted"] == first["posted"] and second["qonto_duplicates"] == 0


def test_demo_settings_point_every_provider_url_at_the_sandboxes(provider_settings_restored):
    demo_settings_apply(DemoUrls(site="http://s", quickbooks="http://q", qonto="http://o"))

    for name in provider_settings_restored:
        value = getattr(django_settings, name)
        if name.endswith("_URL") and name != "QONTO_APP_URL":
            assert value.startswith(("http://q", "http://o", "http://s")), name


def test_make_demo_runs_on_sqlite_as_a_newcomer_would_start_it(tmp_path):
    """The demo's own database is SQLite (no configuration); this guards that path."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "well.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'well.sqlite3'}",
        "WELL_DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    ports = ["--port", "0", "--quickbooks-port", "0", "--qonto-port", "0"]
    result = subprocess.run(
        [sys.executable, "manage.py", "demo", "--once", *ports, "--bills", "30"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["posted"] > 0 and counts["failed"] == 0 and counts["qonto_duplicates"] == 0
