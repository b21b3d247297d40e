"""Blocking by counterparty key gives what a plain reading of its rule gives, whichever way
the index answers (a crowded key is read by week and amount, the others by date)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.core import blocking
from matching.core.blocking import (
    AMOUNT_SCALE,
    CAP_PER_RULE,
    DAY_SCALE,
    KEY_RATIO,
    NEAR_WINDOW,
    NO_CENTER,
    NO_DATE,
    PARTY_WINDOW,
    UNREAD_GAP,
)

CAP = 3
DAY0 = 739_000  # an ordinal day in 2024


def _expected(table, days, amounts, key, center, target, common):
    """The rule as written in `_Keyed.best`, one query at a time, with Python lists."""
    own = sorted(table.get(key, []), key=lambda i: days[i])  # stable: list order within a day
    if not own:
        return []
    if center == NO_CENTER:
        rows = [i for i in own][-CAP_PER_RULE:]
        scored = [(0.0, i) for i in rows]
    else:
        low, high = NEAR_WINDOW if len(own) > common else PARTY_WINDOW
        scored = []
        for i in own:
            if days[i] == NO_DATE or not low <= days[i] - center <= high:
                continue
            gap = 0.0
            if target > 0:
                gap = UNREAD_GAP if math.isnan(amounts[i]) else abs(amounts[i] - target) / target
                if gap > KEY_RATIO:
                    continue
            scored.append((gap / AMOUNT_SCALE + abs(days[i] - center) / DAY_SCALE, i))
    if len(scored) <= CAP:
        return [i for _, i in scored]
    order = sorted(range(len(scored)), key=lambda n: (scored[n][0], n))
    return [scored[n][1] for n in order[:CAP]]


@st.composite
def tables(draw):
    size = draw(st.integers(min_value=1, max_value=80))
    days = np.array(
        [draw(st.one_of(st.just(NO_DATE), st.integers(DAY0, DAY0 + 40))) for _ in range(size)],
        dtype=np.int64,
    )
    amounts = np.array(
        [
            draw(
                st.one_of(
                    st.just(math.nan),
                    # Ties; amounts either side of FIRST_RATIO and of KEY_RATIO from a target.
                    st.sampled_from([1000.0, 1010.0, 1090.0, 1120.0, 880.0, 1500.0, 2000.0]),
                    st.integers(300, 3000).map(float),
                    st.integers(850, 1150).map(float),
                )
            )
            for _ in range(size)
        ]
    )
    keys = ["payment", "acme", "zen"]
    table: dict[str, list[int]] = {}
    # Each key's list in date order, as build_index makes them.
    for i in sorted(range(size), key=lambda i: days[i]):
        table.setdefault(draw(st.sampled_from(keys)), []).append(i)
    queries = [
        (
            draw(st.sampled_from([*keys, "unknown"])),
            draw(st.one_of(st.just(NO_CENTER), st.integers(DAY0 - 5, DAY0 + 45))),
            draw(st.sampled_from([0.0, 1000.0, 1003.0, 1800.0])),
        )
        for _ in range(draw(st.integers(min_value=1, max_value=12)))
    ]
    left_out = draw(st.lists(st.integers(0, size - 1), max_size=5, unique=True))
    return table, days, amounts, queries, draw(st.integers(0, 20)), left_out


def _check(case) -> None:
    table, days, amounts, queries, common, left_out = case
    keyed = blocking._keyed(table, days, amounts)
    kept = {k: [i for i in v if i not in left_out] for k, v in table.items()}
    keys, centers, targets = zip(*queries, strict=True)
    for index, lists in ((keyed, table), (keyed.without(np.array(left_out)), kept)):
        found = index.best(list(keys), np.array(centers, np.int64), np.array(targets), common, CAP)
        expected = [_expected(lists, days, amounts, k, c, t, common) for k, c, t in queries]
        assert found == expected


@settings(max_examples=300, deadline=None)
@given(tables())
def test_each_key_query_keeps_what_the_rule_says_in_its_order(case):
    _check(case)


@st.composite
def crowded_tables(draw):
    """One crowded key, its entries a little either side of FIRST_RATIO from the query's
    amount and days either side of it: where reading the close amounts first is not enough."""
    size = draw(st.integers(min_value=1, max_value=40))
    days = np.array([draw(st.integers(DAY0, DAY0 + 30)) for _ in range(size)], dtype=np.int64)
    amounts = np.array([float(draw(st.integers(800, 1200))) for _ in range(size)])
    table = {"payment": sorted(range(size), key=lambda i: days[i])}
    queries = [("payment", DAY0 + 15, 1000.0)]
    return table, days, amounts, queries, 0, []


@settings(max_examples=300, deadline=None)
@given(crowded_tables())
def test_a_crowded_key_keeps_its_best_entries_however_far_in_amount(case):
    _check(case)
