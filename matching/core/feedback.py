"""Learning from reviewers, per vendor: accepted, rejected and pinned decisions update the model.

Scoped and bounded on purpose: a vendor's answers only change that vendor's level table and
confidence offset (the shipped global table and calibrator never move), older answers decay,
a table holds at most VENDOR_CAP pairs, and weights and offsets are clipped (see weights.py).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from .compare import weight_keys
from .types import CREATE, LabelledDecision
from .weights import NO_VENDOR, Model

DECAY = 0.97  # per new answer about the same vendor: an answer 23 answers old counts half
VENDOR_CAP = 300.0  # labelled pairs a vendor's table holds at most (older ones scaled down)


def _key(kind: str, target_id: str) -> str:
    return f"{kind}:{target_id}"


def _add(table: dict[str, dict[str, list[float]]], vector: dict[str, str], column: int) -> None:
    for signal, level in weight_keys(vector):
        row = table.setdefault(signal, {}).setdefault(level, [0.0, 0.0])
        row[column] += 1.0


def _scale(table: dict[str, dict[str, list[float]]], factor: float) -> None:
    for levels in table.values():
        for row in levels.values():
            row[0] *= factor
            row[1] *= factor


def _pairs(table: dict[str, dict[str, list[float]]]) -> float:
    return sum(row[0] + row[1] for row in table.get("kind", {}).values())


def update_from_feedback(model: Model, labelled: Iterable[LabelledDecision]) -> Model:
    """A new model whose per-vendor tables and offsets include the reviewers' answers."""
    new = Model.from_dict(copy.deepcopy(model.to_dict()))
    answers = 0
    for item in labelled:
        decision = item.decision
        vendor = decision.vendor_id or NO_VENDOR
        right = None
        if item.right_action != CREATE and item.right_target is not None:
            right = _key(item.right_target.type, item.right_target.id)
        table = new.vendor_counts.setdefault(vendor, {})
        _scale(table, DECAY)
        for key, vector in decision.comparisons.items():
            _add(table, vector, 0 if key == right else 1)
        if _pairs(table) > VENDOR_CAP:
            _scale(table, VENDOR_CAP / _pairs(table))
        proposed = (
            None if decision.target is None else _key(decision.target.type, decision.target.id)
        )
        if decision.features:
            outcome = new.vendor_outcomes.setdefault(vendor, [0.0, 0.0, 0.0])
            was_right = proposed == right and decision.action == item.right_action
            outcome[:] = [
                outcome[0] * DECAY + 1.0,
                outcome[1] * DECAY + (1.0 if was_right else 0.0),
                # What the shipped calibrator says, before any vendor offset or gate cap.
                outcome[2] * DECAY + new.confidence(decision.features),
            ]
        answers += 1
    new.version = f"{model.version.split('+')[0]}+fb{_feedback_count(model) + answers}"
    new.invalidate()
    return new


def _feedback_count(model: Model) -> int:
    _, _, count = model.version.partition("+fb")
    return int(count) if count.isdigit() else 0
