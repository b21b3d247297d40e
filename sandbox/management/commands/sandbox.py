"""`manage.py sandbox`: run the QuickBooks and Qonto sandboxes until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from django.core.management.base import BaseCommand

from sandbox.runner import sandbox_credentials, start_sandboxes


class Command(BaseCommand):
    help = "Run the QuickBooks Online and Qonto sandbox servers on real sockets."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--quickbooks-port", type=int, default=8765)
        parser.add_argument("--qonto-port", type=int, default=8766)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--bills", type=int, default=200)
        parser.add_argument("--data", type=Path, default=None, help="keep state in this folder")
        parser.add_argument(
            "--qonto-plan",
            choices=("essential", "solo_basic"),
            default="essential",
            help="solo_basic: the supplier-invoice list answers 403, as on Qonto's Solo Basic",
        )
        parser.add_argument(
            "--qonto-error-pointers",
            choices=("index", "idempotency_key"),
            default="index",
            help="how per-item bulk errors name their item",
        )

    def handle(self, *args, **options) -> None:
        qbo, qonto = start_sandboxes(
            options["host"],
            options["quickbooks_port"],
            options["qonto_port"],
            options["seed"],
            options["bills"],
            options["data"],
            qonto_plan=options["qonto_plan"],
            qonto_error_pointers=options["qonto_error_pointers"],
        )
        client_id, client_secret = sandbox_credentials()
        self.stdout.write(f"QuickBooks sandbox: {qbo.base_url}")
        self.stdout.write(f"Qonto sandbox: {qonto.base_url}")
        self.stdout.write(f"OAuth client id: {client_id} / secret: {client_secret}")
        self.stdout.flush()
        stop = threading.Event()
        # SIGTERM (e.g. from a supervisor or a test) stops as cleanly as Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            qbo.stop()
            qonto.stop()
            self.stdout.write("Sandboxes stopped.")
