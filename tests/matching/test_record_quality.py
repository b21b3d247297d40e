"""A "create" with no candidate is only as sure as the record is good: thin records are not auto."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from matching.core import Policy, build_book, decide, load_prior
from matching.core.engine import QUALITY_AUTO, QUALITY_REVIEW, record_quality
from matching.core.types import TRANSACTION, HistoryLink

from .builders import entry, record, vendor


def _history(count: int) -> list[HistoryLink]:
    """Past Algolia bills (their payments linked in Qonto: evidence, not the bills themselves)."""
    return [
        HistoryLink(record(id=f"h{i}", txn_date=date(2024, 6, 1 + i)), TRANSACTION, f"p{i}")
        for i in range(count)
    ]


def _past_payments(count: int):
    return [entry(id=f"p{i}", entry_date=date(2024, 6, 1 + i)) for i in range(count)]


def _create(rec, history=(), vendors=None):
    book = build_book(
        vendors if vendors is not None else [vendor()],
        [],
        list(history),
        _past_payments(len(history)),
    )
    [decision] = decide(book, [rec], load_prior(), Policy())
    assert decision.action == "create" and decision.target is None
    return decision


def test_a_known_vendors_complete_bill_with_no_candidate_is_created_automatically():
    decision = _create(record(amount_cents=98765, home_amount_cents=98765), _history(5))

    assert decision.auto and decision.confidence >= 0.85
    assert not decision.gates_failed


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"reference": "", "raw_reference": ""}, "no invoice number"),
        ({"vendor_id": "77", "vendor_name": "Zeta"}, "vendor unknown"),
    ],
)
def test_a_thin_record_with_no_candidate_is_reviewed_not_created_alone(overrides, why):
    rec = record(amount_cents=98765, home_amount_cents=98765, **overrides)

    decision = _create(rec, vendors=[vendor()])

    assert not decision.auto and decision.confidence < 0.85
    assert any("too thin to create alone" in g and why in g for g in decision.gates_failed)
    assert any("too thin" in r.detail for r in decision.reasons if r.signal == "gate")


def test_a_record_with_neither_vendor_nor_number_nor_date_is_refused():
    rec = record(
        amount_cents=98765,
        home_amount_cents=98765,
        vendor_id="",
        name="",
        name_key="",
        reference="",
        raw_reference="",
        txn_date=None,
        problems=("no readable date", "no vendor"),
    )
    rec = replace(rec, vendor_name="")  # the builder always names a vendor

    decision = _create(rec, vendors=[])

    assert decision.confidence < 0.55


def test_record_quality_grows_with_fields_counterparty_and_policy_fit():
    from matching.core.counterparty import Profile

    bare = replace(record(reference="", vendor_id=""), vendor_name="")
    full = record()
    unknown, known = Profile(), Profile(vendor=vendor(), records=5)

    assert record_quality(bare, unknown, 0.0)[0] < QUALITY_REVIEW
    no_number, new_vendor = record(reference=""), Profile(vendor=vendor())
    assert QUALITY_REVIEW <= record_quality(no_number, new_vendor, 0.0)[0] < QUALITY_AUTO
    assert record_quality(full, known, 0.0)[0] >= QUALITY_AUTO
    assert record_quality(full, known, 1.0)[0] > record_quality(full, known, 0.0)[0]
