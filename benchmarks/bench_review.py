"""Server time of the review queue and the record page with 50,000 records queued.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/well .venv/bin/python -m benchmarks.bench_review

Fills a throwaway `well_bench_review` database (50,000 Bills in review, each with its current
proposal, three ranked candidates and an audit event, plus 50,000 Qonto entries), then times
GET requests through Django's test client (the full middleware stack: session, CSRF, CSP,
membership lookup, template) and prints p50/p95/max per page as one JSON line.
"""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal

RECORDS = int(os.environ.get("BENCH_RECORDS", "50000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "200"))
BATCH = 5000


# Django and Well's modules are imported inside the functions, after `_setup_django` has set
# the settings this script runs with (its own database); the rest is imported at the top.
def _setup_django() -> None:
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/well")
    os.environ["DJANGO_SETTINGS_MODULE"] = "well.settings"
    import django

    django.setup()
    from django.conf import settings

    settings.DATABASES["default"]["TEST"].update(NAME="well_bench_review")
    settings.ALLOWED_HOSTS = ["*"]
    # As in production (DEBUG off): compiled templates are cached, not re-read per request.
    templates = settings.TEMPLATES[0]
    templates["APP_DIRS"] = False
    templates["OPTIONS"]["debug"] = False
    templates["OPTIONS"]["loaders"] = [
        (
            "django.template.loaders.cached.Loader",
            [
                "django.template.loaders.filesystem.Loader",
                "django.template.loaders.app_directories.Loader",
            ],
        )
    ]
    logging.disable(logging.WARNING)


def _fill(count: int):

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from connectors.models import Connection, Provider
    from connectors.qonto.models import QontoEntry
    from connectors.quickbooks.models import SourceRecord
    from matching.models import Candidate, Proposal
    from well.audit import Actor
    from well.models import AuditEvent
    from well.services import workspace_create

    owner = get_user_model().objects.create_user(username="bench", email="bench@x.example")
    workspace = workspace_create(name="Bench", actor=Actor.system("bench"), owner=owner)
    qbo = Connection.objects.create(workspace=workspace, provider=Provider.QUICKBOOKS)
    qonto = Connection.objects.create(workspace=workspace, provider=Provider.QONTO)
    rng = random.Random(7)
    vendors = [f"Vendor {i:04d} SAS" for i in range(800)]
    start = date(2025, 1, 1)
    now = timezone.now()
    for offset in range(0, count, BATCH):
        n = min(BATCH, count - offset)
        records, entries = [], []
        for i in range(offset, offset + n):
            vendor = rng.choice(vendors)
            amount = Decimal(rng.randint(500, 900000)) / 100
            day = start + timedelta(days=rng.randint(0, 400))
            records.append(
                SourceRecord(
                    workspace=workspace,
                    connection=qbo,
                    entity_type=rng.choice(["Bill", "Bill", "Purchase"]),
                    qbo_id=str(10000 + i),
                    sync_token="0",
                    state="in_review",
                    total_amount=amount,
                    currency="EUR",
                    issue_date=day,
                    invoice_number=f"INV-{i:06d}",
                    supplier_name=vendor,
                    vendor_qbo_id=str(vendors.index(vendor)),
                    payload={"Id": str(10000 + i), "TotalAmt": str(amount)},
                    payload_hash=f"{i:064x}",
                )
            )
            entries.append(
                QontoEntry(
                    workspace=workspace,
                    connection=qonto,
                    kind="supplier_invoice",
                    qonto_id=f"q-{i}",
                    amount=amount,
                    currency="EUR",
                    date=day,
                    counterparty=vendor,
                    invoice_number=f"INV-{i:06d}",
                )
            )
        SourceRecord.objects.bulk_create(records, batch_size=1000)
        QontoEntry.objects.bulk_create(entries, batch_size=1000)
        proposals = []
        for record, entry in zip(records, entries, strict=True):
            confidence = rng.uniform(0.55, 0.849)
            proposals.append(
                Proposal(
                    workspace=workspace,
                    record=record,
                    record_version="0",
                    action="link",
                    target=entry,
                    confidence=confidence,
                    band="review",
                    auto_threshold=0.85,
                    review_threshold=0.55,
                    reasons=[
                        {"signal": "amount", "weight": 2.38, "detail": "same amount"},
                        {"signal": "date", "weight": 0.85, "detail": "1 day later"},
                        {
                            "signal": "gate",
                            "weight": 0,
                            "detail": f"not auto-posted: confidence {confidence:.2f} is below 0.85",
                        },
                    ],
                    counterparty={"legal_entity": record.supplier_name, "provenance": {}},
                    vendor_id=record.vendor_qbo_id,
                    created_at=now,
                )
            )
        Proposal.objects.bulk_create(proposals, batch_size=1000)
        candidates, events = [], []
        for proposal, entry in zip(proposals, entries, strict=True):
            for rank, (action, target, conf) in enumerate(
                [
                    ("link", entry, proposal.confidence),
                    ("create", None, 0.1),
                    ("link", entry, 0.01),
                ],
                start=1,
            ):
                candidates.append(
                    Candidate(
                        workspace=workspace,
                        proposal=proposal,
                        rank=rank,
                        action=action,
                        target=target,
                        confidence=conf,
                        reasons=proposal.reasons,
                        signals={"amount": {"level": "exact", "weight": 2.38}},
                    )
                )
            events.append(
                AuditEvent(
                    workspace=workspace,
                    actor_type="system",
                    actor_label="matching",
                    verb="record.proposed",
                    object_type="quickbooks.bill",
                    object_id=str(proposal.record_id),
                    after={"confidence": proposal.confidence, "band": "review"},
                )
            )
        Candidate.objects.bulk_create(candidates, batch_size=2000)
        AuditEvent.objects.bulk_create(events, batch_size=2000)
    from django.db import connection

    with connection.cursor() as cursor:
        # What autovacuum does after a load this size (the insert threshold): statistics, the
        # visibility map, and the trigram indexes' pending lists merged (GIN fastupdate).
        cursor.execute("VACUUM ANALYZE")
    return workspace, owner


def _time(client, url: str, rounds: int) -> dict:
    samples = []
    for _ in range(5):
        client.get(url)  # warm caches and connection
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
        "max_ms": round(samples[-1], 1),
    }


def main() -> int:
    _setup_django()
    from django.db import connection as db
    from django.test import Client

    db.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        began = time.perf_counter()
        workspace, owner = _fill(RECORDS)
        fill_s = round(time.perf_counter() - began, 1)
        from connectors.quickbooks.models import SourceRecord

        client = Client()
        client.force_login(owner)
        base = f"/w/{workspace.slug}"
        some = list(
            SourceRecord.objects.filter(workspace=workspace)
            .order_by("?")
            .values_list("pk", flat=True)[:20]
        )
        results = {
            "queue": _time(client, f"{base}/queue/", ROUNDS),
            "queue_by_amount_page_40": _time(client, f"{base}/queue/?sort=-amount&page=40", ROUNDS),
            "queue_search_vendor": _time(client, f"{base}/queue/?q=Vendor+0042", ROUNDS),
        }
        record_samples = []
        for pk in some:
            record_samples.append(_time(client, f"{base}/records/{pk}/", max(ROUNDS // 20, 5)))
        results["record"] = {
            "p50_ms": round(statistics.median(r["p50_ms"] for r in record_samples), 1),
            "p95_ms": max(r["p95_ms"] for r in record_samples),
            "max_ms": max(r["max_ms"] for r in record_samples),
        }
        print(
            json.dumps(
                {
                    "bench": "review",
                    "records_in_review": RECORDS,
                    "fill_seconds": fill_s,
                    "rounds": ROUNDS,
                    "target_p95_ms": 100,
                    **results,
                }
            )
        )
    finally:
        db.close()
        db.creation.destroy_test_db("well_bench_review", verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
