"""One-to-one over a batch: probabilities shared under the constraint, then the optimal assignment.

A record's candidates are scored on their own; but a Qonto entry can be the same as one record
only. `marginals` turns each record's posterior (its candidates and "none") into probabilities
that respect that constraint across the batch, by alternately scaling each record's options to
sum to one and each entry's claims to sum to at most one (Sinkhorn's matrix scaling, the
standard approximation of a matching's marginals). Two records of one vendor with two
indistinguishable entries thus share them at about one half each instead of both being sure.
`assign` then picks the most likely one-to-one assignment with scipy's `linear_sum_assignment`,
component by component of the record-entry graph.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

ITERATIONS = 200
TOLERANCE = 1e-4
EDGE_MIN = 1e-3  # options below this probability do not tie two records together
UNREACHABLE = 1e9  # cost of a cell that is not an option


def _segment_logsumexp2(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """log2 of the sum of 2**values over consecutive segments (one per record)."""
    top = np.maximum.reduceat(values, starts) if len(values) else np.zeros(0)
    shifted = np.exp2(values - np.repeat(top, counts))
    return top + np.log2(np.add.reduceat(shifted, starts))


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
    has = counts > 0
    starts_all = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # Every record's options: its "none" placed in front of its candidates.
    total = len(record_of_pair) + records
    offsets = starts_all + np.arange(records)
    values = np.empty(total)
    values[offsets] = log2_none
    pair_slots = np.repeat(offsets + 1, counts) + (np.arange(len(record_of_pair)) - np.repeat(starts_all, counts))
    values[pair_slots] = log2_link
    sizes = counts + 1
    entries, entry_index = np.unique(entry_of_pair, return_inverse=True)
    shift = np.zeros(len(entries))
    for _ in range(ITERATIONS):
        current = values.copy()
        current[pair_slots] -= shift[entry_index]
        norm = _segment_logsumexp2(current, offsets, sizes)
        probs = np.exp2(current - np.repeat(norm, sizes))
        claimed = np.bincount(entry_index, weights=probs[pair_slots], minlength=len(entries))
        over = claimed > 1 + TOLERANCE
        if not over.any():
            break
        # An entry claimed more than once in all is scaled down by what it is over.
        shift[over] += np.log2(claimed[over])
    pair_probs = probs[pair_slots]
    none_probs = np.where(has, probs[offsets], 1.0)
    return pair_probs, none_probs


def segment_argmax(values: np.ndarray, owner: np.ndarray, groups: int) -> np.ndarray:
    """Index of the largest value of each group (-1 for an empty group)."""
    best = np.full(groups, -1, dtype=np.int64)
    if len(values) == 0:
        return best
    order = np.lexsort((-values, owner))
    first = np.ones(len(order), dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    best[owner[order][first]] = order[first]
    return best


def assign(
    record_of_pair: np.ndarray,
    entry_of_pair: np.ndarray,
    pair_score: np.ndarray,
    none_score: np.ndarray,
) -> np.ndarray:
    """The pair chosen for each record (-1 for none): the one-to-one assignment of highest
    total log score, solved exactly per connected component of the record-entry graph."""
    records = len(none_score)
    best = segment_argmax(pair_score, record_of_pair, records)
    chosen = np.where(
        (best >= 0) & (pair_score[np.maximum(best, 0)] > none_score), best, -1
    ).astype(np.int64)
    if len(record_of_pair) == 0:
        return chosen
    keep = np.flatnonzero(pair_score > np.log(EDGE_MIN))
    entries, entry_index = np.unique(entry_of_pair, return_inverse=True)
    graph = coo_matrix(
        (np.ones(len(keep)), (record_of_pair[keep], records + entry_index[keep])),
        shape=(records + len(entries), records + len(entries)),
    )
    _, label = connected_components(graph, directed=False)
    record_label = label[:records]
    sizes = np.bincount(record_label)
    shared = np.flatnonzero(sizes > 1)
    if len(shared) == 0:
        return chosen
    # Only components where records compete for an entry need solving.
    by_record = np.argsort(record_label, kind="stable")
    record_bounds = np.searchsorted(record_label[by_record], np.arange(len(sizes) + 1))
    pair_label = record_label[record_of_pair[keep]]
    by_pair = keep[np.argsort(pair_label, kind="stable")]
    pair_bounds = np.searchsorted(record_label[record_of_pair[by_pair]], np.arange(len(sizes) + 1))
    for component in shared:
        members = by_record[record_bounds[component] : record_bounds[component + 1]]
        pairs = by_pair[pair_bounds[component] : pair_bounds[component + 1]]
        rows = {int(r): i for i, r in enumerate(members)}
        columns = {int(e): j for j, e in enumerate(np.unique(entry_index[pairs]))}
        # Columns: the component's entries, then one "none" per record (only its own).
        cost = np.full((len(members), len(columns) + len(members)), UNREACHABLE)
        row = np.array([rows[int(r)] for r in record_of_pair[pairs]])
        column = np.array([columns[int(e)] for e in entry_index[pairs]])
        cost[row, column] = -pair_score[pairs]
        cost[np.arange(len(members)), len(columns) + np.arange(len(members))] = -none_score[members]
        row_ind, col_ind = linear_sum_assignment(cost)
        cell = {(int(i), int(j)): int(p) for i, j, p in zip(row, column, pairs, strict=True)}
        for i, j in zip(row_ind, col_ind, strict=True):
            chosen[members[i]] = cell[(int(i), int(j))] if j < len(columns) else -1
    return chosen
