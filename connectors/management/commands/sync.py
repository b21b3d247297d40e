from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from connectors.quickbooks.sync import quickbooks_sync
from connectors.selectors import quickbooks_connection_get
from well.selectors import workspace_get_by_slug


class Command(BaseCommand):
    help = "Sync one workspace's QuickBooks connection now and print the counts."

    def add_arguments(self, parser):
        parser.add_argument("workspace_slug")
        parser.add_argument("--full", action="store_true", help="Full query resync.")

    def handle(self, *args, workspace_slug: str, full: bool = False, **options):
        workspace = workspace_get_by_slug(slug=workspace_slug)
        if workspace is None:
            raise CommandError(f"No workspace {workspace_slug!r}.")
        connection = quickbooks_connection_get(workspace=workspace)
        if connection is None:
            raise CommandError(f"Workspace {workspace_slug!r} has no QuickBooks connection.")
        run = quickbooks_sync(connection_id=connection.pk, full=full, trigger="command")
        self.stdout.write(
            json.dumps(
                {
                    "status": run.status,
                    "full": run.full,
                    "api_calls": run.api_calls,
                    "marker_before": run.marker_before,
                    "marker_after": run.marker_after,
                    "counts": run.counts,
                    "error": run.error,
                }
            )
        )
        if run.status == "failed":
            raise CommandError(run.error or "The sync failed.")
