"""Every comparison level, on unsaved records and entries, as tables."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from matching.core.compare import (
    LEVELS,
    Context,
    amount_level,
    compare,
    counterparty_level,
    currency_level,
    date_level,
    kind_level,
    reference_level,
    usage_level,
)
from matching.core.counterparty import Directory, Profile
from matching.core.types import SUPPLIER_INVOICE, TRANSACTION

from .builders import entry, record, vendor


@pytest.mark.parametrize(
    ("ours", "theirs", "level"),
    [
        (12000, 12000, "exact"),
        (12000, 12050, "close"),  # within 1.00
        (100000, 100400, "close"),  # within 0.5%
        (100000, 102500, "within_3pct"),
        (-12000, 12000, "sign_flip"),
        (12000, 20000, "different"),
        (12000, -13000, "different"),
        (None, 12000, "missing"),
    ],
)
def test_amount_levels(ours, theirs, level):
    assert amount_level(record(amount_cents=ours), entry(amount_cents=theirs)) == level


def test_amount_uses_the_local_amount_qonto_converted():
    usd = record(currency="USD", amount_cents=10000, home_amount_cents=9200)
    fx = entry(amount_cents=9311, local_amount_cents=10000, local_currency="USD")
    assert amount_level(usd, fx) == "exact"
    assert currency_level(usd, fx) == "converted"


def test_amount_falls_back_to_the_home_amount_without_local_amount():
    usd = record(currency="USD", amount_cents=10000, home_amount_cents=9200)
    assert amount_level(usd, entry(amount_cents=9250)) == "close"
    assert currency_level(usd, entry(amount_cents=9250)) == "different"


@pytest.mark.parametrize(
    ("entry_day", "kind", "recurring", "level"),
    [
        (date(2025, 1, 10), TRANSACTION, False, "same_day"),
        (date(2025, 1, 12), TRANSACTION, False, "1_3_days"),
        (date(2025, 1, 8), TRANSACTION, False, "1_3_days"),
        (date(2025, 1, 17), TRANSACTION, False, "4_10_days"),
        (date(2025, 1, 30), TRANSACTION, False, "11_45_days"),
        (date(2025, 2, 10), TRANSACTION, False, "near_due_date"),
        (date(2025, 2, 10), TRANSACTION, True, "one_period_apart"),
        (date(2025, 2, 10), SUPPLIER_INVOICE, False, "11_45_days"),
        (date(2024, 12, 20), TRANSACTION, False, "before_record"),
        (date(2025, 10, 1), SUPPLIER_INVOICE, False, "day_month_swapped"),
        (date(2025, 8, 1), TRANSACTION, False, "far"),
        (None, TRANSACTION, False, "missing"),
    ],
)
def test_date_levels(entry_day, kind, recurring, level):
    base = record(txn_date=date(2025, 1, 10), due_date=date(2025, 2, 9))
    assert date_level(base, entry(kind, entry_date=entry_day), recurring) == level


def _context(profile: Profile | None = None, owners: dict | None = None) -> Context:
    directory = Directory()
    for key, counts in (owners or {}).items():
        directory.key_owners[key] = Counter(counts)
    return Context(profile or Profile(vendor=vendor()), ["algolia"], directory, set())


VAT = "FR40303265045"


@pytest.mark.parametrize(
    ("profile", "owners", "theirs", "level"),
    [
        (Profile(vendor=vendor(), tax_ids=Counter({VAT: 3})), {}, entry(tax_id=VAT), "same_tax_id"),
        (Profile(vendor=vendor(tax_tail="5045")), {}, entry(tax_id=VAT), "same_tax_id"),
        (
            Profile(vendor=vendor(), tax_ids=Counter({"FR83404833048": 2})),
            {},
            entry(tax_id=VAT),
            "tax_id_conflict",
        ),
        (
            Profile(vendor=vendor(), entry_keys=Counter({"algolia": 4})),
            {},
            entry(),
            "same_counterparty",
        ),
        (None, {"zenbox": {"2": 5}}, entry(raw_name="CB ZENBOX"), "other_counterparty"),
        (None, {}, entry(raw_name="Algolia"), "name_same"),
        (None, {}, entry(raw_name="Algolai"), "name_close"),
        (None, {}, entry(raw_name="Algolia Europe Holdings"), "name_same"),
        (None, {}, entry(raw_name="Algoliacorp"), "name_similar"),
        (None, {}, entry(raw_name="Boulangerie Paul"), "different"),
        (None, {}, entry(raw_name=""), "missing"),
    ],
)
def test_counterparty_levels(profile, owners, theirs, level):
    assert counterparty_level(record(), theirs, _context(profile, owners)) == level


@pytest.mark.parametrize(
    ("ours", "theirs", "level"),
    [
        ("inv42", entry(reference="inv42"), "exact"),
        ("f2024001", entry(text="virsepaalgolia f2024001"), "in_label"),
        ("f2024001", entry(reference="f2024o01"), "close"),
        ("f2024001", entry(reference="zz99"), "different"),
        ("f2024001", entry(reference=""), "missing"),
        ("", entry(reference="inv42"), "missing"),
    ],
)
def test_reference_levels(ours, theirs, level):
    assert reference_level(record(reference=ours, raw_reference=ours), theirs) == level


@pytest.mark.parametrize(
    ("ours", "theirs", "level"),
    [
        ("EUR", entry(), "same"),
        ("", entry(), "missing"),
        ("EUR", entry(currency=""), "missing"),
        ("USD", entry(), "different"),
    ],
)
def test_currency_levels(ours, theirs, level):
    assert currency_level(record(currency=ours), theirs) == level


@pytest.mark.parametrize(
    ("record_type", "kind", "level"),
    [
        ("Bill", SUPPLIER_INVOICE, "bill_invoice"),
        ("Bill", TRANSACTION, "bill_payment"),
        ("Purchase", TRANSACTION, "expense_payment"),
        ("Purchase", SUPPLIER_INVOICE, "expense_invoice"),
        ("VendorCredit", SUPPLIER_INVOICE, "credit_invoice"),
        ("VendorCredit", TRANSACTION, "credit_payment"),
        ("Check", TRANSACTION, "other_payment"),
        ("Check", SUPPLIER_INVOICE, "other_invoice"),
    ],
)
def test_kind_levels(record_type, kind, level):
    assert kind_level(record(type=record_type), entry(kind)) == level


def test_usage_levels():
    ctx = _context()
    ctx.directory.used[(TRANSACTION, "taken")] = "Bill 7"
    ctx.paired.add("pays-invoice")
    assert usage_level(entry(id="free"), ctx) == "unused"
    assert usage_level(entry(id="taken"), ctx) == "already_linked"
    assert usage_level(entry(id="pays-invoice"), ctx) == "paired_payment"


def test_every_level_a_comparison_returns_is_declared():
    vector = compare(record(), entry(), _context())
    assert set(vector) == set(LEVELS)
    assert all(level in LEVELS[signal] for signal, level in vector.items())
