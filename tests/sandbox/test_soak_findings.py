"""Bugs the soak found outside the posting path, pinned by tests (docs/soak.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.qonto.outbox import posting_enqueue
from connectors.qonto.posting_states import posting_claim, posting_finish
from connectors.quickbooks.models import RecordState, SourceRecord
from matching.services import records_propose
from review.services import record_approve
from well.audit import Actor
from well.models import AuditEvent

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")


def _post_done(record: SourceRecord, action: str, **target) -> Posting:
    """Enqueue then send through the outbox services, Qonto's answer given."""
    posting = posting_enqueue(record=record, action=action, actor=SYSTEM, **target)
    (claimed,) = posting_claim(limit=1)
    assert claimed.pk == posting.pk
    assert posting_finish(
        posting=claimed, state=PostingState.DONE, outcome="created", qonto_id="inv-1"
    )
    return posting


def _deletion_flags(record: SourceRecord) -> int:
    return AuditEvent.objects.filter(
        object_id=str(record.pk), verb="record.in_review", after__deleted=True
    ).count()


def test_a_bill_deleted_after_its_approved_change_is_flagged_once_for_a_person(make_workspace):
    workspace = make_workspace("Deleted Co")
    connection = Connection.objects.create(
        workspace=workspace,
        provider=Provider.QUICKBOOKS,
        status=ConnectionStatus.CONNECTED,
        external_id="9130",
    )
    bill = SourceRecord.objects.create(
        workspace=workspace,
        connection=connection,
        entity_type="Bill",
        qbo_id="77",
        sync_token="0",
        payload={"Id": "77", "SyncToken": "0", "DocNumber": "F-77"},
        total_amount=Decimal("120.00"),
        currency="EUR",
        supplier_name="Atelier Lumière",
        invoice_number="F-77",
        state=RecordState.APPROVED,
    )
    _post_done(bill, PostingAction.UPLOAD)
    # Changed in QuickBooks after posting: flagged, approved, linked to the same invoice.
    SourceRecord.objects.filter(pk=bill.pk).update(sync_token="1")
    bill.refresh_from_db()
    records_propose(records=[bill])
    bill.refresh_from_db()
    assert bill.state == RecordState.IN_REVIEW
    record_approve(record=bill, actor=SYSTEM, membership=None)
    (claimed,) = posting_claim(limit=1)
    assert claimed.action == PostingAction.LINK
    posting_finish(posting=claimed, state=PostingState.DONE, outcome="linked", qonto_id="inv-1")
    bill.refresh_from_db()
    assert bill.state == RecordState.POSTED

    SourceRecord.objects.filter(pk=bill.pk).update(deleted=True)
    bill.refresh_from_db()
    records_propose(records=[bill])
    records_propose(records=[bill])  # the same deletion delivered again

    bill.refresh_from_db()
    assert bill.state == RecordState.IN_REVIEW
    assert _deletion_flags(bill) == 1


def test_a_vendor_credit_carries_its_amount_into_the_credit_note_qonto_receives():
    from connectors.qonto.posting import render_fields
    from connectors.quickbooks.extract import extract

    payload = {
        "Id": "265",
        "SyncToken": "0",
        "VendorRef": {"value": "56", "name": "Atelier Lumière"},
        "TxnDate": "2026-03-02",
        "DocNumber": "AV-F-77",
        "TotalAmt": 305.04,
        "CurrencyRef": {"value": "EUR"},
        "Line": [{"Amount": 305.04, "DetailType": "AccountBasedExpenseLineDetail"}],
    }

    columns = extract("VendorCredit", payload, home_currency="EUR")
    record = SourceRecord(entity_type="VendorCredit", qbo_id="265", payload=payload, **columns)

    assert columns["total_amount"] == Decimal("305.04")
    assert columns["vendor_qbo_id"] == "56" and columns["invoice_number"] == "AV-F-77"
    assert render_fields(record, credit=True).total == Decimal("-305.04")
