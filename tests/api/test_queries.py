"""Every list answers in a fixed number of queries, whatever the number of rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connectors.models import SyncRun
from connectors.qonto.models import Posting
from matching.models import VendorRule
from matching.services import record_propose
from review.models import Decision
from well.audit import Actor, audit_event_record
from well.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/records/",
    "/api/v1/decisions/",
    "/api/v1/vendor-rules/",
    "/api/v1/connections/",
    "/api/v1/sync-runs/",
    "/api/v1/postings/",
    "/api/v1/audit-events/",
    "/api/v1/webhooks/",
    "/api/v1/api-keys/",
]


def _rows(books, n: int, start: int) -> None:
    for i in range(start, start + n):
        bill = books.bill(amount=f"{100 + i}.00", day="2025-01-10")
        books.invoice(amount_text=f"{100 + i}.00", day="2025-01-10")
        record_propose(record=bill)
        Decision.objects.create(
            workspace=books.workspace,
            record=bill,
            kind="approve",
            actor_type="system",
            actor_label="tests",
            state_before="in_review",
            state_after="approved",
        )
        Posting.objects.create(
            workspace=books.workspace,
            record=bill,
            source_version=str(i),
            action="upload",
            idempotency_key=f"q-{books.workspace.pk}-{i}",
        )
        VendorRule.objects.create(workspace=books.workspace, vendor_qbo_id=f"v{i}")
        SyncRun.objects.create(workspace=books.workspace, connection=books.qbo)
        audit_event_record(workspace=books.workspace, actor=Actor.system("t"), verb="x")
        endpoint = WebhookEndpoint.objects.create(
            workspace=books.workspace, url=f"https://p.example/{i}"
        )
        WebhookDelivery.objects.create(
            workspace=books.workspace, endpoint=endpoint, event="sync.failed"
        )


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.content)
    return len(captured)


def test_no_list_s_query_count_grows_with_its_rows(books, client_for, make_key):
    client = client_for(books.workspace)
    client.get("/api/v1/records/")  # the key's last-used time is written once, not per call
    _rows(books, 3, 0)
    few = {url: _queries(client, url) for url in LISTS}
    _rows(books, 27, 3)
    many = {url: _queries(client, url) for url in LISTS}
    assert many == few
    assert few["/api/v1/records/"] <= 3  # the key, the page, the current proposals


def test_a_record_s_detail_has_a_fixed_number_of_queries(books, client_for):
    client = client_for(books.workspace)
    bill = books.bill()
    for i in range(8):
        books.invoice(amount_text="120.00", day=f"2025-01-{10 + i % 3:02d}")
    record_propose(record=bill)
    client.get(f"/api/v1/records/{bill.pk}/")
    # Six for the record and its proposal, three for the decision service's answer (who holds
    # the proposed entry, and what approving it means in Qonto): none grows with candidates.
    assert _queries(client, f"/api/v1/records/{bill.pk}/") <= 9
