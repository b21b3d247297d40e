"""`make demo` runs django-q2's worker beside the site (sandbox/worker.py): a new user goes
through the setup wizard in headless Chromium to a finished first sync with no command typed,
and a step that fails says why and offers a Retry that works (issue 16).

Unlike test_onboarding.py, no test code runs the queued tasks here: the worker the demo starts
does, in its own processes, against the same test database.
"""

from __future__ import annotations

import re

import pytest
import requests
from django_q.models import OrmQ
from django_q.tasks import async_task

from connectors.models import Connection, Onboarding, Provider
from connectors.qonto.models import Posting, PostingState
from sandbox.worker import task_worker_start
from tests.browser.test_onboarding import (  # noqa: F401
    PASSWORD,
    allow_on_consent_page,
    sandboxes,
    verify_email_from_the_page,
)
from well.models import AuditEvent, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each step waits for the worker in other processes; these bound a hung worker, nothing more.
WORKER_WAIT_MS = 120_000


@pytest.fixture
def task_worker(sandboxes):  # noqa: F811
    """The worker `make demo` starts, started and stopped around the test."""
    worker = task_worker_start(workers=1)
    try:
        yield worker
    finally:
        worker.stop()


def qonto_writes(qonto_base: str) -> dict[str, int]:
    """The calls that change something in the Qonto sandbox (OAuth aside), by route."""
    calls = requests.get(f"{qonto_base}/_sandbox/stats", timeout=10).json()["calls"]
    return {
        route: n
        for route, n in calls.items()
        if route.split(" ")[0] in ("POST", "PUT", "PATCH", "DELETE") and " /v2/" in route
    }


def wizard_until_first_sync(page, sandboxes, email: str) -> Workspace:  # noqa: F811
    """Sign up, create the workspace, connect QuickBooks, map, connect Qonto: every queued
    read runs in the worker; the page fills in by itself."""
    site = sandboxes.site
    page.goto(f"{site}/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    verify_email_from_the_page(page)
    page.wait_for_url(f"{site}/")
    page.click("#new-workspace")
    page.fill("input[name=name]", "Brasserie Lumière")
    page.click("#create-workspace")
    page.wait_for_url(re.compile(r".*/onboarding/quickbooks/$"))
    workspace = Workspace.objects.get(name="Brasserie Lumière")

    page.click("#connect-quickbooks")
    allow_on_consent_page(page, sandboxes.quickbooks)
    page.wait_for_url(f"{site}/w/{workspace.slug}/onboarding/mapping/")
    # Step 2 was "queued" for ever when no worker ran: the worker reads QuickBooks now.
    page.wait_for_selector("#mapping-form", timeout=WORKER_WAIT_MS)
    page.click("#confirm-mapping")

    page.wait_for_url(f"{site}/w/{workspace.slug}/onboarding/qonto/")
    page.click("#connect-qonto")
    allow_on_consent_page(page, sandboxes.qonto)
    page.wait_for_url(f"{site}/w/{workspace.slug}/onboarding/sync/")
    page.wait_for_selector("#start-sync")
    return workspace


def worker_drained(page, workspace: Workspace) -> None:
    """Wait until connecting Qonto's read is done and the worker has run everything queued,
    the outbox included (as its one-minute schedule would)."""
    async_task("connectors.qonto.tasks.postings_send_task")
    for _ in range(WORKER_WAIT_MS // 500):
        read = Connection.objects.filter(
            workspace=workspace, provider=Provider.QONTO, last_good_sync_at__isnull=False
        ).exists()
        if read and not OrmQ.objects.exists():
            return
        page.wait_for_timeout(500)
    pytest.fail("the worker never emptied its queue")


def test_a_new_user_finishes_the_wizard_with_the_demo_worker_and_no_command(
    sandboxes,  # noqa: F811
    task_worker,
    page,
    screenshot,
):
    workspace = wizard_until_first_sync(page, sandboxes, "claire@worker.example")
    worker_drained(page, workspace)
    # Connecting Qonto let Well read it, nothing more: no upload, no mark as paid yet.
    assert qonto_writes(sandboxes.qonto) == {}

    page.click("#start-sync")
    page.wait_for_selector("#sync-progress[data-done=true]", timeout=WORKER_WAIT_MS)
    summary = page.inner_text("#sync-progress")
    assert "The first sync is finished" in summary
    screenshot("setup-worker-first-sync-done")
    assert Posting.objects.filter(workspace=workspace, state=PostingState.DONE).exists()
    assert qonto_writes(sandboxes.qonto)  # written once the owner started the first sync
    assert Onboarding.objects.get(workspace=workspace).first_sync_started_at is not None


def test_a_failed_first_sync_step_says_why_and_its_retry_finishes_the_sync(
    sandboxes,  # noqa: F811
    task_worker,
    page,
    screenshot,
):
    workspace = wizard_until_first_sync(page, sandboxes, "marc@worker.example")
    worker_drained(page, workspace)
    # Qonto fails every attempt of the first sync's next call (4 attempts, well/http.py).
    requests.post(
        f"{sandboxes.qonto}/_sandbox/faults", json={"queue": ["5xx"] * 4}, timeout=10
    ).raise_for_status()

    page.click("#start-sync")
    page.wait_for_selector("#sync-error", timeout=WORKER_WAIT_MS)
    summary = page.inner_text("#sync-summary")
    assert "Stopped at: Reading Qonto" in summary
    assert "left" not in summary  # no "94% done, less than a minute left" for ever
    reason = page.inner_text("#sync-error-reason")
    assert "HTTP 503" in reason  # what Qonto answered, not a generic "failed"
    screenshot("setup-worker-first-sync-failed")

    page.click("#retry-sync")
    page.wait_for_selector("#sync-progress[data-done=true]", timeout=WORKER_WAIT_MS)
    assert page.locator("#sync-error").count() == 0
    assert "The first sync is finished" in page.inner_text("#sync-progress")
    screenshot("setup-worker-first-sync-retried")
    assert AuditEvent.objects.filter(
        workspace=workspace, verb="onboarding.first_sync_retried"
    ).exists()
