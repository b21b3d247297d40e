"""Provider text inside Well's sentences is isolated (issue 19, finding 10): a vendor name with a
right-to-left override (U+202E) cannot reverse what follows it on the record page, the settings
page or the account mapping."""

from __future__ import annotations

import pytest

from connectors.models import Provider
from connectors.quickbooks.models import SourceRecord
from review.services import vendor_rule_set
from tests.connectors.test_onboarding import bank_account, connect, start, step_url
from tests.review.pages import url
from well.audit import Actor

pytestmark = pytest.mark.django_db

HOSTILE = "Evil\u202e Corp"


def unisolated(html: str, text: str) -> list[str]:
    """Where `text` sits in page text without a <bdi> (or a table cell of its own) around it."""
    found = []
    start_at = 0
    while (index := html.find(text, start_at)) != -1:
        start_at = index + len(text)
        before, after = html[:index], html[index + len(text) :]
        if before.rfind("<") > before.rfind(">"):
            continue  # inside a tag: an attribute value
        if before.rfind("<title>") > before.rfind("</title>"):
            continue  # the window title is not a sentence of the page
        if before.endswith("<bdi>") and after.startswith("</bdi>"):
            continue
        if before.rstrip().endswith(">") and before[before.rfind("<") :].startswith("<option"):
            continue  # an <option> is a line of its own
        found.append(html[max(0, index - 60) : index + len(text) + 60])
    return found


def test_a_vendor_name_on_the_record_page_is_isolated(books, people, in_review):
    bill = in_review(books)
    SourceRecord.objects.filter(pk=bill.pk).update(supplier_name=HOSTILE, label=HOSTILE)

    page = people["owner"].get(url(books, "record", record_id=bill.pk)).content.decode()

    assert HOSTILE in page
    assert unisolated(page, HOSTILE) == []


def test_a_vendor_name_on_the_settings_page_is_isolated(books, people):
    vendor_rule_set(
        workspace=books.workspace,
        vendor_qbo_id="1",
        vendor_name=HOSTILE,
        never_auto=True,
        actor=Actor.system("tests"),
    )

    page = people["owner"].get(url(books, "settings")).content.decode()

    assert HOSTILE in page
    assert unisolated(page, HOSTILE) == []


def test_an_account_name_in_the_mapping_table_is_isolated(make_user, client):
    owner = make_user("bidi@well.example")
    client.force_login(owner)
    workspace = start(client)
    connect(workspace, Provider.QUICKBOOKS)
    bank_account(workspace, "35", "FR7630006000011234567890189", HOSTILE)

    page = client.get(step_url(workspace, "mapping")).content.decode()

    assert HOSTILE in page
    assert unisolated(page, HOSTILE) == []
