"""The engine end to end on unsaved books: actions, gates, reasons, enrichment, one-to-one."""

from __future__ import annotations

from datetime import date

import pytest

from matching.core import (
    CREATE,
    LINK,
    Account,
    HistoryLink,
    Policy,
    build_book,
    decide,
    load_default,
)
from matching.core.gates import failed_gates
from matching.core.types import SUPPLIER_INVOICE, TRANSACTION

from .builders import entry, invoice, record, vendor

VAT = "FR40303265045"


def _history(count: int = 6, account: str = "10") -> tuple[list, list]:
    """Six past bills from Algolia, each linked to an invoice with its VAT number."""
    links, entries = [], []
    for month in range(1, count + 1):
        past = record(
            id=f"h{month}",
            txn_date=date(2024, month, 5),
            reference=f"old{month}",
            account_ids=(account,),
        )
        entries.append(
            invoice(
                id=f"old-{month}",
                entry_date=date(2024, month, 5),
                reference=f"old{month}",
                tax_id=VAT,
            )
        )
        links.append(HistoryLink(past, SUPPLIER_INVOICE, f"old-{month}"))
    return links, entries


ACCOUNTS = [
    Account("10", "Maintenance logiciels", "6156", "Expense"),
    Account("90", "Uncategorized Expense", "", "Expense"),
]


def _decide(records, entries, history=(), policy=None):
    book = build_book([vendor()], ACCOUNTS, list(history), list(entries))
    return decide(book, list(records), load_default(), policy or Policy())


def test_a_clean_match_is_linked_with_high_confidence_and_reasons():
    links, old = _history()
    [decision] = _decide(
        [record(account_ids=("90",))], [*old, invoice(id="new", tax_id=VAT)], links
    )
    assert (decision.action, decision.target.id) == (LINK, "new")
    assert decision.confidence >= 0.85 and decision.auto
    signals = {reason.signal for reason in decision.reasons}
    assert {"amount", "date", "counterparty", "reference", "runner_up", "ledger"} <= signals


def test_enrichment_learns_tax_id_and_usual_ledger_from_history():
    links, old = _history()
    [decision] = _decide([record(account_ids=("90",))], [*old, invoice(id="new")], links)
    party = decision.counterparty
    assert party.tax_id == VAT
    assert party.ledger_account == "6156"
    assert party.provenance["ledger_account"] == "6 of 6 prior bills from this vendor"
    assert party.domain == "algolia.com"
    assert party.legal_entity == "Algolia SAS"


def test_a_record_with_no_candidate_is_created_with_a_reason():
    [decision] = _decide([record()], [entry(amount_cents=99, entry_date=date(2023, 1, 1))])
    assert decision.action == CREATE and decision.target is None
    assert decision.reasons[0].signal == "candidates"


@pytest.mark.parametrize(
    "obj",
    [
        None,
        {},
        {"Id": "1"},
        {"Id": "2", "TotalAmt": "lots"},
        {"Id": "3", "TotalAmt": 1e300},
        {"Id": "4", "TotalAmt": -5, "TxnDate": "2025-13-45", "VendorRef": "x"},
    ],
)
def test_a_malformed_record_gets_a_create_for_review_never_a_crash(obj):
    from matching.core import normalise

    [decision] = _decide([normalise.record("Bill", obj)], [entry()])
    assert not decision.auto
    assert decision.confidence < 0.85
    assert any("malformed" in r.detail for r in decision.reasons)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("closed", "period closed"),
        ("currency", "currency differs"),
        ("tax", "tax ID conflicts"),
        ("used", "already linked"),
    ],
)
def test_each_gate_sends_to_review_with_its_reason(case, expected):
    rec = record(txn_date=date(2025, 1, 10))
    vector = {"currency": "same", "counterparty": "same_tax_id"}
    policy = Policy()
    used_by = ""
    if case == "closed":
        policy = Policy(closed_until=date(2025, 1, 31))
    elif case == "currency":
        vector["currency"] = "different"
    elif case == "tax":
        vector["counterparty"] = "tax_id_conflict"
    else:
        used_by = "Bill 7"
    gates = failed_gates(rec, LINK, vector, used_by, policy)
    assert len(gates) == 1 and expected in gates[0]


def test_a_failed_gate_caps_confidence_below_auto_and_says_why():
    [decision] = _decide(
        [record()], [invoice(id="new")], policy=Policy(closed_until=date(2025, 6, 30))
    )
    assert not decision.auto and decision.confidence < 0.85
    assert any(r.signal == "gate" and "period closed" in r.detail for r in decision.reasons)


def test_one_entry_is_never_given_to_two_records():
    twins = [record(id="a"), record(id="b", reference="")]
    decisions = _decide(twins, [invoice(id="only")])
    linked = [d.target.id for d in decisions if d.action == LINK]
    assert linked.count("only") == 1


def test_two_vendors_same_amount_same_week_go_to_their_own_counterparty():
    other = vendor(
        id="2", display_name="Zenbox", company_name="Zenbox SARL", name="zenbox", name_key="zenbox"
    )
    algolia = record(id="a", reference="", txn_date=date(2025, 1, 10))
    zenbox = record(
        id="z", vendor_id="2", vendor_name="Zenbox SARL", reference="", txn_date=date(2025, 1, 12)
    )
    entries = [
        entry(id="t-zen", raw_name="PRLV SEPA ZENBOX", entry_date=date(2025, 1, 12)),
        entry(id="t-alg", raw_name="PRLV SEPA ALGOLIA", entry_date=date(2025, 1, 11)),
    ]
    book = build_book([vendor(), other], ACCOUNTS, [], entries)
    decisions = {d.id: d for d in decide(book, [algolia, zenbox], load_default(), Policy())}
    assert decisions["a"].target.id == "t-alg"
    assert decisions["z"].target.id == "t-zen"


def test_a_purchase_is_linked_to_the_card_payment_qonto_matched_to_its_receipt():
    purchase = record(type="Purchase", reference="")
    receipt = invoice(id="receipt", linked_ids=("card",))
    card = entry(TRANSACTION, id="card", raw_name="CB ALGOLIA")
    [decision] = _decide([purchase], [receipt, card])
    assert decision.target.id == "card"
    assert any(r.signal == "paired" for r in decision.reasons)


def test_alternatives_are_ranked_and_never_exceed_what_is_left():
    entries = [entry(id=f"t{i}", entry_date=date(2025, 1, 10 + i)) for i in range(4)]
    [decision] = _decide([record(reference="")], entries)
    confidences = [a.confidence for a in decision.alternatives]
    assert confidences == sorted(confidences, reverse=True)
    assert decision.confidence + sum(confidences) <= 1.0001
    assert len(decision.alternatives) <= 5


def test_fx_card_spend_links_through_the_local_amount():
    usd = record(
        type="Purchase", currency="USD", amount_cents=10000, home_amount_cents=9200, reference=""
    )
    fx = entry(
        id="fx",
        amount_cents=9311,
        local_amount_cents=10000,
        local_currency="USD",
        raw_name="CB ALGOLIA",
    )
    [decision] = _decide([usd], [fx])
    assert decision.target.id == "fx"
    assert any(r.signal == "currency" and "converted" in r.detail for r in decision.reasons)
