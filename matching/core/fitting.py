"""Fit a workspace's model on its own books, the way probabilistic record linkage does.

- u (how often a level occurs between unrelated records and entries) from random pairs, as
  Splink and fastLink estimate it;
- m (how often it occurs between a record and its own entry) and the share of records that have
  an entry, by expectation-maximisation over the workspace's candidate pairs, where every past
  link (history) and every reviewer's answer is a labelled record and the records still to
  decide are unlabelled, all shrunk toward the shipped prior when data are few;
- the calibrator by time split: levels learnt on older history decide the newest history as if
  it were new, and a logistic regression (scipy) maps those decisions' probabilities to how
  often they were right, shrunk toward the prior's cautious calibrator when labels are few.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from random import Random

import numpy as np
from scipy.optimize import minimize

from .compare import LEVELS, MISSING, SIGNALS, Context, compare_pairs, record_columns
from .engine import (
    Batch,
    Book,
    Catalog,
    build_book,
    catalog_of,
    collector_paused,
    in_background,
    option_features,
    options,
    posteriors,
    score_batch,
    weigh,
)
from .model import FEATURES, GROUPS, Group, Model, load_prior, target_kind
from .types import Account, Entry, HistoryLink, Record, Vendor

RANDOM_PAIRS = 40_000
U_ENTRIES_MIN = 100  # entries of a kind before u is measured on the workspace's own
M_PRIOR_STRENGTH = 20.0  # pseudo-pairs pulling m toward the prior
U_PRIOR_STRENGTH = 50.0
PI_PRIOR_STRENGTH = 20.0
EM_ITERATIONS = 30
EM_TOLERANCE = 1e-3  # largest change of a probability between two iterations
ANSWERS_BEFORE_FADING = 20
SPLIT_SLICE_MAX = 1500  # labelled records per slice of the time split
SPLIT_MIN = 40  # labelled records before a time split (and a fitted calibrator) is possible
CALIBRATION_STRENGTH = 30.0  # how hard the calibrator is pulled toward the prior's
TOP_OPTIONS = 3  # options of each record the calibrator learns from
MIN_LOGIT_SLOPE = 0.05  # more evidence never lowers confidence


@dataclass(slots=True)
class Label:
    """A record whose right action is known: a past link, or a reviewer's answer."""

    record: Record
    target: tuple[str, str] | None  # (kind, id); None: no entry in Qonto is this record
    rejected: frozenset[tuple[str, str]] = frozenset()


@dataclass
class Fitted:
    """The model, what it was fitted on, and the open records already scored on the full book."""

    model: Model
    book: Book
    batch: Batch
    report: dict = field(default_factory=dict)


def labels_from_history(history: list[HistoryLink]) -> list[Label]:
    """Past links that say what a record is (a bill's payment link is evidence, not a label)."""
    return [
        Label(link.record, (link.target_kind, link.target_id))
        for link in history
        if target_kind(link.record.type) == link.target_kind
    ]


def _when(label: Label) -> tuple[date, str]:
    return (label.record.txn_date or date.min, label.record.id)


def _true_pairs(book: Book, batch: Batch, labels: list[Label]) -> np.ndarray:
    """For each record of the batch: its true pair, -1 for "none", -2 when not among candidates."""
    truth = np.full(len(labels), -1, dtype=np.int64)
    for i, label in enumerate(labels):
        if label.target is None:
            continue
        want = book.positions.get(label.target)
        found = [p for p in batch.candidates_of(i) if batch.pairs.entry[p] == want]
        truth[i] = found[0] if found else -2
    return truth


def _probabilities(group: Group) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(levels) for levels in LEVELS.values())
    m = np.zeros((len(SIGNALS), width))
    u = np.zeros((len(SIGNALS), width))
    for k, signal in enumerate(SIGNALS):
        for i, level in enumerate(LEVELS[signal]):
            if level != MISSING:
                m[k, i] = group.m[signal][level]
                u[k, i] = group.u[signal][level]
    return m, u


def _table(values: np.ndarray) -> dict[str, dict[str, float]]:
    table = {}
    for k, signal in enumerate(SIGNALS):
        levels = [lvl for lvl in LEVELS[signal] if lvl != MISSING]
        row = values[k, : len(LEVELS[signal])]
        mask = np.array([lvl != MISSING for lvl in LEVELS[signal]])
        total = row[mask].sum()
        table[signal] = {
            level: round(float(row[LEVELS[signal].index(level)] / total), 6) if total else 0.0
            for level in levels
        }
    return table


def _level_counts(levels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    width = max(len(lv) for lv in LEVELS.values())
    counts = np.zeros((len(SIGNALS), width))
    for k in range(len(SIGNALS)):
        counts[k] = np.bincount(levels[:, k], weights=weights, minlength=width)[:width]
    return counts


def estimate_u(
    book: Book, records: list[Record], kind: str, prior: Group, rng: Random, size: int
) -> dict[str, dict[str, float]]:
    """u: level frequencies between random records and random entries of the kind."""
    of_kind = [i for i, e in enumerate(book.entries) if e.kind == kind]
    mine = [r for r in records if target_kind(r.type) == kind]
    _, u_prior = _probabilities(prior)
    if len(of_kind) < U_ENTRIES_MIN or not mine:
        # In a book of a few entries a "random" pair is often a true one: keep the prior.
        return prior.u
    size = min(size, len(of_kind) * len(mine))
    drawn = np.array([rng.randrange(len(mine)) for _ in range(size)], dtype=np.int64)
    entry_pos = np.array([of_kind[rng.randrange(len(of_kind))] for _ in range(size)])
    # Only the records drawn are compared: their context alone is built.
    sampled, record_pos = np.unique(drawn, return_inverse=True)
    mine = [mine[i] for i in sampled.tolist()]
    profiles = [book.directory.profile(r.vendor_id) for r in mine]
    names = []
    for record, profile in zip(mine, profiles, strict=True):
        own = profile.names()
        if record.name and record.name not in own:
            own.append(record.name)
        names.append(own)
    recurring = [
        p.amounts.get(r.amount_cents or 0, 0) >= 2 for r, p in zip(mine, profiles, strict=True)
    ]
    ctx = Context(profiles, names, book.directory, book.paired, recurring)
    pairs = compare_pairs(
        mine, book.entries, record_pos, entry_pos, ctx, record_columns(mine), book.columns
    )
    counts = _level_counts(pairs.levels.astype(np.int64), np.ones(pairs.size))
    return _table(counts + U_PRIOR_STRENGTH * _normalised(u_prior) + 1e-3)


def _normalised(values: np.ndarray) -> np.ndarray:
    out = np.zeros_like(values)
    for k, signal in enumerate(SIGNALS):
        mask = np.array([lvl != MISSING for lvl in LEVELS[signal]])
        row = values[k, : len(LEVELS[signal])] * mask
        total = row.sum()
        if total:
            out[k, : len(LEVELS[signal])] = row / total
    return out


@dataclass(slots=True)
class Sample:
    """Scored records of one kind for EM: a batch and, per record, its label (or none)."""

    batch: Batch
    truth: np.ndarray | None  # per record: true pair, -1 none, -2 not blocked; None: unlabelled


def em(model: Model, kind: str, samples: list[Sample], prior: Group) -> Group:
    """m and the link prior of one kind by expectation-maximisation (u stays as estimated)."""
    group = model.groups[kind]
    m_prior, _ = _probabilities(prior)
    pi_prior = prior.pi
    answers = sum(int((s.truth >= 0).sum()) for s in samples if s.truth is not None)
    # Answers outweigh guesses: an open record's pairs count fully while answers are few, and
    # fade as they grow (the model's own posteriors would reinforce its starting point).
    unlabelled_weight = min(1.0, ANSWERS_BEFORE_FADING / max(answers, 1))
    # What does not change between iterations is counted once: the answers' level counts (an
    # answer's true pair counts fully, every other pair not at all) and which pairs are this
    # kind's. The samples are still added in their order, so that the sums are the same.
    prepared: list[tuple[Batch, np.ndarray] | np.ndarray] = []
    for sample in samples:
        batch = sample.batch
        mine = np.array([g == kind for g in batch.groups], dtype=bool)
        if not mine.any() or batch.pairs.size == 0:
            continue
        if sample.truth is None:
            prepared.append((batch, mine))
            continue
        levels = batch.pairs.levels.astype(np.int64)
        weights = np.zeros(batch.pairs.size)
        weights[sample.truth[sample.truth >= 0]] = 1.0
        prepared.append(_level_counts(levels, weights * mine[batch.pairs.record]))
    for _ in range(EM_ITERATIONS):
        counts = M_PRIOR_STRENGTH * _normalised(m_prior)
        linked = pi_prior * PI_PRIOR_STRENGTH
        seen = PI_PRIOR_STRENGTH
        for item in prepared:
            if isinstance(item, np.ndarray):
                counts += item
                continue
            batch, mine = item
            pair_post, none_post = posteriors(batch, weigh(model, batch))
            linked += float((1 - none_post)[mine].sum())
            seen += float(mine.sum())
            weights = pair_post * unlabelled_weight * mine[batch.pairs.record]
            # Summed per distinct comparison vector first: one pass over the pairs.
            shapes, shape_of, _ = batch.shapes()
            counts += _level_counts(shapes, np.bincount(shape_of, weights, len(shapes)))
        m_new = _table(counts + 1e-3)
        pi_new = min(max(linked / seen, 0.02), 0.98)
        change = abs(pi_new - group.pi) + max(
            abs(m_new[s][lv] - group.m[s][lv]) for s in m_new for lv in m_new[s]
        )
        group = Group(m=m_new, u=group.u, pi=pi_new, entries=group.entries)
        model.groups[kind] = group
        if change < EM_TOLERANCE:
            break
    return group


def fit_calibrator(
    features: np.ndarray, right: np.ndarray, prior: dict[str, float], strength: float
) -> dict[str, float]:
    """Logistic regression of "this option is right" on the features, shrunk toward `prior`."""
    centre = np.array([prior.get(name, 0.0) for name in FEATURES])
    slope = FEATURES.index("logit")
    bounds = [(None, None)] * len(FEATURES)
    bounds[slope] = (MIN_LOGIT_SLOPE, None)

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = features @ beta
        p = 1 / (1 + np.exp(-z))
        nll = np.sum(np.logaddexp(0, z) - right * z)
        grad = features.T @ (p - right)
        diff = beta - centre
        return nll + 0.5 * strength * diff @ diff, grad + strength * diff

    result = minimize(loss, centre, jac=True, method="L-BFGS-B", bounds=bounds)
    return {name: round(float(b), 6) for name, b in zip(FEATURES, result.x, strict=True)}


def _drop_entries(batch: Batch, removed: set[int]) -> Batch:
    """The batch as if these entries did not exist (for records whose entry is not in Qonto)."""
    keep = ~np.isin(batch.pairs.entry, np.array(sorted(removed), dtype=np.int64))
    pairs = batch.pairs
    kept = type(pairs)(pairs.record[keep], pairs.entry[keep], pairs.levels[keep], pairs.tf[keep])
    counts = np.bincount(kept.record, minlength=len(batch.records)).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    # A kept pair's new position: how many pairs before it were kept.
    position = np.cumsum(keep) - 1
    rivals = {int(position[k]): name for k, name in batch.rivals.items() if keep[k]}
    return Batch(
        batch.records, batch.profiles, batch.parties, batch.groups, kept, counts, starts, rivals
    )


def _calibration_samples(
    model: Model, batch: Batch, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Features and rightness of each record's most likely options under the model."""
    # Each record alone: at decision time the records whose entries compete with it may not be
    # in the same batch (not synced yet, or never booked), so no help from one-to-one here.
    opts = options(model, batch, shared=False)
    pair_features, none_features = option_features(batch, opts.raw_pair, opts.raw_none)
    rows, right = [], []
    for i in range(len(batch.records)):
        if truth[i] == -2:
            continue  # the entry was not found at all: nothing the calibrator can learn from
        own = batch.candidates_of(i)
        ranked = sorted(own, key=lambda p: -opts.raw_pair[p])[: TOP_OPTIONS - 1]
        for p in ranked:
            rows.append(pair_features[p])
            right.append(1.0 if truth[i] == p else 0.0)
        rows.append(none_features[i])
        right.append(1.0 if truth[i] == -1 else 0.0)
    if not rows:
        return np.zeros((0, len(FEATURES))), np.zeros(0)
    return np.array(rows), np.array(right)


def fit(
    vendors: list[Vendor],
    accounts: list[Account],
    history: list[HistoryLink],
    entries: list[Entry],
    unlabelled: list[Record],
    extra_labels: list[Label] | None = None,
    prior: Model | None = None,
    seed: int = 0,
    workers: int = 1,
) -> Fitted:
    """The workspace's model, estimated on its own history, reviewers' answers and open records."""
    with collector_paused():
        return _fit(
            vendors, accounts, history, entries, unlabelled, extra_labels, prior, seed, workers
        )


def _fit(
    vendors: list[Vendor],
    accounts: list[Account],
    history: list[HistoryLink],
    entries: list[Entry],
    unlabelled: list[Record],
    extra_labels: list[Label] | None,
    prior: Model | None,
    seed: int,
    workers: int,
) -> Fitted:
    prior = prior or load_prior()
    rng = Random(seed)
    labels = sorted(labels_from_history(history) + list(extra_labels or []), key=_when)
    catalog = catalog_of(entries, workers)
    book = build_book(vendors, accounts, history, catalog)
    model = Model(
        version="fitted",
        groups={
            kind: Group(
                m=prior.groups[kind].m,
                u=prior.groups[kind].u,
                pi=prior.groups[kind].pi,
                entries=max(1, sum(1 for e in entries if e.kind == kind)),
            )
            for kind in GROUPS
        },
        calibrator=dict(prior.calibrator),
    )
    slice_size = min(max(len(labels) // 3, 1), SPLIT_SLICE_MAX)
    parts: list[tuple[list[Label], list[Label]]] = []  # (labelled records, linked before them)
    if len(labels) >= SPLIT_MIN:
        # Time split: the oldest slice and the middle one teach m, each scored with only the
        # history before it; the newest is then decided as new records are, to calibrate.
        first, middle, newest = (
            labels[len(labels) - 3 * slice_size : len(labels) - 2 * slice_size],
            labels[len(labels) - 2 * slice_size : len(labels) - slice_size],
            labels[len(labels) - slice_size :],
        )
        before = labels[: len(labels) - 3 * slice_size]
        parts = [(first, before), (middle, before + first), (newest, before + first + middle)]
    elif labels:
        # Too few answers to hold some back: all teach m, calibration stays the prior's.
        parts = [(labels, [])]
    # u and the labelled parts do not depend on the open records: with two workers a helper
    # estimates u and scores the parts that teach m while this process scores the open
    # records, then the newest part (it calibrates) while this process runs the first EM.
    # (u in a helper of its own, forked earlier, was 0.2 s faster on the public pair's history
    # shape, but the pages two helpers copy took 10,000 x 100,000 past 1 GB.)
    report: dict = {"labels": len(labels), "unlabelled": len(unlabelled)}
    calibration: tuple[np.ndarray, np.ndarray] | None = None
    population = [link.record for link in history] + list(unlabelled)
    global _SHARED
    _SHARED = (vendors, accounts, history, catalog, book, population, prior, rng, parts)
    try:
        with in_background(workers) as background:
            prepared = background(_prepare)
            open_batch = score_batch(book, unlabelled, workers=workers)
            u_tables, scored, rng_state = prepared()
            rng.setstate(rng_state)
            for kind in GROUPS:
                group = model.groups[kind]
                model.groups[kind] = Group(
                    m=group.m, u=u_tables[kind], pi=group.pi, entries=group.entries
                )
            samples = [Sample(open_batch, None)] + [Sample(*part) for part in scored]
            if len(labels) >= SPLIT_MIN:
                newest_part = background(_newest_part)
                for kind in GROUPS:
                    em(model, kind, samples, prior.groups[kind])
                newest_batch, newest_truth = newest_part()
    finally:
        _SHARED = None
    if len(labels) >= SPLIT_MIN:
        samples.append(Sample(newest_batch, newest_truth))
        calibration = _counterfactual_calibration(
            model, newest_batch, parts[2][0], newest_truth, rng
        )
        report["split"] = {"first": len(first), "middle": len(middle), "newest": len(newest)}
    for kind in GROUPS:
        em(model, kind, samples, prior.groups[kind])
    if calibration is not None and len(calibration[1]):
        features, right = calibration
        model.calibrator = fit_calibrator(features, right, prior.calibrator, CALIBRATION_STRENGTH)
        report["calibration_samples"] = len(right)
    for kind in GROUPS:
        report[f"pi_{kind}"] = round(model.groups[kind].pi, 4)
    model.fitted = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "history_links": len(history),
        "labels": len(labels),
        "open_records": len(unlabelled),
        "entries": len(entries),
        **report,
    }
    model.version = f"fit-{len(labels)}l-{len(unlabelled)}u"
    return Fitted(model, book, open_batch, report)


_SHARED: tuple | None = None  # what the tasks below read: a forked helper inherits it


def _prepare() -> tuple[dict[str, dict], list[tuple[Batch, np.ndarray]], tuple]:
    """u of each kind from random pairs, the labelled parts that teach m (all but the newest
    when there are three) scored, and the random generator's state after u."""
    assert _SHARED is not None
    _, _, _, _, book, population, prior, rng, parts = _SHARED
    u_tables = {
        kind: estimate_u(book, population, kind, prior.groups[kind], rng, RANDOM_PAIRS)
        for kind in GROUPS
    }
    scored = [_scored_part(k) for k in range(min(len(parts), 2))]
    return u_tables, scored, rng.getstate()


def _newest_part() -> tuple[Batch, np.ndarray]:
    return _scored_part(2)


def _scored_part(k: int) -> tuple[Batch, np.ndarray]:
    """Labelled part k scored on the book as it stood when only the records before it were
    linked, and its true pairs."""
    assert _SHARED is not None
    vendors, accounts, history, catalog, _, _, _, _, parts = _SHARED
    part, known = parts[k]
    part_book = _book_knowing(vendors, accounts, history, catalog, known)
    part_batch = score_batch(part_book, [label.record for label in part])
    return part_batch, _true_pairs(part_book, part_batch, part)


def _book_knowing(
    vendors: list[Vendor],
    accounts: list[Account],
    history: list[HistoryLink],
    catalog: Catalog,
    known: list[Label],
) -> Book:
    """The book as it stood when only these labelled records were linked."""
    keys = {(label.record.type, label.record.id) for label in known}
    past = [link for link in history if (link.record.type, link.record.id) in keys]
    return build_book(vendors, accounts, past, catalog)


def _counterfactual_calibration(
    model: Model,
    batch: Batch,
    labels: list[Label],
    truth: np.ndarray,
    rng: Random,
) -> tuple[np.ndarray, np.ndarray]:
    """Calibration samples from the newest history, some of it with its entry taken away.

    History only holds records whose entry was in Qonto; records of the kind whose invoice never
    reached Qonto are simulated by removing the true entry of a share of them, that share being
    the share of open records the model finds without an entry.
    """
    removed: set[int] = set()
    truth = truth.copy()
    for i, label in enumerate(labels):
        kind = target_kind(label.record.type)
        share = min(max(1 - model.groups[kind].pi, 0.05), 0.5)
        if truth[i] >= 0 and rng.random() < share:
            removed.add(int(batch.pairs.entry[truth[i]]))
            truth[i] = -1
    if not removed:
        return _calibration_samples(model, batch, truth)
    dropped = _drop_entries(batch, removed)
    new_truth = np.full(len(labels), -1, dtype=np.int64)
    for i in range(len(labels)):
        if truth[i] == -2:
            new_truth[i] = -2
        elif truth[i] >= 0:
            want = batch.pairs.entry[truth[i]]
            own = dropped.candidates_of(i)
            hit = [p for p in own if dropped.pairs.entry[p] == want]
            new_truth[i] = hit[0] if hit else -2
    return _calibration_samples(model, dropped, new_truth)


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
