"""Run the same dataset through Splink (Fellegi-Sunter on DuckDB) and compare with our engine.

    .venv/bin/pip install splink pandas
    .venv/bin/python -m benchmarks.splink_compare [--dir var/bench-10k]

Splink gets our normalised fields (cleaned name, signed cents, date, reference) so only the
model differs. Its decision per record: the best-scoring entry if its match probability is at
least 0.5 (confidence = that probability), else "create" (confidence = 1 - probability). No
one-to-one assignment and no calibration of the decision: that is Splink's out-of-the-box use.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from matching.core.io import figures, read_dataset, read_jsonl, run
from matching.datasets.generate import generate


def _frames(folder: Path) -> tuple[Any, Any, Any]:
    import pandas as pd

    data = read_dataset(folder)
    left = pd.DataFrame(
        [
            {
                "unique_id": f"{r.type}|{r.id}",
                "amount": str(abs(r.amount_cents or 0)),
                "day": r.txn_date.isoformat() if r.txn_date else None,
                "name": r.name or None,
                "name_key": r.name_key or None,
                "reference": r.reference or None,
            }
            for r in data.incoming
        ]
    )
    right = pd.DataFrame(
        [
            {
                "unique_id": f"{e.kind}|{e.id}",
                "amount": str(abs(e.amount_cents or 0)),
                "day": e.entry_date.isoformat() if e.entry_date else None,
                "name": e.name or None,
                "name_key": e.name_key or None,
                "reference": e.reference or None,
            }
            for e in data.entries
        ]
    )
    for frame in (left, right):
        frame["day"] = pd.to_datetime(frame["day"])
    return left, right, data


def splink_decisions(folder: Path) -> tuple[list[dict[str, Any]], Any]:
    """Splink's best pair per record, as decisions.jsonl rows."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    left, right, data = _frames(folder)
    settings = SettingsCreator(
        link_type="link_only",
        blocking_rules_to_generate_predictions=[
            block_on("amount"),
            block_on("name_key"),
            block_on("reference"),
        ],
        comparisons=[
            cl.ExactMatch("amount"),
            cl.AbsoluteDateDifferenceAtThresholds(
                "day",
                input_is_string=False,
                metrics=["day", "day", "day", "day"],
                thresholds=[1, 3, 10, 45],
            ),
            cl.JaroWinklerAtThresholds("name", [0.95, 0.85]),
            cl.ExactMatch("reference"),
        ],
    )
    db_api = DuckDBAPI()
    tables = [
        db_api.register(left, dataset_display_name="quickbooks", table_name="quickbooks"),
        db_api.register(right, dataset_display_name="qonto", table_name="qonto"),
    ]
    linker = Linker(tables, settings)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("amount"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name_key"))
    pairs = linker.inference.predict().as_pandas_dataframe()
    best: dict[str, tuple[float, str]] = {}
    for row in pairs.itertuples():
        rec, ent, p = row.unique_id_l, row.unique_id_r, float(row.match_probability)
        if rec.split("|")[0] in ("supplier_invoice", "transaction"):
            rec, ent = ent, rec
        if p > best.get(rec, (-1.0, ""))[0]:
            best[rec] = (p, ent)
    rows = []
    for r in data.incoming:
        p, ent = best.get(f"{r.type}|{r.id}", (0.0, ""))
        if p >= 0.5:
            kind, _, entry_id = ent.partition("|")
            rows.append(
                {
                    "type": r.type,
                    "id": r.id,
                    "action": "link",
                    "target": {"type": kind, "id": entry_id},
                    "confidence": p,
                    "alternatives": [],
                }
            )
        else:
            rows.append(
                {
                    "type": r.type,
                    "id": r.id,
                    "action": "create",
                    "target": None,
                    "confidence": 1 - p,
                    "alternatives": [],
                }
            )
    return rows, data


def main(argv: list[str] | None = None) -> None:
    """Ours, then Splink, on the same folder; one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("var/bench-10k"))
    parser.add_argument("--seed", type=int, default=9001)
    parser.add_argument("--incoming", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args(argv)
    if not (args.dir / "truth.jsonl").exists():
        generate(args.dir, args.seed, args.incoming, args.entries)
    truth = [t for t in read_jsonl(args.dir / "truth.jsonl") if isinstance(t, dict)]
    started = time.perf_counter()
    ours = run(args.dir, args.dir / "decisions.jsonl", args.dir / "truth.jsonl")
    ours_seconds = time.perf_counter() - started
    ours_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    rows, data = splink_decisions(args.dir)
    splink_seconds = time.perf_counter() - started
    theirs = figures(rows, truth, data.accounts)
    keep = ("auto_precision", "auto_coverage", "ece", "accuracy")
    print(
        json.dumps(
            {
                "engine": "well",
                "seconds": round(ours_seconds, 2),
                "peak_rss_mb": round(ours_rss),
                **{k: ours["figures"][k] for k in keep},
            }
        )
    )
    print(
        json.dumps(
            {
                "engine": "splink",
                "seconds": round(splink_seconds, 2),
                "peak_rss_mb_process": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                ),
                **{k: theirs[k] for k in keep},
            }
        )
    )


if __name__ == "__main__":
    main()
