"""Fit the shipped default model on generated training books.

    python -m matching.datasets.fit --seeds 101 102 --incoming 4000 --entries 40000

Level counts (m from true pairs, u from the other blocked candidates), the share of records that
have a Qonto entry per record type, and the decision calibrator are all learnt from the training
seeds, never from the held-out test seeds, and written to matching/core/default_model.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from matching.core import calibration
from matching.core.compare import WEIGHT_LEVELS, weight_keys
from matching.core.engine import build_book, decide, score
from matching.core.io import read_dataset, read_jsonl
from matching.core.types import Policy
from matching.core.weights import CALIBRATOR_FEATURES, DEFAULT_PATH, Model

from .generate import generate

PSEUDO = 2.0  # prior counts kept per level so that an unseen level is not infinitely weighted


def _truth(folder: Path) -> dict[tuple[str, str], tuple[str, str] | None]:
    rows = [r for r in read_jsonl(folder / "truth.jsonl") if isinstance(r, dict)]
    return {
        (r["type"], r["id"]): (r["target"]["type"], r["target"]["id"]) if r["target"] else None
        for r in rows
    }


def count_levels(folders: list[Path], model: Model) -> tuple[dict, dict[str, float]]:
    """m and u counts per level, and the share of records linked per record type."""
    counts = {s: {lvl: [PSEUDO, PSEUDO] for lvl in levels} for s, levels in WEIGHT_LEVELS.items()}
    linked: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for folder in folders:
        data = read_dataset(folder)
        book = build_book(data.vendors, data.accounts, data.history, data.entries)
        truth = _truth(folder)
        for record in data.incoming:
            right = truth.get((record.type, record.id))
            seen[record.type] += 1
            linked[record.type] += right is not None
            scored = score(book, record, model)
            for pos, vector in zip(scored.positions, scored.vectors, strict=True):
                entry = book.entries[pos]
                column = 0 if right == (entry.kind, entry.id) else 1
                for signal, level in weight_keys(vector):
                    if level != "missing":
                        counts[signal][level][column] += 1
    _neutralise_unseen(counts)
    prior = {kind: round(linked[kind] / seen[kind], 4) for kind in seen}
    prior["default"] = round(sum(linked.values()) / max(sum(seen.values()), 1), 4)
    return counts, prior


def _neutralise_unseen(counts: dict[str, dict[str, list[float]]]) -> None:
    """A level the training books never showed weighs 0 instead of a pseudo-count artefact."""
    for levels in counts.values():
        total_m = sum(pair[0] for pair in levels.values())
        total_u = sum(pair[1] for pair in levels.values())
        for level, pair in levels.items():
            if pair[0] + pair[1] < 4 * PSEUDO + 10:
                levels[level] = [total_m * 1e-3, total_u * 1e-3]


def fit_calibrator(folders: list[Path], model: Model) -> dict[str, float]:
    """Logistic calibrator of the decision, fitted on the engine's own decisions."""
    samples: list[dict[str, float]] = []
    labels: list[bool] = []
    for folder in folders:
        data = read_dataset(folder)
        book = build_book(data.vendors, data.accounts, data.history, data.entries)
        truth = _truth(folder)
        for decision in decide(book, data.incoming, model, Policy()):
            right = truth.get((decision.type, decision.id))
            proposed = (decision.target.type, decision.target.id) if decision.target else None
            samples.append(decision.features)
            labels.append(proposed == right)
    return calibration.fit(samples, labels, CALIBRATOR_FEATURES, penalty=0.1)


def fit(folders: list[Path], version: str) -> Model:
    """A model fitted on the training folders."""
    model = Model()
    counts, prior = count_levels(folders, model)
    model = Model.from_dict({"version": version, "counts": counts, "link_prior": prior})
    model.calibrator = fit_calibrator(folders, model)
    return model


def main(argv: list[str] | None = None) -> None:
    """Generate the training books, fit, write default_model.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102])
    parser.add_argument("--incoming", type=int, default=4000)
    parser.add_argument("--entries", type=int, default=40000)
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument(
        "--books", type=Path, default=None, help="keep the training books here, reuse them"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.books or Path(tmp)
        folders = []
        for seed in args.seeds:
            folder = root / f"train-{seed}-{args.incoming}-{args.entries}"
            if not (folder / "truth.jsonl").exists():
                generate(folder, seed, args.incoming, args.entries)
            folders.append(folder)
        version = "default-" + "-".join(str(s) for s in args.seeds)
        model = fit(folders, version)
    args.out.write_text(model.to_json() + "\n")
    summary: dict[str, Any] = {
        "out": str(args.out),
        "version": model.version,
        "calibrator": model.calibrator,
        "link_prior": model.link_prior,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
