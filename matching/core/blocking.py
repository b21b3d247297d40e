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
from dataclasses import dataclass, field
from datetime import date

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

    def near(self, centers: np.ndarray, amounts: np.ndarray) -> list[list[int]]:
        """For each (day, amount) query, the CAP_PER_RULE entries within NEAR_RATIO of the
        amount and NEAR_WINDOW of the day, best first (a 5% gap costs as much as a week; ties by
        date, then position)."""
        found: list[list[int]] = [[] for _ in range(len(centers))]
        if not len(centers) or not len(self.keys):
            return found
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
        starts = np.searchsorted(owner, owner, "left")
        kept = np.arange(len(owner)) - starts < CAP_PER_RULE
        for query_at, item in zip(owner[kept].tolist(), items[kept].tolist(), strict=True):
            found[query_at].append(item)
        return found


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


@dataclass(slots=True)
class Index:
    """Lookup tables over some of a workspace's Qonto entries, built once per book."""

    entries: list[Entry]
    by_amount: Table  # amount -> sorted (day, position)
    by_key: Table  # positions by date; made a _Bucket when first looked up
    by_text: Table
    by_tax: Table  # VAT numbers printed on supplier invoices
    by_ref: Table
    dated: _Bucket  # every dated entry with an amount, by date
    weeks: _Weeks  # the same entries by week and amount
    buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    def bucket(self, table: str, key: str) -> _Bucket | None:
        """The entries under a counterparty ("key") or memo ("text") key, as arrays."""
        found = self.buckets.get((table, key))
        if found is None:
            items = {"key": self.by_key, "text": self.by_text, "tax": self.by_tax}[table].get(key)
            if items is None:
                return None
            found = self.buckets[(table, key)] = _bucket(items, self.entries)
        return found


def index_without(full: Index, left_out: frozenset[int]) -> Index:
    """The index as `build_index` would make it without the entries `left_out` (those already
    linked in a book's history), from the index of all of them: same lists, same order."""
    if not left_out:
        return full
    dated = full.dated
    keep = ~np.isin(dated.items, np.fromiter(left_out, dtype=np.int64, count=len(left_out)))
    dated = _Bucket(dated.days[keep], dated.items[keep], dated.amounts[keep])
    return Index(
        full.entries,
        _Without(full.by_amount, left_out, 1),
        _Without(full.by_key, left_out, None),
        _Without(full.by_text, left_out, None),
        _Without(full.by_tax, left_out, None),
        _Without(full.by_ref, left_out, None),
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


def _bucket(positions: list[int], entries: list[Entry]) -> _Bucket:
    days = np.array([_ordinal(entries[i]) for i in positions], dtype=np.int64)
    amounts = np.array(
        [
            abs(entries[i].amount_cents) if entries[i].amount_cents is not None else np.nan
            for i in positions
        ],
        dtype=np.float64,
    )
    return _Bucket(days, np.array(positions, dtype=np.int64), amounts)


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
    dated_bucket = _bucket(dated, entries)
    return Index(
        entries,
        dict(by_amount),
        dict(by_key),
        dict(by_text),
        dict(by_tax),
        dict(by_ref),
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


def _ranked(
    bucket: _Bucket, center: int | None, window: tuple[int, int], amount: int | None, ratio: float
) -> tuple[np.ndarray, np.ndarray]:
    """Entries of a bucket in the window (and within `ratio` of the amount) with their rank
    scores (lower is better): a 5% amount gap costs as much as a week."""
    if center is None:
        items = bucket.items[-CAP_PER_RULE:]
        return items, np.zeros(len(items))
    lo = int(np.searchsorted(bucket.days, center + window[0], "left"))
    hi = int(np.searchsorted(bucket.days, center + window[1], "right"))
    days = bucket.days[lo:hi]
    items = bucket.items[lo:hi]
    if amount:
        gap = np.abs(bucket.amounts[lo:hi] - amount) / amount
        gap = np.where(np.isnan(gap), UNREAD_GAP, gap)  # an unread total is still a contender
        inside = gap <= ratio
        days, items, gap = days[inside], items[inside], gap[inside]
    else:
        gap = np.zeros(len(items))
    return items, gap / AMOUNT_SCALE + np.abs(days - center) / DAY_SCALE


def _best(items: np.ndarray, score: np.ndarray, cap: int) -> list[int]:
    if len(items) <= cap:
        return items.tolist()
    best = np.argpartition(score, cap - 1)[:cap]
    return items[best[np.argsort(score[best], kind="stable")]].tolist()


def _swapped(ordinal: int) -> int | None:
    """The date with day and month swapped, as OCR misreads it, when that is a date."""
    day = date.fromordinal(ordinal)
    if day.day > 12 or day.day == day.month:
        return None
    return day.replace(day=day.month, month=day.day).toordinal()


def candidates(
    index: Index,
    record: Record,
    party_keys: list[str],
    excluded: set[int] | frozenset[int] = frozenset(),
    tax_ids: tuple[str, ...] = (),
    near: dict[int, list[int]] | None = None,
) -> list[int]:
    """The union of the four blocking rules for one record, as entry positions.

    `near` is rule (d) for this record by amount, as `near_rules` gives it for a whole batch.

    Entries in `excluded` (already linked to another record) are never candidates: a Qonto
    entry is the target of at most one live link.
    """
    center = record.txn_date.toordinal() if record.txn_date else None
    found: dict[int, None] = {}
    amounts = {abs(a) for a in (record.amount_cents, record.home_amount_cents) if a is not None}
    # The same amount, or that amount with or without French VAT (a bill booked before tax).
    vat = {round(a * f) for a in amounts for rate in VAT_FACTORS for f in (rate, 1 / rate)}
    for amount in amounts | vat:
        same = index.by_amount.get(amount)
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
    target = abs(record.amount_cents) if record.amount_cents is not None else None
    common = max(COMMON_KEY_MIN, COMMON_KEY_SHARE * len(index.dated.items))
    keys = [("key", key) for key in party_keys] + [("text", k) for k in text_keys(record.memo)]
    for table, key in dict.fromkeys(keys):
        items = (index.by_key if table == "key" else index.by_text).get(key)
        if items is None:
            continue
        # A key half the statement shares ("payment", "chez") only says something close by.
        window = PARTY_WINDOW if len(items) <= common else NEAR_WINDOW
        ranked = _ranked(index.bucket(table, key), center, window, target, KEY_RATIO)
        found.update(dict.fromkeys(_best(*ranked, CAP_KEYS)))
    for tax_id in tax_ids:
        items = index.by_tax.get(tax_id)
        if items is not None:
            ranked = _ranked(index.bucket("tax", tax_id), center, PARTY_WINDOW, target, KEY_RATIO)
            found.update(dict.fromkeys(_best(*ranked, CAP_KEYS)))
    if len(record.reference) >= 3:
        found.update(dict.fromkeys(index.by_ref.get(record.reference, [])[:CAP_PER_RULE]))
    if center is not None:
        if near is None:
            near = near_rules(index, [record])[0]
        for amount in amounts:
            if amount > 0:
                found.update(dict.fromkeys(near.get(amount, ())))
    return [pos for pos in found if pos not in excluded]


def near_rules(index: Index, records: list[Record]) -> list[dict[int, list[int]]]:
    """Rule (d) for every record at once: by record, its amounts' nearby entries."""
    owners, centers, amounts = [], [], []
    for i, record in enumerate(records):
        if record.txn_date is None:
            continue
        for amount in {abs(a) for a in (record.amount_cents, record.home_amount_cents) if a}:
            owners.append(i)
            centers.append(record.txn_date.toordinal())
            amounts.append(amount)
    found = index.weeks.near(np.array(centers, dtype=np.int64), np.array(amounts, dtype=np.float64))
    by_record: list[dict[int, list[int]]] = [{} for _ in records]
    for owner, amount, items in zip(owners, amounts, found, strict=True):
        by_record[owner][amount] = items
    return by_record
