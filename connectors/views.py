from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from connectors.selectors import connections_for_workspace
from well.decorators import workspace_view


@workspace_view()
@require_GET
def connection_list(request):
    return render(
        request,
        "connectors/connection_list.html",
        {"connections": connections_for_workspace(workspace=request.workspace)},
    )
