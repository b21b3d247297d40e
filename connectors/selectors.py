from __future__ import annotations

from django.db.models import QuerySet

from connectors.models import Connection
from well.models import Workspace


def connections_for_workspace(*, workspace: Workspace) -> QuerySet[Connection]:
    return Connection.objects.for_workspace(workspace).order_by("provider")
