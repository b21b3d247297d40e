"""The record page in a real browser offers only what the decision service would take: the
issue's refused Bill 1079, whose invoice Bill 603 holds, shows no "Approve and link"."""

from __future__ import annotations

import pytest

from connectors.qonto.models import Posting, PostingState
from connectors.quickbooks.models import RecordState, SourceRecord
from matching.models import Band
from matching.services import record_propose
from review.models import Decision
from review.services import record_pin
from tests.factories import PASSWORD
from well.audit import Actor
from well.models import Membership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_refused_bill_whose_invoice_another_bill_holds_is_not_offered_approve(
    live_server, page, books, screenshot
):
    entry = books.invoice(amount_text="100.00", day="2025-02-10")
    bill_1079 = books.bill(qbo_id="1079")
    assert record_propose(record=bill_1079).band == Band.REFUSED
    bill_603 = books.bill(qbo_id="603", amount="100.00", day="2025-02-08")
    record_propose(record=bill_603)
    SourceRecord.objects.filter(pk=bill_603.pk).update(state=RecordState.REFUSED)
    membership = Membership.objects.get(workspace=books.workspace, user=books.owner)
    record_pin(record=bill_603, entry=entry, actor=Actor.user(books.owner), membership=membership)

    page.goto(f"{live_server.url}/")
    page.fill("input[name=login]", books.owner.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/w/{books.workspace.slug}/records/{bill_1079.pk}/")

    actions = page.locator("#actions")
    assert actions.locator('button[data-action="approve"]').count() == 0
    assert "already linked to Bill 603" in actions.inner_text()
    assert page.locator('[data-action="pin-1"]').count() == 0  # the same answer for the pin
    screenshot("decision-not-offered")
    page.keyboard.press("a")  # the shortcut presses nothing: there is no approve button
    page.wait_for_load_state()

    assert not Decision.objects.filter(record=bill_1079).exists()
    holders = (
        Posting.objects.filter(qonto_id=entry.qonto_id)
        .exclude(state=PostingState.FAILED)
        .values_list("record_id", flat=True)
    )
    assert set(holders) == {bill_603.pk}
