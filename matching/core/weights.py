"""The workspace's model: Fellegi-Sunter level counts, link priors and calibrator, as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import calibration
from .compare import MISSING, WEIGHT_LEVELS, weight_keys

DEFAULT_PATH = Path(__file__).with_name("default_model.json")
SHRINK = 20.0  # pseudo-pairs pulling a young vendor's table toward the global one
VENDOR_MIN = 30  # labelled pairs before a vendor's own table counts
MAX_SHIFT = 3.0  # a vendor's own weight stays within this many points of the global one
CALIBRATION_PSEUDO = 5.0  # pseudo-decisions pulling a vendor's offset toward none
# A vendor's calibration offset, in log-odds, asymmetric on purpose: reviewers who keep
# rejecting a vendor's proposals send it to review quickly (0.99 -> 0.65 at most), while
# agreement earns trust slowly (0.80 -> 0.92 at most).
MAX_OFFSET_UP = 1.0
MAX_OFFSET_DOWN = 4.0
SMOOTH = 0.5
NO_VENDOR = "*"  # records without a QuickBooks vendor learn together, apart from all vendors

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
    "amount_points",
    "date_points",
    "party_points",
    "link_recurring",
    "create_rival",
    "create_free_rival",
    "expense",
    "credit",
    "create_expense",
    "create_credit",
)


def _prior_counts(scale: float = 200.0) -> dict[str, dict[str, list[float]]]:
    return {
        signal: {
            level: [m * scale, u * scale] for level, (m, u) in PRIOR_M_U[_base(signal)].items()
        }
        for signal in WEIGHT_LEVELS
    }


def _base(signal: str) -> str:
    """The signal a conditional table belongs to ("date|invoice" -> "date")."""
    return signal.partition("|")[0]


@dataclass
class Model:
    """Level counts (m = true pairs, u = other candidates), link priors and calibrator."""

    version: str = "prior-1"
    counts: dict[str, dict[str, list[float]]] = field(default_factory=_prior_counts)
    vendor_counts: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    link_prior: dict[str, float] = field(default_factory=lambda: {"default": 0.7})
    calibrator: dict[str, float] = field(default_factory=lambda: {"bias": 0.0, "logit": 1.0})
    # Reviewer outcomes per vendor: [decisions, right, sum of predicted confidence], decayed.
    vendor_outcomes: dict[str, list[float]] = field(default_factory=dict)
    _cache: dict[str, dict[tuple[str, str], float]] = field(default_factory=dict, repr=False)
    _sums: dict[int, dict[tuple[str, ...], float]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "version": self.version,
            "counts": self.counts,
            "vendor_counts": self.vendor_counts,
            "vendor_outcomes": self.vendor_outcomes,
            "link_prior": self.link_prior,
            "calibrator": self.calibrator,
        }

    def learned_dict(self) -> dict[str, Any]:
        """Only what a workspace learnt from its reviewers (the rest is the shipped model)."""
        return {
            "version": self.version,
            "vendor_counts": self.vendor_counts,
            "vendor_outcomes": self.vendor_outcomes,
        }

    def with_learned(self, learned: dict[str, Any]) -> Model:
        """This (shipped) model plus a workspace's learnt per-vendor tables and offsets."""
        base = self.version.split("+")[0]
        _, _, count = str(learned.get("version", "")).partition("+fb")
        return Model(
            version=f"{base}+fb{count}" if count.isdigit() else base,
            counts=self.counts,
            vendor_counts=learned.get("vendor_counts") or {},
            vendor_outcomes=learned.get("vendor_outcomes") or {},
            link_prior=self.link_prior,
            calibrator=self.calibrator,
        )

    def confidence(self, features: dict[str, float], vendor_id: str = "") -> float:
        """The calibrated confidence, shifted by what reviewers taught about this vendor."""
        score = sum(self.calibrator.get(name, 0.0) * value for name, value in features.items())
        return calibration.sigmoid(score + self.vendor_offset(vendor_id))

    def vendor_offset(self, vendor_id: str) -> float:
        """Log-odds shift of one vendor's confidence: its reviewed accuracy vs the predicted."""
        outcome = self.vendor_outcomes.get(vendor_id or NO_VENDOR)
        if not outcome or outcome[0] <= 0:
            return 0.0
        count, right, predicted = outcome
        expected = predicted / count
        observed = (right + CALIBRATION_PSEUDO * expected) / (count + CALIBRATION_PSEUDO)
        shift = calibration.logit(observed) - calibration.logit(expected)
        return max(-MAX_OFFSET_DOWN, min(MAX_OFFSET_UP, shift))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        """Rebuild a model from `to_dict` output, filling levels it does not know."""
        model = cls(
            version=str(data.get("version", "unknown")),
            counts=_prior_counts(),
            vendor_counts=data.get("vendor_counts") or {},
            vendor_outcomes=data.get("vendor_outcomes") or {},
            link_prior=dict(data.get("link_prior") or {"default": 0.7}),
            calibrator=dict(data.get("calibrator") or {"bias": 0.0, "logit": 1.0}),
        )
        for signal, levels in (data.get("counts") or {}).items():
            # A model saved before the conditional tables fills both halves of its old table.
            tables = [signal] if signal in WEIGHT_LEVELS else _conditional_tables(signal)
            for table in tables:
                for level, pair in levels.items():
                    if level in WEIGHT_LEVELS[table]:
                        model.counts[table][level] = [float(pair[0]), float(pair[1])]
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
        vendor_id = vendor_id or NO_VENDOR
        own = self.vendor_counts.get(vendor_id)
        # A vendor's own table only counts once it has seen enough labelled pairs.
        key = vendor_id if own and _size(own) >= VENDOR_MIN else ""
        cached = self._cache.get(key)
        if cached is None:
            cached = _weights(self.counts, self.vendor_counts.get(key) if key else None)
            self._cache[key] = cached
        return cached

    def vector_weight(self, vendor_id: str, vector: dict[str, str]) -> float:
        """The match weight of a comparison vector (few distinct vectors: memoised)."""
        weights = self.weights(vendor_id)
        memo = self._sums.setdefault(id(weights), {})
        levels = tuple(vector.values())
        found = memo.get(levels)
        if found is None:
            found = memo[levels] = sum(weights.get(key, 0.0) for key in weight_keys(vector))
        return found

    def prior(self, record_type: str) -> float:
        """Share of records of this type that have an entry in Qonto."""
        value = self.link_prior.get(record_type, self.link_prior.get("default", 0.7))
        return min(max(float(value), 0.01), 0.99)

    def invalidate(self) -> None:
        """Forget cached weight tables after the counts changed."""
        self._cache.clear()
        self._sums.clear()


def _conditional_tables(signal: str) -> list[str]:
    return [table for table in WEIGHT_LEVELS if _base(table) == signal and table != signal]


def _size(table: dict[str, dict[str, list[float]]]) -> float:
    """Labelled pairs behind a table (each pair counts once per signal)."""
    return sum(row[0] + row[1] for row in table.get("kind", {}).values())


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
    # Bounded: a vendor's answers move its weights, never past MAX_SHIFT points either way.
    base = _table_weights(counts)
    return {
        key: max(base[key] - MAX_SHIFT, min(base[key] + MAX_SHIFT, weight))
        for key, weight in _table_weights(blended).items()
    }


def load_default() -> Model:
    """The shipped model fitted on the generated training books (priors if absent)."""
    if DEFAULT_PATH.exists():
        return Model.from_json(DEFAULT_PATH.read_text())
    return Model()
