"""Benchmark the Qonto outbox: N postings sent to the sandbox over real HTTP.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/well .venv/bin/python -m benchmarks.bench_post

Creates N approved bills and their postings in a throwaway `well_bench_post` database, then runs
the worker until the outbox is empty. The Qonto sandbox runs in its own process, so its CPU and
memory are not counted. Documents are small distinct PDFs made in memory: rendering (about
0.17 s each) and the sandboxed validation (about 0.35 s each) are measured by tests/connectors/
test_pdf.py, not here. Prints one JSON line: bulk requests (target ceil(N/20)), read-back
requests, wall time, postings per second, peak RSS growth of the worker, duplicates in Qonto.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import re
import resource
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret"

SANDBOX = """
import sys, time
from sandbox.qonto import QontoSandbox
from sandbox.server import serve_in_thread
app = QontoSandbox(client_id=sys.argv[1], client_secret=sys.argv[2], analysis_delay_seconds=0)
app.limits.update(per_10s=100000, per_10min=1000000)
server = serve_in_thread(app, port=int(sys.argv[3]))
print("QONTO", server.base_url, flush=True)
while True:
    time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_sandbox() -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    process = subprocess.Popen(
        [sys.executable, "-c", SANDBOX, CLIENT_ID, CLIENT_SECRET, str(_free_port())],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"QONTO (\S+)", line)
    if not found:
        raise RuntimeError(f"the sandbox did not start: {line!r}")
    return process, found.group(1)


# Django and Well's modules are imported inside the functions, after `_setup_django` has set
# the settings this script runs with (its own database); the rest is imported at the top.
def _setup_django(base: str) -> None:
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/well")
    os.environ["DJANGO_SETTINGS_MODULE"] = "well.settings"
    import django

    django.setup()
    from django.conf import settings

    settings.QONTO_CLIENT_ID = CLIENT_ID
    settings.QONTO_CLIENT_SECRET = CLIENT_SECRET
    settings.QONTO_AUTHORIZE_URL = f"{base}/oauth2/auth"
    settings.QONTO_TOKEN_URL = f"{base}/oauth2/token"
    settings.QONTO_REVOKE_URL = f"{base}/oauth2/revoke"
    settings.QONTO_API_URL = base
    settings.QONTO_STAGING_TOKEN = ""
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.DATABASES["default"]["TEST"].update(NAME="well_bench_post")
    logging.disable(logging.WARNING)


def _control(base: str, name: str, body: dict | None = None) -> dict:

    url = f"{base}/_sandbox/{name}"
    response = requests.post(url, json=body, timeout=120) if body else requests.get(url, timeout=60)
    response.raise_for_status()
    return response.json()


def _connect(base: str):
    from django.contrib.auth import get_user_model

    from connectors.qonto import services
    from well.audit import Actor
    from well.services import workspace_create

    owner = get_user_model().objects.create_user(username="bench", email="bench@x.example")
    workspace = workspace_create(name="Bench", actor=Actor.system("bench"), owner=owner)
    url, pending = services.qonto_authorization_begin(workspace=workspace, user=owner)
    page = requests.get(url, timeout=30)
    challenge = re.search(r'name="challenge" value="(\w+)"', page.text).group(1)
    answer = requests.post(
        f"{base}/oauth2/auth",
        data={"challenge": challenge, "decision": "allow"},
        allow_redirects=False,
        timeout=30,
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    return services.qonto_authorization_complete(
        pending=pending, user=owner, state=query["state"], code=query["code"]
    ).connection


def _records(connection, count: int) -> None:

    from connectors.models import Connection, Provider
    from connectors.qonto.outbox import posting_enqueue
    from connectors.quickbooks.models import SourceRecord
    from well.audit import Actor

    qbo = Connection.objects.create(
        workspace_id=connection.workspace_id, provider=Provider.QUICKBOOKS, external_id="1"
    )
    rows = [
        SourceRecord(
            workspace_id=connection.workspace_id,
            connection=qbo,
            entity_type="Bill",
            qbo_id=str(i),
            sync_token="0",
            total_amount=Decimal("100.00") + i,
            currency="EUR",
            supplier_name=f"Supplier {i % 500}",
            invoice_number=f"B-{i}",
            state="approved",
        )
        for i in range(1, count + 1)
    ]
    SourceRecord.objects.bulk_create(rows, batch_size=1000)
    actor = Actor.system("bench")
    for record in SourceRecord.objects.filter(connection=qbo).iterator(chunk_size=1000):
        posting_enqueue(record=record, action="upload", actor=actor)


TEMPLATE = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _document(posting):
    """A small PDF unique to the posting (see the module docstring for why not rendered)."""

    from connectors.qonto.posting import Document, document_name

    content = TEMPLATE + f"% {posting.idempotency_key}\n".encode() + b"0" * 20_000
    name = document_name(posting, posting.record)
    return Document(name, content, "application/pdf", hashlib.sha256(content).hexdigest())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=10_000)
    args = parser.parse_args(argv)
    process, base = _start_sandbox()
    try:
        _setup_django(base)
        from django.db import connection as db

        db.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            result = _run(base, args.postings)
        finally:
            db.creation.destroy_test_db("well_bench_post", verbosity=0)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(json.dumps(result))


def _run(base: str, count: int) -> dict:
    from connectors.qonto.models import Posting
    from connectors.qonto.posting import postings_send
    from connectors.qonto.sync import qonto_sync

    connection = _connect(base)
    # Postings wait for Qonto's first read, as in production (the read is not timed).
    qonto_sync(connection_id=connection.pk, trigger="bench")
    started = time.perf_counter()
    _records(connection, count)
    enqueue_seconds = time.perf_counter() - started
    _control(base, "stats")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    report = postings_send(documents=_document)
    seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    state = _control(base, "state")
    calls = _control(base, "stats")["calls"]
    done = Posting.objects.filter(state="done").count()
    return {
        "postings": count,
        "done": done,
        "failed": Posting.objects.filter(state="failed").count(),
        "bulk_requests": calls.get("POST /v2/supplier_invoices/bulk", 0),
        "bulk_target": math.ceil(count / 20),
        "read_back_requests": calls.get("GET /v2/supplier_invoices", 0),
        "worker_requests": report.requests,
        "qonto_invoices_created": state["created_by_upload"],
        "qonto_duplicates": state["duplicates"],
        "enqueue_seconds": round(enqueue_seconds, 1),
        "send_seconds": round(seconds, 1),
        "postings_per_second": round(done / seconds, 1),
        "peak_rss_mb_before_send": round(rss_before / 1024, 1),
        "peak_rss_mb_after_send": round(rss_after / 1024, 1),
    }


if __name__ == "__main__":
    main()
