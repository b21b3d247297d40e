"""Records and decisions over the API: the same services as the review pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connectors.qonto.models import Posting
from connectors.quickbooks.models import RecordState, SourceRecord
from connectors.services import connection_tokens_forget
from matching.models import Proposal
from matching.services import record_propose
from review.models import Decision
from well.audit import Actor
from well.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_the_records_list_shows_the_workspace_s_transactions_with_their_proposal(
    books, client_for, in_review
):
    bill = in_review(books)
    response = client_for(books.workspace).get("/api/v1/records/")
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [r["id"] for r in rows] == [bill.pk]
    assert rows[0]["state"] == "in_review"
    assert rows[0]["proposal"]["band"] == "review"


def test_the_records_list_filters_by_state_kind_vendor_dates_and_confidence(
    books, client_for, in_review
):
    bill = in_review(books)
    other = books.bill(amount="10.00", day="2024-06-01", vendor_name="Other Ltd", vendor_id="9")
    client = client_for(books.workspace)

    def ids(query):
        response = client.get("/api/v1/records/" + query)
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["results"]}

    assert ids("?state=in_review") == {bill.pk}
    assert ids("?state=pulled") == {other.pk}
    assert ids("?kind=Bill") == {bill.pk, other.pk}
    assert ids("?kind=Purchase") == set()
    assert ids("?vendor=other") == {other.pk}
    assert ids("?vendor=9") == {other.pk}
    assert ids("?date_from=2025-01-01") == {bill.pk}
    assert ids("?date_to=2024-12-31") == {other.pk}
    assert ids("?confidence_min=0.5") == {bill.pk}
    assert ids("?confidence_max=0.1") == set()


def test_a_record_s_detail_has_quickbooks_and_mapped_fields_enrichment_proposal_and_candidates(
    books, client_for, in_review
):
    bill = in_review(books)
    response = client_for(books.workspace).get(f"/api/v1/records/{bill.pk}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["quickbooks"]["Id"] == bill.qbo_id
    assert body["mapped"]["total_amount"] == "120.0000"
    assert isinstance(body["enrichment"], dict)
    proposal = body["proposal"]
    assert proposal["band"] == "review"
    ranks = [c["rank"] for c in proposal["candidates"]]
    assert ranks == sorted(ranks) and len(ranks) >= 2
    assert all("signals" in c and "reasons" in c for c in proposal["candidates"])


def test_a_decide_key_approves_a_record_and_the_decision_names_the_key(
    books, client_for, in_review
):
    bill = in_review(books)
    client = client_for(books.workspace, scopes=["read", "decide"])
    response = client.post(
        f"/api/v1/records/{bill.pk}/approve/", {"note": "looks right"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["record"]["state"] in (RecordState.APPROVED, RecordState.POSTING)
    decision = Decision.objects.get(record=bill)
    assert decision.actor_type == "api_key" and decision.note == "looks right"
    assert Posting.objects.filter(record=bill).count() == 1
    event = AuditEvent.objects.filter(verb="record.approve", object_id=str(bill.pk)).get()
    assert event.actor_type == "api_key" and "partner" in event.actor_label


def test_reject_pin_and_upload_as_new_go_through_the_review_services(books, client_for, in_review):
    client = client_for(books.workspace)
    rejected = in_review(books)
    response = client.post(f"/api/v1/records/{rejected.pk}/reject/", {"note": "no"}, format="json")
    assert response.status_code == 201, response.content
    assert SourceRecord.objects.get(pk=rejected.pk).state == RecordState.REJECTED

    pinned = books.bill(amount="55.00", day="2025-03-01", state=RecordState.REFUSED)
    entry = books.invoice(amount_text="55.00", day="2025-03-01")
    response = client.post(
        f"/api/v1/records/{pinned.pk}/pin/", {"entry": str(entry.pk)}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Decision.objects.get(record=pinned).right_target_id == entry.pk

    uploaded = books.bill(amount="77.00", day="2025-03-02", state=RecordState.REFUSED)
    response = client.post(f"/api/v1/records/{uploaded.pk}/upload-as-new/", {}, format="json")
    assert response.status_code == 201, response.content
    assert Decision.objects.get(record=uploaded).kind == "upload_as_new"


def test_a_decision_the_record_s_state_forbids_is_a_409_that_changes_nothing(
    books, client_for, in_review
):
    bill = in_review(books)
    client = client_for(books.workspace)
    assert client.post(f"/api/v1/records/{bill.pk}/reject/", {}, format="json").status_code == 201
    response = client.post(f"/api/v1/records/{bill.pk}/approve/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Decision.objects.filter(record=bill).count() == 1


def test_invalid_edits_come_back_per_field(books, client_for, in_review):
    bill = in_review(books)
    response = client_for(books.workspace).post(
        f"/api/v1/records/{bill.pk}/approve/",
        {"edits": {"ledger_account": "no such account"}},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "ledger_account" in response.json()["error"]["fields"]
    assert SourceRecord.objects.get(pk=bill.pk).state == RecordState.IN_REVIEW


def test_the_list_s_fast_rendering_equals_the_generic_rendering_of_its_fields(
    books, client_for, in_review
):
    from rest_framework import serializers

    from api.records import RecordOut

    in_review(books)
    books.bill(amount="10.00", day="2024-06-01")
    rows = client_for(books.workspace).get("/api/v1/records/").json()["results"]
    for row in rows:
        record = SourceRecord.objects.get(pk=row["id"])
        generic = serializers.Serializer.to_representation(RecordOut(), record)
        proposal = record.proposals.filter(is_current=True).first()
        generic["proposal"] = (
            {
                "id": proposal.pk,
                "action": proposal.action,
                "confidence": proposal.confidence,
                "band": proposal.band,
            }
            if proposal
            else None
        )
        assert row == dict(generic)


def test_a_records_audit_events_in_the_api_are_the_ones_its_page_shows(
    books, client_for, in_review, client
):
    bill = in_review(books)
    other = in_review(books)  # its events are not this record's
    api = client_for(books.workspace)
    assert api.post(f"/api/v1/records/{bill.pk}/approve/", {}).status_code == 201  # a posting
    connection_tokens_forget(connection=books.qonto, actor=Actor.system("tests"), reason="test")
    client.force_login(books.owner)

    page = client.get(reverse("review:record", args=[books.workspace.slug, bill.pk]))
    shown = [entry.event_id for entry in page.context["p"].timeline]
    listed = api.get(f"/api/v1/records/{bill.pk}/audit-events/?page_size=200").json()["results"]

    assert [event["id"] for event in listed] == sorted(shown, reverse=True)
    verbs = {event["verb"] for event in listed}
    assert {"record.proposed", "record.approve", "posting.enqueued"} <= verbs
    assert "connection.disconnected" in verbs  # the connection's life, as on the page
    assert not {event["object_id"] for event in listed} & {str(other.pk)}


@pytest.mark.parametrize(
    "invoices",
    [
        # (amount, day) of the vendor's Qonto invoices around a 120.00 bill of 2025-01-10.
        [("120.00", "2025-01-12"), ("120.00", "2025-01-15")],
        [("120.00", "2025-01-11"), ("120.00", "2025-01-12"), ("120.00", "2025-01-13")],
        [("100.00", "2025-02-10")],
        [("118.00", "2025-01-10"), ("120.00", "2025-03-01"), ("240.00", "2025-01-10")],
        [("120.00", "2025-01-10"), ("120.00", "2025-01-10")],
    ],
)
def test_the_proposal_comes_first_and_candidates_follow_in_decreasing_probability(
    books, client_for, invoices
):
    """Whatever the band, what the pages and the API list is ranked as likely as it is."""
    for amount, day in invoices:
        books.invoice(amount_text=amount, day=day)
    bill = books.bill()
    record_propose(record=bill)

    response = client_for(books.workspace).get(f"/api/v1/records/{bill.pk}/")
    assert response.status_code == 200, response.content
    proposal = response.json()["proposal"]
    candidates = proposal["candidates"]
    assert [c["rank"] for c in candidates] == list(range(1, len(candidates) + 1))
    assert candidates[0]["action"] == proposal["action"]
    confidences = [float(c["confidence"]) for c in candidates]
    assert confidences == sorted(confidences, reverse=True), confidences
    stored = Proposal.objects.get(record=bill, is_current=True)
    assert [float(c.confidence) for c in stored.candidates.all()] == confidences
