"""Benchmark the QuickBooks sync against the sandbox over real HTTP.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/well .venv/bin/python -m benchmarks.bench_sync

A first sync of 10,000 bills with their PDFs and 500 vendors (wall time, records per second
including PostgreSQL writes, QuickBooks calls, peak memory), then an hourly poll with nothing
new (calls, time). The sandbox runs in its own process so its CPU and memory are not ours; the
database is a throwaway `well_bench` created and dropped here. Prints one JSON line.
Targets: >= 300 records/s, <= 300 MB, no-change poll <= 2 calls and <= 300 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_sandbox(bills: int) -> tuple[subprocess.Popen, str]:
    """`manage.py sandbox` in a child process; returns it and the QuickBooks base URL."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DJANGO_SETTINGS_MODULE"] = "well.settings"
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sandbox",
            "--bills",
            str(bills),
            "--quickbooks-port",
            str(_free_port()),
            "--qonto-port",
            str(_free_port()),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox exited before announcing its URL")
        found = re.search(r"QuickBooks sandbox: (\S+)", line)
        if found:
            return process, found.group(1)
    raise RuntimeError("the sandbox did not start in time")


# Django and Well's modules are imported inside the functions, after `_setup_django` has set
# the settings this script runs with (its own database); the rest is imported at the top.
def _setup_django(base: str, media: str) -> None:
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/well")
    os.environ["DJANGO_SETTINGS_MODULE"] = "well.settings"
    import django

    django.setup()
    from django.conf import settings

    from sandbox.runner import sandbox_credentials

    client_id, client_secret = sandbox_credentials()
    settings.QUICKBOOKS_CLIENT_ID = client_id
    settings.QUICKBOOKS_CLIENT_SECRET = client_secret
    settings.QUICKBOOKS_AUTHORIZE_URL = f"{base}/connect/oauth2"
    settings.QUICKBOOKS_TOKEN_URL = f"{base}/oauth2/v1/tokens/bearer"
    settings.QUICKBOOKS_REVOKE_URL = f"{base}/v2/oauth2/tokens/revoke"
    settings.QUICKBOOKS_API_URL = base
    settings.QUICKBOOKS_DOWNLOAD_HOSTS = ["127.0.0.1"]
    settings.WELL_ALLOW_LOOPBACK_DOWNLOADS = True
    settings.MEDIA_ROOT = media
    settings.SITE_URL = "http://127.0.0.1:8000"
    # The seeded world spans several years: backfill all of it so every bill is pulled.
    settings.SYNC_BACKFILL_DAYS = 3650
    settings.DATABASES["default"]["TEST"].update(NAME="well_bench")
    logging.getLogger("well").setLevel(logging.WARNING)
    logging.disable(logging.INFO)


def _connect(base: str):
    """Consent in the sandbox, exchange the code, store the grant through the service."""

    from connectors.oauth import new_state
    from connectors.quickbooks import oauth, services
    from well.audit import Actor
    from well.services import workspace_create

    workspace = workspace_create(name="Bench", actor=Actor.system("bench"), slug="bench")
    state = new_state()
    url = oauth.authorization_url(state=state, redirect_uri=services.OAUTH.redirect_uri())
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    answer = requests.post(
        f"{base}/connect/oauth2",
        data={**params, "decision": "allow"},
        allow_redirects=False,
        timeout=30,
    )
    callback = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    assert callback["state"] == state
    tokens = oauth.code_exchange(code=callback["code"], redirect_uri=params["redirect_uri"])
    return services.quickbooks_connection_complete(
        workspace=workspace, realm_id=callback["realmId"], tokens=tokens, actor=Actor.system()
    )


def _control(base: str, name: str, body: dict | None = None) -> dict:

    url = f"{base}/_sandbox/{name}"
    response = (
        requests.post(url, json=body, timeout=120)
        if body is not None
        else requests.get(url, timeout=30)
    )
    response.raise_for_status()
    return response.json()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=10_000)
    parser.add_argument("--vendors", type=int, default=500)
    parser.add_argument(
        "--with-matching",
        action="store_true",
        help="Also run the hand-over to matching (by default the sync alone is measured).",
    )
    args = parser.parse_args(argv)

    process, base = _start_sandbox(args.bills)
    media = tempfile.mkdtemp(prefix="well-bench-media-")
    try:
        _setup_django(base, media)
        from django.db import connection

        connection.creation.create_test_db(
            verbosity=0, autoclobber=True, keepdb=False, serialize=False
        )
        if not args.with_matching:
            from connectors import handoff

            handoff.records_changed = lambda records: None
        try:
            held = _control(base, "state")["records"]
            missing = args.vendors - held.get("Vendor", 0)
            if missing > 0:
                _control(base, "mutate", {"action": "add", "entity": "Vendor", "count": missing})
            held = _control(base, "state")["records"]
            result = _run(base, held)
        finally:
            connection.creation.destroy_test_db("well_bench", verbosity=0)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(json.dumps(result))


def _run(base: str, held: dict) -> dict:
    from connectors.quickbooks.models import SourceFile, SourceRecord
    from connectors.quickbooks.sync import quickbooks_sync

    connection = _connect(base)
    _control(base, "stats", {"reset": True})
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    first = quickbooks_sync(connection_id=connection.pk, trigger="bench")
    seconds = time.perf_counter() - started
    first_stats = _control(base, "stats")
    api_calls = {
        key: value
        for key, value in first_stats["calls"].items()
        if not any(word in key for word in ("token", "file", "authorize", "revoke"))
    }
    records = sum(first.total(o) for o in ("new", "updated", "unchanged", "deleted", "errored"))
    stored = SourceRecord.objects.filter(connection=connection).count()
    files = SourceFile.objects.filter(workspace_id=connection.workspace_id, error="").count()

    # Five no-change polls in a row. Inside each, the CDC call (request, the sandbox's answer,
    # JSON parsing) is timed on its own, so Well's share (database, token, bookkeeping) is the
    # rest. The first poll is the one reported against the target; the median shows the spread.
    from connectors.quickbooks import client

    cdc_ms: list[float] = []
    real_cdc = client.cdc

    def timed_cdc(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real_cdc(*args, **kwargs)
        finally:
            cdc_ms.append((time.perf_counter() - started) * 1000)

    client.cdc = timed_cdc
    polls: list[dict] = []
    try:
        for _ in range(5):
            cdc_ms.clear()
            _control(base, "stats", {"reset": True})
            poll_started = time.perf_counter()
            poll = quickbooks_sync(connection_id=connection.pk, trigger="bench")
            poll_ms = (time.perf_counter() - poll_started) * 1000
            polls.append(
                {
                    "status": poll.status,
                    "calls": _control(base, "stats")["total"],
                    "new": poll.total("new"),
                    "unchanged_in_overlap": poll.total("unchanged"),
                    "ms": round(poll_ms, 1),
                    "cdc_ms": round(sum(cdc_ms), 1),
                    "well_ms": round(poll_ms - sum(cdc_ms), 1),
                }
            )
    finally:
        client.cdc = real_cdc
    median = sorted(polls, key=lambda p: p["ms"])[len(polls) // 2]
    return {
        "first_sync": {
            "status": first.status,
            "error": first.error[:300],
            "seconds": round(seconds, 2),
            "records_stored": stored,
            "records_processed": records,
            "records_per_second": round(stored / seconds, 1),
            "bills": SourceRecord.objects.filter(connection=connection, entity_type="Bill").count(),
            "vendors": SourceRecord.objects.filter(
                connection=connection, entity_type="Vendor"
            ).count(),
            "files_stored": files,
            "quickbooks_api_calls": sum(api_calls.values()),
            "quickbooks_calls_by_endpoint": api_calls,
            "file_downloads": sum(v for k, v in first_stats["calls"].items() if "file" in k),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_before_sync_mb": round(rss_before / 1024),
        },
        "no_change_poll": {
            **polls[0],
            "median_of_5": {k: median[k] for k in ("ms", "cdc_ms", "well_ms")},
            "all_ms": [p["ms"] for p in polls],
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sandbox_held": held,
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
