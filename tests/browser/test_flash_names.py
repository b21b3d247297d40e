"""A flash message that names what a person typed, in headless Chromium, English and French, on
a desktop and on a phone: the name stands in its own <bdi> (a right-to-left vendor does not
reorder the sentence) and markup in it stays text. The rule form is sent from the keyboard."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.factories import PASSWORD, SourceRecordFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VENDOR = "شركة <b>نور</b>"
SAVED = {"en-GB": "Rule saved for", "fr-FR": "Règle enregistrée pour"}


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("locale", ["en-GB", "fr-FR"])
def test_a_vendor_rule_saved_from_the_keyboard_names_its_vendor_apart(
    books, live_server, browser, locale, width
):
    SourceRecordFactory(
        workspace=books.workspace,
        connection=books.qbo,
        entity_type="Vendor",
        qbo_id="41",
        payload={"Id": "41", "DisplayName": VENDOR},
    )
    context = browser.new_context(locale=locale, viewport={"width": width, "height": 860})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=login]", books.owner.email)
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        page.goto(f"{live_server.url}/w/{books.workspace.slug}/settings/")
        page.select_option("#id_vendor", "41")
        page.fill("#id_auto_threshold", "75")
        page.fill("#id_note", "abonnement")
        page.press("#id_note", "Enter")
        message = page.locator(".messages li.success")
        message.wait_for()
        assert message.inner_text().startswith(SAVED[locale])
        assert message.locator("bdi").inner_text() == VENDOR
        assert page.locator(".messages b").count() == 0
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"flash-vendor-{locale}-{width}.png"), full_page=True)
    finally:
        context.close()
