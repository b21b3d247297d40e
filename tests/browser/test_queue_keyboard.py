"""The review queue by keyboard in headless Chromium (issue 16, WCAG 2.1.1): after `a` or `r`
the next row is selected and `j` goes on from there; Tab to a row's Reject then Enter rejects
that row instead of opening another record."""

from __future__ import annotations

import pytest

from connectors.quickbooks.models import RecordState, SourceRecord
from matching.models import Band
from matching.services import record_propose
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(books, live_server, page):
    """Four bills in review (vendors never seen, an invoice of each amount), the owner signed
    in on the queue; the rows' record ids in the order the page shows them."""
    for n in range(4):
        books.invoice(amount_text=f"12{n}.00")
        bill = books.bill(
            amount=f"12{n}.00", day="2025-01-17", vendor_id=f"99{n}", vendor_name=f"Zeta {n}"
        )
        assert record_propose(record=bill).band == Band.REVIEW
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", books.owner.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/w/{books.workspace.slug}/queue/")
    page.wait_for_selector("table[data-keyboard] tr.selected")
    ids = page.eval_on_selector_all(
        "table[data-keyboard] tbody tr[data-record]", "rows => rows.map(r => r.dataset.record)"
    )
    assert len(ids) == 4
    return ids


def selected(page) -> str | None:
    return page.eval_on_selector_all(
        "tr[data-record].selected", "rows => rows.map(r => r.dataset.record)[0] || null"
    )


def state(record_id: str) -> str:
    return SourceRecord.objects.get(pk=int(record_id)).state


def test_after_a_or_r_the_next_row_is_selected_and_j_goes_on_from_there(queue, page):
    first, second, third, fourth = queue
    assert selected(page) == first

    page.keyboard.press("a")
    page.wait_for_selector(f"tr.done[data-record='{first}']")
    assert selected(page) == second

    page.keyboard.press("j")
    assert selected(page) == third  # not back to the top

    page.keyboard.press("r")
    page.wait_for_selector(f"tr.done[data-record='{third}']")
    assert selected(page) == fourth
    assert state(third) == RecordState.REJECTED

    page.keyboard.press("k")
    assert selected(page) == second  # decided rows are skipped both ways


def test_tab_to_a_rows_reject_then_enter_rejects_that_row(queue, page):
    first, second, third, _fourth = queue
    queue_url = page.url
    assert selected(page) == first
    page.focus(f"#row-{third} button[data-action=approve]")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "reject"
    assert selected(page) == third  # the focus and the selection speak of the same row

    page.keyboard.press("Enter")
    page.wait_for_selector(f"tr.done[data-record='{third}']")

    assert page.url == queue_url  # no other record was opened
    assert state(third) == RecordState.REJECTED
    assert state(first) == RecordState.IN_REVIEW and state(second) == RecordState.IN_REVIEW
    assert selected(page) == queue[3]
