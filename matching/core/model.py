"""A workspace's fitted model: Fellegi-Sunter m and u per target kind, link priors, calibrator.

Everything here is data (JSON), fitted on the workspace's own books by `fit.py`. The shipped
`prior.json` is only a conservative starting point for a workspace with nothing yet.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .compare import LEVELS, MISSING, SIGNALS, TF_LEVELS
from .types import SUPPLIER_INVOICE, TRANSACTION

PRIOR_PATH = Path(__file__).with_name("prior.json")
GROUPS = (SUPPLIER_INVOICE, TRANSACTION)
# Calibrator inputs, computed for every action a record could take (see engine.option_features).
FEATURES = (
    "bias",
    "logit",
    "create",
    "create_logit",
    "log_candidates",
    "no_party",
    "recurring",
    "repeats",
    "rival_bill",
)
MIN_WEIGHT = -10.0
ENTRIES_FLOOR = 100
FLOOR = 1e-6  # no probability is ever exactly 0: a level never seen still weighs finitely


def target_kind(record_type: str) -> str:
    """What a record of this type can be the same as in Qonto (matching-eval.md).

    A Purchase (an expense already paid) is its bank transaction; a Bill, a VendorCredit or any
    other supplier document is a supplier invoice (a credit note for a credit). A payment is
    evidence about a bill, never the bill itself.
    """
    return TRANSACTION if record_type == "Purchase" else SUPPLIER_INVOICE


@dataclass
class Group:
    """The comparison model of one target kind: level probabilities and the link prior."""

    m: dict[str, dict[str, float]]
    u: dict[str, dict[str, float]]
    pi: float = 0.7  # share of records that have their entry among the candidates
    entries: int = 1000  # entries of this kind the u probabilities were measured against
    _table: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _rows: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def weight_table(self) -> np.ndarray:
        """log2(m/u) as an array [signal, level]; a missing value weighs 0 (computed once)."""
        if self._table is None:
            self._table = self._weights()
        return self._table

    def weight_rows(self) -> tuple[list[list[float]], list[list[float]]]:
        """The weight table as lists, and each weight rounded as reasons show it (computed
        once: explaining reads them for every decision, one at a time)."""
        if self._rows is None:
            weights = self.weight_table().tolist()
            self._rows = (weights, [[round(weight, 2) for weight in row] for row in weights])
        return self._rows

    def _weights(self) -> np.ndarray:
        width = max(len(levels) for levels in LEVELS.values())
        table = np.zeros((len(SIGNALS), width))
        for k, signal in enumerate(SIGNALS):
            for i, level in enumerate(LEVELS[signal]):
                if level == MISSING:
                    continue
                m = max(self.m.get(signal, {}).get(level, FLOOR), FLOOR)
                u = max(self.u.get(signal, {}).get(level, FLOOR), FLOOR)
                # One signal alone never rules a pair out: a typo or a late payment is not
                # proof, and the independence the sum assumes is never exact.
                table[k, i] = max(math.log2(m / u), MIN_WEIGHT)
        return table

    def tf_offsets(self) -> tuple[float, float]:
        """log2 u of the term-frequency levels, replaced per pair by the value's own frequency."""
        amount, text = sorted(TF_LEVELS)
        return (
            math.log2(max(self.u[amount[0]][amount[1]], FLOOR)),
            math.log2(max(self.u[text[0]][text[1]], FLOOR)),
        )

    def log2_prior(self) -> float:
        """log2 of the prior that one given entry of this kind is the record's.

        A book of a handful of entries is a workspace whose account Well has not read in full
        yet, not one where the only entry is likely the record's: at least ENTRIES_FLOOR count.
        """
        return math.log2(max(self.pi, 0.01) / max(self.entries, ENTRIES_FLOOR))

    def log2_none(self) -> float:
        return math.log2(max(1 - self.pi, 0.01))


@dataclass
class Model:
    """Per target kind comparison models plus the decision calibrator, with its provenance."""

    version: str
    groups: dict[str, Group]
    calibrator: dict[str, float]
    fitted: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "groups": {
                name: {"m": g.m, "u": g.u, "pi": g.pi, "entries": g.entries}
                for name, g in self.groups.items()
            },
            "calibrator": self.calibrator,
            "fitted": self.fitted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        prior = load_prior() if data.get("version") != "prior" else None
        groups = {}
        for name in GROUPS:
            raw = (data.get("groups") or {}).get(name)
            if raw is None and prior is not None:
                groups[name] = prior.groups[name]
                continue
            raw = raw or {}
            groups[name] = Group(
                m=_levels(raw.get("m")),
                u=_levels(raw.get("u")),
                pi=float(raw.get("pi", 0.7)),
                entries=int(raw.get("entries", 1000)),
            )
        calibrator = {name: float(v) for name, v in (data.get("calibrator") or {}).items()}
        return cls(
            version=str(data.get("version") or "unknown"),
            groups=groups,
            calibrator=calibrator or {"logit": 1.0},
            fitted=dict(data.get("fitted") or {}),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Model:
        return cls.from_dict(json.loads(text))


def _levels(raw: Any) -> dict[str, dict[str, float]]:
    """Level probabilities read from JSON, every known level present."""
    raw = raw if isinstance(raw, dict) else {}
    table: dict[str, dict[str, float]] = {}
    for signal in SIGNALS:
        given = raw.get(signal) if isinstance(raw.get(signal), dict) else {}
        table[signal] = {
            level: float(given.get(level, FLOOR)) for level in LEVELS[signal] if level != MISSING
        }
    return table


def load_prior() -> Model:
    """The shipped starting point: hand-set level probabilities and a cautious calibrator."""
    data = json.loads(PRIOR_PATH.read_text())
    data["version"] = "prior"
    return Model.from_dict(data)
