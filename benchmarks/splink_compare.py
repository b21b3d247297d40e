"""Splink 5 on a matching-eval folder, set up as Splink's own banking-transactions demo does.

    .venv/bin/python -m benchmarks.splink_compare DATASET_DIR [--calibrate]

Splink links each QuickBooks record to the Qonto entry of highest match probability (its
demo's comparisons: amount by percentage difference, memo by Jaccard, date difference; its
blocking rules; u by random sampling, m by EM, the prior 1 / records as the demo sets it).
A record whose best pair is at least 0.5 is linked with that probability as confidence, else
"create" at 1 - p. With --calibrate, that probability is first mapped by an isotonic regression
fitted on the history's records (the labels Well's history shape also gets). The decisions
are written to splink-decisions.jsonl in the folder, as Well writes its decisions.jsonl, and
the figures are read back from that file. Prints one JSON line: time (reading to the last
decision written, as Well's), peak memory of this process (DuckDB runs in it) and the
matching-eval figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from matching.core.io import figures, read_jsonl

BLOCKING = [
    # Splink's demo: the month (and the month half a month later) with the memo's start and a
    # close amount; the memo's first nine characters; amounts within 2 the same week.
    "strftime(l.transaction_date, '%Y%m') = strftime(r.transaction_date, '%Y%m') "
    "and substr(l.memo, 1, 3) = substr(r.memo, 1, 3) "
    "and l.amount / r.amount > 0.7 and l.amount / r.amount < 1.3",
    "strftime(l.transaction_date + INTERVAL 15 DAY, '%Y%m') = strftime(r.transaction_date, '%Y%m') "
    "and substr(l.memo, 1, 3) = substr(r.memo, 1, 3) "
    "and l.amount / r.amount > 0.7 and l.amount / r.amount < 1.3",
    "substr(l.memo, 1, 9) = substr(r.memo, 1, 9)",
    "round(l.amount / 2, 0) * 2 = round(r.amount / 2, 0) * 2 "
    "and yearweek(r.transaction_date) = yearweek(l.transaction_date)",
    "round(l.amount / 2, 0) * 2 = round((r.amount + 1) / 2, 0) * 2 "
    "and yearweek(r.transaction_date) = yearweek(l.transaction_date + INTERVAL 4 DAY)",
]


def _frames(folder: Path) -> tuple[Any, Any, list[dict], dict[str, str]]:
    import pandas as pd

    def amount(value: Any) -> float:
        return abs(float(value or 0)) or 0.01

    records = []
    history: dict[str, str] = {}
    for line in read_jsonl(folder / "history.jsonl"):
        obj = line["object"]
        history[f"{line['type']}|{obj['Id']}"] = line["target"]["id"]
        records.append((line["type"], obj))
    incoming = [(line["type"], line["object"]) for line in read_jsonl(folder / "incoming.jsonl")]
    left = pd.DataFrame(
        [
            {
                "unique_id": f"{kind}|{obj['Id']}",
                "memo": obj.get("PrivateNote") or "",
                "transaction_date": obj.get("TxnDate"),
                "amount": amount(obj.get("TotalAmt")),
            }
            for kind, obj in records + incoming
        ]
    )
    right = pd.DataFrame(
        [
            {
                "unique_id": f"transaction|{t['id']}",
                "memo": t.get("label") or "",
                "transaction_date": (t.get("settled_at") or t.get("emitted_at") or "")[:10],
                "amount": amount(t.get("amount")),
            }
            for t in read_jsonl(folder / "qonto" / "transactions.jsonl")
        ]
    )
    for frame in (left, right):
        frame["transaction_date"] = pd.to_datetime(frame["transaction_date"])
    return left, right, [{"type": k, "id": str(o["Id"])} for k, o in incoming], history


def best_pairs(folder: Path) -> tuple[dict[str, tuple[float, str]], list[dict], dict[str, str]]:
    """Splink's best entry and probability for every record of the folder (history too)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    left, right, incoming, history = _frames(folder)
    settings = SettingsCreator(
        link_type="link_only",
        probability_two_random_records_match=1 / len(left),
        blocking_rules_to_generate_predictions=BLOCKING,
        comparisons=[
            cl.CustomComparison(
                output_column_name="amount",
                comparison_levels=[
                    cll.NullLevel("amount"),
                    cll.ExactMatchLevel("amount"),
                    cll.PercentageDifferenceLevel("amount", 0.01),
                    cll.PercentageDifferenceLevel("amount", 0.03),
                    cll.PercentageDifferenceLevel("amount", 0.1),
                    cll.PercentageDifferenceLevel("amount", 0.3),
                    cll.ElseLevel(),
                ],
            ),
            cl.CustomComparison(
                output_column_name="memo",
                comparison_levels=[
                    cll.NullLevel("memo"),
                    cll.ExactMatchLevel("memo", term_frequency_adjustments=True),
                    cll.JaroWinklerLevel("memo", 0.9),
                    cll.JaccardLevel("memo", 0.7),
                    cll.JaccardLevel("memo", 0.4),
                    cll.ElseLevel(),
                ],
            ),
            cl.AbsoluteDateDifferenceAtThresholds(
                "transaction_date",
                input_is_string=False,
                metrics=["day", "day", "day", "day"],
                thresholds=[1, 4, 10, 30],
            ),
        ],
    )
    db_api = DuckDBAPI()
    linker = Linker(
        [
            db_api.register(left, dataset_display_name="quickbooks", table_name="quickbooks"),
            db_api.register(right, dataset_display_name="qonto", table_name="qonto"),
        ],
        settings,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("memo"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("amount"))
    pairs = linker.inference.predict(threshold_match_probability=0.001).as_pandas_dataframe()
    best: dict[str, tuple[float, str]] = {}
    for rec, ent, p in zip(
        pairs["unique_id_l"], pairs["unique_id_r"], pairs["match_probability"], strict=True
    ):
        if rec.startswith("transaction|"):
            rec, ent = ent, rec
        if p > best.get(rec, (-1.0, ""))[0]:
            best[rec] = (float(p), ent.partition("|")[2])
    return best, incoming, history


def decisions(folder: Path, calibrate: bool) -> list[dict[str, Any]]:
    best, incoming, history = best_pairs(folder)
    mapping = None
    if calibrate and history:
        from sklearn.isotonic import IsotonicRegression

        probabilities, right = [], []
        for key, target in history.items():
            p, ent = best.get(key, (0.0, ""))
            probabilities.append(p)
            right.append(1.0 if ent == target else 0.0)
        mapping = IsotonicRegression(out_of_bounds="clip").fit(probabilities, right)
    rows = []
    for rec in incoming:
        p, ent = best.get(f"{rec['type']}|{rec['id']}", (0.0, ""))
        confidence = float(mapping.predict([p])[0]) if mapping is not None else p
        link = p >= 0.5
        rows.append(
            {
                **rec,
                "action": "link" if link else "create",
                "target": {"type": "transaction", "id": ent} if link else None,
                "confidence": confidence if link else 1 - confidence,
                "alternatives": [],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args(argv)
    out = args.dataset / "splink-decisions.jsonl"
    started = time.perf_counter()
    with out.open("w", encoding="utf-8") as handle:
        for row in decisions(args.dataset, args.calibrate):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    seconds = time.perf_counter() - started
    truth = [t for t in read_jsonl(args.dataset / "truth.jsonl") if isinstance(t, dict)]
    found = figures(read_jsonl(out), truth)
    print(
        json.dumps(
            {
                "engine": "splink+isotonic" if args.calibrate else "splink",
                "dataset": str(args.dataset),
                "seconds": round(seconds, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                **{k: found[k] for k in ("auto_precision", "auto_coverage", "ece", "accuracy")},
            }
        )
    )


if __name__ == "__main__":
    main()
