"""The one entry point: a workspace's books, its model and a batch of records in, decisions out.

1. `build_book` indexes the workspace once: vendors, accounts, the history graph and the Qonto
   entries no record is linked to yet, by the kind of entry each record type can be.
2. `score_batch` blocks and compares every record of a batch with its candidates (comparison
   levels only: it does not depend on the model, so fitting reuses it).
3. `decide` weighs the levels with the workspace's model (Fellegi-Sunter log-likelihood ratios,
   term-frequency adjusted), turns each record's candidates and "create" into probabilities,
   shares them one-to-one across the batch (`assign.marginals`), calibrates every option with
   the workspace's calibrator, proposes the most likely action (ties broken by the optimal
   one-to-one assignment), and explains it.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from multiprocessing.pool import Pool
from typing import Any, TypeVar

import numpy as np

from . import blocking
from .assign import assign, first_and_inverse, marginals, segment_argmax
from .compare import (
    LEVELS,
    SIGNALS,
    STRONG_PARTY,
    Columns,
    Context,
    Pairs,
    compare_pairs,
    entry_columns,
    entry_numbers,
    record_columns,
)
from .counterparty import Directory, Profile, build_directory
from .enrichment import enrich, usual_account
from .gates import failed_gates
from .model import FEATURES, GROUPS, Model, target_kind
from .reasons import money, signal_reasons
from .types import (
    CREATE,
    LINK,
    SUPPLIER_INVOICE,
    Account,
    Alternative,
    Decision,
    Entry,
    HistoryLink,
    Policy,
    Reason,
    Record,
    Target,
    Vendor,
)

# Per record (type, id): the (kind, id) of every entry blocking found for it.
Candidates = dict[tuple[str, str], list[tuple[str, str]]]

MAX_ALTERNATIVES = 5
# More than any signal's number of levels: a comparison vector's code in this base is unique.
LEVEL_CODE_BASE = 1 + max(len(levels) for levels in LEVELS.values())
LOGIT_CLIP = 12.0
NEAR_TIE = 0.5  # an option at least half as likely as the proposal is a near-tie


@dataclass(slots=True)
class Book:
    """A workspace's state the engine reads: vendors, accounts, Qonto entries, history graph."""

    vendors: dict[str, Vendor]
    accounts: dict[str, Account]
    entries: list[Entry]
    positions: dict[tuple[str, str], int]
    directory: Directory
    indexes: dict[str, blocking.Index]
    paired: set[str]
    linked: frozenset[int]  # entries already linked to a record of the history
    columns: Columns
    # Invoice numbers of the supplier invoices already linked, and to which record.
    linked_references: dict[str, str] = field(default_factory=dict)
    targets: dict[int, Target] = field(default_factory=dict)  # one Target per entry, shared


@dataclass(slots=True)
class Catalog:
    """A workspace's Qonto entries prepared once, whatever its history says."""

    entries: list[Entry]
    positions: dict[tuple[str, str], int]
    paired: set[str]
    keys: list[blocking.EntryKeys]
    columns: Columns
    indexes: dict[str, blocking.Index]  # every entry of each kind; a book leaves out its linked


CATALOG_PARALLEL_MIN = 10_000  # entries: below it, a helper costs more than it saves


def catalog_of(entries: list[Entry], workers: int = 1) -> Catalog:
    """The entries prepared for blocking and comparing; with two workers a forked helper
    works out their numeric columns while this process builds the blocking indexes."""
    paired = {t for e in entries if e.kind == SUPPLIER_INVOICE for t in e.linked_ids}
    global _SHARED
    _SHARED = (entries, paired)
    try:
        with in_background(workers if len(entries) >= CATALOG_PARALLEL_MIN else 1) as background:
            numbers = background(_entry_numbers)
            keys = blocking.keys_of(entries)
            indexes = {
                kind: blocking.build_index(
                    entries, [i for i, e in enumerate(entries) if e.kind == kind], keys
                )
                for kind in GROUPS
            }
            columns = entry_columns(entries, paired, numbers())
    finally:
        _SHARED = None
    return Catalog(
        entries=entries,
        positions={(e.kind, e.id): i for i, e in enumerate(entries)},
        paired=paired,
        keys=keys,
        columns=columns,
        indexes=indexes,
    )


def _entry_numbers() -> dict[str, Any]:
    assert _SHARED is not None
    return entry_numbers(*_SHARED)


def build_book(
    vendors: list[Vendor],
    accounts: list[Account],
    history: list[HistoryLink],
    entries: list[Entry] | Catalog,
) -> Book:
    """Index a workspace once; reuse the book for every batch until its data changes."""
    catalog = entries if isinstance(entries, Catalog) else catalog_of(entries)
    entries = catalog.entries
    positions = catalog.positions
    by_id = {v.id: v for v in vendors}
    keyed = {key: entries[i] for key, i in positions.items()}
    linked = frozenset(
        i
        for link in history
        if (i := positions.get((link.target_kind, link.target_id))) is not None
    )
    indexes = {kind: blocking.index_without(catalog.indexes[kind], linked) for kind in GROUPS}
    directory = build_directory(by_id, history, keyed)
    linked_references = {
        entries[i].reference: directory.used.get((entries[i].kind, entries[i].id), "")
        for i in linked
        if entries[i].kind == SUPPLIER_INVOICE and len(entries[i].reference) >= 4
    }
    return Book(
        vendors=by_id,
        accounts={a.id: a for a in accounts},
        entries=entries,
        positions=positions,
        directory=directory,
        linked_references=linked_references,
        indexes=indexes,
        paired=catalog.paired,
        linked=linked,
        columns=catalog.columns,
    )


@dataclass(slots=True)
class Batch:
    """A batch's records with their candidates compared: what the model weighs."""

    records: list[Record]
    profiles: list[Profile]
    parties: list[str]
    groups: list[str]
    pairs: Pairs  # sorted by record
    counts: np.ndarray  # candidates per record
    starts: np.ndarray  # position of each record's first pair
    # Pair -> the bill whose payment its transaction may be instead (most pairs have none).
    rivals: dict[int, str]
    # Arrays derived from the above, computed once (EM weighs a batch at every iteration).
    _memo: dict = field(default_factory=dict, repr=False)

    def candidates_of(self, i: int) -> np.ndarray:
        return np.arange(self.starts[i], self.starts[i] + self.counts[i])

    def shapes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct comparison vectors of the pairs, each pair's one, each pair's group.

        A batch has a few hundred distinct vectors for hundreds of thousands of pairs: weighing
        each vector once is what lets EM re-weigh the batch at every iteration cheaply.
        """
        if "shapes" not in self._memo:
            levels = self.pairs.levels
            # Column by column: a 64-bit copy of every pair's levels would cost more.
            code = np.zeros(len(levels), dtype=np.int64)
            for k in range(levels.shape[1]):
                code += levels[:, k] * np.int64(LEVEL_CODE_BASE**k)
            first, inverse = first_and_inverse(code)
            record_group = np.array([GROUPS.index(g) for g in self.groups], dtype=np.int64)
            pair_group = record_group[self.pairs.record] if self.pairs.size else first[:0]
            self._memo["record_group"] = record_group
            self._memo["shapes"] = (levels[first].astype(np.int64), inverse, pair_group)
        return self._memo["shapes"]

    def group(self, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which records and pairs are of group `g` (masks), and those pairs' shapes."""
        key = ("group", g)
        if key not in self._memo:
            _, shape_of, pair_group = self.shapes()
            pairs = pair_group == g
            self._memo[key] = (self._memo["record_group"] == g, pairs, shape_of[pairs])
        return self._memo[key]

    def tf_terms(self, g: int, offsets: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """The term-frequency adjustment of each pair of group `g`, amount and text, for a
        group whose u of those levels is 2**offsets."""
        key = ("tf", g, offsets)
        if key not in self._memo:
            tf = self.pairs.tf[self.group(g)[1]]
            # A matched value as common as 1 in 20 entries says less than a unique one.
            self._memo[key] = tuple(
                np.where(tf[:, k] > 0, offset - np.log2(np.maximum(tf[:, k], 1e-9)), 0)
                for k, offset in enumerate(offsets)
            )
        return self._memo[key]


def _party_name(record: Record, profile: Profile) -> str:
    vendor = profile.vendor
    if vendor:
        return vendor.display_name or vendor.company_name
    return record.vendor_name or ""


PARALLEL_MIN = 2000  # records: below it, forking a second process costs more than it saves
_SHARED: tuple | None = None  # what a forked helper inherits (never pickled)


def score_batch(
    book: Book,
    records: list[Record],
    excluded: set[int] | frozenset[int] = frozenset(),
    workers: int = 1,
) -> Batch:
    """Block and compare every record with the entries it could be (no model involved).

    With workers=2 and a large batch, a forked helper process that inherits the book (nothing
    is copied in) scores some pieces of it and sends back only their pairs.
    """
    profiles, names, recurring, parties, groups = [], [], [], [], []
    for record in records:
        profile = book.directory.profile(record.vendor_id)
        own = profile.names()
        if record.name and record.name not in own:
            own.append(record.name)
        profiles.append(profile)
        names.append(own)
        parties.append(_party_name(record, profile))
        recurring.append(profile.amounts.get(record.amount_cents or 0, 0) >= 2)
        groups.append(target_kind(record.type))
    ctx = Context(profiles, names, book.directory, book.paired, recurring)
    columns = record_columns(records)
    pieces = _scored_pieces(len(records), workers, (book, records, excluded, ctx, columns))
    counts = np.concatenate([piece[0] for piece in pieces]).astype(np.int64)
    pairs = Pairs(
        np.concatenate([piece[1].record for piece in pieces]),
        np.concatenate([piece[1].entry for piece in pieces]),
        np.concatenate([piece[1].levels for piece in pieces]),
        np.concatenate([piece[1].tf for piece in pieces]),
    )
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    rivals = bill_rivals(book, records, pairs, starts, counts)
    return Batch(records, profiles, parties, groups, pairs, counts, starts, rivals)


def _scored_pieces(count: int, workers: int, shared: tuple) -> list[tuple[np.ndarray, Pairs]]:
    global _SHARED
    _SHARED = shared
    try:
        fork = "fork" in multiprocessing.get_all_start_methods()
        if workers < 2 or count < PARALLEL_MIN or not fork:
            return [_score_range(0, count)]
        return in_pieces(count, _score_range)
    finally:
        _SHARED = None


PIECE = 2000  # records a process takes at a time when two share a batch
T = TypeVar("T")
_CLAIMED = None  # the next piece to take, shared with a forked helper


def in_pieces(count: int, work: Callable[[int, int], T]) -> list[T]:
    """work(start, stop) over records [0, count), in pieces that this process and a forked
    helper take in turn, each as it finishes its last: a core that runs slower (a shared
    machine's often does) takes fewer, instead of the other waiting for its half. The results
    are in the records' order. `work` must be a module's function (the helper is sent its name).
    """
    global _CLAIMED
    pieces = [(start, min(start + PIECE, count)) for start in range(0, count, PIECE)]
    _CLAIMED = multiprocessing.get_context("fork").Value("i", 0)
    try:
        with forked_helper() as pool:
            pending = pool.apply_async(_take_pieces, (pieces, work))
            done = dict(_take_pieces(pieces, work) + pending.get())
    finally:
        _CLAIMED = None
    return [done[k] for k in range(len(pieces))]


def _take_pieces(
    pieces: list[tuple[int, int]], work: Callable[[int, int], T]
) -> list[tuple[int, T]]:
    assert _CLAIMED is not None
    done = []
    while True:
        with _CLAIMED.get_lock():
            k = _CLAIMED.value
            _CLAIMED.value = k + 1
        if k >= len(pieces):
            return done
        done.append((k, work(*pieces[k])))


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a batch is worked on.

    A batch allocates millions of short-lived objects and no reference cycles; each full
    collection they trigger walks the whole book again (a tenth of a large batch's time).
    Reference counting still frees everything as before.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def forked_helper() -> Iterator[Pool]:
    """A pool of one forked process, which inherits this one's memory instead of a copy.

    The collector is frozen meanwhile: walking the inherited objects would write to (and so
    copy) every page of them in the helper.
    """
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            yield pool
    finally:
        gc.unfreeze()


@contextmanager
def in_background(workers: int) -> Iterator[Callable[[Callable[[], T]], Callable[[], T]]]:
    """A way to start a task (a module's function of no argument, reading what the module
    shares with a fork): with two workers and fork, in a forked helper, one task after the
    other; else here, when its result is asked for."""
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        yield lambda task: task
        return
    with forked_helper() as pool:
        yield lambda task: pool.apply_async(task).get


def _score_range(start: int, stop: int) -> tuple[np.ndarray, Pairs]:
    """Block and compare records[start:stop]: candidates per record and their pairs."""
    assert _SHARED is not None
    book, records, excluded, ctx, columns = _SHARED
    # Blocking for the whole range at once, kind by kind.
    found: dict[int, list[int]] = {}
    by_kind: dict[str, list[int]] = {}
    for i in range(start, stop):
        record = records[i]
        if record.amount_cents is None and record.txn_date is None and not record.reference:
            continue  # nothing to search with
        by_kind.setdefault(target_kind(record.type), []).append(i)
    for kind, positions in by_kind.items():
        party_keys, tax_ids = [], []
        for i in positions:
            profile = ctx.profiles[i]
            keys = [records[i].name_key, profile.vendor.name_key if profile.vendor else ""]
            keys += profile.top_keys()
            party_keys.append(list(dict.fromkeys(k for k in keys if k)))
            tax_ids.append(tuple(profile.tax_ids))
        candidates = blocking.batch_candidates(
            book.indexes[kind], [records[i] for i in positions], party_keys, tax_ids, excluded
        )
        found.update(zip(positions, candidates, strict=True))
    candidates = [found.get(i, []) for i in range(start, stop)]
    counts = np.fromiter(map(len, candidates), dtype=np.int64, count=stop - start)
    entry_pos = np.fromiter(
        chain.from_iterable(candidates), dtype=np.int64, count=int(counts.sum())
    )
    record_pos = np.repeat(np.arange(start, stop, dtype=np.int64), counts)
    pairs = compare_pairs(records, book.entries, record_pos, entry_pos, ctx, columns, book.columns)
    return counts, pairs


PAYMENT_DELAY = (-3, 60)  # days from a bill to its payment


def bill_rivals(
    book: Book, records: list[Record], pairs: Pairs, starts: np.ndarray, counts: np.ndarray
) -> dict[int, str]:
    """The (expense, transaction) pairs whose transaction a bill of the same vendor and amount
    may pay instead, each with that bill: a card expense and a bill of one vendor, one day, one
    amount look alike in the bank, and only one of them is this transaction's."""
    bills: dict[tuple[str, int], list[tuple[int, str]]] = {
        key: list(days) for key, days in book.directory.bills.items()
    }
    for record in records:
        supplier_document = record.type != "Purchase" and record.vendor_id
        if supplier_document and record.amount_cents is not None and record.txn_date is not None:
            key = (record.vendor_id, abs(record.amount_cents))
            bills.setdefault(key, []).append(
                (record.txn_date.toordinal(), f"{record.type} {record.id}")
            )
    found: dict[int, str] = {}
    for i, record in enumerate(records):
        if record.type != "Purchase" or not record.vendor_id or record.amount_cents is None:
            continue
        rivals = bills.get((record.vendor_id, abs(record.amount_cents)))
        if not rivals:
            continue
        for k in range(int(starts[i]), int(starts[i] + counts[i])):
            entry = book.entries[pairs.entry[k]]
            if entry.entry_date is None:
                continue
            day = entry.entry_date.toordinal()
            for bill_day, name in rivals:
                if PAYMENT_DELAY[0] <= day - bill_day <= PAYMENT_DELAY[1]:
                    found[k] = name
                    break
    return found


# ---- weighing ----------------------------------------------------------------------------


@dataclass(slots=True)
class Weighed:
    """Per pair log2 likelihood ratios, per record the log2 prior of "none" and of a link."""

    llr: np.ndarray
    log2_link: np.ndarray  # prior + llr, per pair
    log2_none: np.ndarray  # per record


def weigh(model: Model, batch: Batch) -> Weighed:
    """The Fellegi-Sunter weight of every pair under the model, term-frequency adjusted."""
    pairs = batch.pairs
    llr = np.zeros(pairs.size)
    log2_link = np.zeros(pairs.size)
    shapes, _, _ = batch.shapes()
    log2_none = np.zeros(len(batch.records))
    for g, name in enumerate(GROUPS):
        group = model.groups[name]
        table = group.weight_table()
        records_in, pairs_in, shape_of = batch.group(g)
        if len(shape_of):
            weights = table[np.arange(len(SIGNALS)), shapes].sum(axis=1)[shape_of]
            for term in batch.tf_terms(g, group.tf_offsets()):
                weights += term
            if len(weights) == pairs.size:  # one group holds every pair: no mask to go through
                llr, log2_link = weights, group.log2_prior() + weights
            else:
                llr[pairs_in] = weights
                log2_link[pairs_in] = group.log2_prior() + weights
        log2_none[records_in] = group.log2_none()
    return Weighed(llr, log2_link, log2_none)


def posteriors(batch: Batch, weighed: Weighed) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's and each record's "none" probability, record by record (no one-to-one)."""
    pairs = batch.pairs
    n = len(batch.records)
    if pairs.size == 0:
        return np.zeros(0), np.ones(n)
    top = np.full(n, -np.inf)
    has = batch.counts > 0  # pairs come record by record
    top[has] = np.maximum.reduceat(weighed.log2_link, batch.starts[has])
    top = np.maximum(top, weighed.log2_none)
    link = np.exp2(weighed.log2_link - top[pairs.record])
    none = np.exp2(weighed.log2_none - top)
    total = none + np.bincount(pairs.record, weights=link, minlength=n)
    return link / total[pairs.record], none / total


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.clip(np.log(p / (1 - p)), -LOGIT_CLIP, LOGIT_CLIP)


@dataclass(slots=True)
class Options:
    """Every action of every record with its probability before and after calibration."""

    raw_pair: np.ndarray
    raw_none: np.ndarray
    pair: np.ndarray  # calibrated
    none: np.ndarray  # calibrated
    pair_features: np.ndarray
    none_features: np.ndarray


def option_features(batch: Batch, raw_pair: np.ndarray, raw_none: np.ndarray) -> tuple:
    """Calibrator inputs (model.FEATURES) for every pair and for every record's "create"."""
    no_party = np.array([0.0 if (r.vendor_id or r.vendor_name) else 1.0 for r in batch.records])
    amounts = [r.amount_cents or 0 for r in batch.records]
    profiles = list(zip(batch.profiles, amounts, strict=True))
    recurring = np.array([p.amounts.get(a, 0) >= 2 for p, a in profiles], float)
    repeats = np.array([a in p.repeats for p, a in profiles], float)
    log_candidates = np.log1p(batch.counts.astype(float))
    rec = batch.pairs.record
    pair_logit = _logit(raw_pair)
    none_logit = _logit(raw_none)
    rival = np.zeros(len(raw_pair))
    rival[list(batch.rivals)] = 1.0
    pair_features = _columns(
        [
            1.0,
            pair_logit,
            0.0,
            0.0,
            log_candidates[rec],
            no_party[rec],
            recurring[rec],
            repeats[rec],
            rival,
        ],
        len(raw_pair),
    )
    none_features = _columns(
        [1.0, none_logit, 1.0, none_logit, log_candidates, no_party, recurring, repeats, 0.0],
        len(raw_none),
    )
    return pair_features, none_features


def _columns(columns: list, rows: int) -> np.ndarray:
    """np.column_stack of these columns (a number fills its column), filled in place: a
    fifth of its time on a batch's hundreds of thousands of pairs."""
    out = np.empty((rows, len(columns)))
    for k, column in enumerate(columns):
        out[:, k] = column
    return out


def calibrate(model: Model, features: np.ndarray) -> np.ndarray:
    """The calibrated probability of each option."""
    beta = np.array([model.calibrator.get(name, 0.0) for name in FEATURES])
    return 1 / (1 + np.exp(-(features @ beta)))


def options(model: Model, batch: Batch, shared: bool = True) -> Options:
    """Probabilities of every action of the batch: one-to-one shared, then calibrated.

    With shared=False each record is weighed alone, as if no other record of the batch could
    claim its entries.
    """
    weighed = weigh(model, batch)
    if shared:
        raw_pair, raw_none = marginals(
            batch.pairs.record, batch.pairs.entry, weighed.log2_link, weighed.log2_none
        )
    else:
        raw_pair, raw_none = posteriors(batch, weighed)
    pair_features, none_features = option_features(batch, raw_pair, raw_none)
    return Options(
        raw_pair,
        raw_none,
        calibrate(model, pair_features),
        calibrate(model, none_features),
        pair_features,
        none_features,
    )


# ---- deciding -----------------------------------------------------------------------------


def propose(batch: Batch, opts: Options) -> tuple[np.ndarray, np.ndarray]:
    """Each record's proposed pair (-1 for "create") and whether its proposal is contested.

    The proposal is always the record's most likely action; where several are about as
    likely, the optimal one-to-one assignment of the batch decides which, so that near-twins
    (one vendor, one amount, a few days apart) get different entries when they can.
    """
    pairs = batch.pairs
    with np.errstate(divide="ignore"):
        chosen = assign(pairs.record, pairs.entry, np.log(opts.pair), np.log(opts.none))
    contested = np.zeros(len(batch.records), dtype=bool)
    best_pair = segment_argmax(opts.pair, pairs.record, len(batch.records))
    pair_best = np.full(len(batch.records), -1.0)
    has = best_pair >= 0
    pair_best[has] = opts.pair[best_pair[has]]
    use_pair = pair_best > opts.none
    best_value = np.where(use_pair, pair_best, opts.none)
    best_pair = np.where(use_pair, best_pair, -1)
    linked = chosen >= 0
    value = opts.none.copy()
    value[linked] = opts.pair[chosen[linked]]
    # Where the assignment gave a record's most likely entry to another record, propose it
    # anyway (it is the most likely action) and let a person settle it.
    overruled = value < best_value - 1e-9
    chosen[overruled] = best_pair[overruled]
    contested[overruled] = True
    # Every record whose entry another record is also proposed is contested.
    linking = np.flatnonzero(chosen >= 0)
    _, shared, count = np.unique(
        pairs.entry[chosen[linking]], return_inverse=True, return_counts=True
    )
    contested[linking[count[shared.reshape(-1)] > 1]] = True
    return chosen, contested


def decide(
    book: Book,
    records: list[Record],
    model: Model,
    policy: Policy,
    batch: Batch | None = None,
) -> list[Decision]:
    """Propose an action for every record: score, weigh, share one-to-one, calibrate, explain.

    `batch` is these records already scored on this book (fitting scores them too).
    """
    with collector_paused():
        proposed = proposals(book, records, model, batch)
        return list(explained(book, proposed, model, policy, 0, len(records)))


@dataclass(slots=True)
class Proposed:
    """The whole batch weighed, shared one-to-one and proposed: what explaining a record reads.

    Per-record values are also kept as Python lists (explaining reads them one at a time,
    which a list answers several times faster than a numpy array); per-pair ones stay arrays,
    read a record's slice at a time.
    """

    batch: Batch
    opts: Options
    llr: np.ndarray
    chosen: list[int]  # per record: its proposed pair, -1 for "create"
    contested: list[bool]
    none: list[float]  # calibrated probability of "create" per record
    raw_none: list[float]
    starts: list[int]
    counts: list[int]
    # Signal -> level names of the batch's distinct comparison vectors met so far (there are a
    # few hundred for hundreds of thousands of pairs, and naming one is most of reading it).
    named: dict[int, dict[str, str]] = field(default_factory=dict)

    def vectors(self, pairs: list[int]) -> dict[int, dict[str, str]]:
        """The comparison vectors of these pairs, each a dict of its own (decisions keep them)."""
        shape_of = self.batch.shapes()[1]
        found = {}
        for pair in pairs:
            shape = int(shape_of[pair])
            named = self.named.get(shape)
            if named is None:
                named = self.named[shape] = self.batch.pairs.vector(pair)
            found[pair] = named.copy()
        return found


def proposals(
    book: Book, records: list[Record], model: Model, batch: Batch | None = None
) -> Proposed:
    """Score (unless `batch` is given), weigh, share and propose for the whole batch at once:
    the one-to-one sharing needs every record, explaining each one afterwards does not."""
    batch = batch if batch is not None else score_batch(book, records)
    opts = options(model, batch)
    chosen, contested = propose(batch, opts)
    return Proposed(
        batch,
        opts,
        weigh(model, batch).llr,
        chosen.tolist(),
        contested.tolist(),
        opts.none.tolist(),
        opts.raw_none.tolist(),
        batch.starts.tolist(),
        batch.counts.tolist(),
    )


def explained(
    book: Book,
    proposed: Proposed,
    model: Model,
    policy: Policy,
    start: int,
    stop: int,
    feedback: bool = True,
) -> Iterator[Decision]:
    """The decisions of records[start:stop], each explained (records are independent here,
    so ranges can be explained in separate processes).

    With `feedback`, each decision also keeps what learning from a person's verdict reads: the
    calibrator's features and every ranked candidate's comparison vector (decisions.jsonl has
    neither, so writing it goes without).
    """
    for i in range(start, stop):
        yield _decision(book, proposed, model, policy, i, feedback)


def candidates_of(book: Book, batch: Batch, start: int, stop: int) -> Candidates:
    """The entries blocking found for each of records[start:stop]."""
    keys = [(e.kind, e.id) for e in book.entries]
    entry = batch.pairs.entry
    found: Candidates = {}
    for i in range(start, stop):
        first = int(batch.starts[i])
        record = batch.records[i]
        found[(record.type, record.id)] = [
            keys[p] for p in entry[first : first + int(batch.counts[i])].tolist()
        ]
    return found


def _completeness(record: Record) -> tuple[float, list[str]]:
    missing = []
    if record.amount_cents is None:
        missing.append("no amount")
    if record.txn_date is None:
        missing.append("no date")
    if not (record.vendor_id or record.vendor_name):
        missing.append("no vendor")
    if not record.currency:
        missing.append("no currency")
    fields = 4
    if record.type in ("Bill", "VendorCredit"):
        fields += 1
        if not record.reference:
            missing.append("no invoice number")
    return 1 - len(missing) / fields, missing


def _party_strength(profile: Profile) -> float:
    if profile.tax_id:
        return 1.0
    if profile.records >= 3:
        return 0.7
    if profile.vendor is not None:
        return 0.4
    return 0.0


QUALITY_AUTO = 0.6  # below it a "create" is reviewed, however sure the search
QUALITY_REVIEW = 0.35  # below it a "create" is refused (a person may still post it)


def record_quality(record: Record, profile: Profile, fit: float) -> tuple[float, list[str]]:
    """The record's own quality in [0, 1]: complete fields, a known counterparty, policy fit.

    It matters for "create" only: uploading a thin record of an unknown vendor is a person's
    call, while linking it to an entry that plainly is it needs no vendor at all.
    """
    share, missing = _completeness(record)
    strength = _party_strength(profile)
    quality = share * (0.5 + 0.5 * strength) + 0.1 * min(fit, 1.0)
    if strength < 0.7:
        missing.append("vendor unknown to history" if strength else "vendor unknown")
    return round(min(quality, 1.0), 4), missing


def _policy_fit(record: Record, profile: Profile, policy: Policy) -> tuple[float, list[str]]:
    """Whether the record is ordinary for its vendor: a PO, the usual ledger, a known amount."""
    fit, why = 0.0, []
    if record.linked_po or (record.vendor_id, record.amount_cents) in policy.purchase_orders:
        fit += 1.0
        why.append("a purchase order for this vendor and amount")
    account_id, count, total = usual_account(profile)
    if account_id and record.account_ids and record.account_ids[0] == account_id and count >= 2:
        fit += 0.5
        why.append(f"usual ledger account ({count} of {total} prior bills)")
    seen = profile.amounts.get(record.amount_cents or 0, 0)
    if seen >= 2:
        fit += 0.5
        why.append(f"same amount as {seen} prior bills from this vendor")
    return min(fit, 1.0), why


def _target(book: Book, entry: int | None) -> Target | None:
    if entry is None:
        return None
    found = book.targets.get(entry)
    if found is None:
        found = book.targets[entry] = Target(book.entries[entry].kind, book.entries[entry].id)
    return found


def _decision(
    book: Book, proposed: Proposed, model: Model, policy: Policy, i: int, feedback: bool
) -> Decision:
    batch = proposed.batch
    record = batch.records[i]
    profile = batch.profiles[i]
    pair = proposed.chosen[i]
    first, stop = proposed.starts[i], proposed.starts[i] + proposed.counts[i]
    likelihood = proposed.opts.pair[first:stop].tolist()
    # This record's most likely candidates, best first (ties in candidate order): all that
    # reasons and alternatives use, so only they (and the proposal) are read further.
    best = sorted(range(stop - first), key=likelihood.__getitem__, reverse=True)
    ranked = [first + k for k in best[: MAX_ALTERNATIVES + 1]]
    read = ranked if pair < 0 or pair in ranked else [*ranked, pair]
    # By the pairs' positions in the batch.
    probability = {p: likelihood[p - first] for p in read}
    entries = batch.pairs.entry[first:stop].tolist()
    entry_of = {p: entries[p - first] for p in read}
    action = LINK if pair >= 0 else CREATE
    confidence = probability[pair] if pair >= 0 else proposed.none[i]
    near = [p for p in ranked if p != pair and probability[p] >= NEAR_TIE * confidence]
    # The explanation itself reads the proposal's vector (the best candidate's for a "create")
    # and its near-ties'.
    explaining = ([pair] if pair >= 0 else ranked[:1]) + near
    vectors = proposed.vectors(read if feedback else explaining)
    entry_pos = entry_of[pair] if pair >= 0 else None
    entry = book.entries[entry_pos] if entry_pos is not None else None
    vector = vectors[pair] if pair >= 0 else None

    gates = failed_gates(record, action, vector, policy)
    fit, fit_why = _policy_fit(record, profile, policy)
    quality, thin = record_quality(record, profile, fit)
    if action == CREATE and quality < QUALITY_AUTO:
        gates.append(f"too thin to create alone (quality {quality:.2f}: {', '.join(thin)})")
    alike: list[int] = []
    if vector is not None and near:
        alike = [p for p in near if _alike(vectors[p], vector)]
        if alike:
            gates.append(
                f"{len(alike)} other entr{'y' if len(alike) == 1 else 'ies'} of this vendor "
                "look the same (amount and dates): a person picks"
            )
    if vector is not None and vector["reference"] == "different" and entry.kind == SUPPLIER_INVOICE:
        gates.append(
            f"the invoice numbers differ: {record.raw_reference or record.reference} in "
            f"QuickBooks, {entry.reference} in Qonto"
        )
    if vector is not None and entry is not None and vector["counterparty"] == "different":
        gates.append(
            f"the names differ: '{batch.parties[i] or record.vendor_name}' in QuickBooks, "
            f"'{entry.raw_name}' in Qonto"
        )
    contested = proposed.contested[i]
    if contested:
        gates.append("another record of this batch is as likely to be this entry")
    duplicate = book.linked_references.get(record.reference) if record.type != "Purchase" else ""
    if duplicate:
        gates.append(
            f"invoice number {record.raw_reference or record.reference} is already {duplicate}'s:"
            " a duplicate bill?"
        )
    if pair >= 0 and pair in batch.rivals:
        gates.append(f"this transaction may be the payment of {batch.rivals[pair]} instead")
    if gates:
        # A failed gate always means review, even when the evidence is strong.
        confidence = min(confidence, policy.auto_threshold - 0.001)
    if action == CREATE and quality < QUALITY_REVIEW:
        confidence = min(confidence, policy.review_threshold - 0.001)
    confidence = _four_places(confidence)

    group = model.groups[batch.groups[i]]
    reasons: list[Reason] = []
    if entry is not None and vector is not None:
        reasons += signal_reasons(
            record, entry, vector, group, batch.parties[i], float(proposed.llr[pair])
        )
    else:
        reasons += _create_reasons(book, batch, i, ranked, vectors, probability, entry_of)
    alternatives = _alternatives(book, proposed, i, pair, confidence, ranked, probability, entry_of)
    runner = alternatives[0].confidence if alternatives else 0.0
    reasons.append(
        Reason(
            "runner_up",
            _four_places(confidence - runner),
            f"next best action is {runner:.0%} likely" if alternatives else "no other action",
            level="next_best" if alternatives else "none",
            params={"probability": f"{runner:.4f}"},
        )
    )
    reasons += [Reason("policy", 0.0, why, level="fit") for why in fit_why]
    counterparty = enrich(record, profile, book.accounts, entry, book.directory)
    if counterparty.ledger_account:
        reasons.append(
            Reason(
                "ledger",
                0.0,
                f"ledger {counterparty.ledger_account}: "
                f"{counterparty.provenance['ledger_account']}",
                level="usual",
                params={"account": counterparty.ledger_account},
            )
        )
    reasons += [Reason("gate", 0.0, f"not auto-posted: {gate}", level="gate") for gate in gates]
    if not gates and confidence < policy.auto_threshold:
        reasons.append(
            Reason(
                "gate",
                0.0,
                f"not auto-posted: confidence {confidence:.2f} is "
                f"below {policy.auto_threshold:.2f}",
                level="below_threshold",
                params={
                    "confidence": f"{confidence:.4f}",
                    "threshold": f"{policy.auto_threshold:.4f}",
                },
            )
        )
    features: dict[str, float] = {}
    comparisons: dict[str, dict[str, str]] = {}
    if feedback:
        opts = proposed.opts
        features = dict(
            zip(
                FEATURES,
                (opts.pair_features[pair] if pair >= 0 else opts.none_features[i]).tolist(),
                strict=True,
            )
        )
        features["raw_probability"] = (
            float(opts.raw_pair[pair]) if pair >= 0 else proposed.raw_none[i]
        )
        for p in ranked:
            candidate = book.entries[entry_of[p]]
            comparisons[f"{candidate.kind}:{candidate.id}"] = vectors[p]
    return Decision(
        type=record.type,
        id=record.id,
        action=action,
        target=_target(book, entry_pos),
        confidence=confidence,
        alternatives=alternatives,
        counterparty=counterparty,
        reasons=reasons,
        auto=not gates and confidence >= policy.auto_threshold,
        gates_failed=gates,
        ambiguous=bool(alike) or contested,
        features=features,
        comparisons=comparisons,
        vendor_id=record.vendor_id,
        model_version=model.version,
    )


def _four_places(value: float) -> float:
    """round(value, 4), the same float, in a fifth of the time for the many probabilities too
    small to show: round() goes through decimal digits, while below half the fourth place the
    answer is a zero of the value's sign, which value * 0.0 is."""
    return value * 0.0 if -5e-5 < value < 5e-5 else round(value, 4)


def _alike(a: dict[str, str], b: dict[str, str]) -> bool:
    """Two candidates of one record that only a person can tell apart: same vendor, amount."""
    return (
        a["counterparty"] in STRONG_PARTY
        and b["counterparty"] in STRONG_PARTY
        and a["amount"] == b["amount"]
        and a["reference"] == b["reference"]
    )


def _alternatives(
    book: Book,
    proposed: Proposed,
    i: int,
    pair: int,
    confidence: float,
    ranked: list[int],
    probability: dict[int, float],
    entry_of: dict[int, int],
) -> list[Alternative]:
    """The other actions, most likely first, with their own calibrated probabilities (scaled
    down only if together they would claim more than the proposal leaves)."""
    found: list[tuple[float, int | None]] = [
        (probability[p], entry_of[p]) for p in ranked if p != pair
    ]
    if pair >= 0:
        found.append((proposed.none[i], None))
    found.sort(key=lambda item: -item[0])
    found = found[:MAX_ALTERNATIVES]
    total = sum([p for p, _ in found])
    scale = min(1.0, (1 - confidence) / total) if total > 0 else 1.0
    return [
        Alternative(
            LINK if entry is not None else CREATE,
            _target(book, entry),
            _four_places(p * scale),
        )
        for p, entry in found
    ]


def _create_reasons(
    book: Book,
    batch: Batch,
    i: int,
    ranked: list[int],
    vectors: dict[int, dict[str, str]],
    probability: dict[int, float],
    entry_of: dict[int, int],
) -> list[Reason]:
    record = batch.records[i]
    if not ranked:
        amount = money(record.amount_cents, record.currency)
        return [
            Reason(
                "candidates",
                0.0,
                f"no Qonto entry near {amount} around this date",
                level="none_found",
                params={"amount": amount},
            )
        ]
    best = ranked[0]
    entry = book.entries[entry_of[best]]
    weak = [
        f"{signal} {level}"
        for signal, level in vectors[best].items()
        if level not in ("exact", "same_day", "same", "free", "missing")
    ]
    likely = probability[best]
    count = int(batch.counts[i])
    return [
        Reason(
            "candidates",
            _four_places(likely),
            f"best of {count} Qonto entries ({entry.raw_name or entry.id}) is only "
            f"{likely:.0%} likely: {', '.join(weak) or 'not enough evidence'}",
            level="too_weak",
            params={"count": str(count), "best": entry.raw_name or entry.id},
        )
    ]
