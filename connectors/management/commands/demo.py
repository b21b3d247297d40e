from __future__ import annotations

import json

from django.core.management import call_command
from django.core.management.base import BaseCommand

from well.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_tenant_ensure


class Command(BaseCommand):
    help = "Run the demo: the demo workspace on 127.0.0.1:8000 (SQLite, no configuration)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Set up, print counts, exit.")
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, once: bool = False, addr: str = "127.0.0.1:8000", **options):
        call_command("migrate", interactive=False, verbosity=0)
        workspace = demo_tenant_ensure()
        counts = {"workspace": workspace.slug}
        if once:
            self.stdout.write(json.dumps(counts))
            return
        self.stdout.write(
            f"\nWell demo on http://{addr}/\n"
            f"Sign in as {DEMO_EMAIL} with the password {DEMO_PASSWORD} (demo only).\n"
        )
        call_command("runserver", addr, use_reloader=False)
