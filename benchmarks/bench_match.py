"""The matching benchmark: Well and Splink side by side, and Well at 10,000 x 100,000.

    .venv/bin/python -m benchmarks.bench_match [--only bank|scale] [--skip-splink]

1. The public bank-transactions pair (../shared/datasets/bank-transactions, MIT licence) in its
   two shapes, converted with the converter shipped beside it: "cold" (no payee, no history) and
   "history" (a payee, the earliest half as history). Well runs `match_eval`'s own code path;
   Splink 5 runs as its banking-transactions demo sets it up (benchmarks.splink_compare), then
   with an isotonic calibrator fitted on the history.
2. 10,000 incoming records against 100,000 Qonto entries from our generator (seed 9001).

Every engine runs in a process of its own, one after the other, and reports its wall time and
memory: the peak resident memory of that process and of any helper it forked (their sum is an
upper bound: a forked helper shares its parent's pages), and `peak_pss_mb`, the peak of the
proportional set size of the whole process tree sampled every 200 ms from /proc (shared pages
counted once: what the engines together take from the machine), and `cpu_seconds`, the
processor time of the tree (threads and helpers included), which a busy machine does not
stretch as it does wall time. One JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Beside the repository, as ../shared/datasets/bank-transactions; elsewhere, say where.
DATASET = Path(
    os.environ.get(
        "BANK_TRANSACTIONS_DIR", ROOT.parent / "shared" / "datasets" / "bank-transactions"
    )
)
SHAPES = {
    "cold": [],
    "history": ["--payee", "first-word", "--history-share", "0.5"],
}
KEPT = ("auto_precision", "auto_coverage", "ece", "review_recall_top4", "blocking_recall")


def _convert(shape: str, out: Path) -> None:
    if (out / "truth.jsonl").exists():
        return
    subprocess.run(
        [sys.executable, str(DATASET / "to_eval.py"), str(DATASET), str(out), *SHAPES[shape]],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _well(folder: Path) -> dict:
    """Well in this process (the caller runs it in a child of its own)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "well.settings")
    django.setup()
    from matching.core.io import run

    # The engine's own time, reading to the last decision written, as Splink's excludes its
    # figures too.
    summary = run(folder, folder / "decisions.jsonl", folder / "truth.jsonl")
    return {
        "engine": "well",
        "dataset": folder.name,
        "seconds": round(summary["seconds"], 1),
        "fit_seconds": summary["fit_seconds"],
        **_memory(),
        **{k: summary["figures"][k] for k in KEPT},
    }


def _memory() -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    helper = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "peak_rss_mb": round(own),
        "peak_rss_helper_mb": round(helper),
        "peak_rss_all_mb": round(own + helper),
    }


def _tree(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # the process ended between the listing and the read
        return 0
    return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")), 0)


def _in_child(*args: str) -> dict:
    """Run one engine in a fresh process; its last output line is its JSON summary."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as child:
        peak = 0
        while child.poll() is None:
            peak = max(peak, sum(_pss_kb(pid) for pid in _tree(child.pid)))
            time.sleep(0.2)
        output = child.stdout.read() if child.stdout else ""
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Processor time of the engine, its threads and helpers: what wall time would be on an idle
    # machine with one core (a shared machine stretches wall time, not this).
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        **json.loads(output.strip().splitlines()[-1]),
        "cpu_seconds": round(cpu, 1),
        "peak_pss_mb": round(peak / 1024),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("bank", "scale"), default=None)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument("--well", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--var", type=Path, default=ROOT / "var")
    args = parser.parse_args(argv)
    if args.well is not None:  # the child that runs Well
        print(json.dumps(_well(args.well)))
        return
    if args.only in (None, "bank"):
        for shape in SHAPES:
            folder = args.var / f"tx-{shape}"
            _convert(shape, folder)
            print(json.dumps(_in_child("benchmarks.bench_match", "--well", str(folder))))
            if not args.skip_splink:
                for extra in ([], ["--calibrate"]):
                    run = _in_child("benchmarks.splink_compare", str(folder), *extra)
                    print(json.dumps(run))
    if args.only in (None, "scale"):
        folder = args.var / "bench-10k"
        if not (folder / "truth.jsonl").exists():
            from matching.datasets.generate import generate

            generate(folder, 9001, 10_000, 100_000)
        print(json.dumps(_in_child("benchmarks.bench_match", "--well", str(folder))))


if __name__ == "__main__":
    main()
