"""The engine on unsaved books: targets by kind, ambiguity, one-to-one, gates, reasons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from matching.core import (
    CREATE,
    LINK,
    Account,
    HistoryLink,
    Policy,
    build_book,
    decide,
    load_prior,
    normalise,
)
from matching.core.types import SUPPLIER_INVOICE, TRANSACTION

from .builders import entry, invoice, record, vendor

VAT = "FR40303265045"
ACCOUNTS = [
    Account("10", "Maintenance logiciels", "6156", "Expense"),
    Account("90", "Uncategorized Expense", "", "Expense"),
]


def _history(count: int = 6, account: str = "10") -> tuple[list, list]:
    """Past bills from Algolia, each linked to its supplier invoice carrying the VAT number."""
    links, entries = [], []
    for month in range(1, count + 1):
        past = record(
            id=f"h{month}",
            txn_date=date(2024, month, 5),
            reference=f"old{month}",
            account_ids=(account,),
            amount_cents=10000 + month,
            home_amount_cents=10000 + month,
        )
        entries.append(
            invoice(
                id=f"old-{month}",
                entry_date=date(2024, month, 5),
                reference=f"old{month}",
                tax_id=VAT,
                amount_cents=10000 + month,
            )
        )
        links.append(HistoryLink(past, SUPPLIER_INVOICE, f"old-{month}"))
    return links, entries


def _decide(records, entries, history=(), policy=None):
    book = build_book([vendor()], ACCOUNTS, list(history), list(entries))
    return decide(book, list(records), load_prior(), policy or Policy())


def test_a_clean_bill_is_linked_to_its_supplier_invoice_with_reasons():
    [decision] = _decide([record()], [invoice()])
    assert decision.action == LINK and decision.target.type == SUPPLIER_INVOICE
    assert decision.confidence >= 0.85 and decision.auto
    signals = {r.signal: r for r in decision.reasons}
    assert signals["amount"].detail == "same amount: 120.00 EUR"
    assert signals["amount"].level == "exact" and signals["amount"].weight > 0
    assert signals["reference"].detail == "same invoice number INV-42"
    assert signals["date"].detail == "same day"


def test_a_bill_is_never_linked_to_a_bank_transaction():
    """A payment is evidence about a bill, never the bill: with only its payment in Qonto, the
    bill is uploaded (Qonto pairs the uploaded invoice with the payment)."""
    [decision] = _decide([record()], [entry(TRANSACTION, id="pay")])
    assert decision.action == CREATE and decision.target is None
    assert all(
        alt.target is None or alt.target.type == SUPPLIER_INVOICE for alt in decision.alternatives
    )


def test_a_purchase_is_linked_to_its_transaction_never_to_an_invoice():
    purchase = record(type="Purchase", reference="")
    [decision] = _decide([purchase], [invoice(id="inv"), entry(TRANSACTION, id="card")])
    assert decision.action == LINK and decision.target == decision.target.__class__(
        TRANSACTION, "card"
    )


def test_a_purchase_without_payee_is_matched_by_its_memo_amount_and_date():
    bank_feed = record(
        type="Purchase",
        vendor_id="",
        vendor_name="",
        name="",
        name_key="",
        reference="",
        memo="matthias c paym",
    )
    ours = entry(id="ours", raw_name="MATTHIAS C payment BGC", entry_date=date(2025, 1, 11))
    other = entry(id="other", raw_name="Z F BGC", amount_cents=12300, entry_date=date(2025, 1, 11))
    [decision] = _decide([bank_feed], [ours, other])
    assert decision.action == LINK and decision.target.id == "ours"
    assert decision.confidence >= 0.55  # matched, not refused
    assert not any("no vendor" in gate for gate in decision.gates_failed)


def _twins(days: list[int]) -> list:
    return [
        invoice(id=f"seat{i}", reference="", entry_date=date(2025, 1, 10) + timedelta(days=d))
        for i, d in enumerate(days)
    ]


def test_indistinguishable_entries_share_the_probability_and_go_to_review():
    """Same vendor, same amount, a few days apart, nothing else to tell them apart."""
    [decision] = _decide([record(reference="")], _twins([0, 0]))
    assert decision.action == LINK
    assert not decision.auto and decision.confidence < 0.6
    assert any("look the same" in gate for gate in decision.gates_failed)
    [runner] = [a for a in decision.alternatives if a.target and a.target.id.startswith("seat")]
    assert runner.confidence > 0.3  # the other seat keeps its share
    # A day's difference is some evidence, not proof: still a person's call.
    [dated] = _decide([record(reference="", txn_date=date(2025, 1, 11))], _twins([0, 2]))
    assert not dated.auto and dated.alternatives[0].confidence > 0.1


def test_one_to_one_assignment_gives_near_twins_their_own_entries():
    early = record(id="a", reference="", txn_date=date(2025, 1, 10))
    late = record(id="b", reference="", txn_date=date(2025, 1, 20))
    decisions = _decide([early, late], _twins([0, 10]))
    assert [d.target.id for d in decisions] == ["seat0", "seat1"]


def test_two_records_for_one_entry_do_not_both_take_it():
    first, second = record(id="a", reference=""), record(id="b", reference="")
    decisions = _decide([first, second], [invoice(reference="")])
    linked = [d for d in decisions if d.action == LINK and d.target.id == "e1"]
    assert len([d for d in linked if d.auto]) <= 1
    assert all(d.confidence < 0.85 for d in decisions)  # a person settles which one


def test_an_entry_linked_in_the_history_is_never_proposed_again():
    links, entries = _history()
    again = record(
        id="new",
        txn_date=date(2024, 3, 5),
        reference="old3",
        amount_cents=10003,
        home_amount_cents=10003,
    )
    [decision] = _decide([again], entries, links)
    assert decision.target is None or decision.target.id != "old-3"
    assert all(alt.target is None or alt.target.id != "old-3" for alt in decision.alternatives)


def test_enrichment_learns_tax_id_and_usual_ledger_from_history():
    links, entries = _history()
    new = record(id="n1", account_ids=("90",), reference="", txn_date=date(2025, 1, 10))
    [decision] = _decide([new], entries, links)
    assert decision.counterparty.tax_id == VAT
    assert decision.counterparty.ledger_account == "6156"
    assert "6 of 6 prior bills" in decision.counterparty.provenance["ledger_account"]


@pytest.mark.parametrize(
    ("overrides", "found", "policy", "expected"),
    [
        ({}, {"tax_id": "FR83404833048"}, Policy(), "tax ID conflicts"),
        ({"currency": "USD"}, {"currency": "EUR"}, Policy(), "currency differs"),
        ({}, {}, Policy(closed_until=date(2025, 1, 31)), "period closed"),
    ],
)
def test_each_gate_sends_a_strong_match_to_review_with_its_reason(
    overrides, found, policy, expected
):
    links, entries = _history()
    [decision] = _decide([record(**overrides)], [*entries, invoice(**found)], links, policy)
    assert not decision.auto and decision.confidence < policy.auto_threshold
    assert any(expected in gate for gate in decision.gates_failed)
    assert any(r.signal == "gate" and expected in r.detail for r in decision.reasons)


@pytest.mark.parametrize(
    "obj",
    [
        {"Id": "9", "VendorRef": {"value": "1"}},
        {"Id": "9", "TotalAmt": "abc", "TxnDate": "31/02/2025"},
        {"Id": "9", "TotalAmt": 10, "TxnDate": "9999-01-01", "Line": "nope"},
        "not an object",
    ],
)
def test_a_record_with_nothing_to_search_with_is_created_for_review_never_a_crash(obj):
    broken = normalise.record("Bill", obj)
    [decision] = _decide([broken], [invoice()])
    assert decision.action == CREATE and not decision.auto
    assert any("malformed" in gate for gate in decision.gates_failed)


def test_fx_card_spend_links_through_the_local_amount():
    usd = record(
        type="Purchase", currency="USD", amount_cents=5000, home_amount_cents=4600, reference=""
    )
    fx = entry(id="fx", amount_cents=4650, local_amount_cents=5000, local_currency="USD")
    [decision] = _decide([usd], [fx])
    assert decision.action == LINK and decision.target.id == "fx"
    signals = {r.signal: r.level for r in decision.reasons}
    assert (signals["amount"], signals["currency"]) == ("exact", "converted")


def test_a_card_expense_does_not_take_the_payment_of_a_bill_of_the_same_day_and_amount():
    bill = record(id="bill", reference="")
    card = record(id="card", type="Purchase", reference="")
    decisions = _decide([bill, card], [entry(TRANSACTION, id="bank")])
    purchase = next(d for d in decisions if d.id == "card")
    assert not purchase.auto
    assert any("payment of Bill bill" in gate for gate in purchase.gates_failed)


def test_alternatives_are_ranked_below_the_proposal_and_within_what_is_left():
    [decision] = _decide([record(reference="")], _twins([0, 2, 5]))
    ranked = [decision.confidence] + [alt.confidence for alt in decision.alternatives]
    assert ranked == sorted(ranked, reverse=True)
    assert sum(alt.confidence for alt in decision.alternatives) <= 1 - decision.confidence + 1e-6
