"""`manage.py soak --hours 24 --fault-rate 0.1 [--kill-workers] [--seed N]` (docs/soak.md)."""

from __future__ import annotations

import json
import logging

from django.core.management.base import BaseCommand, CommandError

from sandbox.soak import soak_run

COUNTS = ("duplicates_in_qonto", "records_lost", "postings_stuck", "final_state_differs")


class Command(BaseCommand):
    help = (
        "Simulate hours of QuickBooks changes, syncs and postings under faults, replay them "
        "without, and print one JSON line whose four counts must be 0 (exit 1 otherwise)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=int, default=24)
        parser.add_argument("--fault-rate", type=float, default=0.1)
        parser.add_argument("--kill-workers", action="store_true")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--bills", type=int, default=30, help="Bills in the seeded company.")
        parser.add_argument(
            "--changes", type=int, nargs=2, default=(10, 30), metavar=("MIN", "MAX")
        )

    def handle(self, *args, **options):
        if options["hours"] < 1:
            raise CommandError("--hours must be at least 1.")
        if not 0 <= options["fault_rate"] <= 1:
            raise CommandError("--fault-rate must be between 0 and 1.")
        low, high = options["changes"]
        if not 0 <= low <= high:
            raise CommandError("--changes needs 0 <= MIN <= MAX.")
        # Injected faults make the clients log every failed attempt; the report is the output.
        logging.disable(logging.WARNING)
        try:
            report = soak_run(
                hours=options["hours"],
                fault_rate=options["fault_rate"],
                kill_workers=options["kill_workers"],
                seed=options["seed"],
                bills=options["bills"],
                changes_per_hour=(low, high),
            )
        finally:
            logging.disable(logging.NOTSET)
        self.stdout.write(json.dumps(report))
        if any(report[name] for name in COUNTS):
            raise SystemExit(1)
