"""Fault injection shared by the QuickBooks and Qonto sandboxes.

Usage, inside a sandbox request handler::

    faults.sleep_latency()
    fault = faults.decide(bulk=is_bulk_upload)   # None, "timeout", "429", "5xx" or "partial_bulk"

Rates are probabilities in [0, 1], drawn from one seeded `random.Random`, so a run with the same
seed and the same request sequence misbehaves the same way. `queue` forces the next faults in
order (e.g. ``["429", "429"]``) before any random draw, for tests that need certainty.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

FAULT_NAMES = ("timeout", "429", "5xx", "partial_bulk")


@dataclass
class Faults:
    """Per-sandbox misbehaviour settings; change them with `update()` from the control API."""

    latency_ms: int = 0
    rate_429: float = 0.0
    retry_after_seconds: int = 60
    rate_5xx: float = 0.0
    rate_timeout: float = 0.0
    timeout_seconds: float = 30.0
    rate_partial_bulk: float = 0.0
    seed: int = 0
    queue: list[str] = field(default_factory=list)
    # How many of each fault this sandbox injected (queued or drawn), for soak reports.
    injected: dict[str, int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)

    def decide(self, *, bulk: bool = False) -> str | None:
        """Return the fault this request suffers, or None; "partial_bulk" only when `bulk`."""
        with self._lock:
            fault = self._draw(bulk)
            if fault is not None:
                self.injected[fault] = self.injected.get(fault, 0) + 1
            return fault

    def _draw(self, bulk: bool) -> str | None:
        """The next queued fault, else a random draw (caller holds the lock)."""
        while self.queue:
            name = self.queue.pop(0)
            if name != "partial_bulk" or bulk:
                return name
        draws = [
            ("timeout", self.rate_timeout),
            ("429", self.rate_429),
            ("5xx", self.rate_5xx),
            ("partial_bulk", self.rate_partial_bulk if bulk else 0.0),
        ]
        for name, rate in draws:
            if rate > 0 and self.rng.random() < rate:
                return name
        return None

    def sleep_latency(self) -> None:
        """Sleep the configured latency (real time: clients measure it with real clocks)."""
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)

    def update(self, changes: dict) -> None:
        """Apply a control-API payload; unknown keys or bad values raise ValueError."""
        numeric = {
            "latency_ms": int,
            "rate_429": float,
            "retry_after_seconds": int,
            "rate_5xx": float,
            "rate_timeout": float,
            "timeout_seconds": float,
            "rate_partial_bulk": float,
        }
        with self._lock:
            for key, value in changes.items():
                if key in numeric:
                    converted = numeric[key](value)
                    if converted < 0 or (key.startswith("rate_") and converted > 1):
                        raise ValueError(f"{key} out of range: {value!r}")
                    setattr(self, key, converted)
                elif key == "seed":
                    self.seed = int(value)
                    self.rng.seed(self.seed)
                elif key == "injected":
                    if value:
                        raise ValueError("injected can only be reset (set it to 0 or {})")
                    self.injected = {}
                elif key == "queue":
                    names = [str(name) for name in value]
                    if any(name not in FAULT_NAMES for name in names):
                        raise ValueError(f"queue items must be among {FAULT_NAMES}")
                    self.queue = names
                else:
                    raise ValueError(f"unknown fault setting: {key}")

    def clear(self) -> None:
        """Back to a well-behaved server (the seed is kept)."""
        self.update(
            {
                "latency_ms": 0,
                "rate_429": 0,
                "rate_5xx": 0,
                "rate_timeout": 0,
                "rate_partial_bulk": 0,
                "queue": [],
            }
        )

    def as_dict(self) -> dict:
        """Current settings as JSON-ready data."""
        return {
            "latency_ms": self.latency_ms,
            "rate_429": self.rate_429,
            "retry_after_seconds": self.retry_after_seconds,
            "rate_5xx": self.rate_5xx,
            "rate_timeout": self.rate_timeout,
            "timeout_seconds": self.timeout_seconds,
            "rate_partial_bulk": self.rate_partial_bulk,
            "seed": self.seed,
            "queue": list(self.queue),
            "injected": dict(self.injected),
        }
