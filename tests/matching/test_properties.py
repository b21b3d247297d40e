"""Properties that hold for any input: bounds, monotonicity, one-to-one."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.core import LINK, Policy, build_book, decide, load_default
from matching.core.assign import greedy

from .builders import entry, record, vendor

MODEL = load_default()

amounts = st.integers(min_value=-(10**9), max_value=10**9)
offsets = st.integers(min_value=-120, max_value=120)
names = st.sampled_from(["PRLV SEPA ALGOLIA", "CB ZENBOX", "PAYPAL *ALGO", "", "Algolia SAS"])
refs = st.sampled_from(["", "inv42", "inv43", "f2024001"])


@st.composite
def books(draw):
    """A record and a handful of random entries around it."""
    amount = draw(amounts)
    rec = record(amount_cents=amount, home_amount_cents=amount, reference=draw(refs))
    entries = [
        entry(
            id=f"e{i}",
            amount_cents=draw(st.one_of(st.just(amount), amounts)),
            entry_date=date(2025, 1, 10) + timedelta(days=draw(offsets)),
            raw_name=draw(names),
            reference=draw(refs),
        )
        for i in range(draw(st.integers(min_value=0, max_value=6)))
    ]
    return rec, entries


def _run(records, entries):
    book = build_book([vendor()], [], [], entries)
    return decide(book, records, MODEL, Policy())


@settings(max_examples=60, deadline=None)
@given(books())
def test_confidence_is_a_probability(case):
    rec, entries = case
    [decision] = _run([rec], entries)
    assert 0.0 <= decision.confidence <= 1.0
    assert all(0.0 <= alt.confidence <= 1.0 for alt in decision.alternatives)


@settings(max_examples=60, deadline=None)
@given(books())
def test_an_exact_reference_never_lowers_the_top_candidates_confidence(case):
    rec, entries = case
    rec.reference, rec.raw_reference = "zq77801", "ZQ-77801"
    [before] = _run([rec], entries)
    if before.action != LINK:
        return
    for e in entries:
        if e.id == before.target.id:
            e.reference = "zq77801"
    [after] = _run([rec], entries)
    assert after.action == LINK and after.target.id == before.target.id
    # One rounding step of slack, and only there: near certainty the calibrator's collinear
    # evidence features (p, match weight and the capped logit) can net a 0.0001 drop (0.9994 ->
    # 0.9993, 5 of 881 link cases measured); docs/matching.md, "Known limits", has the fix.
    assert after.confidence >= before.confidence - 1e-4 - 1e-9
    assert after.confidence >= before.confidence - 1e-9 or before.confidence > 0.99


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12), books())
def test_no_entry_is_ever_given_to_two_records(amount_offsets, case):
    _, entries = case
    records = [
        record(id=f"r{i}", amount_cents=12000 + k, home_amount_cents=12000 + k)
        for i, k in enumerate(amount_offsets)
    ]
    entries = entries + [entry(id=f"x{i}", amount_cents=12000 + i) for i in range(5)]
    targets = [d.target.id for d in _run(records, entries) if d.action == LINK]
    assert len(targets) == len(set(targets))


@given(
    st.lists(
        st.lists(st.tuples(st.floats(0.01, 1), st.integers(0, 5)), max_size=4),
        min_size=1,
        max_size=10,
    )
)
def test_greedy_assignment_is_one_to_one(options):
    def best(i, taken):
        for p, pos in sorted(options[i], reverse=True):
            if pos not in taken:
                return p, pos
        return 1.0, None

    chosen = [pos for pos, _ in greedy(len(options), best) if pos is not None]
    assert len(chosen) == len(set(chosen))
