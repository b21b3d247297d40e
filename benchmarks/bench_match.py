"""Benchmark the matching engine at 10,000 incoming records against 100,000 Qonto entries.

    .venv/bin/python -m benchmarks.bench_match [--dir var/bench-10k] [--seed 9001]

Generates the dataset once (reused when the folder exists), then runs match_eval's own code
path (`matching.core.io.run`) and prints time, peak resident memory and the quality figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from matching.core.io import run
from matching.datasets.generate import generate

WHO = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)


def main(argv: list[str] | None = None) -> None:
    """Generate (or reuse) the dataset, run the engine, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("var/bench-10k"))
    parser.add_argument("--seed", type=int, default=9001)
    parser.add_argument("--incoming", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args(argv)
    if not (args.dir / "truth.jsonl").exists():
        generate(args.dir, args.seed, args.incoming, args.entries)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    summary = run(args.dir, args.dir / "decisions.jsonl", args.dir / "truth.jsonl")
    seconds = time.perf_counter() - started
    summary["seconds"] = round(seconds, 2)
    summary["records_per_second"] = round(summary["records"] / seconds, 1)
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    summary["peak_rss_before_run_mb"] = round(before / 1024)
    # The forked helper (reads the bank transactions, scores half the records) shares the
    # parent's pages until it writes them; its own peak bounds what it adds.
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary["peak_rss_child_mb"] = round(children / 1024)
    summary["cpu_seconds"] = round(sum(resource.getrusage(who).ru_utime for who in WHO), 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
