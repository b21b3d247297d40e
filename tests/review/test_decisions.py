"""The one decision service (review/decisions.py) through the pages and the API: every path keeps
the same promises, and a page offers a button only where the service would accept it."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, transaction

from connectors.qonto.models import Posting, PostingState, QontoEntry, QontoLink
from connectors.quickbooks.models import RecordState, SourceRecord
from matching.models import Action, Band, Proposal
from matching.services import proposals_refresh_for_entries, record_propose
from review.decisions import proposal_route
from review.models import Decision
from tests.factories import ProposalFactory
from tests.review.pages import texts, url
from well.models import AuditEvent

pytestmark = pytest.mark.django_db


def live_holders(entry) -> set[int]:
    """The records holding a live posting on this Qonto entry."""
    return set(
        Posting.objects.filter(qonto_id=entry.qonto_id)
        .exclude(state=PostingState.FAILED)
        .values_list("record_id", flat=True)
    )


def bill_1079_and_bill_603(books, people):
    """The issue's scenario: a refused bill whose proposed invoice Bill 603 has since taken."""
    entry = books.invoice(amount_text="100.00", day="2025-02-10")
    bill_1079 = books.bill(qbo_id="1079")
    proposal = record_propose(record=bill_1079)
    assert proposal.band == Band.REFUSED
    assert proposal.action == Action.LINK and proposal.target == entry
    bill_603 = books.bill(qbo_id="603", amount="100.00", day="2025-02-08")
    record_propose(record=bill_603)
    SourceRecord.objects.filter(pk=bill_603.pk).update(state=RecordState.REFUSED)
    response = people["accountant"].post(
        url(books, "pin", record_id=bill_603.pk), {"entry": str(entry.pk)}
    )
    assert "pinned to the Qonto" in texts(response)[-1]
    assert live_holders(entry) == {bill_603.pk}
    return bill_1079, bill_603, entry


def test_a_refused_bill_whose_candidate_another_bill_holds_is_not_offered_approve_and_link(
    books, people
):
    bill_1079, bill_603, entry = bill_1079_and_bill_603(books, people)
    client = people["accountant"]

    page = client.get(url(books, "record", record_id=bill_1079.pk)).content.decode()
    assert 'data-action="approve"' not in page
    assert "already linked to Bill 603" in page

    # Posted anyway (an old tab, a script): the same refusal as the pin's, nothing linked twice.
    response = client.post(url(books, "approve", record_id=bill_1079.pk))
    assert "already linked to Bill 603" in texts(response)[-1]
    response = client.post(url(books, "pin", record_id=bill_1079.pk), {"entry": str(entry.pk)})
    assert "already linked to Bill 603" in texts(response)[-1]
    assert live_holders(entry) == {bill_603.pk}
    assert not Decision.objects.filter(record=bill_1079).exists()
    assert SourceRecord.objects.get(pk=bill_1079.pk).state == RecordState.REFUSED


def test_the_api_refuses_the_same_approve_and_link(books, people, api_key_client):
    bill_1079, bill_603, entry = bill_1079_and_bill_603(books, people)
    client = api_key_client(books)

    response = client.post(f"/api/v1/records/{bill_1079.pk}/approve/", {}, format="json")

    assert response.status_code == 409
    assert "already linked to Bill 603" in str(response.json())
    assert live_holders(entry) == {bill_603.pk}


def test_the_database_refuses_a_second_live_link_to_one_qonto_entry(books):
    entry = books.invoice()
    first, second = books.bill(), books.bill()
    QontoLink.objects.create(
        workspace=books.workspace, record=first, target_kind="invoice", qonto_id=entry.qonto_id
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        QontoLink.objects.create(
            workspace=books.workspace, record=second, target_kind="invoice", qonto_id=entry.qonto_id
        )


def test_a_decision_on_a_proposal_replaced_since_the_page_was_rendered_is_refused(books, people):
    entry = books.invoice(amount_text="100.00", day="2025-02-10")
    bill = books.bill()
    old = record_propose(record=bill)
    record_propose(record=bill)  # a Qonto sync re-proposed it meanwhile
    assert Proposal.objects.get(record=bill, is_current=True).pk != old.pk

    response = people["accountant"].post(
        url(books, "pin", record_id=bill.pk), {"entry": str(entry.pk), "proposal": str(old.pk)}
    )

    assert "changed since" in texts(response)[-1]
    assert not Decision.objects.filter(record=bill).exists()


# --- automatic approval goes through the decision service --------------------------------------


def events(record) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_id=str(record.pk), verb__startswith="record.")
        .order_by("created_at", "id")
        .values_list("verb", flat=True)
    )


def test_an_automatic_proposal_is_approved_by_the_decision_service(books):
    entry = books.invoice()
    bill = books.bill(day="2025-01-05")

    assert record_propose(record=bill).band == Band.AUTO

    assert SourceRecord.objects.get(pk=bill.pk).state == RecordState.POSTING
    assert events(bill) == ["record.proposed", "record.auto_approve", "record.posting"]
    assert live_holders(entry) == {bill.pk}
    assert QontoLink.objects.get(record=bill, live=True).qonto_id == entry.qonto_id


def test_an_automatic_proposal_on_an_entry_another_record_holds_goes_to_a_person(books):
    entry = books.invoice()
    holder = books.bill(qbo_id="603", day="2025-01-05")
    assert record_propose(record=holder).band == Band.AUTO
    # The same invoice proposed to another bill before the first one's link was known to it.
    twin = books.bill(qbo_id="1079", day="2025-01-05")
    proposal = ProposalFactory(
        record=twin, action="link", target=entry, confidence=0.99, band=Band.AUTO
    )
    SourceRecord.objects.filter(pk=twin.pk).update(state=RecordState.PROPOSED)

    assert proposal_route(record=twin) == RecordState.IN_REVIEW
    assert live_holders(entry) == {holder.pk}
    proposal.refresh_from_db()
    assert "already linked to Bill 603" in proposal.reasons[-1]["detail"]


# --- purchases waiting for their payment ---------------------------------------------------------


def purchase(books, **kwargs) -> SourceRecord:
    return books.bill(entity_type="Purchase", amount="42.00", day="2025-03-03", **kwargs)


def test_a_purchase_without_its_bank_payment_waits_out_of_the_queue(books, people):
    record = purchase(books)
    record_propose(record=record)

    assert SourceRecord.objects.get(pk=record.pk).state == RecordState.WAITING_PAYMENT
    client = people["accountant"]
    queue = client.get(url(books, "queue")).content.decode()
    assert f'data-record="{record.pk}"' not in queue
    waiting = client.get(url(books, "waiting")).content.decode()
    assert f'data-record="{record.pk}"' in waiting

    # Its payment arrives with a Qonto sync: matching proposes it again, and it is linked.
    debit = books.transaction(amount_text="42.00", day="2025-03-04")
    proposals_refresh_for_entries(workspace=books.workspace, entries=[debit])

    assert SourceRecord.objects.get(pk=record.pk).state == RecordState.POSTING
    assert live_holders(debit) == {record.pk}


# --- nothing typed is lost ------------------------------------------------------------------


def in_review(books):
    books.invoice()
    bill = books.bill(amount="121.00", day="2025-01-17", vendor_id="999", vendor_name="Zeta")
    assert record_propose(record=bill).band == Band.REVIEW
    return bill


def test_the_note_and_corrections_are_in_the_same_form_as_every_action(books, people):
    bill = in_review(books)
    page = people["accountant"].get(url(books, "record", record_id=bill.pk)).content.decode()
    form = page[
        page.index('id="approve-form"') : page.index("</form>", page.index('id="approve-form"'))
    ]
    for field in (
        'name="note"',
        'name="invoice_number"',
        'name="due_date"',
        'name="ledger_account"',
    ):
        assert field in form
    for action in ('data-action="approve"', 'data-action="reject"', 'data-action="upload-as-new"'):
        assert action in form


@pytest.mark.parametrize("action", ["reject", "upload_as_new", "approve"])
def test_a_note_and_corrections_are_kept_whatever_the_action(books, people, action):
    bill = in_review(books)
    proposal = Proposal.objects.get(record=bill, is_current=True)

    people["accountant"].post(
        url(books, action, record_id=bill.pk),
        {
            "note": "Duplicate of the March invoice",
            "invoice_number": "Z-77",
            "due_date": "2025-02-28",
            "ledger_account": "6251",
            "proposal": str(proposal.pk),
        },
    )

    decision = Decision.objects.get(record=bill)
    assert decision.note == "Duplicate of the March invoice"
    assert set(decision.edits) == {"invoice_number", "due_date", "ledger_account"}
    row = SourceRecord.objects.get(pk=bill.pk)
    assert row.invoice_number == "Z-77" and row.due_date == date(2025, 2, 28)


# --- bulk approve says per row what will happen -------------------------------------------------


def test_bulk_confirmation_says_per_row_what_will_happen_and_why_not(books, people):
    shared = books.invoice(amount_text="65.99", name="Orange Business")
    rows = []
    for _ in range(3):  # three rows that look the same: one invoice proposed to each
        record = books.bill(
            amount="65.99", vendor_name="Orange Business", state=RecordState.IN_REVIEW
        )
        ProposalFactory(record=record, action="link", target=shared, confidence=0.7)
        rows.append(record)
    client = people["accountant"]

    page = client.post(url(books, "bulk_approve"), {"records": [r.pk for r in rows]})
    html = page.content.decode()

    assert html.count("Orange Business") >= 3 and html.count("65.99") >= 3
    assert "open</a>" not in html
    assert html.count("Link to Qonto supplier invoice") == 1
    assert html.count("Not approved:") == 2
    assert html.count(f"already linked to Bill {rows[0].qbo_id}") == 2
    assert "Approve and post 1" in html

    form = {"records": [r.pk for r in rows], "confirm": "on"}
    form["proposal"] = [
        f"{r.pk}:{Proposal.objects.get(record=r, is_current=True).pk}" for r in rows
    ]
    response = client.post(url(books, "bulk_approve"), form)
    said = texts(response)
    assert said[0].startswith("1 record approved")
    assert sum(f"already linked to Bill {rows[0].qbo_id}" in m for m in said) == 2
    assert live_holders(shared) == {rows[0].pk}


def test_the_api_says_what_the_service_would_accept_as_the_page_does(books, people, api_key_client):
    bill_1079, _, _ = bill_1079_and_bill_603(books, people)

    detail = api_key_client(books).get(f"/api/v1/records/{bill_1079.pk}/").json()

    assert detail["decisions"]["approve"]["allowed"] is False
    assert "already linked to Bill 603" in detail["decisions"]["approve"]["reason"]
    assert detail["decisions"]["reject"]["allowed"] is True


def test_a_queue_row_above_the_auto_threshold_says_a_check_stopped_it(books, people):
    entry = books.invoice()
    record = books.bill(state=RecordState.IN_REVIEW)
    ProposalFactory(
        record=record,
        action="link",
        target=entry,
        confidence=0.97,
        reasons=[{"signal": "gate", "weight": 0, "detail": "not auto-posted: a vendor rule"}],
    )

    page = people["accountant"].get(url(books, "queue")).content.decode()

    row = page[page.index(f'id="row-{record.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "97%" in row and "above auto-post: stopped by a check" in row
    assert "not auto-posted: a vendor rule" in row


@pytest.mark.parametrize(
    ("ours", "theirs", "linked"),
    [
        ("XXXXXXX0704", "GB543820704", True),  # QuickBooks masks all but the last four
        ("543820704", "GB 543 820 704", True),  # the country prefix, spaces
        ("FR40123456789", "FR40123456789", True),
        ("FR40123456789", "FR99999999999", False),
        ("XXXXXXX0704", "GB543820999", False),
    ],
)
def test_the_tax_id_gate_of_a_pin(books, people, ours, theirs, linked):
    entry = books.invoice(amount_text="100.00", day="2025-02-10")
    QontoEntry.objects.filter(pk=entry.pk).update(vat_number=theirs)
    bill = books.bill(state=RecordState.REFUSED)
    SourceRecord.objects.filter(pk=bill.pk).update(supplier_tax_id=ours)  # as QuickBooks masks it

    response = people["accountant"].post(url(books, "pin", record_id=bill.pk), {"entry": entry.pk})

    assert Decision.objects.filter(record=bill).exists() == linked
    if not linked:
        assert "is not the Qonto entry's VAT number" in texts(response)[-1]


def test_a_pin_to_an_entry_in_another_currency_is_refused(books, people):
    entry = books.invoice(amount_text="100.00", day="2025-02-10")
    QontoEntry.objects.filter(pk=entry.pk).update(currency="USD")
    bill = books.bill(state=RecordState.REFUSED)

    response = people["accountant"].post(url(books, "pin", record_id=bill.pk), {"entry": entry.pk})

    assert "in USD and the record in EUR" in texts(response)[-1]
    assert not Decision.objects.filter(record=bill).exists()
