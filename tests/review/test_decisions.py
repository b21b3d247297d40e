"""The one decision service (review/decisions.py) through the pages and the API: every path keeps
the same promises, and a page offers a button only where the service would accept it."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from connectors.qonto.models import Posting, PostingState
from connectors.quickbooks.models import RecordState, SourceRecord
from matching.models import Action, Band, Decision, Proposal
from matching.services import record_propose
from tests.review.pages import texts, url

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
    assert "pinned to Qonto" in texts(response)[-1]
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
    from connectors.qonto.models import QontoLink

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
