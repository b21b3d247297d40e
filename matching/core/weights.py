"""The workspace's model: Fellegi-Sunter level counts, link priors and calibrator, as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compare import LEVELS, MISSING

DEFAULT_PATH = Path(__file__).with_name("default_model.json")
SHRINK = 20.0  # pseudo-pairs pulling a young workspace's or vendor's table toward the global one
VENDOR_MIN = 30  # labelled pairs before a vendor's own table counts
SMOOTH = 0.5

# Hand-set priors (m, u) per level, used until a fitted default model exists.
PRIOR_M_U: dict[str, dict[str, tuple[float, float]]] = {
    "amount": {
        "exact": (0.86, 0.30),
        "close": (0.04, 0.05),
        "within_3pct": (0.05, 0.25),
        "sign_flip": (0.02, 0.01),
        "different": (0.03, 0.39),
    },
    "date": {
        "same_day": (0.45, 0.02),
        "1_3_days": (0.3, 0.06),
        "4_10_days": (0.06, 0.12),
        "11_45_days": (0.08, 0.3),
        "near_due_date": (0.05, 0.02),
        "before_record": (0.02, 0.2),
        "one_period_apart": (0.01, 0.1),
        "day_month_swapped": (0.02, 0.002),
        "far": (0.02, 0.28),
    },
    "counterparty": {
        "same_tax_id": (0.3, 0.03),
        "same_counterparty": (0.4, 0.12),
        "name_same": (0.12, 0.03),
        "name_close": (0.06, 0.03),
        "name_similar": (0.04, 0.05),
        "other_counterparty": (0.01, 0.3),
        "tax_id_conflict": (0.002, 0.1),
        "different": (0.07, 0.34),
    },
    "reference": {
        "exact": (0.5, 0.005),
        "in_label": (0.2, 0.005),
        "close": (0.08, 0.01),
        "different": (0.2, 0.6),
    },
    "currency": {"same": (0.9, 0.85), "converted": (0.09, 0.05), "different": (0.01, 0.1)},
    "kind": {
        "bill_invoice": (0.6, 0.3),
        "bill_payment": (0.4, 0.7),
        "expense_invoice": (0.1, 0.3),
        "expense_payment": (0.9, 0.7),
        "credit_invoice": (0.6, 0.4),
        "credit_payment": (0.4, 0.6),
        "other_invoice": (0.5, 0.5),
        "other_payment": (0.5, 0.5),
    },
    "usage": {
        "unused": (0.98, 0.7),
        "paired_payment": (0.015, 0.2),
        "already_linked": (0.005, 0.1),
    },
}

CALIBRATOR_FEATURES = (
    "bias",
    "logit",
    "p",
    "create",
    "create_logit",
    "strong_party",
    "other_party",
    "reference_match",
    "match_weight",
    "gap",
    "log_candidates",
    "completeness",
    "party_strength",
    "policy_fit",
    "contested",
    "gate_failed",
)


def _prior_counts(scale: float = 200.0) -> dict[str, dict[str, list[float]]]:
    return {
        signal: {level: [m * scale, u * scale] for level, (m, u) in levels.items()}
        for signal, levels in PRIOR_M_U.items()
    }


@dataclass
class Model:
    """Level counts (m = true pairs, u = other candidates), link priors and calibrator."""

    version: str = "prior-1"
    counts: dict[str, dict[str, list[float]]] = field(default_factory=_prior_counts)
    vendor_counts: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    link_prior: dict[str, float] = field(default_factory=lambda: {"default": 0.7})
    calibrator: dict[str, float] = field(default_factory=lambda: {"bias": 0.0, "logit": 1.0})
    _cache: dict[str, dict[tuple[str, str], float]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "version": self.version,
            "counts": self.counts,
            "vendor_counts": self.vendor_counts,
            "link_prior": self.link_prior,
            "calibrator": self.calibrator,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        """Rebuild a model from `to_dict` output, filling levels it does not know."""
        model = cls(
            version=str(data.get("version", "unknown")),
            counts=_prior_counts(),
            vendor_counts=data.get("vendor_counts") or {},
            link_prior=dict(data.get("link_prior") or {"default": 0.7}),
            calibrator=dict(data.get("calibrator") or {"bias": 0.0, "logit": 1.0}),
        )
        for signal, levels in (data.get("counts") or {}).items():
            for level, pair in levels.items():
                if signal in model.counts and level in LEVELS.get(signal, ()):
                    model.counts[signal][level] = [float(pair[0]), float(pair[1])]
        return model

    def to_json(self) -> str:
        """The model as a JSON string."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Model:
        """A model from its JSON string."""
        return cls.from_dict(json.loads(text))

    def weights(self, vendor_id: str = "") -> dict[tuple[str, str], float]:
        """log2(m/u) per (signal, level), the vendor's own table when it has enough history."""
        own = self.vendor_counts.get(vendor_id) if vendor_id else None
        # A vendor's own table only counts once it has seen enough labelled pairs.
        key = vendor_id if own and _size(own) >= VENDOR_MIN else ""
        cached = self._cache.get(key)
        if cached is None:
            cached = _weights(self.counts, self.vendor_counts.get(key) if key else None)
            self._cache[key] = cached
        return cached

    def prior(self, record_type: str) -> float:
        """Share of records of this type that have an entry in Qonto."""
        value = self.link_prior.get(record_type, self.link_prior.get("default", 0.7))
        return min(max(float(value), 0.01), 0.99)

    def invalidate(self) -> None:
        """Forget cached weight tables after the counts changed."""
        self._cache.clear()


def _size(table: dict[str, dict[str, list[float]]]) -> float:
    """Labelled pairs behind a table (each pair counts once per signal)."""
    return sum(row[0] + row[1] for row in table.get("amount", {}).values())


def _table_weights(counts: dict[str, dict[str, list[float]]]) -> dict[tuple[str, str], float]:
    table: dict[tuple[str, str], float] = {}
    for signal, levels in counts.items():
        total_m = sum(pair[0] for pair in levels.values()) + SMOOTH * len(levels)
        total_u = sum(pair[1] for pair in levels.values()) + SMOOTH * len(levels)
        for level, (m, u) in levels.items():
            weight = math.log2(((m + SMOOTH) / total_m) / ((u + SMOOTH) / total_u))
            table[(signal, level)] = round(weight, 4)
        table[(signal, MISSING)] = 0.0
    return table


def _weights(
    counts: dict[str, dict[str, list[float]]], own: dict[str, dict[str, list[float]]] | None
) -> dict[tuple[str, str], float]:
    if not own:
        return _table_weights(counts)
    blended: dict[str, dict[str, list[float]]] = {}
    for signal, levels in counts.items():
        mine = own.get(signal, {})
        total_m = sum(p[0] for p in levels.values()) or 1.0
        total_u = sum(p[1] for p in levels.values()) or 1.0
        blended[signal] = {
            level: [
                mine.get(level, [0, 0])[0] + SHRINK * m / total_m,
                mine.get(level, [0, 0])[1] + SHRINK * u / total_u,
            ]
            for level, (m, u) in levels.items()
        }
    return _table_weights(blended)


def load_default() -> Model:
    """The shipped model fitted on the generated training books (priors if absent)."""
    if DEFAULT_PATH.exists():
        return Model.from_json(DEFAULT_PATH.read_text())
    return Model()
