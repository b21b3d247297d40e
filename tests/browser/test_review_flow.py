"""The review workflow in a real browser, against the live site and both sandboxes over HTTP:
sign in, dashboard, queue by keyboard, pin an alternative, approve, watch it post to Qonto,
find every step in the timeline; a refused record pinned by hand; thresholds and what-if."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import pytest
import requests

from connectors.models import Connection, Provider
from connectors.qonto.models import Posting, PostingState
from connectors.qonto.posting import postings_send
from connectors.qonto.sync import qonto_sync
from connectors.quickbooks.models import RecordState, SourceRecord
from connectors.quickbooks.sync import quickbooks_sync
from matching.models import Candidate
from review.models import Decision, DecisionKind
from sandbox.demo import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DemoUrls,
    demo_connect,
    demo_settings_apply,
    demo_tenant_ensure,
)
from sandbox.runner import start_sandboxes
from well.audit import Actor
from well.models import AuditEvent, Workspace
from well.services import workspace_thresholds_update

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The seeded world's dates follow the moment it is built for, and which records the engine
# sends to review follows its dates: the walk below needs the same books whatever day it runs
# (built for today, some days no record in review has a runner-up left free to pin).
WORLD_NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(live_server, tmp_path, settings):
    """The demo workspace connected to fresh sandboxes, synced once (nothing decided yet)."""
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    settings.MEDIA_ROOT = tmp_path / "media"
    workspace = demo_tenant_ensure()
    # Every record of that fixed world is read on the first sync, however long ago it is.
    settings.SYNC_BACKFILL_DAYS = (datetime.now(UTC) - WORLD_NOW).days + 400
    qbo, qonto = start_sandboxes(bills=200, data_dir=tmp_path / "sandbox", now=WORLD_NOW)
    urls = DemoUrls(site=live_server.url, quickbooks=qbo.base_url, qonto=qonto.base_url)
    saved = {name: getattr(settings, name, None) for name in ("SITE_URL",)}
    demo_settings_apply(urls)
    try:
        demo_connect(workspace=workspace, site=urls.site)
        connections = {c.provider: c for c in Connection.objects.for_workspace(workspace)}
        qonto_sync(connection_id=connections[Provider.QONTO].pk, trigger="test")
        # The seeded books are mostly easy for the engine: stricter thresholds than the default
        # 85%/55% give the queue and the refused list something to show a person.
        workspace_thresholds_update(
            workspace=workspace,
            auto_threshold=0.95,
            review_threshold=0.9,
            actor=Actor.system("tests"),
        )
        quickbooks_sync(connection_id=connections[Provider.QUICKBOOKS].pk, trigger="test")
        yield workspace, urls
    finally:
        for name, value in saved.items():
            setattr(settings, name, value)
        qbo.stop()
        qonto.stop()


def sign_in(page, site):
    page.goto(f"{site}/")
    page.fill("input[name=login]", DEMO_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/w/demo/")


def qonto_invoices(urls) -> int:
    return requests.get(f"{urls.qonto}/_sandbox/state", timeout=30).json()["supplier_invoices"]


def pinnable_record(workspace, *, exclude) -> str:
    """A record in review whose runner-up is a Qonto entry no posting has taken."""
    taken = Posting.objects.exclude(state=PostingState.FAILED).values("qonto_id")
    runner_up = (
        Candidate.objects.filter(
            proposal__is_current=True,
            proposal__record__workspace=workspace,
            proposal__record__state=RecordState.IN_REVIEW,
            rank=2,
            target__isnull=False,
        )
        .exclude(proposal__record_id=exclude)
        .exclude(target__qonto_id__in=taken)
        .order_by("proposal__record_id")
        .first()
    )
    assert runner_up is not None, "no record in review with a free runner-up"
    return str(runner_up.proposal.record_id)


def test_an_accountant_reviews_pins_approves_and_follows_it_to_qonto(world, page, screenshot):
    workspace, urls = world
    site = urls.site
    postings_send()  # what auto-approved posts first, so Qonto's count below is ours
    before = qonto_invoices(urls)
    in_review = SourceRecord.objects.filter(workspace=workspace, state=RecordState.IN_REVIEW)
    assert in_review.count() >= 2

    sign_in(page, site)
    assert page.locator("h1").inner_text() == "Demo company"
    assert page.locator(".stat").count() == 6 and page.locator("svg.chart").count() == 3
    screenshot("review-dashboard")

    # The queue, by keyboard: j selects, a approves in place (htmx), j/o open the next one.
    page.click("nav.mainnav >> text=Review")
    page.wait_for_url(f"{site}/w/demo/queue/")
    rows = page.locator("table.queue tbody tr[data-record]")
    assert rows.count() == in_review.count()
    screenshot("review-queue")
    first = rows.nth(0).get_attribute("data-record")
    page.keyboard.press("k")  # the first row is selected on load; k stays on it
    assert page.locator("tr.selected").get_attribute("data-record") == first
    page.keyboard.press("a")
    page.wait_for_selector(f"tr#row-{first}.done")
    assert "approved" in page.locator(f"tr#row-{first}").inner_text()
    approved = SourceRecord.objects.get(pk=first)
    assert Decision.objects.get(record=approved).kind == DecisionKind.APPROVE

    page.keyboard.press("j")
    second = page.locator("tr.selected").get_attribute("data-record")
    assert second != first
    page.keyboard.press("o")
    page.wait_for_url(f"{site}/w/demo/records/{second}/")
    screenshot("review-record")

    # Pin the runner-up instead of the proposal (key 2 presses its button), on a record whose
    # runner-up no other record has taken since it was proposed (Well refuses those).
    second = pinnable_record(workspace, exclude=first)
    page.goto(f"{site}/w/demo/records/{second}/")
    alternative = page.locator('[data-candidate="2"] button[data-action="pin-2"]')
    assert alternative.count() == 1
    page.keyboard.press("2")
    page.wait_for_selector(".messages li.success")
    assert "pinned to the Qonto" in page.locator(".messages").inner_text()
    pinned = SourceRecord.objects.get(pk=second)
    assert Decision.objects.get(record=pinned).kind == DecisionKind.PIN

    # The worker posts; the page shows what Qonto answered.
    postings_send()
    qonto_sync(
        connection_id=Connection.objects.get(workspace=workspace, provider=Provider.QONTO).pk,
        trigger="t",
    )
    for pk in (first, second):
        assert SourceRecord.objects.get(pk=pk).state == RecordState.POSTED
    assert qonto_invoices(urls) >= before
    page.goto(f"{site}/w/demo/records/{first}/")
    assert page.locator("#record-state").inner_text() == "Posted"
    assert page.locator("a", has_text="open in Qonto").count() >= 1
    timeline = page.locator("#timeline").inner_text()
    steps = ("pulled from QuickBooks", "proposed:", "Approved", "Being posted", "Posted to Qonto")
    for step in steps:
        assert step in timeline, step
    screenshot("review-record-posted")
    page.goto(f"{site}/w/demo/records/{second}/")
    timeline = page.locator("#timeline").inner_text()
    for step in ("proposed:", "Pinned to another Qonto entry", "Being posted", "Posted to Qonto"):
        assert step in timeline, step
    for pk in (first, second):
        verbs = set(AuditEvent.objects.filter(object_id=str(pk)).values_list("verb", flat=True))
        assert {"record.proposed", "record.posting", "record.posted"} <= verbs

    # The audit log and its export.
    page.goto(f"{site}/w/demo/audit/?verb=record.")
    assert page.locator("table.audit tbody tr").count() > 3
    screenshot("review-audit")


def test_a_refused_record_is_pinned_by_hand_and_posted(world, page, screenshot):
    workspace, urls = world
    site = urls.site
    refused = SourceRecord.objects.filter(workspace=workspace, state=RecordState.REFUSED)
    assert refused.exists()
    sign_in(page, site)
    page.goto(f"{site}/w/demo/refused/")
    screenshot("review-refused")
    # A row and a candidate of it that no other record holds.
    taken = set(
        Posting.objects.exclude(state=PostingState.FAILED)
        .exclude(qonto_id="")
        .values_list("qonto_id", flat=True)
    )
    for row in page.locator("tbody tr[data-record]").all():
        pk = row.get_attribute("data-record")
        free = [
            c.target
            for c in Candidate.objects.filter(
                proposal__record_id=pk, proposal__is_current=True, target__isnull=False
            ).select_related("target")
            if c.target.qonto_id not in taken
        ]
        if free:
            break
    # The refused list sends to the record page's picker; a search by Qonto ID finds the entry.
    row.locator("a", has_text="Choose the Qonto entry").click()
    page.wait_for_selector("#entry-picker")
    page.fill("#entry-q", free[0].qonto_id)
    # The search swaps the results in place: choosing before its answer lands would choose in
    # the list it replaces (the entry may be on the first page already).
    with page.expect_response(lambda response: "entry_q=" in response.url):
        page.click("#entry-search")
    choice = page.locator(f"#entry-picker input[name=entry][value='{free[0].pk}']")
    choice.wait_for()
    assert page.locator("#entry-picker input[name=entry]:checked").count() == 0
    page.wait_for_function("() => !document.querySelector('#entry-picker .htmx-settling')")
    choice.check()
    assert choice.is_checked()
    page.click("#pin-entry")
    page.wait_for_selector(".messages li.success", timeout=90_000)  # a shared machine is slow
    assert Decision.objects.get(record_id=pk).kind == DecisionKind.PIN
    postings_send()
    assert SourceRecord.objects.get(pk=pk).state == RecordState.POSTED
    page.goto(f"{site}/w/demo/records/{pk}/")
    assert "Pinned to another Qonto entry" in page.locator("#timeline").inner_text()


def test_a_threshold_change_and_its_whatif_chart(world, page, screenshot):
    workspace, urls = world
    site = urls.site
    sign_in(page, site)
    page.goto(f"{site}/w/demo/settings/")
    page.fill("#id_review_threshold", "0.5")
    page.fill("#id_auto_threshold", "0.8")
    page.click("#thresholds button[type=submit]")
    page.wait_for_selector(".messages li.success")
    assert "Thresholds saved" in page.locator(".messages").inner_text()
    workspace = Workspace.objects.get(pk=workspace.pk)
    assert (workspace.review_threshold, workspace.auto_threshold) == (0.5, 0.8)

    page.fill("#id_threshold", "0.7")
    page.click("#whatif button[type=submit]")
    page.wait_for_url(re.compile(r".*threshold=0\.7.*"))
    chart = page.locator("#whatif svg.chart")
    assert chart.count() == 1
    assert "70% (tried)" in page.locator("#whatif table").inner_text()
    assert "80% (now)" in page.locator("#whatif table").inner_text()
    screenshot("review-settings-whatif")


def test_a_failed_posting_is_retried_from_the_record_page_and_reaches_qonto(
    world, page, screenshot
):
    from connectors.qonto.models import Posting, PostingState
    from connectors.qonto.posting_states import posting_claim, posting_finish
    from review.services import record_approve
    from well.audit import Actor

    workspace, urls = world
    site = urls.site
    postings_send()  # what auto-approved posts first
    record = SourceRecord.objects.filter(workspace=workspace, state=RecordState.IN_REVIEW).first()
    record_approve(record=record, actor=Actor.system("tests"), membership=None, note="")
    # Qonto refuses it, as the worker records a refusal (claim, then finish as failed).
    [claimed] = posting_claim(limit=10, workspace_ids=[workspace.pk])
    posting_finish(
        posting=claimed,
        state=PostingState.FAILED,
        message="Qonto refused it: the invoice could not be read (test)",
        error_code="invalid_attachment",
    )
    assert SourceRecord.objects.get(pk=record.pk).state == RecordState.FAILED
    before = qonto_invoices(urls)

    sign_in(page, site)
    page.goto(f"{site}/w/demo/records/{record.pk}/")
    assert "could not be read" in page.locator("aside.record-side").inner_text()
    retry = page.locator('button[data-action="retry"]')
    assert retry.count() == 1
    screenshot("review-record-failed-posting")
    retry.click()
    page.wait_for_selector(".messages li.success")
    assert "sent to Qonto again" in page.locator(".messages").inner_text()
    assert page.locator('button[data-action="retry"]').count() == 0
    assert Posting.objects.get(pk=claimed.pk).state == PostingState.READY

    postings_send()  # the worker sends it again, under the same idempotency key
    assert SourceRecord.objects.get(pk=record.pk).state == RecordState.POSTED
    sent = Posting.objects.get(pk=claimed.pk)
    assert sent.state == PostingState.DONE and sent.idempotency_key == claimed.idempotency_key
    # An upload creates one supplier invoice in Qonto; a link creates none.
    assert qonto_invoices(urls) == before + (1 if sent.action == "upload" else 0)
    page.goto(f"{site}/w/demo/records/{record.pk}/")
    assert page.locator("#record-state").inner_text() == "Posted"
    timeline = page.locator("#timeline").inner_text()
    for step in ("Posting failed", "Posting retried", "Posted to Qonto"):
        assert step in timeline, step
