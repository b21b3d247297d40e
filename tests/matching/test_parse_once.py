"""Each provider's payload is parsed once, at sync: matching reads the typed columns.

The product builds the core's records and entries from the columns the syncs write
(`matching.selectors.record_from_row`, `entry_from_row`); evaluation files, which never pass
through a sync, are read by `matching.core.normalise`. Both end in the same constructors, and
these properties hold them to the same answer for every well-formed payload.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.qonto.models import QontoEntry, QontoEntryKind
from connectors.qonto.sync import invoice_fields, transaction_fields
from connectors.quickbooks.extract import extract
from connectors.quickbooks.models import SourceRecord
from matching.core import normalise
from matching.selectors import entry_from_row, record_from_row

amounts = st.decimals(min_value=0, max_value=Decimal("9999999.99"), places=2)
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))
words = st.text(
    alphabet="ABCDÉFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz0123456789-'&.", max_size=40
)
currencies = st.sampled_from(["EUR", "USD", "GBP", "CHF"])


@st.composite
def quickbooks_records(draw):
    kind = draw(st.sampled_from(["Bill", "VendorCredit", "Purchase"]))
    issued = draw(days)
    payload = {
        "Id": str(draw(st.integers(1, 10**6))),
        "TxnDate": issued.isoformat(),
        "TotalAmt": str(draw(amounts)),
        "CurrencyRef": {"value": draw(currencies)},
        "DocNumber": draw(words),
        "PrivateNote": draw(words),
        "Line": [
            {
                "Amount": "1.00",
                "Description": draw(words),
                "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "7"}},
            }
        ],
    }
    vendor = {"value": str(draw(st.integers(1, 500))), "name": draw(words).strip() or "Algolia"}
    if kind == "Purchase":
        payload["EntityRef"] = {**vendor, "type": "Vendor"}
        payload["Credit"] = draw(st.booleans())
    else:
        payload["VendorRef"] = vendor
        payload["DueDate"] = (issued + timedelta(days=draw(st.integers(0, 60)))).isoformat()
    if draw(st.booleans()):
        payload["ExchangeRate"] = str(
            draw(st.decimals(min_value=Decimal("0.5"), max_value=2, places=4))
        )
    return kind, payload


@given(quickbooks_records())
@settings(max_examples=200, deadline=None)
def test_a_record_read_from_the_sync_s_columns_is_the_record_read_from_its_payload(case):
    kind, payload = case
    row = SourceRecord(entity_type=kind, qbo_id=payload["Id"], payload=payload)
    for name, value in extract(kind, payload, home_currency="EUR").items():
        setattr(row, name, value)

    assert record_from_row(row, "EUR") == normalise.record(kind, payload, "EUR")


@st.composite
def qonto_invoices(draw):
    credit = draw(st.booleans())
    total = draw(amounts)
    payload = {
        "id": f"inv-{draw(st.integers(1, 10**6))}",
        "supplier_name": draw(words),
        "invoice_number": draw(words),
        "description": draw(words),
        "file_name": draw(words) + ".pdf",
        "issue_date": draw(days).isoformat(),
        "total_amount": {"value": str(total), "currency": draw(currencies)},
        "is_credit_note": credit,
        "status": draw(st.sampled_from(["to_review", "to_pay", "paid", "rejected"])),
        "matched_transactions_ids": draw(st.lists(st.uuids().map(str), max_size=2)),
        "vat_number": draw(st.sampled_from(["", "FR40303265045", "DE136695976", "not a vat"])),
    }
    if draw(st.booleans()):
        payload["total_amount_excluding_taxes"] = {"value": str(total / Decimal("1.2"))[:12]}
    return payload


@given(qonto_invoices())
@settings(max_examples=200, deadline=None)
def test_an_invoice_read_from_the_sync_s_columns_is_the_invoice_read_from_its_payload(payload):
    row = QontoEntry(
        kind=QontoEntryKind.SUPPLIER_INVOICE,
        qonto_id=payload["id"],
        payload=payload,
        **invoice_fields(payload),
    )

    assert entry_from_row(row) == normalise.supplier_invoice(payload)


@st.composite
def qonto_transactions(draw):
    label = draw(words)
    payload = {
        "id": str(draw(st.uuids())),
        "label": label,
        "clean_counterparty_name": draw(st.sampled_from(["", label, "Orange Business"])),
        "amount_cents": draw(st.integers(0, 10**9)),
        "currency": draw(currencies),
        "side": draw(st.sampled_from(["debit", "credit"])),
        "reference": draw(words),
        "settled_at": f"{draw(days).isoformat()}T10:00:00Z",
        "status": draw(st.sampled_from(["completed", "pending", "declined"])),
    }
    if draw(st.booleans()):
        payload["local_amount_cents"] = draw(st.integers(0, 10**9))
        payload["local_currency"] = draw(currencies)
    return payload


@given(qonto_transactions())
@settings(max_examples=200, deadline=None)
def test_a_transaction_read_from_the_sync_s_columns_is_the_transaction_read_from_its_payload(
    payload,
):
    row = QontoEntry(
        kind=QontoEntryKind.TRANSACTION,
        qonto_id=payload["id"],
        payload=payload,
        **transaction_fields(payload),
    )

    assert entry_from_row(row) == normalise.transaction(payload)
