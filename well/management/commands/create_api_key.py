"""`python manage.py create_api_key WORKSPACE_SLUG --scopes read,decide [--name NAME]`.

Prints the new key on stdout, alone on its line (for scripts and the demo); only its SHA-256
is stored, so it cannot be printed again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from well.api_auth import ScopeError, api_key_create
from well.audit import Actor
from well.selectors import workspace_get_by_slug


class Command(BaseCommand):
    help = "Create an API key for a workspace and print it once."

    def add_arguments(self, parser):
        parser.add_argument("workspace_slug")
        parser.add_argument(
            "--scopes", default="read", help="comma-separated: read, decide, admin (default read)"
        )
        parser.add_argument("--name", default="command line")

    def handle(self, *args, workspace_slug: str, scopes: str, name: str, **options):
        workspace = workspace_get_by_slug(slug=workspace_slug)
        if workspace is None:
            raise CommandError(f"No workspace with the slug {workspace_slug!r}.")
        try:
            key, secret = api_key_create(
                workspace=workspace,
                name=name,
                scopes=scopes.split(","),
                actor=Actor.system("create_api_key command"),
            )
        except ScopeError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(
            f"Created key {key.prefix}… for {workspace.slug} with scopes {','.join(key.scopes)}."
        )
        self.stdout.write(secret)
