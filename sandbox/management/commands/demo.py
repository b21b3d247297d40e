from __future__ import annotations

import json
import os
import time
from dataclasses import asdict

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.wsgi import get_wsgi_application

from sandbox.demo import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    QONTO_PORT,
    QUICKBOOKS_PORT,
    DemoUrls,
    demo_connect,
    demo_counts,
    demo_data_dir,
    demo_settings_apply,
    demo_sync_and_post,
    demo_tenant_ensure,
)
from sandbox.runner import start_sandboxes
from sandbox.running_demo import running_demo_share, running_demo_unshare
from sandbox.server import port_taken, serve_in_thread
from sandbox.worker import task_worker_start


class Command(BaseCommand):
    help = (
        "Run the demo: the sandboxes, the demo workspace connected to them through the real "
        "OAuth flows, a first sync, the task worker, and the site on 127.0.0.1:8000."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="Connect, sync and post once, print counts, exit."
        )
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--quickbooks-port", type=int, default=QUICKBOOKS_PORT)
        parser.add_argument("--qonto-port", type=int, default=QONTO_PORT)
        parser.add_argument("--bills", type=int, default=200)
        parser.add_argument(
            "--interval", type=int, default=300, help="Seconds between demo sync rounds."
        )

    def handle(self, *args, once, port, quickbooks_port, qonto_port, bills, interval, **options):
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # sandboxes speak plain http
        # Before anything touches the data folder: a demo already serving it holds these ports.
        taken = [p for p in (port, quickbooks_port, qonto_port) if p and port_taken(port=p)]
        if taken:
            raise CommandError(
                f"Already in use on 127.0.0.1: {', '.join(map(str, taken))}. Is the demo running "
                "in another terminal? Stop it first (Ctrl-C), or choose free ports with --port, "
                "--quickbooks-port and --qonto-port."
            )
        call_command("migrate", interactive=False, verbosity=0)
        workspace = demo_tenant_ensure()
        qbo, qonto = start_sandboxes(
            qbo_port=quickbooks_port, qonto_port=qonto_port, bills=bills, data_dir=demo_data_dir()
        )
        site = serve_in_thread(StaticFilesHandler(get_wsgi_application()), port=port)
        urls = DemoUrls(site=site.base_url, quickbooks=qbo.base_url, qonto=qonto.base_url)
        demo_settings_apply(urls)
        worker = None
        shared = False
        try:
            demo_connect(workspace=workspace, site=urls.site)
            demo_sync_and_post(workspace=workspace)
            counts = demo_counts(workspace=workspace, qonto_url=urls.qonto)
            if once:
                self.stdout.write(json.dumps(counts))
                return
            # The README's commands in another terminal reach these sandboxes while it serves.
            running_demo_share(asdict(urls))
            shared = True
            # What the site queues (a new user's wizard: the sync on connecting, the first
            # sync, postings) runs in the worker, as in production.
            worker = task_worker_start(workers=1)  # one SQLite file: one writer at a time
            self.stdout.write(
                f"\nWell demo on {urls.site}/\n"
                f"Sign in as {DEMO_EMAIL} with the password {DEMO_PASSWORD} (demo only).\n"
                f"QuickBooks sandbox: {urls.quickbooks}   Qonto sandbox: {urls.qonto}\n"
                f"First sync: {json.dumps(counts)}\n"
                "The task worker runs too: sign up as a new user and the setup wizard goes "
                "through to a finished first sync.\n"
                f"A new sync round runs every {interval} s; press Ctrl-C to stop.\n"
            )
            while True:
                time.sleep(interval)
                demo_sync_and_post(workspace=workspace)
        except KeyboardInterrupt:
            pass
        finally:
            if shared:
                running_demo_unshare()
            if worker is not None:
                worker.stop()
            site.stop()
            qbo.stop()
            qonto.stop()
