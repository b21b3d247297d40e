"""The mapping table's 14 fields, one test each, and malformed values refused with a reason."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from connectors.quickbooks.extract import Malformed, extract

BILL = {
    "Id": "146",
    "SyncToken": "0",
    "TotalAmt": Decimal("1234.56"),
    "CurrencyRef": {"value": "EUR", "name": "Euro"},
    "TxnDate": "2026-03-04",
    "DueDate": "2026-04-03",
    "DocNumber": "F-2026-0042",
    "TxnTaxDetail": {"TotalTax": Decimal("205.76")},
    "VendorRef": {"value": "56", "name": "Atelier Dupont"},
}
PURCHASE = {
    "Id": "77",
    "TotalAmt": Decimal("89.90"),
    "CurrencyRef": {"value": "usd"},
    "TxnDate": "2026-02-01",
    "PrivateNote": "Train tickets Lyon",
    "EntityRef": {"value": "12", "type": "Vendor"},
}
VENDOR = {
    "Id": "56",
    "DisplayName": "Atelier Dupont SARL",
    "WebAddr": {"URI": "https://atelier-dupont.example"},
    "TaxIdentifier": "XXXXXX8293",
}


@pytest.mark.parametrize(
    ("entity", "payload", "column", "expected"),
    [
        ("Bill", BILL, "total_amount", Decimal("1234.56")),
        ("Bill", BILL, "currency", "EUR"),
        ("Bill", BILL, "issue_date", date(2026, 3, 4)),
        ("Bill", BILL, "due_date", date(2026, 4, 3)),
        ("Bill", BILL, "invoice_number", "F-2026-0042"),
        ("Bill", BILL, "tax_amount", Decimal("205.76")),
        ("Purchase", PURCHASE, "total_amount", Decimal("89.90")),
        ("Purchase", PURCHASE, "currency", "USD"),
        ("Purchase", PURCHASE, "issue_date", date(2026, 2, 1)),
        ("Purchase", PURCHASE, "label", "Train tickets Lyon"),
        ("Vendor", VENDOR, "supplier_name", "Atelier Dupont SARL"),
        ("Vendor", VENDOR, "supplier_website", "https://atelier-dupont.example"),
        ("Vendor", VENDOR, "supplier_tax_id", "XXXXXX8293"),
    ],
)
def test_each_mapped_field_is_extracted_typed(entity, payload, column, expected):
    value = extract(entity, payload, home_currency="EUR")[column]
    assert value == expected
    assert type(value) is type(expected)


def test_purchase_id_is_the_transaction_id_and_its_vendor_is_linked():
    # Purchase.Id -> transaction_id is the record's qbo_id column; the payee links the vendor.
    assert extract("Purchase", PURCHASE)["vendor_qbo_id"] == "12"


def test_bill_links_its_vendor():
    assert extract("Bill", BILL)["vendor_qbo_id"] == "56"


def test_missing_currency_falls_back_to_the_home_currency():
    payload = {k: v for k, v in BILL.items() if k != "CurrencyRef"}
    assert extract("Bill", payload, home_currency="EUR")["currency"] == "EUR"


def test_optional_fields_may_be_absent():
    payload = {"Id": "1", "TotalAmt": 10, "TxnDate": "2026-01-01", "CurrencyRef": {"value": "EUR"}}
    fields = extract("Bill", payload)
    assert fields["due_date"] is None
    assert fields["tax_amount"] is None
    assert fields["invoice_number"] == ""


def test_kinds_outside_the_mapping_table_have_empty_columns():
    assert extract("Customer", {"Id": "3", "DisplayName": "x"})["supplier_name"] == ""


@pytest.mark.parametrize(
    ("entity", "change", "reason"),
    [
        ("Bill", {"TotalAmt": "abc"}, "TotalAmt is not a number"),
        ("Bill", {"TotalAmt": None}, "TotalAmt is missing"),
        ("Bill", {"TotalAmt": True}, "TotalAmt is not a number"),
        ("Bill", {"TotalAmt": Decimal("-5")}, "TotalAmt is negative"),
        ("Bill", {"TotalAmt": Decimal("1E+20")}, "implausibly large"),
        ("Bill", {"TotalAmt": Decimal("NaN")}, "not a finite number"),
        ("Bill", {"CurrencyRef": {"value": "XYZ"}}, "not an ISO 4217 currency"),
        ("Bill", {"CurrencyRef": "EUR"}, "CurrencyRef has no currency code"),
        ("Bill", {"TxnDate": "2026-02-30"}, "TxnDate is not a date"),
        ("Bill", {"TxnDate": 20260101}, "TxnDate is not a date"),
        ("Bill", {"DueDate": "tomorrow"}, "DueDate is not a date"),
        ("Bill", {"TxnDate": "9999-12-31"}, "TxnDate is not a plausible date"),
        ("Purchase", {"TxnDate": "0001-01-01T00:00:00Z"}, "TxnDate is not a plausible date"),
        ("Bill", {"TxnTaxDetail": {"TotalTax": "x"}}, "TotalTax is not a number"),
        ("Bill", {"DocNumber": {"nested": 1}}, "DocNumber is not text"),
        ("Purchase", {"TotalAmt": Decimal("-1")}, "TotalAmt is negative"),
        ("Purchase", {"PrivateNote": ["a"]}, "PrivateNote is not text"),
        ("Vendor", {"DisplayName": ""}, "DisplayName is missing"),
        ("Vendor", {"WebAddr": "http://x"}, "WebAddr is not an object"),
    ],
)
def test_malformed_values_are_refused_with_a_reason(entity, change, reason):
    base = {"Bill": BILL, "Purchase": PURCHASE, "Vendor": VENDOR}[entity]
    with pytest.raises(Malformed, match=reason):
        extract(entity, {**base, **change}, home_currency="EUR")


def test_no_currency_anywhere_is_refused():
    payload = {k: v for k, v in BILL.items() if k != "CurrencyRef"}
    with pytest.raises(Malformed, match="home currency is unknown"):
        extract("Bill", payload, home_currency="")


def test_payloads_are_made_storable_without_losing_anything():
    from connectors.payloads import REPLACEMENT_CHARACTER as R
    from connectors.payloads import storable

    raw = {"a\x00": ["x\x00y", float("nan"), float("inf"), "\ud800", 1.5, None, True]}

    assert storable(raw) == {f"a{R}": [f"x{R}y", "nan", "inf", R, 1.5, None, True]}
