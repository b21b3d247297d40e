"""Properties that hold for any input: probabilities, ranking, one-to-one."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from matching.core import LINK, Policy, build_book, decide, load_prior
from matching.core.assign import EDGE_MIN, assign, first_and_inverse, marginals, stable_order
from matching.core.types import SUPPLIER_INVOICE, TRANSACTION

from .builders import entry, record, vendor

MODEL = load_prior()

amounts = st.integers(min_value=-(10**9), max_value=10**9)
offsets = st.integers(min_value=-120, max_value=120)
names = st.sampled_from(["PRLV SEPA ALGOLIA", "CB ZENBOX", "PAYPAL *ALGO", "", "Algolia SAS"])
refs = st.sampled_from(["", "inv42", "inv43", "f2024001"])
types = st.sampled_from(["Bill", "Purchase", "VendorCredit"])


@st.composite
def books(draw):
    """A few records and a handful of entries around them, some of them twins."""
    base = draw(amounts)
    records = [
        record(
            id=f"r{i}",
            type=draw(types),
            amount_cents=draw(st.one_of(st.just(base), amounts)),
            home_amount_cents=None,
            txn_date=date(2025, 1, 10) + timedelta(days=draw(offsets)),
            reference=draw(refs),
            vendor_id=draw(st.sampled_from(["1", ""])),
        )
        for i in range(draw(st.integers(min_value=1, max_value=4)))
    ]
    for r in records:
        r.home_amount_cents = r.amount_cents
    entries = [
        entry(
            draw(st.sampled_from([TRANSACTION, SUPPLIER_INVOICE])),
            id=f"e{i}",
            amount_cents=draw(st.one_of(st.just(base), amounts)),
            entry_date=date(2025, 1, 10) + timedelta(days=draw(offsets)),
            raw_name=draw(names),
            reference=draw(refs),
        )
        for i in range(draw(st.integers(min_value=0, max_value=8)))
    ]
    return records, entries


def _run(records, entries):
    book = build_book([vendor()], [], [], entries)
    return decide(book, records, MODEL, Policy())


@settings(max_examples=150, deadline=None)
@given(books())
def test_the_proposal_is_the_most_likely_action_and_alternatives_follow_in_order(case):
    records, entries = case
    for decision in _run(records, entries):
        ranked = [decision.confidence] + [alt.confidence for alt in decision.alternatives]
        assert all(0.0 <= p <= 1.0 for p in ranked)
        assert ranked == sorted(ranked, reverse=True), ranked
        assert sum(ranked) <= 1.0 + 1e-3
        actions = [(decision.action, decision.target)] + [
            (alt.action, alt.target) for alt in decision.alternatives
        ]
        assert len(actions) == len({(a, t.id if t else None) for a, t in actions})


@settings(max_examples=150, deadline=None)
@given(books())
def test_every_target_is_the_kind_its_record_can_be(case):
    records, entries = case
    for decision, rec in zip(_run(records, entries), records, strict=True):
        wanted = TRANSACTION if rec.type == "Purchase" else SUPPLIER_INVOICE
        targets = [decision.target] + [alt.target for alt in decision.alternatives]
        assert all(t is None or t.type == wanted for t in targets)


@settings(max_examples=150, deadline=None)
@given(books())
def test_no_entry_is_auto_linked_to_two_records(case):
    records, entries = case
    decisions = _run(records, entries)
    auto = [d.target.id for d in decisions if d.action == LINK and d.auto]
    assert len(auto) == len(set(auto))
    shared = [d for d in decisions if d.action == LINK]
    for d in shared:
        others = [o for o in shared if o is not d and o.target == d.target]
        if others:  # a shared proposal is a person's call, said so
            assert not d.auto and d.gates_failed


def _pairs(rows: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each record's (entry, score) options as the engine's pair arrays, record by record."""
    options = [(r, e, score) for r, row in enumerate(rows) for e, score in dict(row).items()]
    return (
        np.array([r for r, _, _ in options], dtype=np.int64),
        np.array([e for _, e, _ in options], dtype=np.int64),
        np.array([score for _, _, score in options], dtype=float),
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 5), st.floats(-30, 60)), min_size=0, max_size=4),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.floats(-30, 10), min_size=8, max_size=8),
)
def test_one_to_one_probabilities_respect_the_constraint(rows, nones):
    record_of_pair, entry_of_pair, scores = _pairs(rows)
    none = np.array(nones[: len(rows)])
    pair, none_p = marginals(record_of_pair, entry_of_pair, scores, none)
    totals = none_p + np.bincount(record_of_pair, weights=pair, minlength=len(rows))
    assert np.allclose(totals, 1.0, atol=1e-6)
    if len(pair):
        claims = np.bincount(entry_of_pair, weights=pair)
        assert (claims <= 1.05).all()
    chosen = assign(record_of_pair, entry_of_pair, np.log(np.maximum(pair, 1e-300)), np.log(none_p))
    taken = [int(entry_of_pair[c]) for c in chosen if c >= 0]
    assert len(taken) == len(set(taken))
    assert all(c < 0 or record_of_pair[c] == r for r, c in enumerate(chosen))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(0, 5), st.floats(float(np.log(EDGE_MIN)) + 1e-6, 0)),
            max_size=4,
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.floats(-12, 0), min_size=8, max_size=8),
)
def test_the_assignment_is_the_batchs_best(rows, nones):
    """Its total log score is the optimum of a dense assignment over every option (each record
    one of its pairs or its own "none"), so leaving out pairs worse than "none" loses nothing."""
    record_of_pair, entry_of_pair, scores = _pairs(rows)
    pair_score, none_score = scores, np.array(nones[: len(rows)])
    chosen = assign(record_of_pair, entry_of_pair, pair_score, none_score)
    total = sum(pair_score[c] if c >= 0 else none_score[r] for r, c in enumerate(chosen))
    cost = np.full((len(rows), 6 + len(rows)), 1e6)
    cost[record_of_pair, entry_of_pair] = -pair_score
    cost[np.arange(len(rows)), 6 + np.arange(len(rows))] = -none_score
    best_rows, best_columns = linear_sum_assignment(cost)
    assert np.isclose(total, -cost[best_rows, best_columns].sum(), atol=1e-9)


@given(st.lists(st.integers(0, 2**40), max_size=300) | st.lists(st.integers(0, 40)))
def test_stable_order_is_numpys_stable_argsort(values):
    values = np.array(values, dtype=np.int64)
    assert np.array_equal(stable_order(values), np.argsort(values, kind="stable"))


@given(st.lists(st.integers(0, 2**40), max_size=300) | st.lists(st.integers(0, 40)))
def test_first_and_inverse_is_numpys_unique(values):
    values = np.array(values, dtype=np.int64)
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    found_first, found_inverse = first_and_inverse(values)
    assert np.array_equal(found_first, first)
    assert np.array_equal(found_inverse, inverse.reshape(-1))
