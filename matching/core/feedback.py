"""Learning from reviewers: accepted, rejected and pinned decisions update the model."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from . import calibration
from .types import CREATE, LabelledDecision
from .weights import CALIBRATOR_FEATURES, Model

CALIBRATOR_PENALTY = 5.0  # how strongly reviewer labels are pulled toward the current calibrator


def _key(kind: str, target_id: str) -> str:
    return f"{kind}:{target_id}"


def _add(table: dict[str, dict[str, list[float]]], vector: dict[str, str], column: int) -> None:
    for signal, level in vector.items():
        row = table.setdefault(signal, {}).setdefault(level, [0.0, 0.0])
        row[column] += 1.0


def update_from_feedback(model: Model, labelled: Iterable[LabelledDecision]) -> Model:
    """A new model whose level counts and calibrator include the reviewers' answers."""
    new = Model.from_dict(copy.deepcopy(model.to_dict()))
    samples, outcomes = [], []
    for item in labelled:
        decision = item.decision
        right = None
        if item.right_action != CREATE and item.right_target is not None:
            right = _key(item.right_target.type, item.right_target.id)
        vendor_table = (
            new.vendor_counts.setdefault(decision.vendor_id, {}) if decision.vendor_id else None
        )
        for key, vector in decision.comparisons.items():
            column = 0 if key == right else 1
            _add(new.counts, vector, column)
            if vendor_table is not None:
                _add(vendor_table, vector, column)
        proposed = (
            None if decision.target is None else _key(decision.target.type, decision.target.id)
        )
        if decision.features:
            samples.append(decision.features)
            outcomes.append(proposed == right and decision.action == item.right_action)
    if samples:
        new.calibrator = calibration.fit(
            samples,
            outcomes,
            CALIBRATOR_FEATURES,
            start=model.calibrator,
            penalty=CALIBRATOR_PENALTY,
        )
    new.version = f"{model.version.split('+')[0]}+fb{_feedback_count(model) + len(outcomes)}"
    new.invalidate()
    return new


def _feedback_count(model: Model) -> int:
    _, _, count = model.version.partition("+fb")
    return int(count) if count.isdigit() else 0
