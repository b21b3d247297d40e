"""A new user, in headless Chromium, from sign-up through the three-step wizard to a finished
first sync, against both sandboxes over real HTTP (their OAuth consent pages included).

No worker runs in tests: where the worker would run the queued tasks, `worker_run_queued`
does, from django-q2's own queue, as the worker would.
"""

from __future__ import annotations

import os
import pydoc
import re

import pytest
import requests
from django_q.models import OrmQ

from connectors.models import BankAccountMapping, Connection, ConnectionStatus, Onboarding, Provider
from connectors.qonto.models import Posting, PostingState, QontoBankAccount
from connectors.quickbooks.models import SourceRecord
from sandbox.demo import DemoUrls, demo_settings_apply
from sandbox.runner import start_sandboxes
from well.models import AuditEvent, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "claire@brasserie.example"
PASSWORD = "a long and new password 42"


@pytest.fixture
def sandboxes(live_server, tmp_path, settings, monkeypatch):
    """Both sandboxes on 127.0.0.1; Well's provider settings point at them (restored after)."""
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    settings.MEDIA_ROOT = tmp_path / "media"
    qbo, qonto = start_sandboxes(bills=40, data_dir=tmp_path / "sandbox")
    urls = DemoUrls(site=live_server.url, quickbooks=qbo.base_url, qonto=qonto.base_url)
    monkeypatch.setattr("sandbox.demo.settings", settings)  # so the fixture restores them
    demo_settings_apply(urls)
    try:
        yield urls
    finally:
        qbo.stop()
        qonto.stop()


def worker_run_queued(max_rounds: int = 30) -> list[str]:
    """Run every queued django-q2 task (and what they queue) as the worker would."""
    ran = []
    for _ in range(max_rounds):
        queued = list(OrmQ.objects.order_by("id"))
        if not queued:
            return ran
        for row in queued:
            task = row.task
            row.delete()
            pydoc.locate(task["func"])(*task.get("args", ()), **task.get("kwargs", {}))
            ran.append(task["func"])
    raise AssertionError(f"the queue never emptied: {ran[-10:]}")


def verify_email_from_the_page(page) -> None:
    """Verification is mandatory; in development the link it mailed is shown on the page."""
    link = page.locator("#messages .verification-link").inner_text()
    page.goto(re.search(r"https?://\S+", link).group(0))
    page.click("form button[type=submit]")


def allow_on_consent_page(page, provider_base: str) -> None:
    page.wait_for_url(re.compile(re.escape(provider_base) + ".*"))
    page.click("button[name=decision][value=allow]")


def test_a_new_user_signs_up_and_sets_up_well_in_three_steps(sandboxes, page, screenshot):
    site = sandboxes.site

    # Sign up, then create the company's workspace.
    page.goto(f"{site}/accounts/signup/")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    screenshot("onboarding-0-sign-up")
    page.click("form button[type=submit]")
    verify_email_from_the_page(page)
    page.wait_for_url(f"{site}/")
    page.click("#new-workspace")
    page.fill("input[name=name]", "Brasserie Lumière")
    page.click("#create-workspace")
    page.wait_for_url(re.compile(r".*/onboarding/quickbooks/$"))
    workspace = Workspace.objects.get(name="Brasserie Lumière")
    slug = workspace.slug
    assert "never writes to QuickBooks" in page.inner_text("#step-quickbooks")
    screenshot("onboarding-1-quickbooks")

    # Step 1: Intuit's consent page (the sandbox's), Allow, back in the wizard at step 2.
    page.click("#connect-quickbooks")
    allow_on_consent_page(page, sandboxes.quickbooks)
    page.wait_for_url(f"{site}/w/{slug}/onboarding/mapping/")
    quickbooks = Connection.objects.get(workspace=workspace, provider=Provider.QUICKBOOKS)
    assert quickbooks.status == ConnectionStatus.CONNECTED
    assert page.locator("#discovering").count() == 1  # the first sync is queued, not run
    screenshot("onboarding-2a-discovering")

    # The worker runs the sync that connecting queued; the page fills in by itself (htmx).
    ran = worker_run_queued()
    assert "connectors.quickbooks.tasks.quickbooks_sync_task" in ran
    page.wait_for_selector("#mapping-form", timeout=20_000)
    banks = page.locator("#bank-accounts tbody tr[data-qbo-account]")
    assert banks.count() == 2
    assert "after Qonto is connected" in page.inner_text("#bank-accounts")
    assert page.locator("#ledger-accounts tbody tr").count() >= 3
    assert page.locator("#vendors tbody tr").count() >= 3
    assert "85% by default" in page.inner_text("#threshold")
    screenshot("onboarding-2b-mapping")
    page.click("#confirm-mapping")

    # Step 3: Qonto's scopes, its consent page, Allow.
    page.wait_for_url(f"{site}/w/{slug}/onboarding/qonto/")
    assert "supplier_invoice.write" in page.inner_text("#step-qonto")
    screenshot("onboarding-3-qonto")
    page.click("#connect-qonto")
    allow_on_consent_page(page, sandboxes.qonto)
    page.wait_for_url(f"{site}/w/{slug}/onboarding/sync/")
    assert Connection.objects.get(workspace=workspace, provider=Provider.QONTO).status == (
        ConnectionStatus.CONNECTED
    )

    # The first sync: started, followed live, finished.
    OrmQ.objects.all().delete()  # the read queued by connecting Qonto; the wizard queues its own
    page.click("#start-sync")
    page.wait_for_selector("#sync-progress[data-done=false]")
    assert "of" in page.inner_text("#proposals")
    screenshot("onboarding-4a-first-sync-running")
    ran = worker_run_queued()
    assert {
        "connectors.qonto.tasks.qonto_sync_task",
        "connectors.quickbooks.tasks.quickbooks_sync_task",
    } <= set(ran)
    page.wait_for_selector("#sync-progress[data-done=true]", timeout=20_000)
    summary = page.inner_text("#sync-progress")
    assert "The first sync is finished" in summary
    screenshot("onboarding-4b-first-sync-done")
    # The outbox may go on sending after the page was read: the page never says more than sent.
    shown = re.search(r"Postings sent to Qonto\s+(\d+) of (\d+)", summary)
    assert shown, summary
    posted = Posting.objects.filter(workspace=workspace, state=PostingState.DONE).count()
    assert 0 < int(shown.group(1)) <= posted
    assert SourceRecord.objects.filter(workspace=workspace, entity_type="Bill").count() > 0
    assert Onboarding.objects.get(workspace=workspace).first_sync_started_at is not None
    verbs = set(AuditEvent.objects.filter(workspace=workspace).values_list("verb", flat=True))
    assert {"onboarding.started", "onboarding.mapping_confirmed"} <= verbs
    assert "onboarding.first_sync_started" in verbs
    state = requests.get(f"{sandboxes.qonto}/_sandbox/state", timeout=30).json()
    assert state["duplicates"] == 0

    # The dashboard no longer sends to the wizard; revisiting step 2 shows Qonto's accounts,
    # each QuickBooks bank account pre-filled with the Qonto account of the same IBAN.
    page.goto(f"{site}/w/{slug}/")
    assert page.locator("h1").inner_text() == "Brasserie Lumière"
    page.goto(f"{site}/w/{slug}/onboarding/mapping/")
    main = QontoBankAccount.objects.get(workspace=workspace, main=True)
    selects = page.locator("#bank-accounts select")
    assert selects.count() == 2
    assert main.pk.hex in [str(selects.nth(i).input_value()).replace("-", "") for i in range(2)]
    screenshot("onboarding-5-mapping-with-qonto")
    assert not BankAccountMapping.objects.filter(workspace=workspace).exists()
