"""The Qonto entry picker of the record page, for pin and override (issue 16): what each entry
shows, entries already linked shown but not selectable (naming their record) and never
preselected, search by amount or reference across the workspace, paging, tenant scope, and a
query count that does not grow with the rows."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connectors.qonto.models import PostingAction, PostingState
from matching.models import Band
from matching.services import record_propose
from review.models import Decision, DecisionKind
from review.selectors.qonto_entries import (
    EntryNotFound,
    amount_parse,
    qonto_entries_pick,
    qonto_entry_choice_get,
)
from tests.factories import PostingFactory
from tests.review.pages import texts, url

pytestmark = pytest.mark.django_db


def in_review(books):
    """A bill sent to review (a vendor never seen, an invoice of another amount)."""
    books.invoice()
    bill = books.bill(amount="121.00", day="2025-01-17", vendor_id="999", vendor_name="Zeta")
    assert record_propose(record=bill).band == Band.REVIEW
    return bill


def held_by(books, entry, **record_fields):
    """Another record of the books whose live posting links `entry`."""
    holder = books.bill(**record_fields)
    PostingFactory(
        record=holder,
        action=PostingAction.LINK,
        state=PostingState.DONE,
        qonto_id=entry.qonto_id,
        target_kind="invoice",
    )
    return holder


@pytest.mark.parametrize(
    ("typed", "amount"),
    [
        ("65,99", Decimal("65.99")),
        ("65.99", Decimal("65.99")),
        (" 65,99 € ", Decimal("65.99")),
        ("-65.99", Decimal("65.99")),
        ("1 234,56", Decimal("1234.56")),
        ("1,234.56", Decimal("1234.56")),
        ("1.234,56", Decimal("1234.56")),
        ("EUR 40", Decimal("40")),
        ("INV-2024-17", None),
        ("Orange", None),
        ("", None),
    ],
)
def test_an_amount_is_read_as_people_type_it(typed, amount):
    assert amount_parse(typed) == amount


def test_each_entry_shows_date_amount_reference_vendor_and_who_holds_it(books, people):
    bill = in_review(books)
    free = books.invoice(amount_text="65.99", day="2025-03-04", number="OB-7781", name="Orange")
    taken = books.invoice(amount_text="65.99", day="2025-02-04", number="OB-7702", name="Orange")
    holder = held_by(books, taken, qbo_id="603")

    page = (
        people["owner"]
        .get(url(books, "record", record_id=bill.pk), {"entry_q": "65,99"})
        .content.decode()
    )

    picker = page[page.index('id="entry-picker"') :]
    free_row = re.search(rf'<tr data-entry="{free.pk}".*?</tr>', picker, re.S).group(0)
    for shown in ("Mar 4, 2025", "€65.99", "OB-7781", "Orange", "Free"):
        assert shown in free_row
    assert f'name="entry" value="{free.pk}"' in free_row and "checked" not in free_row
    taken_row = re.search(rf'<tr data-entry="{taken.pk}".*?</tr>', picker, re.S).group(0)
    assert 'name="entry"' not in taken_row  # shown, but not selectable
    assert "Already linked to" in taken_row and "Bill 603" in taken_row
    assert url(books, "record", record_id=holder.pk) in taken_row
    assert "checked" not in picker  # nothing is ever preselected
    assert "Qonto entry (for link)" not in page  # no ID to paste by hand any more


def test_the_picker_opens_on_the_record_s_amount_and_an_empty_search_lists_every_entry(
    books, people
):
    bill = in_review(books)  # 121.00; its vendor's invoice is 120.00
    same = books.invoice(amount_text="121.00", number="Z-121")
    client = people["owner"]

    opening = client.get(url(books, "record", record_id=bill.pk)).context["picker"]
    everything = client.get(url(books, "record", record_id=bill.pk), {"entry_q": ""})

    assert [c.entry for c in opening.choices] == [same]
    assert len(everything.context["picker"].choices) == 2


@pytest.mark.parametrize("query", ["65,99", "65.99", "OB-77", "ob-7781", "Orange"])
def test_search_by_amount_or_reference_across_the_workspace(books, other_books, query):
    wanted = books.invoice(amount_text="65.99", number="OB-7781", name="Orange", day="2025-06-01")
    books.invoice(amount_text="12.00", number="AL-1", name="Algolia SAS")
    books.transaction(amount_text="65.99", name="Orange", day="2025-06-02")  # a debit: -65.99
    other_books.invoice(amount_text="65.99", number="OB-7781", name="Orange")

    found = qonto_entries_pick(workspace=books.workspace, query=query).choices

    assert wanted in [c.entry for c in found]
    assert {c.entry.workspace_id for c in found} == {books.workspace.pk}
    if query in ("65,99", "65.99"):
        assert len(found) == 2  # the invoice and the debit, whatever the sign


def test_results_come_in_pages(books):
    for n in range(25):
        books.invoice(amount_text="10.00", number=f"P-{n:02d}", day=f"2025-01-{n + 1:02d}")

    first = qonto_entries_pick(workspace=books.workspace, query="10,00")
    second = qonto_entries_pick(workspace=books.workspace, query="10,00", page=2)

    assert len(first.choices) == 20 and first.has_next and not first.has_previous
    assert len(second.choices) == 5 and not second.has_next and second.has_previous
    assert first.choices[0].entry.invoice_number == "P-24"  # newest first
    assert not {c.entry for c in first.choices} & {c.entry for c in second.choices}


def _picker_queries(books, count: int) -> int:
    for n in range(count):
        entry = books.invoice(amount_text="33.00", number=f"Q-{count}-{n}")
        if n % 2:
            held_by(books, entry)
    with CaptureQueriesContext(connection) as queries:
        picker = qonto_entries_pick(workspace=books.workspace, query="33.00")
        for choice in picker.choices:  # what the template reads
            _ = (choice.entry.date, choice.held_by and choice.held_by.qbo_id)
    return len(queries)


def test_the_picker_takes_the_same_queries_for_2_or_20_entries(books, other_books):
    assert _picker_queries(books, 2) == _picker_queries(other_books, 20) == 2


def test_the_record_page_takes_the_same_queries_whatever_the_entries_listed(books, people):
    bill = in_review(books)
    client = people["owner"]
    page_url = url(books, "record", record_id=bill.pk)

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(page_url, {"entry_q": "44"}).status_code == 200
        return len(queries)

    books.invoice(amount_text="44.00")
    page_queries()  # the first request of a session reads what later ones find cached
    few = page_queries()
    for n in range(12):
        held_by(books, books.invoice(amount_text="44.00", number=f"R-{n}"))
    assert page_queries() == few


def test_another_workspaces_entry_is_an_error_that_says_so(books, other_books, people):
    bill = in_review(books)
    theirs = other_books.invoice()

    with pytest.raises(EntryNotFound, match="not one of this workspace's"):
        qonto_entry_choice_get(workspace=books.workspace, key=str(theirs.pk))
    with pytest.raises(EntryNotFound):
        qonto_entry_choice_get(workspace=books.workspace, key=theirs.qonto_id)
    response = people["owner"].post(
        url(books, "override", record_id=bill.pk),
        {"outcome": "link", "entry": str(theirs.pk), "note": "wrong entry"},
    )

    assert response.status_code == 400
    assert "This Qonto entry is not one of this workspace&#x27;s" in response.content.decode()
    assert not Decision.objects.exists()


def test_the_override_links_to_the_entry_chosen_in_the_picker(books, people):
    bill = in_review(books)
    chosen = books.invoice(amount_text="121.00", number="Z-121")

    response = people["owner"].post(
        url(books, "override", record_id=bill.pk),
        {"outcome": "link", "entry": str(chosen.pk), "note": "the vendor's real invoice"},
    )

    assert response.status_code == 302, texts(response)
    decision = Decision.objects.get(record=bill)
    assert decision.kind == DecisionKind.OVERRIDE and decision.right_target == chosen
