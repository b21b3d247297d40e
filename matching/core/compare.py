"""Compare records with their candidate entries, signal by signal, into discrete levels.

Every pair of a batch is compared at once: numeric signals with numpy, text signals with
rapidfuzz's vectorised `cpdist`, and the few history-dependent ones (tax IDs, names Qonto used
for this vendor before) with plain lookups. A comparison vector is one level per signal; a
level's weight, log2(m/u), comes from the workspace's fitted model (`model.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from . import fuzzy
from .counterparty import Directory, Profile
from .fuzzy import TextShapes, text_shapes
from .types import SUPPLIER_INVOICE, Entry, Record

MISSING = "missing"

# Every signal and its levels, strongest evidence first; "missing" always weighs 0.
LEVELS: dict[str, tuple[str, ...]] = {
    "amount": (
        "exact",
        "close",
        "with_or_without_vat",
        "within_3pct",
        "within_6pct",
        "within_10pct",
        "within_15pct",
        "sign_flip",
        "different",
        MISSING,
    ),
    "date": (
        "same_day",
        "1_day_after",
        "2_3_days_after",
        "1_3_days_before",
        "4_7_days_after",
        "8_14_days_after",
        "15_30_days_after",
        "31_60_days_after",
        "4_30_days_before",
        "day_month_swapped",
        "one_year_apart",
        "one_period_apart",
        "far",
        MISSING,
    ),
    "counterparty": (
        "same_tax_id",
        "same_counterparty",
        "name_same",
        "name_close",
        "name_similar",
        "other_counterparty",
        "tax_id_conflict",
        "different",
        MISSING,
    ),
    "text": ("same", "contained", "close", "similar", "different", MISSING),
    "reference": ("exact", "in_label", "close", "different", MISSING),
    "currency": ("same", "converted", "different", MISSING),
    "payment": ("free", "settles_an_invoice", MISSING),
}
SIGNALS: tuple[str, ...] = tuple(LEVELS)
LEVEL_INDEX: dict[str, dict[str, int]] = {
    signal: {level: i for i, level in enumerate(levels)} for signal, levels in LEVELS.items()
}
MISSING_INDEX = {signal: LEVEL_INDEX[signal][MISSING] for signal in SIGNALS}
_NAMES = [LEVELS[signal] for signal in SIGNALS]
_name = tuple.__getitem__

# Counterparty levels that say "this entry is the record's vendor".
STRONG_PARTY = ("same_tax_id", "same_counterparty", "name_same", "name_close")
# Levels whose weight is adjusted for how common the matched value is (term frequency): the
# same 9.99 EUR or the same "M C" label says little when a hundred entries share it.
TF_LEVELS = {("amount", "exact"), ("text", "same")}

_AMOUNT = LEVEL_INDEX["amount"]
_DATE = LEVEL_INDEX["date"]
_TEXT = LEVEL_INDEX["text"]
_CURRENCY = LEVEL_INDEX["currency"]
_PAYMENT = LEVEL_INDEX["payment"]
_PARTY = LEVEL_INDEX["counterparty"]
_REFERENCE = LEVEL_INDEX["reference"]
TF_PSEUDO = 200  # pseudo-entries behind every term frequency
TF_BASE_RATE = 1e-3  # ... at the rate of an ordinary amount or label
VENDOR_TF_MIN = 3  # past records of a vendor before its own amount frequencies count
OTHER_IF_NAMES_DIFFER = "?other"
# rapidfuzz's own threads: one. A large batch is already shared by two processes (one per core
# of the machines we run on), and more threads on top only take turns on the same cores.
TEXT_THREADS = 1
NAME_SIMILAR = 70  # a name score from which two names are similar
SHORT_TEXT = 4  # below this many characters a label is compared for equality only


@dataclass(slots=True)
class Context:
    """What a comparison needs beyond the pair: each record's counterparty and the history."""

    profiles: list[Profile]
    names: list[list[str]]
    directory: Directory
    paired: set[str]  # transactions Qonto already matched to a supplier invoice
    recurring: list[bool]  # the record's vendor billed this amount at least twice before
    # Per-record arrays derived from the above, made once for all the pieces of a batch.
    _arrays: dict = field(default_factory=dict, repr=False)

    def arrays(self, records: list[Record]) -> dict[str, Any]:
        """`recurring`, whether each record has a party to compare (a vendor or names), its
        vendor's number (one per profile and vendor ID), whether it has names, and its names
        as `_name_slots` gives them; `records` are those the context was made for."""
        if not self._arrays:
            vendors: dict[tuple[int, str], int] = {}
            self._arrays.update(
                recurring=np.asarray(self.recurring, dtype=bool),
                speaks=np.array(
                    [bool(r.vendor_id or n) for r, n in zip(records, self.names, strict=True)],
                    dtype=bool,
                ),
                vendor=np.array(
                    [
                        vendors.setdefault((id(profile), r.vendor_id), len(vendors))
                        for r, profile in zip(records, self.profiles, strict=True)
                    ],
                    dtype=np.int64,
                ),
                has_names=np.array([bool(names) for names in self.names], dtype=bool),
                slots=_name_slots(self.names),
            )
            self._arrays["slot_shapes"] = [
                text_shapes(slot.tolist()) for slot in self._arrays["slots"]
            ]
        return self._arrays


@dataclass(slots=True)
class Pairs:
    """Candidate pairs of a batch: record and entry positions, one level per signal."""

    record: np.ndarray  # int32, position in the batch
    entry: np.ndarray  # int32, position in the book's entries
    levels: np.ndarray  # int8 [pairs, signals]
    tf: np.ndarray  # float64 [pairs, 2]: frequency of the matched amount / text, 0 when n/a

    @property
    def size(self) -> int:
        return len(self.record)

    def vector(self, i: int) -> dict[str, str]:
        """The comparison vector of one pair as signal -> level names."""
        return dict(zip(SIGNALS, map(_name, _NAMES, self.levels[i].tolist()), strict=True))


def empty_pairs() -> Pairs:
    return Pairs(
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        np.zeros((0, len(SIGNALS)), np.int8),
        np.zeros((0, 2)),
    )


def _nan_array(values: list[int | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


# French VAT rates: a bill booked without tax (HT) against an invoice read with it (TTC), or
# the other way round, differs by exactly one of these factors.
VAT_FACTORS = (1.2, 1.1, 1.055)
VAT_TOLERANCE = 0.003


def _amount_levels(ours: np.ndarray, theirs: np.ndarray, net: np.ndarray) -> np.ndarray:
    gap = np.abs(ours - theirs)
    scale = np.maximum(np.maximum(np.abs(ours), np.abs(theirs)), 1.0)
    same_sign = (ours > 0) == (theirs > 0)
    ratio = gap / scale
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.maximum(ours / theirs, theirs / ours)
    vat = np.zeros(len(ours), dtype=bool)
    for rate in VAT_FACTORS:
        vat |= np.abs(factor - rate) <= VAT_TOLERANCE * rate
    vat |= ours == net  # the record holds the invoice's amount before tax
    conditions = [
        np.isnan(ours) | np.isnan(theirs),
        ours == theirs,
        ours == -theirs,
        ~same_sign,
        (gap <= 100) | (ratio <= 0.005),
        vat,
        ratio <= 0.03,
        ratio <= 0.06,
        ratio <= 0.10,
        ratio <= 0.15,
    ]
    choices = [
        _AMOUNT[MISSING],
        _AMOUNT["exact"],
        _AMOUNT["sign_flip"],
        _AMOUNT["different"],
        _AMOUNT["close"],
        _AMOUNT["with_or_without_vat"],
        _AMOUNT["within_3pct"],
        _AMOUNT["within_6pct"],
        _AMOUNT["within_10pct"],
        _AMOUNT["within_15pct"],
    ]
    return np.select(conditions, choices, _AMOUNT["different"]).astype(np.int8)


def _swapped_ordinals(days: np.ndarray) -> np.ndarray:
    """Each ordinal with day and month swapped (as OCR misreads it), -1 when not a date."""
    out = np.full(len(days), -1, dtype=np.int64)
    for value in np.unique(days[days > 0]):
        day = date.fromordinal(int(value))
        if day.day <= 12 and day.day != day.month:
            out[days == value] = day.replace(day=day.month, month=day.day).toordinal()
    return out


def _month_day(days: np.ndarray) -> np.ndarray:
    """Month * 100 + day of each ordinal (-1 when not a date)."""
    out = np.full(len(days), -1, dtype=np.int64)
    for value in np.unique(days[days > 0]):
        day = date.fromordinal(int(value))
        out[days == value] = day.month * 100 + day.day
    return out


def _date_levels(
    record_day: np.ndarray, entry_day: np.ndarray, is_invoice: np.ndarray, recurring: np.ndarray
) -> np.ndarray:
    gap = entry_day - record_day
    missing = (record_day < 0) | (entry_day < 0)
    swapped = is_invoice & ~recurring & (_swapped_ordinals(entry_day) == record_day)
    # A scanner that misread the year: same day and month, a year off.
    year_off = (
        is_invoice
        & ~recurring
        & np.isin(np.abs(gap), (365, 366))
        & (_month_day(entry_day) == _month_day(record_day))
    )
    period = recurring & (np.abs(gap) >= 26) & (np.abs(gap) <= 35)
    conditions = [
        missing,
        gap == 0,
        gap == 1,
        (gap >= 2) & (gap <= 3),
        (gap >= -3) & (gap <= -1),
        period,
        (gap >= 4) & (gap <= 7),
        (gap >= 8) & (gap <= 14),
        (gap >= 15) & (gap <= 30),
        (gap >= 31) & (gap <= 60),
        (gap >= -30) & (gap <= -4),
        swapped,
        year_off,
    ]
    choices = [
        _DATE[MISSING],
        _DATE["same_day"],
        _DATE["1_day_after"],
        _DATE["2_3_days_after"],
        _DATE["1_3_days_before"],
        _DATE["one_period_apart"],
        _DATE["4_7_days_after"],
        _DATE["8_14_days_after"],
        _DATE["15_30_days_after"],
        _DATE["31_60_days_after"],
        _DATE["4_30_days_before"],
        _DATE["day_month_swapped"],
        _DATE["one_year_apart"],
    ]
    return np.select(conditions, choices, _DATE["far"]).astype(np.int8)


def _text_levels(
    r: np.ndarray, e: np.ndarray, rcols: Columns, ecols: Columns, shortest: np.ndarray
) -> np.ndarray:
    """Memo against label: same, one contained in the other (truncation), close, similar.

    `r` and `e` are the pairs' records and entries, `shortest` the shorter text's length.
    """
    out = np.full(len(r), _TEXT[MISSING], dtype=np.int8)
    idx = np.flatnonzero(shortest > 0)
    if not len(idx):
        return out
    a, b = rcols.text[r[idx]], ecols.text[e[idx]]
    # Each score is only compared with thresholds at or above its cutoff, so the cutoffs change
    # no level. A scorer is asked only where what the two texts are made of lets it reach its
    # cutoff (elsewhere it gives 0), and only where its score can still change the level.
    bound = fuzzy.bounds(rcols.text_shapes, r[idx], ecols.text_shapes, e[idx])
    short = shortest[idx] < SHORT_TEXT
    ratio, partial, token_set = np.zeros(len(a)), np.zeros(len(a)), np.zeros(len(a))
    _scored(ratio, a, b, fuzz.ratio, 70, fuzzy.reaches(bound.ratio(), 70))
    # Texts equal, or short (told by equality and prefix), are settled, and so is "close" by
    # the plain ratio unless the partial ratio finds one text within the other.
    unsettled = (ratio < 100) & ~short
    asked = unsettled & (ratio < 85)
    reach = bound.token_set_ratio(among=asked)
    _scored(token_set, a, b, fuzz.token_set_ratio, 70, asked & fuzzy.reaches(reach, 70))
    # The partial ratio tells "contained" (100) everywhere, "similar" (80) only where the
    # other two have not.
    reach = bound.partial_ratio()
    similar = np.maximum(ratio, token_set) >= 70
    for cutoff, asked in ((80, unsettled & ~similar), (100, unsettled & similar)):
        _scored(partial, a, b, fuzz.partial_ratio, cutoff, asked & fuzzy.reaches(reach, cutoff))
    prefix = np.zeros(len(a), dtype=bool)
    for k in np.flatnonzero(short).tolist():
        prefix[k] = a[k].startswith(b[k]) or b[k].startswith(a[k])
    best = np.maximum(ratio, token_set)
    # A label cut to a few letters ("M C") begins many memos: it is only a hint.
    levels = np.select(
        [
            ratio >= 100,
            short & prefix,
            short,
            partial >= 100,
            best >= 85,
            (best >= 70) | (partial >= 80),
        ],
        [
            _TEXT["same"],
            _TEXT["similar"],
            _TEXT["different"],
            _TEXT["contained"],
            _TEXT["close"],
            _TEXT["similar"],
        ],
        _TEXT["different"],
    )
    out[idx] = levels
    return out


def _scored(
    scores: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    scorer: Any,
    cutoff: float,
    asked: np.ndarray,
    keep_best: bool = False,
) -> None:
    """scorer(a[k], b[k]) into scores[k] where `asked` (the higher of the two with
    `keep_best`), in one call to rapidfuzz."""
    where = np.flatnonzero(asked)
    if len(where):
        found = process.cpdist(
            a[where], b[where], scorer=scorer, score_cutoff=cutoff, workers=TEXT_THREADS
        )
        scores[where] = np.maximum(scores[where], found) if keep_best else found


def _party_from_history(
    record: Record, entry: Entry, profile: Profile, directory: Directory
) -> str | None:
    """The counterparty level told by tax IDs and past links; None when only names can tell."""
    if entry.tax_id:
        known = profile.tax_ids
        tail = profile.vendor.tax_tail if profile.vendor else ""
        if entry.tax_id in known:
            return "same_tax_id"
        if known or (tail and not entry.tax_id.endswith(tail)):
            return "tax_id_conflict"
        if tail and entry.tax_id.endswith(tail):
            return "same_tax_id"
        owner = directory.tax_owner(entry.tax_id)
        if owner and record.vendor_id and owner != record.vendor_id:
            return "other_counterparty"
    if entry.name_key and entry.name_key in profile.entry_keys:
        return "same_counterparty"
    owner = directory.key_owner(entry.name_key) if entry.name_key else ""
    if owner and record.vendor_id and owner == record.vendor_id:
        return "same_counterparty"
    # A name Qonto used for another vendor is only that vendor's when the names differ too
    # (two vendors may share a first word): the caller compares names, then decides.
    return OTHER_IF_NAMES_DIFFER if owner and record.vendor_id else None


def _name_slots(names: list[list[str]]) -> list[np.ndarray]:
    """Up to three names of each record as three object arrays ("" where it has fewer)."""
    return [_objects([own[slot] if len(own) > slot else "" for own in names]) for slot in range(3)]


NAME_LEVELS = (NAME_SIMILAR, 85, 95)  # similar, close, same: the name score each starts at


def _name_levels(
    slots: list[np.ndarray], others: np.ndarray, reach: list[fuzzy.Bounds] | None = None
) -> np.ndarray:
    """Name levels from the best fuzzy score of any of the record's names (up to three);
    `slots` are the records' names as `_name_slots` gives them, per pair, and `reach` the
    bounds of each slot's pairs (without them every pair is scored).

    A scorer is asked for a pair only with the score of the level above the pair's best so far
    as its cutoff (below it a score changes no level, and rapidfuzz gives 0), and only where
    the bound reaches that score."""
    best = np.zeros(len(others))
    named = others != ""
    for k, names in enumerate(slots):
        idx = np.flatnonzero((names != "") & named)
        if not len(idx):
            break
        ours, theirs = names[idx], others[idx]
        for scorer in (fuzz.token_set_ratio, fuzz.ratio):
            current = best[idx]
            below = np.searchsorted(NAME_LEVELS, current, side="right")
            bound = None
            if reach is not None and scorer is fuzz.token_set_ratio:
                among = np.zeros(len(others), dtype=bool)
                among[idx[below < len(NAME_LEVELS)]] = True
                bound = reach[k].token_set_ratio(among)[idx]
            elif reach is not None:
                bound = reach[k].ratio()[idx]
            for level, cutoff in enumerate(NAME_LEVELS):
                asked = below == level
                if bound is not None:
                    asked &= fuzzy.reaches(bound, cutoff)
                _scored(current, ours, theirs, scorer, cutoff, asked, keep_best=True)
            best[idx] = current
    return np.select(
        [best >= 95, best >= 85, best >= NAME_SIMILAR],
        [_PARTY["name_same"], _PARTY["name_close"], _PARTY["name_similar"]],
        _PARTY["different"],
    ).astype(np.int8)


# What history tells of a pair, as a number: a level's index, or one of these.
_NAMES_TELL = -1
_NAMES_TELL_UNLESS_OTHER = -2
_TOLD = {None: _NAMES_TELL, OTHER_IF_NAMES_DIFFER: _NAMES_TELL_UNLESS_OTHER} | {
    level: i for i, level in enumerate(LEVELS["counterparty"])
}


def _party_levels(
    records: list[Record],
    entries: list[Entry],
    r: np.ndarray,
    e: np.ndarray,
    ctx: Context,
    ecols: Columns,
) -> np.ndarray:
    out = np.full(len(r), _PARTY[MISSING], dtype=np.int8)
    arrays = ctx.arrays(records)
    # No payee at all: the memo speaks for it (text signal).
    pair = np.flatnonzero(arrays["speaks"][r])
    if not len(pair):
        return out
    # What history says depends on the vendor (its profile) and the entry's tax ID and name
    # key only: a batch asks a few thousand questions hundreds of thousands of times.
    vendor = arrays["vendor"]
    question = vendor[r[pair]] * (int(ecols.party.max()) + 1) + ecols.party[e[pair]]
    _, first, inverse = np.unique(question, return_index=True, return_inverse=True)
    answers = [
        _party_from_history(records[i], entries[j], ctx.profiles[i], ctx.directory)
        for i, j in zip(r[pair[first]].tolist(), e[pair[first]].tolist(), strict=True)
    ]
    told = np.array([_TOLD[a] for a in answers], dtype=np.int64)[inverse.reshape(-1)]
    out[pair[told >= 0]] = told[told >= 0]
    unless_other = told == _NAMES_TELL_UNLESS_OTHER
    out[pair[unless_other]] = _PARTY["other_counterparty"]
    ask = (told < 0) & (ecols.name[e[pair]] != "") & arrays["has_names"][r[pair]]
    named = pair[ask]
    if len(named):
        slots = [names[r[named]] for names in arrays["slots"]]
        reach = [
            fuzzy.bounds(shapes, r[named], ecols.name_shapes, e[named])
            for shapes in arrays["slot_shapes"]
        ]
        levels = _name_levels(slots, ecols.name[e[named]], reach)
        # A name Qonto used for another vendor stays the other's unless the names agree.
        close = np.isin(levels, (_PARTY["name_same"], _PARTY["name_close"]))
        keep = ~unless_other[ask] | close
        out[named[keep]] = levels[keep]
    return out


def counterparty_level(
    record: Record, entry: Entry, profile: Profile, names: list[str], directory: Directory
) -> str:
    """Whether the entry's counterparty is the record's vendor: tax ID, history, then name."""
    level = _party_from_history(record, entry, profile, directory)
    if level not in (None, OTHER_IF_NAMES_DIFFER):
        return level
    if not entry.name or not names:
        return "other_counterparty" if level else MISSING
    slots = _name_slots([names])
    by_name = LEVELS["counterparty"][int(_name_levels(slots, _objects([entry.name]))[0])]
    if level and by_name not in ("name_same", "name_close"):
        return "other_counterparty"
    return by_name


def reference_level(record: Record, entry: Entry) -> str:
    """Whether the bill's number is the entry's number, or appears in its label."""
    ours = record.reference
    if len(ours) < 3:
        return MISSING
    if entry.reference == ours:
        return "exact"
    if len(ours) >= 4 and ours in entry.text:
        return "in_label"
    theirs = entry.reference
    if (
        theirs
        and (theirs.endswith(ours) or ours.endswith(theirs))
        and min(len(ours), len(theirs)) >= 3
    ):
        return "in_label"  # one number is the other's tail ("547" of "2026060547")
    if not entry.reference:
        return MISSING
    # A scanner's slip is one character in a short number, two in a long one.
    allowed = 1 if len(ours) < 8 else 2
    if len(ours) >= 4 and Levenshtein.distance(ours, entry.reference, score_cutoff=2) <= allowed:
        return "close"
    return "different"


@dataclass(slots=True)
class Columns:
    """Fields of records or of entries as arrays, to compare many pairs at once."""

    amount: np.ndarray  # cents, NaN when unread
    other_amount: np.ndarray  # records: in the home currency; entries: in the local currency
    net: np.ndarray  # entries: the supplier invoice's amount before tax, NaN when unread
    day: np.ndarray  # ordinal, -1 when unread
    currency: np.ndarray  # code number, 0 when unknown
    other_currency: np.ndarray  # entries: local currency code
    text: np.ndarray  # object array; records: memo; entries: label
    text_length: np.ndarray
    has_reference: np.ndarray
    flag: np.ndarray  # entries: is a supplier invoice
    settles: np.ndarray  # entries: a transaction Qonto already matched to a supplier invoice
    # Entries: how common their amount, local amount and label are among entries of their kind
    # (term frequencies, shrunk toward a typical rate).
    amount_share: np.ndarray
    other_share: np.ndarray
    text_share: np.ndarray
    name: np.ndarray  # entries: the cleaned counterparty name, object array
    party: np.ndarray  # entries: a number for (tax ID, name key), all that history reads of one
    text_shapes: TextShapes  # what bounds the fuzzy scores of `text`
    name_shapes: TextShapes  # ... and of `name`


_CURRENCY_CODES: dict[str, int] = {"": 0}


def _code(currency: str) -> int:
    return _CURRENCY_CODES.setdefault(currency, len(_CURRENCY_CODES))


def _objects(values: list) -> np.ndarray:
    """A list as an object array: indexing one by a position array is a C loop."""
    return np.fromiter(values, dtype=object, count=len(values))


def record_columns(records: list[Record]) -> Columns:
    n = len(records)
    texts = [r.memo for r in records]
    return Columns(
        amount=_nan_array([r.amount_cents for r in records]),
        other_amount=_nan_array([r.home_amount_cents for r in records]),
        net=np.full(n, np.nan),
        day=np.array([r.txn_date.toordinal() if r.txn_date else -1 for r in records], np.int64),
        currency=np.array([_code(r.currency) for r in records], np.int64),
        other_currency=np.zeros(n, np.int64),
        text=_objects(texts),
        text_length=np.array([len(t) for t in texts], np.int64),
        has_reference=np.array([bool(r.reference) for r in records], bool),
        flag=np.zeros(n, bool),
        settles=np.zeros(n, bool),
        amount_share=np.zeros(n),
        other_share=np.zeros(n),
        text_share=np.zeros(n),
        name=_objects([""] * n),
        party=np.zeros(n, np.int64),
        text_shapes=text_shapes(texts),
        name_shapes=text_shapes([""] * n),
    )


def entry_columns(
    entries: list[Entry], paired: set[str], numbers: dict[str, Any] | None = None
) -> Columns:
    """The entries' columns; `numbers` is `entry_numbers` of them when already worked out
    (a forked helper can, as it reads nothing of this process's own state)."""
    numbers = numbers if numbers is not None else entry_numbers(entries, paired)
    return Columns(
        # Currency codes are numbered as this process first meets each currency.
        currency=np.array([_code(e.currency) for e in entries], np.int64),
        other_currency=np.array([_code(e.local_currency) for e in entries], np.int64),
        text=_objects([e.label for e in entries]),
        name=_objects([e.name for e in entries]),
        **numbers,
    )


def entry_numbers(entries: list[Entry], paired: set[str]) -> dict[str, Any]:
    """Every column of the entries but their currency codes and texts: numbers only."""
    frequencies = {
        kind: frequencies_of([e for e in entries if e.kind == kind])
        for kind in {e.kind for e in entries}
    }
    texts = [e.label for e in entries]
    shapes = text_shapes(texts + [e.name for e in entries])  # a name is often the label
    parties: dict[tuple[str, str], int] = {}
    return {
        "amount": _nan_array([e.amount_cents for e in entries]),
        "other_amount": _nan_array([e.local_amount_cents for e in entries]),
        "net": _nan_array([e.net_amount_cents for e in entries]),
        "day": np.array(
            [e.entry_date.toordinal() if e.entry_date else -1 for e in entries], np.int64
        ),
        "text_length": np.array([len(t) for t in texts], np.int64),
        "has_reference": np.array([bool(e.reference) for e in entries], bool),
        "flag": np.array([e.kind == SUPPLIER_INVOICE for e in entries], bool),
        "settles": np.array([e.kind != SUPPLIER_INVOICE and e.id in paired for e in entries], bool),
        "amount_share": np.array(
            [frequencies[e.kind].amount(e.amount_cents or 0) for e in entries], np.float64
        ),
        "other_share": np.array(
            [frequencies[e.kind].amount(e.local_amount_cents or 0) for e in entries], np.float64
        ),
        "text_share": np.array([frequencies[e.kind].text(e.label) for e in entries], np.float64),
        "party": np.array(
            [parties.setdefault((e.tax_id, e.name_key), len(parties)) for e in entries], np.int64
        ),
        "text_shapes": shapes.take(np.arange(len(entries))),
        "name_shapes": shapes.take(np.arange(len(entries), 2 * len(entries))),
    }


def compare_pairs(
    records: list[Record],
    entries: list[Entry],
    record_pos: np.ndarray,
    entry_pos: np.ndarray,
    ctx: Context,
    rcols: Columns,
    ecols: Columns,
) -> Pairs:
    """The comparison vectors of every (record, entry) pair given by the two position arrays."""
    n = len(record_pos)
    if n == 0:
        return empty_pairs()
    r, e = record_pos, entry_pos
    levels = np.empty((n, len(SIGNALS)), dtype=np.int8)

    # Amount, in the record's currency when Qonto converted it, else in the home currency.
    ours_currency, theirs_currency = rcols.currency[r], ecols.currency[e]
    other = (ours_currency > 0) & (theirs_currency > 0) & (ours_currency != theirs_currency)
    converted = (
        other & (ecols.other_currency[e] == ours_currency) & ~np.isnan(ecols.other_amount[e])
    )
    ours = np.where(other & ~converted, rcols.other_amount[r], rcols.amount[r])
    theirs = np.where(converted, ecols.other_amount[e], ecols.amount[e])
    levels[:, 0] = _amount_levels(ours, theirs, np.where(converted, np.nan, ecols.net[e]))

    recurring = ctx.arrays(records)["recurring"][r]
    levels[:, 1] = _date_levels(rcols.day[r], ecols.day[e], ecols.flag[e], recurring)

    levels[:, 2] = _party_levels(records, entries, r, e, ctx, ecols)
    shortest = np.minimum(rcols.text_length[r], ecols.text_length[e])
    levels[:, 3] = _text_levels(r, e, rcols, ecols, shortest)
    levels[:, 4] = _REFERENCE[MISSING]
    for k in np.flatnonzero(rcols.has_reference[r]).tolist():
        levels[k, 4] = _REFERENCE[reference_level(records[r[k]], entries[e[k]])]
    levels[:, 5] = np.select(
        [(ours_currency == 0) | (theirs_currency == 0), ~other, converted],
        [_CURRENCY[MISSING], _CURRENCY["same"], _CURRENCY["converted"]],
        _CURRENCY["different"],
    )
    levels[:, 6] = np.select(
        [ecols.flag[e], ecols.settles[e]],
        [_PAYMENT[MISSING], _PAYMENT["settles_an_invoice"]],
        _PAYMENT["free"],
    )

    tf = np.zeros((n, 2))
    exact = levels[:, 0] == _AMOUNT["exact"]
    tf[:, 0] = np.where(
        exact, np.where(converted, ecols.other_share[e], ecols.amount_share[e]), 0.0
    )
    strong = np.isin(levels[:, 2], [_PARTY[level] for level in STRONG_PARTY])
    for k in np.flatnonzero(exact & strong).tolist():
        profile = ctx.profiles[r[k]]
        if profile.records >= VENDOR_TF_MIN:
            # Among the vendor's own entries, an amount it always bills tells nothing more.
            own = profile.amounts.get(records[r[k]].amount_cents or 0, 0) / profile.records
            tf[k, 0] = max(tf[k, 0], own)
    tf[:, 1] = np.where(levels[:, 3] == _TEXT["same"], ecols.text_share[e], 0.0)
    return Pairs(r.astype(np.int32), e.astype(np.int32), levels, tf)


@dataclass(slots=True)
class Frequencies:
    """How common each amount and each label is among the workspace's entries."""

    amounts: dict[int, int]
    texts: dict[str, int]
    total: int

    def amount(self, cents: float) -> float:
        return self._share(self.amounts.get(abs(int(cents)), 1))

    def text(self, label: str) -> float:
        return self._share(self.texts.get(label, 1))

    def _share(self, count: int) -> float:
        # Shrunk toward a typical rate: in a book of a few entries, two equal amounts are not
        # proof that the amount is common.
        return (count + TF_PSEUDO * TF_BASE_RATE) / (self.total + TF_PSEUDO)


def frequencies_of(entries: list[Entry]) -> Frequencies:
    """Counts of each absolute amount and each cleaned label among the entries."""
    amounts: dict[int, int] = {}
    texts: dict[str, int] = {}
    for entry in entries:
        for value in {abs(a) for a in (entry.amount_cents, entry.local_amount_cents) if a}:
            amounts[value] = amounts.get(value, 0) + 1
        if entry.label:
            texts[entry.label] = texts.get(entry.label, 0) + 1
    return Frequencies(amounts, texts, len(entries))


def compare(
    record: Record,
    entry: Entry,
    profile: Profile | None = None,
    directory: Directory | None = None,
    recurring: bool = False,
    paired: frozenset[str] | set[str] = frozenset(),
) -> dict[str, str]:
    """The comparison vector of one pair (a person's pick is explained this way too)."""
    profile = profile or Profile()
    names = profile.names()
    if record.name and record.name not in names:
        names.append(record.name)
    ctx = Context([profile], [names], directory or Directory(), set(paired), [recurring])
    pairs = compare_pairs(
        [record],
        [entry],
        np.zeros(1, np.int64),
        np.zeros(1, np.int64),
        ctx,
        record_columns([record]),
        entry_columns([entry], set(paired)),
    )
    return pairs.vector(0)
