"""End-to-end sync tests over real HTTP against the QuickBooks sandbox on 127.0.0.1."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.db import connection as db_connection
from django.utils import timezone

from connectors import handoff
from connectors.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from connectors.quickbooks import attachments as attachments_module
from connectors.quickbooks import sync as sync_module
from connectors.quickbooks.client import parse_qbo_time, qbo_time
from connectors.quickbooks.models import SourceFile, SourceRecord
from connectors.quickbooks.sync import quickbooks_sync
from well.http import ProviderError
from well.models import AuditEvent

pytestmark = pytest.mark.django_db

NINE_KINDS = {
    "Vendor",
    "Customer",
    "Bill",
    "VendorCredit",
    "CreditMemo",
    "Invoice",
    "Payment",
    "BillPayment",
    "Attachable",
    "PurchaseOrder",
    "Purchase",
    "Account",
    "TaxCode",
    "TaxRate",
    "CompanyInfo",
    "Preferences",
}


def sync(connection, **kwargs):
    kwargs.setdefault("sleep", lambda s: None)
    return quickbooks_sync(connection_id=connection.pk, **kwargs)


def pulled_events(connection) -> int:
    """How many first arrivals the audit trail records (one event per committed batch)."""
    events = AuditEvent.objects.filter(
        workspace_id=connection.workspace_id, verb="records.pulled"
    ).values_list("after", flat=True)
    return sum(after["count"] for after in events)


def rows(connection, entity=None):
    qs = SourceRecord.objects.filter(workspace_id=connection.workspace_id)
    return qs.filter(entity_type=entity) if entity else qs


def test_the_first_sync_brings_every_kind_with_its_fields(connected, qbo, qbo_world):
    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    held = qbo.control("state")["records"]
    for entity in NINE_KINDS:
        assert rows(connected, entity).count() == held[entity], entity

    bill = rows(connected, "Bill").exclude(errored=True).first()
    payload = bill.payload
    assert bill.total_amount == Decimal(str(payload["TotalAmt"]))
    assert bill.currency == payload["CurrencyRef"]["value"]
    assert bill.issue_date.isoformat() == payload["TxnDate"]
    assert bill.invoice_number == payload.get("DocNumber", "")
    assert bill.vendor_qbo_id == payload["VendorRef"]["value"]
    assert bill.last_updated_at is not None and bill.last_updated_at.tzinfo is not None
    vendor = rows(connected, "Vendor").get(qbo_id=bill.vendor_qbo_id)
    assert vendor.supplier_name == vendor.payload["DisplayName"]
    purchase = rows(connected, "Purchase").exclude(errored=True).first()
    assert purchase.total_amount == Decimal(str(purchase.payload["TotalAmt"]))
    assert purchase.label == purchase.payload.get("PrivateNote", "")

    files = SourceFile.objects.filter(workspace_id=connected.workspace_id, error="")
    assert files.exists()
    stored = files.first()
    with stored.file.open("rb") as handle:
        assert handle.read(5) == b"%PDF-"
    assert not rows(connected).filter(errored=True).exists()
    connected.refresh_from_db()
    assert connected.sync_marker == run.marker_after != ""
    assert connected.external_name
    assert all(r.state == "pulled" for r in rows(connected, "Bill"))


def test_a_no_change_poll_makes_one_call_and_moves_nothing(connected, qbo):
    sync(connected)
    qbo.control("stats", {"reset": True})
    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED
    assert qbo.stats()["total"] <= 2
    assert run.api_calls <= 2
    assert run.total("new") == run.total("updated") == 0


def _poll_queries(connected) -> tuple[SyncRun, list[str]]:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(db_connection) as captured:
        run = sync(connected)
    return run, [q["sql"] for q in captured.captured_queries]


def test_a_no_change_poll_reads_little_and_does_not_grow_with_the_overlap(connected, qbo):
    """Unchanged records in the CDC overlap cost one narrow read per kind, no transaction."""
    sync(connected)
    few_run, few = _poll_queries(connected)
    qbo.mutate(action="add", entity="Vendor", count=40)
    qbo.mutate(action="add", entity="Customer", count=40)
    sync(connected)
    many_run, many = _poll_queries(connected)

    assert many_run.status == SyncStatus.SUCCEEDED, many_run.error
    before = few_run.counts.get("Vendor", {}).get("unchanged", 0)
    assert many_run.counts["Vendor"]["unchanged"] >= before + 40
    assert many_run.total("new") == many_run.total("updated") == 0
    kinds = [k for k, c in many_run.counts.items() if k != "Attachable" and sum(c.values())]
    assert len(many) <= len(few) + len(kinds)  # at most one narrow read per kind, never per row
    assert not any('"payload"' in sql for sql in many if "connectors_sourcerecord" in sql)
    writes = [sql for sql in many if sql.startswith(("INSERT", "UPDATE", "DELETE"))]
    # The run row, then the marker and the run's result in one transaction: nothing else.
    assert len(writes) == 3, writes
    assert not any("auditevent" in sql.lower() for sql in writes)


def test_an_edited_bill_updates_its_one_row_with_an_audit_event(connected, qbo):
    sync(connected)
    bill = rows(connected, "Bill").first()
    qbo.mutate(action="edit", entity="Bill", id=bill.qbo_id, set={"TotalAmt": 4321.5})
    run = sync(connected)
    assert run.counts["Bill"]["updated"] == 1
    assert rows(connected, "Bill").filter(qbo_id=bill.qbo_id).count() == 1
    bill.refresh_from_db()
    assert bill.total_amount == Decimal("4321.5")
    assert int(bill.sync_token) >= 1
    event = AuditEvent.objects.get(
        workspace_id=connected.workspace_id, verb="record.updated", object_id=str(bill.pk)
    )
    assert Decimal(str(event.after["total_amount"])) == Decimal("4321.5")
    assert event.before["sync_token"] != event.after["sync_token"]


def test_a_deleted_bill_is_marked_deleted_and_kept(connected, qbo):
    sync(connected)
    bill = rows(connected, "Bill").first()
    qbo.mutate(action="delete", entity="Bill", id=bill.qbo_id)
    run = sync(connected)
    assert run.counts["Bill"]["deleted"] == 1
    bill.refresh_from_db()
    assert bill.deleted
    assert AuditEvent.objects.filter(verb="record.deleted", object_id=str(bill.pk)).exists()


def test_a_malformed_record_is_errored_and_the_sync_goes_on(connected, qbo):
    sync(connected)
    bill, other = rows(connected, "Bill")[:2]
    qbo.mutate(action="edit", entity="Bill", id=bill.qbo_id, set={"CurrencyRef": {"value": "ZZZ"}})
    qbo.mutate(action="edit", entity="Bill", id=other.qbo_id, set={"DocNumber": "OK-1"})
    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED
    bill.refresh_from_db()
    other.refresh_from_db()
    assert bill.errored and "ISO 4217" in bill.error_reason
    assert other.invoice_number == "OK-1" and not other.errored
    assert run.counts["Bill"]["errored"] == 1


def test_a_crash_mid_window_loses_and_doubles_nothing(connected, qbo, monkeypatch):
    original = sync_module._Engine.commit
    calls = {"n": 0}

    def flaky(self, entity, records):
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("worker killed")
        return original(self, entity, records)

    monkeypatch.setattr(sync_module._Engine, "commit", flaky)
    with pytest.raises(RuntimeError):
        sync(connected)
    connected.refresh_from_db()
    assert connected.sync_marker == ""  # the marker did not move
    failed = SyncRun.objects.get(connection=connected)
    assert failed.status == SyncStatus.FAILED
    partial = rows(connected).count()
    assert partial > 0

    monkeypatch.setattr(sync_module._Engine, "commit", original)
    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED
    held = qbo.control("state")["records"]
    for entity in NINE_KINDS:
        assert rows(connected, entity).count() == held[entity], entity
    assert run.total("new") == rows(connected).count() - partial
    assert pulled_events(connected) == rows(connected).count()  # each record pulled once


def test_an_incremental_crash_repeats_the_window(connected, qbo, monkeypatch):
    sync(connected)
    connected.refresh_from_db()
    marker = connected.sync_marker
    added = qbo.mutate(action="add", entity="Bill", count=3)["ids"]

    def boom(self, *, full):
        raise RuntimeError("killed before commit")

    monkeypatch.setattr(sync_module._Engine, "sync", boom)
    with pytest.raises(RuntimeError):
        sync(connected)
    connected.refresh_from_db()
    assert connected.sync_marker == marker
    monkeypatch.undo()
    run = sync(connected)
    assert run.counts["Bill"]["new"] == 3
    assert set(added) <= set(rows(connected, "Bill").values_list("qbo_id", flat=True))


def test_429_with_retry_after_is_honoured(connected, qbo):
    sync(connected)
    qbo.mutate(action="add", entity="Bill", count=1)
    qbo.faults(queue=["429"], retry_after_seconds=7)
    slept: list[float] = []
    run = sync(connected, sleep=slept.append)
    assert run.status == SyncStatus.SUCCEEDED
    assert 7.0 in slept
    assert run.counts["Bill"]["new"] == 1


def test_quickbooks_only_ever_sees_reads(connected, qbo):
    sync(connected)
    qbo.mutate(action="add", entity="Bill", count=2)
    sync(connected)
    sync(connected, full=True)
    requests_seen = qbo.stats()["requests"]
    assert requests_seen
    for request in requests_seen:
        path, method = request["path"], request["method"]
        if not path.startswith("/v3/"):
            continue  # OAuth and pre-signed file links
        assert method == "GET" or (method == "POST" and path.endswith("/query")), request


def test_attachments_from_a_host_outside_the_allow_list_are_refused(connected, qbo, settings):
    settings.QUICKBOOKS_DOWNLOAD_HOSTS = [".intuit.com"]
    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED
    refused = SourceFile.objects.filter(workspace_id=connected.workspace_id).exclude(error="")
    assert refused.exists()
    assert not SourceFile.objects.filter(workspace_id=connected.workspace_id, error="").exists()
    assert "not a known QuickBooks download host" in refused.first().error
    assert not refused.first().retryable


def test_oversized_attachments_are_refused(connected, qbo, monkeypatch):
    monkeypatch.setattr(attachments_module, "MAX_BYTES", 500)
    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED
    refused = SourceFile.objects.filter(workspace_id=connected.workspace_id).exclude(error="")
    assert refused.exists()
    assert "larger than" in refused.first().error or "more than" in refused.first().error


def test_a_new_attachment_on_a_posted_bill_is_reported_not_reposted(connected, qbo):
    from connectors.qonto.models import Posting, PostingAction, PostingState

    sync(connected)
    files = SourceFile.objects.filter(
        workspace_id=connected.workspace_id, error="", record__entity_type="Bill"
    ).select_related("record", "attachable")
    posted_file, unposted_file = files[0], files.exclude(record=files[0].record)[0]
    posted = posted_file.record
    Posting.objects.create(
        workspace_id=connected.workspace_id,
        record=posted,
        source_version=posted.sync_token,
        action=PostingAction.UPLOAD,
        idempotency_key="test-posted-bill",
        state=PostingState.DONE,
        qonto_id="inv-1",
    )
    for changed in (posted_file, unposted_file):
        qbo.control(
            "mutate",
            {"action": "edit", "entity": "Attachable", "id": changed.attachable.qbo_id},
        )

    run = sync(connected)

    assert run.status == SyncStatus.SUCCEEDED
    reports = AuditEvent.objects.filter(
        workspace_id=connected.workspace_id, verb="record.attachment_after_posting"
    )
    assert list(reports.values_list("object_id", flat=True)) == [str(posted.pk)]
    assert "after Well posted this record" in reports.get().reason
    assert Posting.objects.filter(record=posted).count() == 1


def test_a_run_left_running_by_a_dead_worker_is_closed_by_the_next_sync(connected, qbo):
    dead = SyncRun.objects.create(workspace_id=connected.workspace_id, connection=connected)
    assert dead.status == SyncStatus.RUNNING

    run = sync(connected)

    dead.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED
    assert dead.status == SyncStatus.FAILED and dead.finished_at is not None
    assert "worker stopped" in dead.error
    assert AuditEvent.objects.filter(
        workspace_id=connected.workspace_id, verb="sync.abandoned"
    ).exists()


def test_metadata_and_private_addresses_are_never_fetched(connected, qbo, settings):
    settings.QUICKBOOKS_DOWNLOAD_HOSTS = ["169.254.169.254", "10.0.0.1", "127.0.0.1"]
    settings.WELL_ALLOW_LOOPBACK_DOWNLOADS = False
    connection = Connection.objects.get(pk=connected.pk)
    api = sync_module.api_for(connection)
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x.pdf",
        "file:///etc/passwd",
        "http://127.0.0.1:1/x.pdf",
    ):
        attachable = SourceRecord(qbo_id="1", payload={"TempDownloadUri": url})
        outcome = attachments_module._download(api, attachable)
        assert outcome[0] == "error", url
        assert outcome[2] is False, url


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_syncs_process_each_record_once(connected, qbo):
    qbo.faults(latency_ms=30)
    results: list = []

    def worker():
        try:
            results.append(sync(Connection.objects.get(pk=connected.pk)))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results)
    assert statuses == [SyncStatus.SKIPPED, SyncStatus.SUCCEEDED]
    total = rows(connected).count()
    assert sum(r.total("new") for r in results) == total
    assert pulled_events(connected) == total


def test_a_sync_of_a_connection_that_needs_reconnect_makes_no_call(connected, qbo):
    Connection.objects.filter(pk=connected.pk).update(status=ConnectionStatus.NEEDS_RECONNECT)
    qbo.control("stats", {"reset": True})
    run = sync(connected)
    assert run.status == SyncStatus.SKIPPED
    assert qbo.stats()["total"] == 0


def test_a_marker_older_than_thirty_days_falls_back_to_a_query_resync(connected, qbo):
    sync(connected)
    before = rows(connected).count()
    Connection.objects.filter(pk=connected.pk).update(sync_marker="2020-01-01T00:00:00-08:00")
    qbo.control("stats", {"reset": True})
    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert "GET cdc" not in qbo.stats()["calls"]
    assert rows(connected).count() == before  # no duplicates
    assert run.total("new") == 0


def test_a_marker_quickbooks_finds_too_old_for_cdc_falls_back_to_a_query_resync(connected, qbo):
    """Our clock says 28 days, QuickBooks' says 31: its 400 turns the window into a query."""
    sync(connected)
    bill = rows(connected, "Bill").first()
    qbo.mutate(action="edit", entity="Bill", id=bill.qbo_id, set={"DocNumber": "AFTER-GAP"})
    before = rows(connected).count()
    Connection.objects.filter(pk=connected.pk).update(
        sync_marker=qbo_time(timezone.now() - timedelta(days=28))
    )
    qbo.control("clock", {"advance": 3 * 24 * 3600})
    qbo.control("stats", {"reset": True})

    run = sync(connected)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    calls = qbo.stats()["calls"]
    # A 401 (the clock jump expired the access token), then the refusal, never retried.
    assert calls.get("GET cdc") == 2 and calls.get("POST token") == 1, calls
    assert any("query" in name for name in calls), calls
    assert run.progress["mode"] == "query_resync"
    bill.refresh_from_db()
    assert bill.invoice_number == "AFTER-GAP"
    assert run.counts["Bill"]["updated"] == 1
    assert rows(connected).count() == before and run.total("new") == 0
    connected.refresh_from_db()
    assert connected.sync_marker == run.marker_after
    assert parse_qbo_time(run.marker_after) > timezone.now() + timedelta(days=2)  # QBO's time
    qbo.control("stats", {"reset": True})
    assert sync(connected).progress["mode"] == "cdc"  # the next poll is back to CDC
    assert qbo.stats()["calls"].get("GET cdc") == 1


def test_a_marker_just_inside_the_window_still_uses_cdc(connected, qbo):
    sync(connected)
    Connection.objects.filter(pk=connected.pk).update(
        sync_marker=qbo_time(timezone.now() - timedelta(days=20))
    )
    qbo.control("stats", {"reset": True})
    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.progress["mode"] == "cdc"
    assert qbo.api_calls() == {"GET cdc": 1}


CDC_URL = "https://qbo.test/v3/company/123/cdc"


def _fault_400(detail: str) -> dict:
    return {
        "Fault": {
            "Error": [{"Message": "Invalid date", "Detail": detail, "code": "2000"}],
            "type": "ValidationFault",
        },
        "time": "2026-03-01T10:00:00.000-08:00",
    }


@pytest.fixture
def offline_api():
    from connectors.quickbooks import client

    return client.QuickBooksApi(
        base_url="https://qbo.test",
        realm_id="123",
        token=lambda rejected: "token",
        sleep=lambda s: None,
        limiter=None,
    )


@responses.activate
def test_cdc_names_a_changed_since_beyond_the_look_back(offline_api):
    from connectors.quickbooks import client

    responses.get(
        CDC_URL, json=_fault_400("changedSince must be within the last 30 days"), status=400
    )
    with pytest.raises(client.CdcWindowExpired) as caught:
        client.cdc(offline_api, entities=["Bill"], changed_since=timezone.now() - timedelta(days=2))
    assert caught.value.permanent
    assert len(responses.calls) == 1


@responses.activate
def test_cdc_treats_an_unworded_400_on_an_old_date_as_beyond_the_look_back(offline_api):
    from connectors.quickbooks import client

    responses.get(
        CDC_URL, json=_fault_400("Request has invalid or unsupported property"), status=400
    )
    with pytest.raises(client.CdcWindowExpired):
        client.cdc(
            offline_api, entities=["Bill"], changed_since=timezone.now() - timedelta(days=29)
        )


@responses.activate
def test_other_cdc_validation_faults_stay_ordinary_errors(offline_api):
    from connectors.quickbooks import client
    from well.http import PermanentError

    responses.get(CDC_URL, json=_fault_400("changedSince is not a valid date/time: x"), status=400)
    with pytest.raises(PermanentError) as caught:
        client.cdc(
            offline_api, entities=["Bill"], changed_since=timezone.now() - timedelta(days=29)
        )
    assert not isinstance(caught.value, client.CdcWindowExpired)
    responses.get(CDC_URL, json=_fault_400("Unsupported entity"), status=400)
    with pytest.raises(PermanentError) as caught:
        client.cdc(offline_api, entities=["Bill"], changed_since=timezone.now() - timedelta(days=1))
    assert not isinstance(caught.value, client.CdcWindowExpired)


def test_the_engine_resyncs_by_query_when_cdc_refuses_the_window(connected, qbo):
    """The engine's side of the same answer, with the CDC refusal served by `responses`."""

    sync(connected)
    Connection.objects.filter(pk=connected.pk).update(
        sync_marker=qbo_time(timezone.now() - timedelta(days=10))
    )
    cdc_url = f"{qbo.base_url}/v3/company/{connected.external_id}/cdc"
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        mocked.add_passthru(qbo.base_url)
        mocked.get(
            cdc_url, json=_fault_400("changedSince must be within the last 30 days"), status=400
        )
        run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.progress["mode"] == "query_resync"
    assert run.total("new") == 0


def pulled_ids(connection, entity) -> Counter:
    """Every first arrival of one kind in the audit trail, by QuickBooks Id."""
    events = AuditEvent.objects.filter(
        workspace_id=connection.workspace_id,
        verb="records.pulled",
        object_type="quickbooks." + entity.lower(),
    ).values_list("after", flat=True)
    return Counter(qbo_id for after in events for qbo_id in after["qbo_ids"])


def test_a_window_of_more_than_1000_changes_brings_each_once_with_its_deletes(connected, qbo):
    sync(connected)
    connected.refresh_from_db()
    marker_before = parse_qbo_time(connected.sync_marker)
    live = list(rows(connected, "Bill").values_list("qbo_id", flat=True))
    added = qbo.mutate(action="add", entity="Bill", count=1200)["ids"]
    # Changed after the 1200 new bills: past the 1000 objects a capped CDC answer holds.
    qbo.mutate(action="delete", entity="Bill", id=live[0])
    qbo.mutate(action="edit", entity="Bill", id=live[1], set={"DocNumber": "LATE-1"})
    qbo.control("stats", {"reset": True})

    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    calls = qbo.stats()["calls"]
    assert sum(n for name, n in calls.items() if "cdc" in name) >= 2, calls  # capped, per kind
    assert run.counts["Bill"]["new"] == 1200
    assert run.counts["Bill"]["updated"] == 1
    assert run.counts["Bill"]["deleted"] == 1
    bills = rows(connected, "Bill")
    assert bills.count() == len(live) + 1200
    assert set(added) <= set(bills.values_list("qbo_id", flat=True))
    arrivals = pulled_ids(connected, "Bill")
    assert all(arrivals[qbo_id] == 1 for qbo_id in added)
    assert max(arrivals.values()) == 1  # nothing doubled, first sync included
    assert bills.get(qbo_id=live[0]).deleted
    assert bills.get(qbo_id=live[1]).invoice_number == "LATE-1"
    assert bills.filter(deleted=True).count() == 1

    connected.refresh_from_db()
    marker = parse_qbo_time(connected.sync_marker)
    assert connected.sync_marker == run.marker_after
    newest = max(bills.values_list("last_updated_at", flat=True))
    # Stamps have whole seconds: the burst may share the old marker's second (the overlap
    # absorbs that); the new marker covers the newest committed change and no more than now.
    assert marker_before < marker
    assert newest <= marker <= parse_qbo_time(qbo.control("state")["now"])

    events = AuditEvent.objects.filter(workspace_id=connected.workspace_id).count()
    again = sync(connected)
    assert again.status == SyncStatus.SUCCEEDED
    assert again.total("new") == again.total("updated") == again.total("deleted") == 0
    assert again.total("errored") == 0
    assert AuditEvent.objects.filter(workspace_id=connected.workspace_id).count() == events
    assert rows(connected, "Bill").count() == len(live) + 1200
    # Within the 5-minute overlap the window is still capped (re-read, nothing written); once
    # the marker has passed the burst, a poll is back to its single CDC call.
    qbo.control("clock", {"advance": 10 * 60})
    sync(connected)
    assert sync(connected).api_calls <= 2


@pytest.mark.parametrize("how", ["past_the_cdc_window", "full"])
def test_a_query_resync_marks_bills_deleted_in_quickbooks_meanwhile(
    connected, qbo, monkeypatch, django_capture_on_commit_callbacks, how
):
    sync(connected)
    bill, edited = rows(connected, "Bill")[:2]
    qbo.mutate(action="delete", entity="Bill", id=bill.qbo_id)
    qbo.mutate(action="edit", entity="Bill", id=edited.qbo_id, set={"DocNumber": "KEPT-1"})
    before = {r.pk: r.sync_token for r in rows(connected).exclude(pk__in=[bill.pk, edited.pk])}
    handed: list = []
    monkeypatch.setattr(handoff, "records_changed", handed.extend)
    if how == "full":
        qbo.control("stats", {"reset": True})
        with django_capture_on_commit_callbacks(execute=True):
            run = sync(connected, full=True)
    else:
        # The engine judges CDC's 30-day reach by its own clock: the marker is made 31 days old.
        stale = qbo_time(timezone.now() - timedelta(days=31))
        Connection.objects.filter(pk=connected.pk).update(sync_marker=stale)
        qbo.control("stats", {"reset": True})
        with django_capture_on_commit_callbacks(execute=True):
            run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert not any("cdc" in name for name in qbo.stats()["calls"])  # a query resync
    assert run.counts["Bill"]["deleted"] == 1
    assert run.total("deleted") == 1
    bill.refresh_from_db()
    edited.refresh_from_db()
    assert bill.deleted and not edited.deleted
    assert edited.invoice_number == "KEPT-1"
    event = AuditEvent.objects.get(verb="record.deleted", object_id=str(bill.pk))
    assert event.before == {"deleted": False} and event.after["deleted"] is True
    assert "full re-read" in event.reason
    assert bill.pk in [r.pk for r in handed if r.deleted]
    untouched = rows(connected).filter(pk__in=before)
    assert not untouched.filter(deleted=True).exists()
    assert {r.pk: r.sync_token for r in untouched} == before


def test_a_failed_full_resync_marks_nothing_deleted(connected, qbo, monkeypatch):
    sync(connected)
    bill = rows(connected, "Bill").first()
    qbo.mutate(action="delete", entity="Bill", id=bill.qbo_id)
    original = sync_module.client.query_pages

    def failing(api, entity, **kwargs):
        if entity == "Attachable" and not kwargs.get("post"):
            raise ProviderError("QuickBooks is unavailable")
        return original(api, entity, **kwargs)

    monkeypatch.setattr(sync_module.client, "query_pages", failing)
    run = sync(connected, full=True)
    assert run.status == SyncStatus.FAILED
    bill.refresh_from_db()
    assert not bill.deleted
    assert not rows(connected).filter(deleted=True).exists()

    monkeypatch.undo()
    run = sync(connected, full=True)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    bill.refresh_from_db()
    assert bill.deleted
    assert rows(connected).filter(deleted=True).count() == 1
