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

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "Makefile"

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
    assert first["qonto_without_supplier"] == 0
    assert second["qonto_supplier_invoices"] == first["qonto_supplier_invoices"]
    assert second["posted"] == first["posted"] and second["qonto_duplicates"] == 0


def test_demo_settings_point_every_provider_url_at_the_sandboxes(provider_settings_restored):
    demo_settings_apply(DemoUrls(site="http://s", quickbooks="http://q", qonto="http://o"))

    for name in provider_settings_restored:
        value = getattr(django_settings, name)
        if name.endswith("_URL") and name != "QONTO_APP_URL":
            assert value.startswith(("http://q", "http://o", "http://s")), name


def test_make_demo_runs_without_configuration_and_the_readmes_commands_read_its_data(tmp_path):
    """`make demo` sets nothing: the demo and every plain `python manage.py` command share the
    default data folder (its SQLite database), so the README's next command finds the demo."""
    recipe = MAKEFILE.read_text().split("\ndemo: install\n", 1)[1].split("\n\n", 1)[0]
    assert recipe.strip() == "$(PY) manage.py demo"
    # A newcomer's shell: no DATABASE_URL; the data folder is the default one (here a tmp dir).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "WELL_DATA_DIR", "DJANGO_SETTINGS_MODULE")
    }
    env.update(WELL_DATA_DIR=str(tmp_path), LOG_LEVEL="WARNING")
    ports = ["--port", "0", "--quickbooks-port", "0", "--qonto-port", "0"]

    demo = _manage(env, "demo", "--once", *ports, "--bills", "30")
    key = _manage(env, "create_api_key", "demo", "--scopes", "read,decide")

    assert demo.returncode == 0, demo.stderr[-3000:]
    counts = json.loads(demo.stdout.strip().splitlines()[-1])
    assert counts["posted"] > 0 and counts["failed"] == 0 and counts["qonto_duplicates"] == 0
    assert (tmp_path / "well.sqlite3").exists()
    assert key.returncode == 0, key.stderr[-3000:]
    assert key.stdout.strip().startswith("well_")


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
