"""Bugs the soak found outside the posting path, pinned by tests (docs/soak.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.models import Connection, ConnectionStatus, Provider, RecordState, SourceRecord
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.qonto.services import posting_claim, posting_enqueue, posting_finish
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
