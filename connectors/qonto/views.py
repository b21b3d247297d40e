"""Qonto pages: the connection panel, connect, disconnect, read now, and the OAuth callback."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from connectors import views as shared
from connectors.models import Provider
from connectors.qonto import selectors, services
from connectors.selectors import qonto_connection_get
from well.decorators import workspace_view
from well.models import Role

# Where this provider's pages send the person back to.
PAGE = "connectors:qonto:panel"


def _back(slug: str):
    return redirect(PAGE, workspace_slug=slug)


@workspace_view()
@require_GET
def panel(request):
    workspace = request.workspace
    return render(
        request,
        "connectors/qonto_panel.html",
        {
            "qonto": qonto_connection_get(workspace=workspace),
            "posting_counts": selectors.posting_counts(workspace=workspace),
            "postings": selectors.postings_for_workspace(workspace=workspace).order_by(
                "-created_at"
            )[:20],
        },
    )


@workspace_view(Role.OWNER)
@require_POST
def connect(request):
    return shared.connect_redirect(
        request,
        session_key=services.OAUTH_SESSION_KEY,
        begin=services.qonto_authorization_begin,
    )


disconnect = shared.disconnect_view(
    provider=Provider.QONTO, disconnect=services.qonto_disconnect, back=PAGE
)

sync_now = shared.sync_now_view(
    provider=Provider.QONTO, queued=_("A Qonto read was queued."), back=PAGE
)


@login_required
@require_GET
def callback(request):
    """Global route registered with Qonto for every workspace (qonto-api.md §2.2)."""
    return shared.oauth_callback(
        request,
        session_key=services.OAUTH_SESSION_KEY,
        provider_name="Qonto",
        complete=services.qonto_authorization_complete,
        back=_back,
    )
