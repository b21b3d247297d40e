"""Shared rows for the proposal and review tests: a workspace with QuickBooks and Qonto rows.

Import with `from tests.matching.test_proposals_fixtures import *`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import count

import factory
import pytest

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.qonto.models import QontoEntry, QontoEntryKind
from connectors.quickbooks.models import SourceRecord
from well.models import Role, Workspace

__all__ = [
    "Books",
    "EntryFactory",
    "RecordFactory",
    "books",
    "make_books",
    "other_books",
]

_ids = count(1000)


class RecordFactory(factory.django.DjangoModelFactory):
    """A QuickBooks record whose payload and typed columns agree (the sync's extraction)."""

    class Meta:
        model = SourceRecord

    class Params:
        amount = "120.00"
        day = "2025-01-10"
        doc = ""
        vendor_id = "1"
        vendor_name = "Algolia SAS"
        account_id = "7"

    entity_type = "Bill"
    qbo_id = factory.LazyFunction(lambda: str(next(_ids)))
    sync_token = "0"
    state = "pulled"
    total_amount = factory.LazyAttribute(lambda o: Decimal(o.amount))
    currency = "EUR"
    issue_date = factory.LazyAttribute(lambda o: date.fromisoformat(o.day))
    invoice_number = factory.LazyAttribute(lambda o: o.doc)
    supplier_name = factory.LazyAttribute(lambda o: o.vendor_name)
    vendor_qbo_id = factory.LazyAttribute(lambda o: o.vendor_id)
    payload = factory.LazyAttribute(
        lambda o: {
            "Id": o.qbo_id,
            "SyncToken": o.sync_token,
            "TxnDate": o.day,
            "DueDate": o.day,
            "TotalAmt": o.amount,
            "DocNumber": o.doc,
            "VendorRef": {"value": o.vendor_id, "name": o.vendor_name},
            "CurrencyRef": {"value": "EUR"},
            "Line": [
                {
                    "Amount": o.amount,
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": {"value": o.account_id}},
                }
            ],
        }
    )


class EntryFactory(factory.django.DjangoModelFactory):
    """A Qonto supplier invoice (or, with kind=transaction, a debit) with its raw payload."""

    class Meta:
        model = QontoEntry

    class Params:
        amount_text = "120.00"
        day = "2025-01-10"
        number = ""
        name = "Algolia SAS"

    kind = QontoEntryKind.SUPPLIER_INVOICE
    qonto_id = factory.LazyFunction(lambda: f"q-{next(_ids)}")
    amount = factory.LazyAttribute(
        lambda o: -Decimal(o.amount_text) if o.kind == "transaction" else Decimal(o.amount_text)
    )
    currency = "EUR"
    date = factory.LazyAttribute(lambda o: date.fromisoformat(o.day))
    counterparty = factory.LazyAttribute(lambda o: o.name)
    invoice_number = factory.LazyAttribute(lambda o: o.number)
    payload = factory.LazyAttribute(
        lambda o: (
            {
                "id": o.qonto_id,
                "supplier_name": o.name,
                "invoice_number": o.number,
                "total_amount": {"value": o.amount_text, "currency": "EUR"},
                "issue_date": o.day,
                "status": "to_review",
            }
            if o.kind == QontoEntryKind.SUPPLIER_INVOICE
            else {
                "id": o.qonto_id,
                "label": f"PRLV SEPA {o.name.upper()}",
                "clean_counterparty_name": o.name,
                "amount_cents": int(Decimal(o.amount_text) * 100),
                "currency": "EUR",
                "side": "debit",
                "settled_at": f"{o.day}T10:00:00Z",
                "status": "completed",
            }
        )
    )


@dataclass
class Books:
    """One workspace's QuickBooks and Qonto connections, vendor and account."""

    workspace: Workspace
    owner: object
    qbo: Connection
    qonto: Connection

    def bill(self, **kwargs) -> SourceRecord:
        return RecordFactory(workspace=self.workspace, connection=self.qbo, **kwargs)

    def invoice(self, **kwargs) -> QontoEntry:
        return EntryFactory(workspace=self.workspace, connection=self.qonto, **kwargs)

    def transaction(self, **kwargs) -> QontoEntry:
        return EntryFactory(
            workspace=self.workspace, connection=self.qonto, kind="transaction", **kwargs
        )

    def reference(self, entity: str, qbo_id: str, payload: dict) -> SourceRecord:
        return SourceRecord.objects.create(
            workspace=self.workspace,
            connection=self.qbo,
            entity_type=entity,
            qbo_id=qbo_id,
            payload={"Id": qbo_id, **payload},
        )

    def member(self, make_user, email: str, role: str):
        from well.audit import Actor
        from well.services import membership_add

        user = make_user(email)
        membership = membership_add(
            workspace=self.workspace, user=user, role=role, actor=Actor.system("tests")
        )
        return user, membership


@pytest.fixture
def make_books(make_user, make_workspace):
    def make(name: str = "Atelier") -> Books:
        owner = make_user(f"owner@{name.lower()}.example")
        workspace = make_workspace(name, owner=owner, role=Role.OWNER)
        qbo = Connection.objects.create(
            workspace=workspace,
            provider=Provider.QUICKBOOKS,
            status=ConnectionStatus.CONNECTED,
            external_id=f"realm-{workspace.pk}",
        )
        qonto = Connection.objects.create(
            workspace=workspace,
            provider=Provider.QONTO,
            status=ConnectionStatus.CONNECTED,
            external_id=f"org-{workspace.pk}",
        )
        books = Books(workspace, owner, qbo, qonto)
        books.reference("Vendor", "1", {"DisplayName": "Algolia", "CompanyName": "Algolia SAS"})
        books.reference("Account", "7", {"Name": "Software", "AcctNum": "6156"})
        books.reference("Account", "8", {"Name": "Travel", "AcctNum": "6251"})
        return books

    return make


@pytest.fixture
def books(make_books):
    return make_books("Atelier")


@pytest.fixture
def other_books(make_books):
    return make_books("Autre")
