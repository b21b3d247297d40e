"""Well in French, on a phone, for everyone, in real Chromium against the live site.

A French browser (locale fr-FR) walks every signed-in page: French words and French formats,
no English left; at 390x844 no page scrolls sideways; axe-core (npm, injected by Playwright)
finds no serious or critical accessibility violation on any of them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.quickbooks.models import RecordState, SourceRecord
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_review_flow import sign_in, world  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"

# English interface words that must not remain on a French page (none is a vendor's name in
# the demo books).
ENGLISH = [
    "Dashboard",
    "Review queue",
    "Settings",
    "Sign out",
    "Audit trail",
    "Confidence",
    "Thresholds",
    "Approve",
    "Reject",
    "Vendor",
    "Amount",
    "Due date",
    "Invoice number",
    "Filter",
    "Change language",
    "Times are shown",
    "Connections",
    "Keyboard",
    "Previous",
    " ago",
    "never",
    " records",
    "Upload as new",
    "not auto-posted",
    "proposed:",
]
FRENCH_MONEY = re.compile(r"\d{1,3}(?:[\u202f\xa0]\d{3})*,\d{2}\xa0€")
FRENCH_DAY = re.compile(
    r"\b\d{1,2} (janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.) \d{4}"
)
FRENCH_PERCENT = re.compile(r"\b\d{1,3}\xa0%")
ENGLISH_FORMATS = [
    re.compile(r"\b\d+\.\d{2} EUR\b"),  # 73.43 EUR
    re.compile(r"\b\d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}\b"),
    re.compile(r"\b(a\.m\.|p\.m\.)"),
    re.compile(r"\b0\.\d{2}\b"),  # a threshold or a confidence as a share
]


def _pages(site: str, workspace) -> dict[str, str]:
    record = SourceRecord.objects.filter(workspace=workspace, state=RecordState.IN_REVIEW).first()
    base = f"{site}/w/{workspace.slug}"
    return {
        "dashboard": f"{base}/",
        "queue": f"{base}/queue/",
        "record": f"{base}/records/{record.pk}/",
        "refused": f"{base}/refused/",
        "audit": f"{base}/audit/",
        "settings": f"{base}/settings/",
        "wizard": f"{base}/onboarding/mapping/",
        "api keys": f"{base}/settings/api-keys/",
    }


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it stands."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document);
            if (!result.passes.length) throw new Error("axe-core checked nothing");
            return result.violations.map(v => ({
                id: v.id, impact: v.impact,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary),
            }));
        }"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _context(browser, **options):
    # bypass_csp: the test injects axe-core as a script the site's CSP would rightly refuse.
    return browser.new_context(bypass_csp=True, **options)


def test_a_french_browser_gets_french_pages_and_formats_and_no_axe_violation(
    world,  # noqa: F811
    browser,
):
    workspace, urls = world
    context = _context(browser, locale="fr-FR", viewport={"width": 1280, "height": 860})
    page = context.new_page()
    try:
        sign_in(page, urls.site)
        problems = {}
        seen = ""
        for name, url in _pages(urls.site, workspace).items():
            page.goto(url)
            assert page.locator("html").get_attribute("lang") == "fr", name
            text = page.locator("body").inner_text()
            seen += text
            left = [word for word in ENGLISH if word in text]
            wrong = [p.pattern for p in ENGLISH_FORMATS if p.search(text)]
            violations = axe_violations(page)
            if left or wrong or violations:
                problems[name] = {"english": left, "formats": wrong, "axe": violations}
        import json

        Path("/tmp/problems.json").write_text(json.dumps(problems, indent=1, ensure_ascii=False))
        Path("/tmp/seen.txt").write_text(seen)
        assert not problems, problems
        assert FRENCH_MONEY.search(seen) and FRENCH_DAY.search(seen) and FRENCH_PERCENT.search(seen)
        assert ("Europe/Paris" in seen and "CET" in seen) or "CEST" in seen
        queue = _pages(urls.site, workspace)["queue"]
        page.goto(queue)
        _screenshot(page, "fr-queue")
        # The switcher at the foot wins over the browser, and brings the person back here.
        page.select_option("#language-choice", "en")
        page.click(".langswitch button[type=submit]")
        page.wait_for_url(queue)
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Review queue" in page.locator("h1").inner_text()
    finally:
        context.close()


def test_every_page_fits_a_phone_without_sideways_scrolling(world, browser):  # noqa: F811
    workspace, urls = world
    context = _context(
        browser,
        locale="fr-FR",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    try:
        sign_in(page, urls.site)
        too_wide, violations = {}, {}
        for name, url in _pages(urls.site, workspace).items():
            page.goto(url)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 390:
                too_wide[name] = width
            found = axe_violations(page)
            if found:
                violations[name] = found
            _screenshot(page, f"phone-{name.replace(' ', '-')}")
        assert not too_wide, too_wide
        assert not violations, violations
        # The menu is folded behind its button, and opens.
        page.goto(_pages(urls.site, workspace)["queue"])
        assert not page.locator("#mainnav").is_visible()
        page.click(".menu-toggle")
        assert page.locator("#mainnav").is_visible()
    finally:
        context.close()


def test_the_english_pages_have_no_axe_violation_either(world, browser):  # noqa: F811
    workspace, urls = world
    context = _context(browser, locale="en-GB", viewport={"width": 1280, "height": 860})
    page = context.new_page()
    try:
        sign_in(page, urls.site)
        violations = {}
        for name, url in _pages(urls.site, workspace).items():
            page.goto(url)
            assert page.locator("html").get_attribute("lang") == "en"
            found = axe_violations(page)
            if found:
                violations[name] = found
        assert not violations, violations
    finally:
        context.close()
