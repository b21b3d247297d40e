from __future__ import annotations

import pytest

from sandbox.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_tenant_ensure

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_demo_owner_signs_in_and_lands_on_the_demo_dashboard(live_server, page, screenshot):
    demo_tenant_ensure()

    page.goto(f"{live_server.url}/")
    page.fill("input[name=login]", DEMO_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    screenshot("sign-in")
    page.click("button[type=submit]")

    page.wait_for_url(f"{live_server.url}/w/demo/")
    assert page.locator("h1").inner_text() == "Demo company"
    screenshot("dashboard")
