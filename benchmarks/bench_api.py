"""Benchmark the partner API's records list under load: gunicorn (2 workers) and wrk.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/well .venv/bin/python -m benchmarks.bench_api

Seeds a throwaway `well_bench_api` database (one workspace, 5,000 bills with current
proposals, a read key), starts gunicorn with two sync workers in production settings
(DEBUG off, persistent database connections) on 127.0.0.1, and drives
`GET /api/v1/records/` (50 rows a page) with Debian's `wrk` (apt-get install wrk) for a
bounded time. Falls back to nothing: without wrk it fails and says so. Prints one JSON line.
Target: >= 300 requests/s with p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "well_bench_api"

# wrk prints its own summary; this adds the percentiles we report, in microseconds.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Django and Well's modules are imported inside the functions, after `_setup_django` has set
# the settings this script runs with (its own database); the rest is imported at the top.
def _setup_django() -> None:
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/well")
    os.environ["DJANGO_SETTINGS_MODULE"] = "well.settings"
    import django

    django.setup()
    from django.conf import settings

    settings.DATABASES["default"]["TEST"].update(NAME=DB_NAME)
    logging.disable(logging.WARNING)


def _seed(records: int) -> str:
    """One workspace with `records` bills, each with a current proposal; returns a read key."""

    from connectors.models import Connection, ConnectionStatus, Provider
    from connectors.quickbooks.models import SourceRecord
    from matching.models import Proposal
    from well.api_auth import api_key_create
    from well.audit import Actor
    from well.services import workspace_create

    actor = Actor.system("bench")
    workspace = workspace_create(name="Bench", actor=actor)
    qbo = Connection.objects.create(
        workspace=workspace, provider=Provider.QUICKBOOKS, status=ConnectionStatus.CONNECTED
    )
    states = ["in_review", "refused", "posted", "auto_approved"]
    rows = [
        SourceRecord(
            workspace=workspace,
            connection=qbo,
            entity_type="Bill",
            qbo_id=str(i),
            sync_token="0",
            state=states[i % len(states)],
            total_amount=Decimal(100 + i % 900) + Decimal("0.25"),
            currency="EUR",
            issue_date=date(2025, 1, 1) + timedelta(days=i % 300),
            invoice_number=f"INV-{i:06d}",
            supplier_name=f"Supplier {i % 97}",
            vendor_qbo_id=str(i % 97),
            payload={"Id": str(i), "TotalAmt": 100 + i % 900},
        )
        for i in range(records)
    ]
    SourceRecord.objects.bulk_create(rows, batch_size=2000)
    Proposal.objects.bulk_create(
        [
            Proposal(
                workspace=workspace,
                record=row,
                action="create",
                confidence=(i % 100) / 100,
                band="review",
                auto_threshold=0.85,
                review_threshold=0.55,
            )
            for i, row in enumerate(rows)
        ],
        batch_size=2000,
    )
    _, secret = api_key_create(workspace=workspace, name="bench", scopes=["read"], actor=actor)
    from django.db import connection

    with connection.cursor() as cursor:  # what autovacuum would have done after the load
        cursor.execute("ANALYZE")
    return secret


def _gunicorn(port: int, database_url: str) -> subprocess.Popen:
    from well.encryption import master_key_generate

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "well.settings",
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "600",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + os.urandom(24).hex(),
        "WELL_MASTER_KEYS": master_key_generate(),
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "WELL_API_RATE": "10000000/min",  # the benchmark measures the API, not the throttle
        "WELL_DATA_DIR": tempfile.mkdtemp(prefix="well-bench-api-"),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "well.wsgi",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return process
        except requests.RequestException:
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError("gunicorn did not start")


def _wrk(url: str, secret: str, *, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-H",
            f"Authorization: Bearer {secret}",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    os.unlink(script.name)
    found = re.search(r"BENCH (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if not found:
        raise RuntimeError(f"wrk printed no summary: {out}")
    requests_done, duration_us, p50, p95, p99, errors = map(int, found.groups())
    return {
        "connections": connections,
        "requests": requests_done,
        "requests_per_second": round(requests_done / (duration_us / 1e6), 1),
        "p50_ms": round(p50 / 1000, 1),
        "p95_ms": round(p95 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    _setup_django()
    from django.db import connection as db

    base_url = os.environ["DATABASE_URL"]
    db.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        secret = _seed(args.records)
        db.close()
        port = _free_port()
        server = _gunicorn(port, re.sub(r"/[^/]*$", f"/{DB_NAME}", base_url))
        try:
            url = f"http://127.0.0.1:{port}/api/v1/records/"
            import requests

            first = requests.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=10)
            assert first.status_code == 200 and len(first.json()["results"]) == 50, first.text
            _wrk(url, secret, seconds=3, connections=args.connections)  # warm both workers
            result = _wrk(url, secret, seconds=args.seconds, connections=args.connections)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        db.creation.destroy_test_db(DB_NAME, verbosity=0)
    result.update(
        benchmark="api_records_list",
        records=args.records,
        page_size=50,
        workers=2,
        load_tool="wrk",
        target_met=result["requests_per_second"] >= 300 and result["p95_ms"] <= 50,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
