from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

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
    env = _newcomer_env(tmp_path)
    ports = ["--port", "0", "--quickbooks-port", "0", "--qonto-port", "0"]

    demo = _manage(env, "demo", "--once", *ports, "--bills", "30")
    key = _manage(env, "create_api_key", "demo", "--scopes", "read,decide")

    assert demo.returncode == 0, demo.stderr[-3000:]
    counts = json.loads(demo.stdout.strip().splitlines()[-1])
    assert counts["posted"] > 0 and counts["failed"] == 0 and counts["qonto_duplicates"] == 0
    assert (tmp_path / "well.sqlite3").exists()
    assert key.returncode == 0, key.stderr[-3000:]
    assert key.stdout.strip().startswith("well_")


def _newcomer_env(data_dir: Path) -> dict:
    """A newcomer's shell: no DATABASE_URL, the data folder the default one (here a tmp dir)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "WELL_DATA_DIR", "DJANGO_SETTINGS_MODULE")
    }
    env.update(WELL_DATA_DIR=str(data_dir), LOG_LEVEL="WARNING")
    return env


def _api_url_seen(env: dict) -> str:
    shell = _manage(
        env, "shell", "-c", "from django.conf import settings; print(settings.QUICKBOOKS_API_URL)"
    )
    assert shell.returncode == 0, shell.stderr[-3000:]
    return shell.stdout.strip().splitlines()[-1]  # after "N objects imported automatically"


def test_a_command_on_a_serving_demos_data_calls_its_sandboxes(tmp_path):
    """`python manage.py sync demo` in another terminal reaches the demo's sandboxes, never the
    real QuickBooks with a sandbox's tokens; once the demo is gone, nothing is redirected."""
    env = _newcomer_env(tmp_path)
    note = tmp_path / "sandbox" / "running-demo.json"
    note.parent.mkdir()
    urls = {"site": "http://127.0.0.1:8000", "quickbooks": "http://127.0.0.1:8765"}
    urls["qonto"] = "http://127.0.0.1:8766"

    note.write_text(json.dumps({"pid": os.getpid(), "urls": urls}))  # this process is alive
    serving = _api_url_seen(env)
    note.write_text(json.dumps({"pid": 2**22 + 1, "urls": urls}))  # above Linux's pid_max
    killed = _api_url_seen(env)
    note.write_text(json.dumps({"pid": os.getpid(), "urls": urls}))
    other_database = _api_url_seen({**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})

    assert serving == "http://127.0.0.1:8765"
    assert killed == other_database == "https://quickbooks.api.intuit.com"


def test_a_second_demo_on_a_port_in_use_says_so_before_touching_anything(tmp_path, settings):
    settings.DATA_DIR = tmp_path
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]

        with pytest.raises(CommandError, match=f"Already in use on 127.0.0.1: {port}"):
            call_command("demo", once=True, port=port, quickbooks_port=0, qonto_port=0)

    assert not any(tmp_path.iterdir())


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
