"""One-to-one assignment: greedy by confidence, so no Qonto entry goes to two records."""

from __future__ import annotations

import heapq
from collections.abc import Callable

Option = tuple[float, int | None]  # (probability, entry position or None for "create")


def greedy(
    count: int, best: Callable[[int, set[int]], Option], twins: dict[int, int] | None = None
) -> list[tuple[int | None, bool]]:
    """Each item's assigned option and whether its first choice went to another item."""
    twins = twins or {}
    taken: set[int] = set()
    result: list[tuple[int | None, bool]] = [(None, False)] * count
    contested = [False] * count
    heap = []
    for i in range(count):
        p, pos = best(i, taken)
        heap.append((-p, i, pos))
    heapq.heapify(heap)
    while heap:
        _, i, pos = heapq.heappop(heap)
        if pos is not None and pos in taken:
            # Someone more certain took this entry: re-rank what is left for this item.
            contested[i] = True
            p, pos = best(i, taken)
            heapq.heappush(heap, (-p, i, pos))
            continue
        if pos is not None:
            taken.add(pos)
            if pos in twins:
                taken.add(twins[pos])  # an invoice and its matched payment go together
        result[i] = (pos, contested[i])
    return result
