"""Blocking: the few Qonto entries worth comparing with a record, never all of them."""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from .types import Entry, Record

# Windows in days, entry date minus record date: payments follow bills, receipts precede entry.
AMOUNT_WINDOW = (-60, 90)
PARTY_WINDOW = (-45, 45)
NEAR_WINDOW = (-10, 10)
NEAR_RATIO = 0.03
CAP_PER_RULE = 12
NO_DATE = -1


@dataclass(slots=True)
class _Dated:
    """Entries under one key, sorted by date so a window is two bisections."""

    days: list[int] = field(default_factory=list)
    items: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Index:
    """Lookup tables over the workspace's Qonto entries, built once per batch."""

    entries: list[Entry]
    by_amount: dict[int, _Dated]
    by_key: dict[str, _Dated]
    by_ref: dict[str, list[int]]
    by_day: dict[int, list[tuple[int, int]]]


def _ordinal(entry: Entry) -> int:
    return entry.entry_date.toordinal() if entry.entry_date else NO_DATE


def _tokens(entry: Entry) -> set[str]:
    """References an entry carries: its own, and reference-like words of its labels."""
    found = {entry.reference} if len(entry.reference) >= 3 else set()
    for word in entry.text.split():
        word = word.lstrip("0")
        if len(word) >= 4 and any(c.isdigit() for c in word):
            found.add(word)
    return found


def build_index(entries: list[Entry]) -> Index:
    """Index entries by absolute amount (and local amount), name key, reference and day."""
    order = sorted(range(len(entries)), key=lambda i: _ordinal(entries[i]))
    by_amount: dict[int, _Dated] = defaultdict(_Dated)
    by_key: dict[str, _Dated] = defaultdict(_Dated)
    by_ref: dict[str, list[int]] = defaultdict(list)
    by_day: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i in order:
        entry = entries[i]
        ordinal = _ordinal(entry)
        amounts = {abs(a) for a in (entry.amount_cents, entry.local_amount_cents) if a is not None}
        for amount in amounts:
            bucket = by_amount[amount]
            bucket.days.append(ordinal)
            bucket.items.append(i)
        if entry.name_key:
            bucket = by_key[entry.name_key]
            bucket.days.append(ordinal)
            bucket.items.append(i)
        for token in _tokens(entry):
            by_ref[token].append(i)
        if ordinal != NO_DATE and entry.amount_cents is not None:
            by_day[ordinal].append((abs(entry.amount_cents), i))
    for pairs in by_day.values():
        pairs.sort()
    return Index(entries, dict(by_amount), dict(by_key), dict(by_ref), dict(by_day))


def _window(
    bucket: _Dated | None,
    center: int | None,
    window: tuple[int, int],
    rank: Callable[[int, int], float] | None = None,
) -> list[int]:
    """Entries of a bucket within the window, best ranked first (closest date by default)."""
    if bucket is None:
        return []
    if center is None:
        return bucket.items[-CAP_PER_RULE:]
    lo = bisect_left(bucket.days, center + window[0])
    hi = bisect_right(bucket.days, center + window[1])
    if hi - lo <= CAP_PER_RULE:
        return bucket.items[lo:hi]  # all of them fit: no need to rank
    rank = rank or (lambda day, _: abs(day - center))
    found = heapq.nsmallest(
        CAP_PER_RULE,
        zip(bucket.days[lo:hi], bucket.items[lo:hi], strict=True),
        key=lambda pair: rank(*pair),
    )
    return [i for _, i in found]


def _swapped(ordinal: int) -> int | None:
    """The date with day and month swapped, as OCR misreads it, when that is a date."""
    day = date.fromordinal(ordinal)
    if day.day > 12 or day.day == day.month:
        return None
    return day.replace(day=day.month, month=day.day).toordinal()


def _near(index: Index, amount: int, center: int) -> list[int]:
    """Entries within 3% of the amount and 10 days of the date, closest amount first."""
    lo_amount, hi_amount = amount * (1 - NEAR_RATIO), amount * (1 + NEAR_RATIO)
    found: list[tuple[int, int]] = []
    for ordinal in range(center + NEAR_WINDOW[0], center + NEAR_WINDOW[1] + 1):
        pairs = index.by_day.get(ordinal)
        if pairs:
            lo = bisect_left(pairs, (int(lo_amount), -1))
            hi = bisect_right(pairs, (int(hi_amount) + 1, -1))
            found += pairs[lo:hi]
    if len(found) > CAP_PER_RULE:
        found = heapq.nsmallest(
            CAP_PER_RULE, found, key=lambda pair: (abs(pair[0] - amount), pair[1])
        )
    else:
        found.sort(key=lambda pair: (abs(pair[0] - amount), pair[1]))
    return [i for _, i in found]


def candidates(index: Index, record: Record, party_keys: list[str]) -> list[int]:
    """The union of the four blocking rules for one record, as entry positions."""
    center = record.txn_date.toordinal() if record.txn_date else None
    found: dict[int, None] = {}
    amounts = {abs(a) for a in (record.amount_cents, record.home_amount_cents) if a is not None}
    for amount in amounts:
        found.update(dict.fromkeys(_window(index.by_amount.get(amount), center, AMOUNT_WINDOW)))
        swapped = _swapped(center) if center is not None else None
        if swapped is not None:
            found.update(dict.fromkeys(_window(index.by_amount.get(amount), swapped, (-3, 3))))
    if center is not None:
        # Among a busy vendor's entries, the closest amounts matter more than the closest days.
        target = abs(record.amount_cents) if record.amount_cents is not None else None

        def by_amount(day: int, i: int) -> float:
            theirs = index.entries[i].amount_cents
            if theirs is None:
                return NEAR_RATIO * 100 + abs(day - center) / 100  # unread total: still a contender
            gap = abs(abs(theirs) - target) / max(target, 1) if target else 1.0
            return min(gap, 1.0) * 100 + abs(day - center) / 100

        for key in party_keys:
            window = _window(index.by_key.get(key), center, PARTY_WINDOW, by_amount)
            found.update(dict.fromkeys(window))
    if len(record.reference) >= 3:
        found.update(dict.fromkeys(index.by_ref.get(record.reference, [])[:CAP_PER_RULE]))
    if center is not None:
        for amount in amounts:
            if amount > 0:
                found.update(dict.fromkeys(_near(index, amount, center)))
    return list(found)
