"""Every comparison level, on unsaved records and entries, as tables."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from matching.core.compare import LEVELS, compare
from matching.core.counterparty import Directory, Profile
from matching.core.types import SUPPLIER_INVOICE, TRANSACTION

from .builders import entry, invoice, record, vendor


@pytest.mark.parametrize(
    ("ours", "theirs", "level"),
    [
        (12000, 12000, "exact"),
        (12000, 12050, "close"),  # within 1.00
        (100000, 100400, "close"),  # within 0.5%
        (100000, 102500, "within_3pct"),
        (100000, 105000, "within_6pct"),
        (100000, 109000, "within_10pct"),
        (100000, 114000, "within_15pct"),
        (-12000, 12000, "sign_flip"),
        (12000, 20000, "different"),
        (12000, -13000, "different"),
        (None, 12000, "missing"),
    ],
)
def test_amount_levels(ours, theirs, level):
    assert compare(record(amount_cents=ours), entry(amount_cents=theirs))["amount"] == level


def test_amount_uses_the_local_amount_qonto_converted():
    usd = record(currency="USD", amount_cents=10000, home_amount_cents=9200)
    fx = entry(amount_cents=9311, local_amount_cents=10000, local_currency="USD")
    vector = compare(usd, fx)
    assert (vector["amount"], vector["currency"]) == ("exact", "converted")


def test_amount_falls_back_to_the_home_amount_without_local_amount():
    usd = record(currency="USD", amount_cents=10000, home_amount_cents=9200)
    vector = compare(usd, entry(amount_cents=9250))
    assert (vector["amount"], vector["currency"]) == ("close", "different")


@pytest.mark.parametrize(
    ("entry_day", "kind", "recurring", "level"),
    [
        (date(2025, 1, 10), TRANSACTION, False, "same_day"),
        (date(2025, 1, 11), TRANSACTION, False, "1_day_after"),
        (date(2025, 1, 13), TRANSACTION, False, "2_3_days_after"),
        (date(2025, 1, 8), TRANSACTION, False, "1_3_days_before"),
        (date(2025, 1, 16), TRANSACTION, False, "4_7_days_after"),
        (date(2025, 1, 22), TRANSACTION, False, "8_14_days_after"),
        (date(2025, 1, 30), TRANSACTION, False, "15_30_days_after"),
        (date(2025, 3, 1), TRANSACTION, False, "31_60_days_after"),
        (date(2025, 2, 10), TRANSACTION, True, "one_period_apart"),
        (date(2024, 12, 20), TRANSACTION, False, "4_30_days_before"),
        (date(2025, 10, 1), SUPPLIER_INVOICE, False, "day_month_swapped"),
        (date(2025, 10, 1), TRANSACTION, False, "far"),
        (date(2025, 8, 1), TRANSACTION, False, "far"),
        (None, TRANSACTION, False, "missing"),
    ],
)
def test_date_levels(entry_day, kind, recurring, level):
    base = record(txn_date=date(2025, 1, 10))
    assert compare(base, entry(kind, entry_date=entry_day), recurring=recurring)["date"] == level


@pytest.mark.parametrize(
    ("memo", "label", "level"),
    [
        ("matthias c payment", "matthias c payment", "same"),
        ("matthias c paym", "matthias c payment bgc", "contained"),
        ("matthias c payment", "matthias c paymnt", "close"),
        ("m corvinus donation", "m corvinus dona bgc", "similar"),
        ("m c", "m c donation", "similar"),  # a label cut to initials is only a hint
        ("m c", "z f", "different"),
        ("carrefour market", "leroy merlin", "different"),
        ("", "carrefour", "missing"),
    ],
)
def test_text_levels_compare_the_memo_with_the_bank_label(memo, label, level):
    assert compare(record(memo=memo), entry(label=label))["text"] == level


def _known_vendor(**profile) -> tuple[Profile, Directory]:
    directory = Directory()
    known = Profile(vendor=vendor(), **profile)
    directory.profiles["1"] = known
    return known, directory


@pytest.mark.parametrize(
    ("raw_name", "tax_id", "level"),
    [
        ("ALGOLIA SAS", "FR40303265045", "same_tax_id"),
        ("ALGOLIA SAS", "FR83404833048", "tax_id_conflict"),
        ("PRLV SEPA ALGOLIA", "", "same_counterparty"),
        ("Algolia", "", "same_counterparty"),
        ("Algolya", "", "name_close"),
        ("Zenbox", "", "different"),
    ],
)
def test_counterparty_levels_use_tax_ids_then_history_then_names(raw_name, tax_id, level):
    profile, directory = _known_vendor(
        tax_ids=Counter({"FR40303265045": 3}), entry_keys=Counter({"algolia": 3})
    )
    if level == "name_close":
        profile.entry_keys.clear()
    found = entry(raw_name=raw_name, tax_id=tax_id)
    assert compare(record(), found, profile, directory)["counterparty"] == level


def test_a_name_qonto_used_for_another_vendor_counts_against_unless_the_names_agree():
    directory = Directory()
    directory.key_owners["zenbox"]["2"] = 5
    profile = Profile(vendor=vendor())
    directory.profiles["1"] = profile
    assert compare(record(), entry(raw_name="ZENBOX"), profile, directory)["counterparty"] == (
        "other_counterparty"
    )
    # Two vendors can share a first word: a name that is plainly the record's own still wins.
    directory.key_owners["algolia"]["2"] = 5
    assert compare(record(), entry(raw_name="ALGOLIA SAS"), profile, directory)["counterparty"] in (
        "name_same",
        "name_close",
    )


def test_a_record_without_payee_has_no_counterparty_signal():
    anonymous = record(vendor_id="", vendor_name="", name="", name_key="")
    assert compare(anonymous, entry())["counterparty"] == "missing"


@pytest.mark.parametrize(
    ("entry_reference", "text", "level"),
    [
        ("inv42", "", "exact"),
        ("", "vir inv42 algolia", "in_label"),
        ("inv43", "", "close"),
        ("f2024999", "", "different"),
        ("", "", "missing"),
    ],
)
def test_reference_levels(entry_reference, text, level):
    found = invoice(reference=entry_reference, text=text)
    assert compare(record(reference="inv42"), found)["reference"] == level


def test_a_payment_qonto_matched_to_an_invoice_is_flagged():
    assert compare(record(type="Purchase"), entry(id="t1"))["payment"] == "free"
    assert compare(record(type="Purchase"), entry(id="t1"), paired={"t1"})["payment"] == (
        "settles_an_invoice"
    )
    assert compare(record(), invoice())["payment"] == "missing"


def test_every_level_a_comparison_returns_is_declared():
    for found in (entry(), invoice()):
        vector = compare(record(memo="algolia"), found)
        assert set(vector) == set(LEVELS)
        assert all(level in LEVELS[signal] for signal, level in vector.items())
