"""Normalisation of names, references, tax IDs, money and malformed provider objects."""

from __future__ import annotations

import pytest

from matching.core import normalise


@pytest.mark.parametrize(
    ("raw", "name", "key", "form"),
    [
        ("Algolia SAS", "algolia", "algolia", "sas"),
        ("PRLV SEPA ALGOLIA SAS", "algolia", "algolia", "sas"),
        ("CB AMAZON EU SARL 12/03", "amazon eu", "amazon", "sarl"),
        ("PAYPAL *SPOTIFY", "spotify", "spotify", ""),
        ("Société Générale", "societe generale", "societe", ""),
        ("Nordic Print Ltd.", "nordic print", "nordic", "ltd"),
    ],
)
def test_names_are_cleaned_of_bank_prefixes_and_legal_forms(raw, name, key, form):
    assert normalise.clean_name(raw) == (name, key, form)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("INV-0042", "1nv0042"), ("000123", "123"), (" f 2024/07 ", "f202407"), (None, ""), ({}, "")],
)
def test_references_keep_alphanumerics_without_leading_zeros(raw, expected):
    assert normalise.reference(raw) == expected


@pytest.mark.parametrize(
    ("printed", "scanned"),
    [("INV-2024-0057", "INV-2O24-OO57"), ("LYS89531", "1YS8953I"), ("F2501-0012", "F25OI-OO1Z")],
)
def test_a_reference_read_by_ocr_normalises_like_the_printed_one(printed, scanned):
    assert normalise.reference(printed) == normalise.reference(scanned)


def test_bank_fee_labels_lose_their_fee_prefix():
    assert normalise.clean_name("FRAIS KILOLOG")[0] == "kilolog"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("FR40303265045", "FR40303265045"),
        ("fr 40 303 265 045", "FR40303265045"),
        ("303265045", "FR40303265045"),
        ("FR40303265046", ""),
        ("XXXXXX5045", ""),
        (None, ""),
    ],
)
def test_tax_ids_are_validated_and_compacted(raw, expected):
    assert normalise.tax_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12.5, 1250),
        ("10,00", 1000),
        ("1284.00", 128400),
        (-3, -300),
        ("nan", None),
        ("abc", None),
        (None, None),
        (True, None),
        (1e30, None),
    ],
)
def test_money_becomes_integer_cents(raw, expected):
    assert normalise.cents(raw) == expected


@pytest.mark.parametrize("obj", [None, [], "Bill", {"TotalAmt": "x"}, {"Id": 5, "TxnDate": 3}])
def test_a_malformed_record_is_normalised_with_its_problems(obj):
    record = normalise.record("Bill", obj)
    assert record.problems


def test_a_vendor_credit_is_money_coming_back():
    record = normalise.record(
        "VendorCredit",
        {"Id": "9", "TotalAmt": 50, "TxnDate": "2025-01-01", "VendorRef": {"value": "1"}},
    )
    assert record.amount_cents == -5000


def test_a_credit_transaction_is_negative_and_keeps_its_local_amount():
    entry = normalise.transaction(
        {
            "id": "t",
            "amount_cents": 9200,
            "side": "credit",
            "local_amount_cents": 10000,
            "local_currency": "USD",
            "currency": "EUR",
            "settled_at": "2025-01-02T10:00:00Z",
        }
    )
    assert (entry.amount_cents, entry.local_amount_cents) == (-9200, -10000)


def test_a_supplier_invoice_without_total_falls_back_to_net_plus_tax():
    entry = normalise.supplier_invoice(
        {
            "id": "s",
            "total_amount": None,
            "total_amount_excluding_taxes": {"value": "100.00", "currency": "EUR"},
            "total_tax_amount": {"value": "20.00", "currency": "EUR"},
        }
    )
    assert entry.amount_cents == 12000


def test_declined_and_rejected_entries_are_dropped():
    assert normalise.transaction({"id": "t", "status": "declined"}) is None
    assert normalise.supplier_invoice({"id": "s", "status": "rejected"}) is None
