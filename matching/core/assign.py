"""One-to-one over a batch: probabilities shared under the constraint, then the optimal assignment.

A record's candidates are scored on their own; but a Qonto entry can be the same as one record
only. `marginals` turns each record's posterior (its candidates and "none") into probabilities
that respect that constraint across the batch, by alternately scaling each record's options to
sum to one and each entry's claims to sum to at most one (Sinkhorn's matrix scaling, the
standard approximation of a matching's marginals). Two records of one vendor with two
indistinguishable entries thus share them at about one half each instead of both being sure.
`assign` then picks the most likely one-to-one assignment of the whole batch with scipy's
sparse assignment solver.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

ITERATIONS = 40
SETTLE_SWEEPS = 60  # one entry at a time, where the simultaneous steps went round in circles
BISECTION_STEPS = 40
TOLERANCE = 0.03  # an entry claimed 1.03 times in all is one claim, for a probability
EDGE_MIN = 1e-3  # options below this probability do not tie two records together


def _segment_logsumexp2(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """log2 of the sum of 2**values over consecutive segments (one per record)."""
    top = np.maximum.reduceat(values, starts) if len(values) else np.zeros(0)
    shifted = np.exp2(values - np.repeat(top, counts))
    return top + np.log2(np.add.reduceat(shifted, starts))


def _rows(
    log2_link: np.ndarray, log2_none: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each record's options laid out as "none" then its candidates: values, slots, offsets."""
    records = len(log2_none)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    offsets = starts + np.arange(records)
    values = np.empty(len(log2_link) + records)
    values[offsets] = log2_none
    slots = np.repeat(offsets + 1, counts) + (np.arange(len(log2_link)) - np.repeat(starts, counts))
    values[slots] = log2_link
    return values, slots, offsets, counts + 1


def _scale(
    log2_link: np.ndarray,
    log2_none: np.ndarray,
    counts: np.ndarray,
    entry_index: np.ndarray,
    by_entry: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sinkhorn scaling with "at most one" columns: every row sums to one, no entry is claimed
    more than once in all.

    Each entry's scale is solved exactly given the rows' other options (a monotone equation,
    by bisection), so a few sweeps converge where plain proportional steps would need one per
    bit of evidence; a scale never goes below none, and is relaxed when no longer needed.
    """
    values, slots, offsets, sizes = _rows(log2_link, log2_none, counts)
    entries = int(entry_index[by_entry[-1]]) + 1
    # Each entry's scale-down, and a last one that stays 0: the "none" options' entry.
    shift = np.zeros(entries + 1)
    # Which entry each option is (`entries` for "none"), and each entry's pairs, to redo only
    # the records an entry's new scale touches: after a few sweeps, a handful of entries are
    # still wrong.
    entry_of = np.full(len(values), entries, dtype=np.int64)
    entry_of[slots] = entry_index
    row_of_pair = np.repeat(np.arange(len(offsets)), sizes - 1)
    entry_bounds = np.searchsorted(entry_index[by_entry], np.arange(entries + 1))
    probs = _probabilities(values, entry_of, offsets, sizes, shift)
    claimed = np.bincount(entry_index, weights=probs[slots], minlength=entries)
    for _ in range(ITERATIONS):
        # Entries over once, and entries scaled down more than they now need to be.
        wrong = (claimed > 1 + TOLERANCE) | ((shift[:entries] > 0) & (claimed < 1 - TOLERANCE))
        if not wrong.any():
            break
        columns = np.flatnonzero(wrong)
        mine = by_entry[_ranges(entry_bounds[columns], entry_bounds[columns + 1])]
        claims = np.diff(entry_bounds)[columns]
        steps = _column_steps(
            probs[slots[mine]], np.repeat(np.arange(len(columns)), claims), claims, shift[columns]
        )
        moved = shift.copy()
        moved[columns] = np.maximum(shift[columns] + steps, 0.0)
        changed = np.flatnonzero(moved != shift)
        shift = moved
        touched = np.zeros(len(offsets), dtype=bool)
        touched[
            row_of_pair[by_entry[_ranges(entry_bounds[changed], entry_bounds[changed + 1])]]
        ] = True
        rows = np.flatnonzero(touched)
        options = _ranges(offsets[rows], offsets[rows] + sizes[rows])
        before = probs[options]
        probs[options] = _probabilities(
            values[options],
            entry_of[options],
            np.cumsum(sizes[rows]) - sizes[rows],
            sizes[rows],
            shift,
        )
        # The "none" options' changes go to the last count, which is not an entry's.
        claimed += np.bincount(
            entry_of[options], weights=probs[options] - before, minlength=entries + 1
        )[:entries]
    else:
        # Entries whose records overlap can push each other back and forth when all are
        # scaled at once: settle those one at a time (each step then never undoes another's).
        shift[:entries] = _settle(values, slots, offsets, sizes, entry_index, shift[:entries])
        probs = _probabilities(values, entry_of, offsets, sizes, shift)
    return probs[slots], probs[offsets]


def _probabilities(
    values: np.ndarray,
    entry_of: np.ndarray,
    offsets: np.ndarray,
    sizes: np.ndarray,
    shift: np.ndarray,
) -> np.ndarray:
    """Each option's probability in its row (the rows at `offsets`, `sizes` long), with each
    pair's log2 weight lowered by its entry's scale-down (a "none" option's is always 0)."""
    current = values - shift[entry_of]
    norm = _segment_logsumexp2(current, offsets, sizes)
    return np.exp2(current - np.repeat(norm, sizes))


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The positions start..stop-1 of every range, end to end."""
    sizes = stops - starts
    return np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))


def _settle(
    values: np.ndarray,
    slots: np.ndarray,
    offsets: np.ndarray,
    sizes: np.ndarray,
    entry_index: np.ndarray,
    shift: np.ndarray,
) -> np.ndarray:
    """Gauss-Seidel over the entries still wrong after the simultaneous sweeps: each entry's
    scale solved exactly with every other entry's as it now is, within the records it touches."""
    pair_row = np.repeat(np.arange(len(offsets)), sizes - 1)
    order = np.argsort(entry_index, kind="stable")
    bounds = np.searchsorted(entry_index[order], np.arange(len(shift) + 1))
    shift = shift.copy()
    for _ in range(SETTLE_SWEEPS):
        current = values.copy()
        current[slots] -= shift[entry_index]
        norm = _segment_logsumexp2(current, offsets, sizes)
        claimed = np.bincount(
            entry_index,
            weights=np.exp2(current[slots] - np.repeat(norm, sizes)[slots]),
            minlength=len(shift),
        )
        wrong = (claimed > 1 + TOLERANCE) | ((shift > 0) & (claimed < 1 - TOLERANCE))
        moved = False
        for column in np.flatnonzero(wrong):
            pairs = order[bounds[column] : bounds[column + 1]]
            rows = pair_row[pairs]
            # The records' own options, as they stand with every scale applied.
            members = np.concatenate([np.arange(offsets[r], offsets[r] + sizes[r]) for r in rows])
            owners = np.repeat(np.arange(len(rows)), sizes[rows])
            current = values[members].copy()
            scaled = np.isin(members, slots)
            slot_pair = np.searchsorted(slots, members[scaled])
            current[scaled] -= shift[entry_index[slot_pair]]
            top = np.maximum.reduceat(current, np.concatenate([[0], np.cumsum(sizes[rows])[:-1]]))
            totals = top + np.log2(np.bincount(owners, weights=np.exp2(current - top[owners])))
            x = np.exp2(values[slots[pairs]] - shift[column] - totals)
            claimed = x.sum()
            if claimed <= 1 + TOLERANCE and not (shift[column] > 0 and claimed < 1 - TOLERANCE):
                continue
            rest = np.maximum(1 - x, 1e-300)
            lo, hi = -200.0, shift[column]
            for _ in range(BISECTION_STEPS):
                mid = (lo + hi) / 2
                if np.sum(x * np.exp2(mid) / (x * np.exp2(mid) + rest)) > 1:
                    hi = mid
                else:
                    lo = mid
            shift[column] = max(shift[column] - lo, 0.0)
            moved = True
        if not moved:
            break
    return shift


def _column_steps(
    claims: np.ndarray, column: np.ndarray, per_column: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """Change of some entries' log2 scale-down that brings their claims to exactly one (never
    below no scaling at all), the rows' other options staying as they are.

    `claims` are the probabilities of the entries' pairs, entry by entry, `column` which of
    the entries each is, `per_column` how many each has (at least one), `shift` their current
    scale-downs."""
    starts = np.cumsum(per_column) - per_column
    rest = np.maximum(1 - claims, 1e-300)
    lo = np.full(len(shift), -200.0)  # log2 of the factor applied to the entry's claims
    hi = shift.copy()  # at most undoing the whole current scale-down
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        # One power per entry, then spread to its claims (an entry has dozens in a crowded book).
        scaled = claims * np.exp2(mid)[column]
        total = np.add.reduceat(scaled / (scaled + rest), starts)
        too_much = total > 1
        hi = np.where(too_much, mid, hi)
        lo = np.where(too_much, lo, mid)
    return -lo


def marginals(
    record_of_pair: np.ndarray,
    entry_of_pair: np.ndarray,
    log2_link: np.ndarray,
    log2_none: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Probability of each pair and of each record's "none" under one-to-one, as two arrays.

    Pairs must be sorted by record; `log2_none` has one value per record (records with no
    candidate get probability 1 of none).
    """
    records = len(log2_none)
    if len(record_of_pair) == 0:
        return np.zeros(0), np.ones(records)
    counts = np.bincount(record_of_pair, minlength=records)
    # The entries numbered from 0 in their order, and the pairs entry by entry: one sort.
    by_entry = stable_order(entry_of_pair)
    _, entry_index = first_and_inverse(entry_of_pair, by_entry)
    pair_probs, none_probs = _scale(log2_link, log2_none, counts, entry_index, by_entry)
    none_probs[counts == 0] = 1.0
    return pair_probs, none_probs


def stable_order(values: np.ndarray) -> np.ndarray:
    """np.argsort(values, kind="stable") for non-negative integers: below 2**32 (positions,
    codes), two passes of numpy's radix sort of 16-bit keys (lower half, then upper), several
    times faster than its sort of 64-bit ones."""
    if len(values) == 0 or int(values.max()) >> 32:
        return np.argsort(values, kind="stable")
    order = np.argsort((values & 0xFFFF).astype(np.uint16), kind="stable")
    upper = (values[order] >> 16).astype(np.uint16)
    return order[np.argsort(upper, kind="stable")] if upper.any() else order


def first_and_inverse(
    values: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_index=True, return_inverse=True)[1:] for non-negative
    integers, by `stable_order` (or the one given)."""
    order = stable_order(values) if order is None else order
    ordered = values[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]] if len(values) else np.zeros(0, bool)
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def segment_argmax(values: np.ndarray, owner: np.ndarray, groups: int) -> np.ndarray:
    """Index of the largest value of each group, the first of equals (-1 for an empty group).

    `owner` is sorted (pairs come record by record)."""
    best = np.full(groups, -1, dtype=np.int64)
    if len(values) == 0:
        return best
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    top = np.maximum.reduceat(values, starts)
    sizes = np.diff(np.r_[starts, len(values)])
    hits = np.flatnonzero(values == np.repeat(top, sizes))
    first = np.r_[True, owner[hits[1:]] != owner[hits[:-1]]]
    best[owner[hits[first]]] = hits[first]
    return best


def assign(
    record_of_pair: np.ndarray,
    entry_of_pair: np.ndarray,
    pair_score: np.ndarray,
    none_score: np.ndarray,
) -> np.ndarray:
    """The pair chosen for each record (-1 for none): the one-to-one assignment of highest total
    log score over the whole batch.

    Records that share no likely entry with another simply take their best option; the rest
    are solved exactly with scipy's `min_weight_full_bipartite_matching` (the sparse
    counterpart of `linear_sum_assignment`): rows are records, columns their entries and one
    "none" per record.
    """
    records = len(none_score)
    best = segment_argmax(pair_score, record_of_pair, records)
    has = best >= 0
    chosen = np.full(records, -1, dtype=np.int64)
    chosen[has] = np.where(pair_score[best[has]] > none_score[has], best[has], -1)
    # A pair less likely than its record's own "none" is in no optimal assignment (the record
    # would rather take its "none", which no other record can): only the others can contest.
    keep = np.flatnonzero(
        (pair_score > np.log(EDGE_MIN)) & (pair_score >= none_score[record_of_pair])
    )
    if len(keep) == 0:
        return chosen
    claims = np.bincount(entry_of_pair[keep])
    contested = np.flatnonzero(claims[entry_of_pair[keep]] > 1)
    if len(contested) == 0:
        return chosen  # no two records want the same entry: each takes its best
    involved = np.unique(record_of_pair[keep[contested]])
    inside = np.isin(record_of_pair[keep], involved)
    pairs = keep[inside]
    row_of = np.full(records, -1, dtype=np.int64)
    row_of[involved] = np.arange(len(involved))
    entries, column = np.unique(entry_of_pair[pairs], return_inverse=True)
    rows = row_of[record_of_pair[pairs]]
    n = len(involved)
    # Costs are positive (the solver reads a zero as no edge): -log p shifted by a constant,
    # which every full matching pays once per record, so the optimum is unchanged.
    shift = 1.0 - min(float((-pair_score[pairs]).min()), float((-none_score[involved]).min()))
    graph = csr_matrix(
        (
            np.concatenate([-pair_score[pairs], -none_score[involved]]) + shift,
            (
                np.concatenate([rows, np.arange(n)]),
                np.concatenate([column, len(entries) + np.arange(n)]),
            ),
        ),
        shape=(n, len(entries) + n),
    )
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    # Which pair each (row, column) cell is: sorted keys, found by binary search.
    cell = rows * (len(entries) + n) + column
    order = np.argsort(cell)
    wanted = row_ind * (len(entries) + n) + col_ind
    linked = col_ind < len(entries)
    found = np.searchsorted(cell[order], wanted[linked])
    chosen[involved[row_ind]] = -1
    chosen[involved[row_ind[linked]]] = pairs[order[found]]
    return chosen
