"""Run the matching engine on a matching-eval folder and print a one-line JSON summary."""

from __future__ import annotations

import json
import resource
import time
import tracemalloc
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from matching.core.io import run
from matching.core.model import Model


class Command(BaseCommand):
    """`manage.py match_eval DATASET_DIR --out decisions.jsonl [--truth truth.jsonl]`."""

    help = "Decide every incoming record of a matching-eval folder; print time, memory, figures."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", type=Path)
        parser.add_argument("--out", type=Path, default=Path("decisions.jsonl"))
        parser.add_argument("--truth", type=Path, default=None)
        parser.add_argument("--model", type=Path, default=None, help="a model JSON file")
        parser.add_argument(
            "--tracemalloc", action="store_true", help="also measure Python heap peak (slower)"
        )

    def handle(self, *args, **options) -> None:
        dataset: Path = options["dataset"]
        if not dataset.is_dir():
            raise CommandError(f"{dataset} is not a folder")
        model = None
        if options["model"]:
            model = Model.from_json(Path(options["model"]).read_text())
        if options["tracemalloc"]:
            tracemalloc.start()
        started = time.perf_counter()
        summary = run(dataset, options["out"], options["truth"], model=model)
        # `seconds` (from run) is the engine's, reading to the last decision written; this one
        # adds the figures against the truth.
        summary["total_seconds"] = round(time.perf_counter() - started, 2)
        summary["records_per_second"] = round(summary["records"] / max(summary["seconds"], 1e-9), 1)
        # ru_maxrss is the process's resident peak in KiB on Linux (Django itself included).
        summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        # The forked helper of large batches (half the scoring, half the explaining).
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        summary["peak_rss_child_mb"] = round(children / 1024)
        if options["tracemalloc"]:
            summary["peak_heap_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
        summary["out"] = str(options["out"])
        self.stdout.write(json.dumps(summary))
