"""The Qonto entry picker of the record page in headless Chromium (issue 16): search "65,99",
see date, amount, reference and vendor, an entry already linked named and not selectable,
nothing preselected, then pin the chosen entry."""

from __future__ import annotations

import pytest

from connectors.qonto.models import PostingAction, PostingState
from matching.models import Band
from matching.services import record_propose
from review.models import Decision, DecisionKind
from tests.factories import PASSWORD, PostingFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_accountant_finds_an_entry_by_amount_and_pins_it(books, live_server, page):
    books.invoice()
    bill = books.bill(amount="121.00", day="2025-01-17", vendor_id="999", vendor_name="Zeta")
    assert record_propose(record=bill).band == Band.REVIEW
    free = books.invoice(amount_text="65.99", day="2025-03-04", number="OB-7781", name="Orange")
    taken = books.invoice(amount_text="65.99", day="2025-02-04", number="OB-7702", name="Orange")
    holder = books.bill(qbo_id="603")
    PostingFactory(
        record=holder, action=PostingAction.LINK, state=PostingState.DONE, qonto_id=taken.qonto_id
    )
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", books.owner.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/w/{books.workspace.slug}/records/{bill.pk}/")

    page.fill("#entry-q", "65,99")
    with page.expect_response(lambda response: "entry_q=" in response.url):
        page.click("#entry-search")
    page.wait_for_selector(f"#entry-picker tr[data-entry='{taken.pk}']")

    free_row = page.inner_text(f"#entry-picker tr[data-entry='{free.pk}']")
    for shown in ("Mar 4, 2025", "€65.99", "OB-7781", "Orange", "Free"):
        assert shown in free_row
    taken_row = page.locator(f"#entry-picker tr[data-entry='{taken.pk}']")
    assert "Already linked to Bill 603" in taken_row.inner_text()
    assert taken_row.locator("input[name=entry]").count() == 0
    assert page.locator("#entry-picker input[name=entry]:checked").count() == 0

    page.check(f"#entry-picker input[name=entry][value='{free.pk}']")
    page.click("#pin-entry")
    page.wait_for_selector(".messages li.success")

    decision = Decision.objects.get(record=bill)
    assert decision.kind == DecisionKind.PIN and decision.right_target == free
