"""Blocking: the few Qonto entries worth comparing with a record, never all of them.

A record's candidates are the union of four rules, each capped to its best few:
(a) the same amount (or converted amount) within -60/+90 days, closest dates first;
(b) an entry under one of the record's counterparty keys (its vendor's name, the names Qonto
    used for that vendor before) or whose label starts like the record's memo, within +-45
    days, closest in amount and date first;
(c) the same invoice number;
(d) an amount within 3% and within 10 days, closest first (fees, FX, short payments);
(e) the amount with or without French VAT within 10 days, and the vendor's VAT numbers.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

import numpy as np

from .compare import VAT_FACTORS
from .types import Entry, Record

# Windows in days, entry date minus record date: payments follow bills, receipts precede entry.
AMOUNT_WINDOW = (-60, 90)
PARTY_WINDOW = (-45, 45)
NEAR_WINDOW = (-10, 10)
NEAR_RATIO = 0.03
CAP_PER_RULE = 12
CAP_KEYS = 8  # entries kept per counterparty or memo key (a record has several)
COMMON_KEY_SHARE = 0.02  # keys on more entries than this share are too common to block on
COMMON_KEY_MIN = 300
UNREAD_GAP = 0.05  # an invoice whose total the scanner missed ranks as if 5% off
KEY_RATIO = 0.5  # amounts further apart than this share do not come in through a key
FIRST_RATIO = 0.1  # a crowded key's query first reads the entries this close in amount
NO_DATE = -1
# How rule (b) and (d) rank: a 5% amount gap costs as much as a week.
AMOUNT_SCALE = 0.05
DAY_SCALE = 7.0


@dataclass(slots=True)
class _Bucket:
    """Entries under one key, sorted by date so that a window is two binary searches."""

    days: np.ndarray
    items: np.ndarray
    amounts: np.ndarray  # absolute cents, NaN when unread


_WEEK_SHIFT = 1 << 40  # above any amount in cents QuickBooks can hold (10 integer digits)


@dataclass(slots=True)
class _Weeks:
    """Dated entries with an amount keyed by (week, amount), so that "within 3% and 10 days"
    for a whole batch of records is two binary searches per record and week."""

    keys: np.ndarray  # week * _WEEK_SHIFT + absolute cents, sorted
    amounts: np.ndarray
    days: np.ndarray
    items: np.ndarray

    def near(self, centers: np.ndarray, amounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (day, amount) query, the CAP_PER_RULE entries within NEAR_RATIO of the
        amount and NEAR_WINDOW of the day, best first (a 5% gap costs as much as a week; ties by
        date, then position): as the queries' numbers and the entries, query after query."""
        if not len(centers) or not len(self.keys):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        first = (centers + NEAR_WINDOW[0]) // 7
        weeks = (centers + NEAR_WINDOW[1]) // 7 - first + 1
        query = np.repeat(np.arange(len(centers)), weeks)
        week = first[query] + (np.arange(len(query)) - np.repeat(np.cumsum(weeks) - weeks, weeks))
        low = np.ceil(amounts[query] * (1 - NEAR_RATIO)).astype(np.int64)
        high = np.floor(amounts[query] * (1 + NEAR_RATIO)).astype(np.int64)
        lo = np.searchsorted(self.keys, week * _WEEK_SHIFT + low, "left")
        hi = np.searchsorted(self.keys, week * _WEEK_SHIFT + high, "right")
        sizes = np.maximum(hi - lo, 0)
        owner = np.repeat(query, sizes)
        rows = np.repeat(lo - (np.cumsum(sizes) - sizes), sizes) + np.arange(int(sizes.sum()))
        days = self.days[rows]
        inside = (
            np.abs(days - centers[owner] - (NEAR_WINDOW[0] + NEAR_WINDOW[1]) / 2)
            <= (NEAR_WINDOW[1] - NEAR_WINDOW[0]) / 2
        )
        owner, rows, days = owner[inside], rows[inside], days[inside]
        amount = amounts[owner]
        score = np.abs(self.amounts[rows] - amount) / amount / AMOUNT_SCALE + (
            np.abs(days - centers[owner]) / DAY_SCALE
        )
        # Best first within each query: one sort of "query + score" (a score stays below 4).
        order = np.argsort(owner * 4.0 + np.minimum(score, 3.99), kind="stable")
        owner, items = owner[order], self.items[rows[order]]
        counts = np.bincount(owner, minlength=len(centers))
        kept = np.arange(len(owner)) - (np.cumsum(counts) - counts)[owner] < CAP_PER_RULE
        return owner[kept], items[kept]


def _weeks(dated: _Bucket) -> _Weeks:
    keys = (dated.days // 7) * _WEEK_SHIFT + dated.amounts.astype(np.int64)
    order = np.argsort(keys, kind="stable")
    return _Weeks(keys[order], dated.amounts[order], dated.days[order], dated.items[order])


class _Without:
    """A table of a fuller index without some entries, each list filtered when first looked up
    (a batch looks up a small part of the keys; filtering them all would be building anew)."""

    __slots__ = ("full", "left_out", "position", "seen")

    def __init__(self, full: Table, left_out: frozenset[int], position: int | None) -> None:
        self.full = full
        self.left_out = left_out
        self.position = position  # where an item holds its entry's position (None: it is one)
        self.seen: dict = {}

    def get(self, key, default=None):
        if key in self.seen:
            found = self.seen[key]
        else:
            found = self.full.get(key)
            if found is not None:
                at, out = self.position, self.left_out
                found = [x for x in found if (x if at is None else x[at]) not in out] or None
            self.seen[key] = found
        return default if found is None else found


Table = dict | _Without

_DAY_BITS = 20  # an ordinal day (+1, so that "no date" is 0) fits: 2199-12-31 is 803,533
NO_CENTER = -(1 << 40)


@dataclass(slots=True)
class _ByWeek:
    """A _Keyed table's dated rows again, by key, week and amount, so that a crowded key's
    window reads only its rows near the query's amount (a fifth of them) instead of all."""

    composite: np.ndarray  # ((key code << week bits | week) << rank bits) | amount rank, sorted
    rows: np.ndarray  # each one's row in the _Keyed table
    amounts: np.ndarray  # the distinct read amounts, sorted: rank r is amounts[r - 1], 0 unread
    first_week: int
    week_bits: int
    rank_bits: int

    def without(self, keep: np.ndarray) -> _ByWeek:
        """The same rows but those `keep` drops, renumbered as the table they belong to."""
        renumbered = np.cumsum(keep) - 1
        kept = keep[self.rows]
        return _ByWeek(
            self.composite[kept],
            renumbered[self.rows[kept]],
            self.amounts,
            self.first_week,
            self.week_bits,
            self.rank_bits,
        )

    def spans(
        self, codes: np.ndarray, centers: np.ndarray, targets: np.ndarray, ratio: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query, start, size) of the spans of this index holding each query's rows within
        NEAR_WINDOW's weeks and `ratio` of its amount (a cent more), or unread: a superset
        the caller filters exactly. Spans come query after query."""
        first = (centers + NEAR_WINDOW[0] + 1) // 7 - self.first_week
        weeks = (centers + NEAR_WINDOW[1] + 1) // 7 - self.first_week - first + 1
        query = np.repeat(np.arange(len(codes)), weeks)
        week = first[query] + (np.arange(len(query)) - np.repeat(np.cumsum(weeks) - weeks, weeks))
        valid = (week >= 0) & (week < 1 << self.week_bits)
        query, week = query[valid], week[valid]
        base = ((codes[query] << self.week_bits) | week) << self.rank_bits
        low = np.searchsorted(self.amounts, targets[query] * (1 - ratio) - 1, "left") + 1
        high = np.searchsorted(self.amounts, targets[query] * (1 + ratio) + 1, "right")
        # Per week, the unread amounts (rank 0) then the read ones near the target.
        start = np.searchsorted(self.composite, np.stack([base, base + low], axis=1), "left")
        stop = np.searchsorted(
            self.composite, np.stack([base + 1, base + high + 1], axis=1), "left"
        )
        start, stop = start.reshape(-1), stop.reshape(-1)
        size = np.maximum(stop - start, 0)
        return np.repeat(query, 2), start, size


def _by_week(codes: np.ndarray, days: np.ndarray, amounts: np.ndarray) -> _ByWeek:
    """The weekly index of a table's rows (those without a date are never in a window)."""
    dated = np.flatnonzero(days != NO_DATE)
    read = amounts[dated]
    distinct = np.unique(read[~np.isnan(read)])
    rank = np.where(np.isnan(read), 0, np.searchsorted(distinct, read) + 1)
    week = (days[dated] + 1) // 7
    first_week = int(week.min()) if len(week) else 0
    week_bits = (int(week.max()) - first_week + 1 if len(week) else 1).bit_length()
    rank_bits = (len(distinct) + 1).bit_length()
    code_bits = (int(codes.max()) + 1 if len(codes) else 1).bit_length()
    assert code_bits + week_bits + rank_bits < 63, "a table too large for one int64 key"
    composite = (((codes[dated] << week_bits) | (week - first_week)) << rank_bits) | rank
    order = np.argsort(composite, kind="stable")
    return _ByWeek(composite[order], dated[order], distinct, first_week, week_bits, rank_bits)


def _expanded(query: np.ndarray, start: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every (query, position) of the spans (start, size), span after span."""
    return np.repeat(query, size), np.repeat(start - (np.cumsum(size) - size), size) + np.arange(
        int(size.sum())
    )


def _in_slices(sizes: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive (first, stop) of queries holding about _ROWS rows each (a common key's
    window holds hundreds of entries: all at once would be hundreds of megabytes)."""
    bounds = np.searchsorted(np.cumsum(sizes), np.arange(1, 1 + sizes.sum() // _ROWS) * _ROWS)
    edges = [0, *np.unique(bounds).tolist(), len(sizes)]
    return [(first, stop) for first, stop in pairwise(edges) if stop > first]


@dataclass(slots=True)
class _Keyed:
    """The entries under every key of one table (counterparty, memo or tax ID), by key then
    date, so that each key's window for a whole batch of records is two binary searches."""

    codes: dict[str, int]
    composite: np.ndarray  # key code << _DAY_BITS | ordinal + 1, sorted
    days: np.ndarray
    items: np.ndarray
    amounts: np.ndarray  # absolute cents, NaN when unread
    by_week: _ByWeek

    def without(self, left_out: np.ndarray) -> _Keyed:
        keep = ~np.isin(self.items, left_out)
        return _Keyed(
            self.codes,
            self.composite[keep],
            self.days[keep],
            self.items[keep],
            self.amounts[keep],
            self.by_week.without(keep),
        )

    def best(
        self,
        keys: list[str],
        centers: np.ndarray,
        targets: np.ndarray,
        common: float,
        cap: int,
    ) -> list[list[int]]:
        """For each (key, day, amount) query: the key's entries within its window, and
        within KEY_RATIO of the amount when there is one; when more than `cap`, the `cap` best
        (a 5% amount gap costs as much as a week; ties by date), else all by date.

        A key on more than `common` entries ("payment", "chez") only says something close by:
        its window is NEAR_WINDOW instead of PARTY_WINDOW. A query without a day takes the
        key's latest entries."""
        found: list[list[int]] = [[] for _ in keys]
        code = np.array([self.codes.get(key, -1) for key in keys], dtype=np.int64)
        asked = np.flatnonzero(code >= 0)
        if not len(asked):
            return found
        code, centers, targets = code[asked], centers[asked], targets[asked]
        start = np.searchsorted(self.composite, code << _DAY_BITS, "left")
        end = np.searchsorted(self.composite, (code + 1) << _DAY_BITS, "left")
        near = end - start > common
        dated = centers != NO_CENTER
        # A crowded key's dated query with an amount reads its rows by week and amount.
        weekly = near & dated & (targets > 0)
        low = centers + np.where(near, NEAR_WINDOW[0], PARTY_WINDOW[0]) + 1
        high = centers + np.where(near, NEAR_WINDOW[1], PARTY_WINDOW[1]) + 1
        key = code << _DAY_BITS
        lo = np.where(
            dated,
            np.searchsorted(self.composite, key + np.where(dated, low, 0), "left"),
            np.maximum(start, end - CAP_PER_RULE),
        )
        hi = np.where(
            dated, np.searchsorted(self.composite, key + np.where(dated, high, 0), "right"), end
        )
        sizes = np.where(weekly, 0, np.maximum(hi - lo, 0))
        chosen = []
        for first, stop in _in_slices(sizes):
            owner, rows = _expanded(np.arange(first, stop), lo[first:stop], sizes[first:stop])
            owner, rows, score = self._scored(owner, rows, centers, targets, dated)
            chosen.append(self._picked(owner, rows, score, np.bincount(owner, minlength=stop), cap))
        # First the rows close in amount; a query whose best few are not all among them (or
        # with too few of them to tell) reads its rows within KEY_RATIO.
        crowded = np.flatnonzero(weekly)
        for ratio in (FIRST_RATIO, KEY_RATIO):
            query, span_start, span_size = self.by_week.spans(
                code[crowded], centers[crowded], targets[crowded], ratio
            )
            per_query = np.bincount(query, weights=span_size, minlength=len(crowded))
            # Rows further than `ratio` in amount score above ratio / AMOUNT_SCALE.
            bound = ratio / AMOUNT_SCALE if ratio < KEY_RATIO else np.inf
            unsure = []
            for first, stop in _in_slices(per_query.astype(np.int64)):
                part = (query >= first) & (query < stop)
                owner, at = _expanded(crowded[query[part]], span_start[part], span_size[part])
                rows = self.by_week.rows[at]
                owner, items, left = self._crowded(
                    crowded[first:stop], owner, rows, centers, targets, dated, cap, bound
                )
                chosen.append((owner, items))
                unsure.append(left)
            crowded = np.concatenate(unsure) if unsure else crowded[:0]
        for owner, items in chosen:
            for query, item in zip(asked[owner].tolist(), items.tolist(), strict=True):
                found[query].append(item)
        return found

    def _scored(
        self,
        owner: np.ndarray,
        rows: np.ndarray,
        centers: np.ndarray,
        targets: np.ndarray,
        dated: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows within KEY_RATIO of their query's amount, with their scores."""
        target = targets[owner]
        has_target = (target > 0) & dated[owner]
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.abs(self.amounts[rows] - target) / target
        gap = np.where(np.isnan(gap), UNREAD_GAP, gap)  # an unread total is still a contender
        gap = np.where(has_target, gap, 0.0)
        inside = ~has_target | (gap <= KEY_RATIO)
        owner, rows, gap = owner[inside], rows[inside], gap[inside]
        score = np.where(
            dated[owner],
            gap / AMOUNT_SCALE + np.abs(self.days[rows] - centers[owner]) / DAY_SCALE,
            0.0,
        )
        return owner, rows, score

    def _crowded(
        self,
        queries: np.ndarray,
        owner: np.ndarray,
        rows: np.ndarray,
        centers: np.ndarray,
        targets: np.ndarray,
        dated: np.ndarray,
        cap: int,
        bound: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_picked` for the weekly rows of `queries` (grouped by query, not in date order
        within one), when every row left unread scores above `bound`: only the rows as good
        as each query's cap-th best are put in date order and picked from. Also the queries
        those rows cannot settle (fewer than cap + 1 of them, or a cap-th best above `bound`)."""
        offset = self.days[rows] - centers[owner]
        close = (offset >= NEAR_WINDOW[0]) & (offset <= NEAR_WINDOW[1])
        owner, rows = owner[close], rows[close]
        owner, rows, score = self._scored(owner, rows, centers, targets, dated)
        counts = np.bincount(owner, minlength=len(centers))
        kth = np.full(len(centers), np.inf)
        many = counts[owner] > cap
        for found, matrix, _ in _padded(owner[many], score[many], counts):
            kth[found] = np.partition(matrix, cap - 1, axis=1)[:, cap - 1]
        settled = (counts > cap) & (kth <= bound) if np.isfinite(bound) else counts >= 0
        kept = settled[owner] & (score <= kth[owner])
        owner, rows, score = owner[kept], rows[kept], score[kept]
        order = np.lexsort((rows, owner))
        owner, items = self._picked(owner[order], rows[order], score[order], counts, cap)
        return owner, items, queries[~settled[queries]]

    def _picked(
        self, owner: np.ndarray, rows: np.ndarray, score: np.ndarray, counts: np.ndarray, cap: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The kept (query, entry) among each query's rows (by query, then date); `counts`
        is how many rows each query has in all."""
        # A query within its cap keeps every entry, by date; a crowded one its `cap` best.
        calm = counts[owner] <= cap
        owners, items = [owner[calm]], [self.items[rows[calm]]]
        crowded = ~calm
        owner, rows, score = owner[crowded], rows[crowded], score[crowded]
        for queries, matrix, (slot, column, picked) in _padded(owner, score, np.bincount(owner)):
            entries = np.zeros(matrix.shape, dtype=np.int64)
            entries[slot, column] = self.items[rows[picked]]
            best = _smallest(matrix, cap)
            owners.append(np.repeat(queries, cap))
            items.append(np.take_along_axis(entries, best, axis=1).reshape(-1))
        owner, item = np.concatenate(owners), np.concatenate(items)
        order = np.argsort(owner, kind="stable")
        return owner[order], item[order]


def _padded(
    owner: np.ndarray, score: np.ndarray, counts: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Each query's scores (rows grouped by query, `counts` rows each) as the row of a matrix,
    one matrix per size class (a power of two) padded with infinity: the queries, the matrix
    and where each row went (matrix row, column, position in the input)."""
    first = np.ones(len(owner), dtype=bool)
    np.not_equal(owner[1:], owner[:-1], out=first[1:])
    column = np.arange(len(owner)) - np.maximum.accumulate(
        np.where(first, np.arange(len(owner)), 0)
    )
    sizes = 2 ** np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)
    classes = sizes[owner]
    for size in np.unique(sizes[owner[first]]).tolist():
        picked = np.flatnonzero(classes == size)
        slot = np.cumsum(first[picked]) - 1
        queries = owner[picked[first[picked]]]
        matrix = np.full((len(queries), size), np.inf)
        matrix[slot, column[picked]] = score[picked]
        yield queries, matrix, (slot, column[picked], picked)


_ROWS = 1 << 20


def _smallest(matrix: np.ndarray, cap: int) -> np.ndarray:
    """Per row, the columns of its `cap` smallest values, smallest first; ties by column (the
    entries' date order), so that the choice never depends on the sort's internals."""
    kth = np.partition(matrix, cap - 1, axis=1)[:, cap - 1 : cap]
    below = matrix < kth
    tied = matrix == kth
    take = below | (tied & (np.cumsum(tied, axis=1) <= cap - below.sum(axis=1, keepdims=True)))
    columns = np.nonzero(take)[1].reshape(len(matrix), cap)
    values = np.take_along_axis(matrix, columns, axis=1)
    return np.take_along_axis(columns, np.argsort(values, axis=1, kind="stable"), axis=1)


def _keyed(table: dict[str, list[int]], days: np.ndarray, amounts: np.ndarray) -> _Keyed:
    """A table's lists (each in date order) end to end, keys numbered in the table's order;
    `days` and `amounts` are every entry's, by position."""
    codes = {key: code for code, key in enumerate(table)}
    items = np.fromiter((i for positions in table.values() for i in positions), dtype=np.int64)
    sizes = np.fromiter((len(positions) for positions in table.values()), dtype=np.int64)
    composite = (np.repeat(np.arange(len(sizes), dtype=np.int64), sizes) << _DAY_BITS) + (
        days[items] + 1
    )
    return _Keyed(
        codes,
        composite,
        days[items],
        items,
        amounts[items],
        _by_week(composite >> _DAY_BITS, days[items], amounts[items]),
    )


@dataclass(slots=True)
class Index:
    """Lookup tables over some of a workspace's Qonto entries, built once per book."""

    entries: list[Entry]
    by_amount: Table  # amount -> sorted (day, position)
    by_ref: Table
    # Counterparty name keys, memo keys and VAT numbers printed on supplier invoices.
    keyed: dict[str, _Keyed]
    dated: _Bucket  # every dated entry with an amount, by date
    weeks: _Weeks  # the same entries by week and amount


def index_without(full: Index, left_out: frozenset[int]) -> Index:
    """The index as `build_index` would make it without the entries `left_out` (those already
    linked in a book's history), from the index of all of them: same lists, same order."""
    if not left_out:
        return full
    dated = full.dated
    out = np.fromiter(left_out, dtype=np.int64, count=len(left_out))
    keep = ~np.isin(dated.items, out)
    dated = _Bucket(dated.days[keep], dated.items[keep], dated.amounts[keep])
    return Index(
        full.entries,
        _Without(full.by_amount, left_out, 1),
        _Without(full.by_ref, left_out, None),
        {table: keyed.without(out) for table, keyed in full.keyed.items()},
        dated,
        _weeks(dated),
    )


def _ordinal(entry: Entry) -> int:
    return entry.entry_date.toordinal() if entry.entry_date else NO_DATE


_TRAILING_DIGITS = re.compile(r"(\d+)$")


def _tokens(entry: Entry) -> set[str]:
    """References an entry carries: its own, reference-like words of its labels, and the
    trailing numbers of both ("FACTURE INV2026-02773" is looked up by "2773" too)."""
    found = {entry.reference} if len(entry.reference) >= 3 else set()
    for word in entry.text.split():
        word = word.lstrip("0")
        if len(word) >= 4 and any(c.isdigit() for c in word):
            found.add(word)
    for word in list(found):
        digits = _TRAILING_DIGITS.search(word)
        if digits:
            tail = digits.group(1)
            found.update(tail[-n:].lstrip("0") for n in (4, 5, 6) if len(tail) >= n)
    return {token for token in found if len(token) >= 3}


def text_keys(text: str) -> list[str]:
    """Blocking keys of a memo or a bank label: its first word (unless a lone initial, which
    would pull in half the statement), and its first two words joined ("M C" names people)."""
    words = text.split()
    keys = [words[0]] if words and (len(words[0]) > 1 or len(words) == 1) else []
    return keys + ([words[0] + words[1]] if len(words) >= 2 else [])


@dataclass(slots=True)
class EntryKeys:
    """What blocking reads of one entry, computed once per workspace."""

    ordinal: int
    amounts: frozenset[int]
    name_key: str
    text_keys: tuple[str, ...]
    tokens: frozenset[str]


def keys_of(entries: list[Entry]) -> list[EntryKeys]:
    return [
        EntryKeys(
            _ordinal(e),
            frozenset(abs(a) for a in (e.amount_cents, e.local_amount_cents) if a),
            e.name_key,
            tuple(text_keys(e.label)),
            frozenset(_tokens(e)),
        )
        for e in entries
    ]


def build_index(
    entries: list[Entry], positions: list[int] | None = None, keys: list[EntryKeys] | None = None
) -> Index:
    """Index entries (all, or those at `positions`) by amount, name key, reference and day."""
    keys = keys if keys is not None else keys_of(entries)
    chosen = range(len(entries)) if positions is None else positions
    order = sorted(chosen, key=lambda i: keys[i].ordinal)
    by_amount: dict[int, list[tuple[int, int]]] = defaultdict(list)
    by_key: dict[str, list[int]] = defaultdict(list)
    by_text: dict[str, list[int]] = defaultdict(list)
    by_tax: dict[str, list[int]] = defaultdict(list)
    by_ref: dict[str, list[int]] = defaultdict(list)
    dated: list[int] = []
    for i in order:
        key = keys[i]
        for amount in key.amounts:
            by_amount[amount].append((key.ordinal, i))
        if key.name_key:
            by_key[key.name_key].append(i)
        for text in key.text_keys:
            by_text[text].append(i)
        if entries[i].tax_id:
            by_tax[entries[i].tax_id].append(i)
        for token in key.tokens:
            by_ref[token].append(i)
        if key.ordinal != NO_DATE and entries[i].amount_cents is not None:
            dated.append(i)
    days = np.fromiter((key.ordinal for key in keys), dtype=np.int64, count=len(keys))
    amounts = np.fromiter(
        (abs(e.amount_cents) if e.amount_cents is not None else np.nan for e in entries),
        dtype=np.float64,
        count=len(entries),
    )
    chosen_dated = np.array(dated, dtype=np.int64)
    dated_bucket = _Bucket(days[chosen_dated], chosen_dated, amounts[chosen_dated])
    return Index(
        entries,
        dict(by_amount),
        dict(by_ref),
        {
            "key": _keyed(by_key, days, amounts),
            "text": _keyed(by_text, days, amounts),
            "tax": _keyed(by_tax, days, amounts),
        },
        dated_bucket,
        _weeks(dated_bucket),
    )


def _closest_dates(
    pairs: list[tuple[int, int]], center: int | None, window: tuple[int, int]
) -> list[int]:
    if center is None:
        return [i for _, i in pairs[-CAP_PER_RULE:]]
    lo = bisect_left(pairs, (center + window[0], -1))
    hi = bisect_right(pairs, (center + window[1], 1 << 62))
    inside = pairs[lo:hi]
    if len(inside) > CAP_PER_RULE:
        inside = sorted(inside, key=lambda pair: abs(pair[0] - center))[:CAP_PER_RULE]
    return [i for _, i in inside]


def _swapped(ordinal: int) -> int | None:
    """The date with day and month swapped, as OCR misreads it, when that is a date."""
    day = date.fromordinal(ordinal)
    if day.day > 12 or day.day == day.month:
        return None
    return day.replace(day=day.month, month=day.day).toordinal()


def batch_candidates(
    index: Index,
    records: list[Record],
    party_keys: list[list[str]],
    tax_ids: list[tuple[str, ...]],
    excluded: set[int] | frozenset[int] = frozenset(),
) -> list[list[int]]:
    """Each record's candidates: the union of the blocking rules, as entry positions.

    `party_keys` and `tax_ids` are each record's counterparty keys and its vendor's VAT
    numbers. Rules (b), (d) and (e) are answered for the whole batch at once.

    Entries in `excluded` (already linked to another record) are never candidates: a Qonto
    entry is the target of at most one live link.
    """
    near = near_rules(index, records)
    # Rules (b) and (e): one query per record and key, in the order the record asks them.
    tables: list[str] = []
    keys: list[str] = []
    owners: list[int] = []
    for i, record in enumerate(records):
        asked = [("key", key) for key in party_keys[i]]
        asked += [("text", key) for key in text_keys(record.memo)]
        asked += [("tax", tax_id) for tax_id in tax_ids[i]]
        for table, key in dict.fromkeys(asked):
            tables.append(table)
            keys.append(key)
            owners.append(i)
    centers = np.array(
        [r.txn_date.toordinal() if r.txn_date else NO_CENTER for r in records], dtype=np.int64
    )
    targets = np.array(
        [abs(r.amount_cents) if r.amount_cents is not None else 0 for r in records],
        dtype=np.float64,
    )
    keyed: list[list[int]] = [[] for _ in keys]
    common = max(COMMON_KEY_MIN, COMMON_KEY_SHARE * len(index.dated.items))
    table_of = np.array(tables, dtype=object)
    owner_of = np.array(owners, dtype=np.int64)
    for table, crowd in (("key", common), ("text", common), ("tax", np.inf)):
        asked = np.flatnonzero(table_of == table)
        if not len(asked):
            continue
        answers = index.keyed[table].best(
            [keys[q] for q in asked.tolist()],
            centers[owner_of[asked]],
            targets[owner_of[asked]],
            crowd,
            CAP_KEYS,
        )
        for q, answer in zip(asked.tolist(), answers, strict=True):
            keyed[q] = answer
    found_by_record: list[list[int]] = [[] for _ in records]
    q = 0
    for i, record in enumerate(records):
        first = q
        while q < len(owners) and owners[q] == i:
            q += 1
        found_by_record[i] = _union(index, record, keyed[first:q], near[i], excluded)
    return found_by_record


def _union(
    index: Index,
    record: Record,
    keyed: list[list[int]],
    near: list[int],
    excluded: set[int] | frozenset[int],
) -> list[int]:
    """One record's candidates: rules (a) and (c) here, (b), (d) and (e) as answered."""
    center = record.txn_date.toordinal() if record.txn_date else None
    found: dict[int, None] = {}
    amounts = {abs(a) for a in (record.amount_cents, record.home_amount_cents) if a is not None}
    # The same amount, or that amount with or without French VAT (a bill booked before tax).
    vat = {round(a * f) for a in amounts for rate in VAT_FACTORS for f in (rate, 1 / rate)}
    by_amount = index.by_amount
    # Most amounts (the VAT ones above all) are no entry's: a plain dict says so before the
    # filtered table is asked.
    known = by_amount.full if isinstance(by_amount, _Without) else by_amount
    for amount in amounts | vat:
        if amount not in known:
            continue
        same = by_amount.get(amount)
        if not same:
            continue
        if amount not in amounts:
            found.update(dict.fromkeys(_closest_dates(same, center, NEAR_WINDOW)))
            continue
        found.update(dict.fromkeys(_closest_dates(same, center, AMOUNT_WINDOW)))
        if center is None:
            continue
        # Dates a scanner misreads: day and month swapped, or the year off by one.
        for misread in (_swapped(center), center - 365, center + 365):
            if misread is not None:
                found.update(dict.fromkeys(_closest_dates(same, misread, (-3, 3))))
    for answer in keyed:
        found.update(dict.fromkeys(answer))
    if len(record.reference) >= 3:
        found.update(dict.fromkeys(index.by_ref.get(record.reference, [])[:CAP_PER_RULE]))
    found.update(dict.fromkeys(near))  # rule (d), by amount as `amounts` orders them
    return [pos for pos in found if pos not in excluded] if excluded else list(found)


def near_rules(index: Index, records: list[Record]) -> list[list[int]]:
    """Rule (d) for every record at once: by record, its amounts' nearby entries."""
    owners, centers, amounts = [], [], []
    for i, record in enumerate(records):
        if record.txn_date is None:
            continue
        for amount in {abs(a) for a in (record.amount_cents, record.home_amount_cents) if a}:
            owners.append(i)
            centers.append(record.txn_date.toordinal())
            amounts.append(amount)
    query, items = index.weeks.near(
        np.array(centers, dtype=np.int64), np.array(amounts, dtype=np.float64)
    )
    # Queries are in the records' order: each record's answers are one slice.
    per_record = np.bincount(
        np.array(owners, dtype=np.int64)[query], minlength=len(records)
    ).tolist()
    found = items.tolist()
    by_record: list[list[int]] = []
    start = 0
    for count in per_record:
        by_record.append(found[start : start + count])
        start += count
    return by_record
