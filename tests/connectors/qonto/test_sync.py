"""Reading Qonto into candidates, over real HTTP against the sandbox."""

from __future__ import annotations

import pytest
import requests

from connectors.models import Connection
from connectors.qonto.models import QontoBankAccount, QontoEntry
from connectors.qonto.selectors import qonto_bank_account_for
from connectors.qonto.sync import qonto_sync

pytestmark = pytest.mark.django_db


def test_a_read_brings_accounts_invoices_and_transactions_of_every_account(connected, qonto):
    run = qonto_sync(connection_id=connected.pk)

    assert run.status == "succeeded"
    assert QontoBankAccount.objects.count() == 2
    invoices = QontoEntry.objects.filter(kind="supplier_invoice")
    assert invoices.count() == qonto.control("state")["supplier_invoices"]
    assert QontoEntry.objects.filter(kind="transaction").exists()
    paid = invoices.get(invoice_number="FR-OVH-88231")
    assert paid.matched_ids and paid.amount is not None and paid.status == "paid"
    assert Connection.objects.get(pk=connected.pk).sync_marker


def test_a_second_read_changes_nothing_and_a_qonto_change_updates_one_row(connected, qonto):
    qonto_sync(connection_id=connected.pk)
    count = QontoEntry.objects.count()
    second = qonto_sync(connection_id=connected.pk)
    assert QontoEntry.objects.count() == count
    assert second.total("new") == 0 and second.total("updated") == 0

    invoice = QontoEntry.objects.filter(kind="supplier_invoice", status="to_review").first()
    qonto.control("clock", {"advance_seconds": 60})
    requests.post(
        f"{qonto.base}/v2/supplier_invoices/{invoice.qonto_id}/mark_as_paid",
        json={},
        headers={"Authorization": _api_key(qonto)},
        timeout=5,
    )
    third = qonto_sync(connection_id=connected.pk)
    assert third.total("updated") == 1
    assert QontoEntry.objects.get(pk=invoice.pk).status == "paid"
    assert QontoEntry.objects.count() == count


def _api_key(qonto) -> str:
    key = qonto.control("api_key", {})
    return f"{key['login']}:{key['secret_key']}"


def test_a_quickbooks_bank_account_maps_to_its_qonto_account_by_iban(connected, make_record):
    qonto_sync(connection_id=connected.pk)
    account = make_record(
        "Account", payload={"Id": "35", "AcctNum": "FR76 1695 8000 0100 0000 0000 101"}
    )
    found = qonto_bank_account_for(account=account)
    assert found is not None and found.main
    unknown = make_record("Account", payload={"Id": "36", "AcctNum": "DE00"})
    assert qonto_bank_account_for(account=unknown) is None
