"""The connections page, and what every provider's pages share: connect, sync now, callback.

Each provider's own views (connectors/quickbooks/views.py, connectors/qonto/views.py) are thin
calls of these with its services and its messages.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from connectors.models import Connection
from connectors.oauth import (
    ConnectError,
    ConnectOutcome,
    oauth_callback_next,
    oauth_next_clean,
    pending_workspace_slug,
)
from connectors.selectors import (
    connections_for_workspace,
    quickbooks_connection_get,
    source_record_counts,
    sync_runs_recent,
)
from connectors.sync_requests import NotConnected, SyncCapReached, connection_sync_request
from well.audit import Actor
from well.decorators import workspace_view
from well.http import ProviderError
from well.models import Workspace


def _page_context(workspace: Workspace) -> dict:
    return {
        "connections": connections_for_workspace(workspace=workspace),
        "quickbooks": quickbooks_connection_get(workspace=workspace),
        "runs": sync_runs_recent(workspace=workspace),
        "record_counts": source_record_counts(workspace=workspace),
    }


@workspace_view()
@require_GET
def connection_list(request):
    return render(request, "connectors/connection_list.html", _page_context(request.workspace))


@workspace_view()
@require_GET
def sync_runs(request):
    """The live part of the page (htmx polls it while a sync runs)."""
    return render(request, "connectors/_sync_runs.html", _page_context(request.workspace))


# --- What every provider's pages share -------------------------------------------------------


def oauth_next_from_request(request) -> str:
    """The safe `next` a connect form (or link) asked to return to; "" when absent or unsafe."""
    return oauth_next_clean(
        next_url=request.POST.get("next") or request.GET.get("next"),
        host=request.get_host(),
        secure=request.is_secure(),
    )


def connect_redirect(request, *, session_key: str, begin: Callable[..., tuple[str, dict]]):
    """Remember the flow in the session (with a safe `next`) and send the user to consent."""
    url, pending = begin(workspace=request.workspace, user=request.user)
    pending["next"] = oauth_next_from_request(request)
    request.session[session_key] = pending
    return HttpResponseRedirect(url)


def disconnect(request, *, connection: Connection | None, disconnect: Callable) -> None:
    """Revoke the grant and forget the tokens (records stay); the outcome is said in a message."""
    if connection is not None:
        result = disconnect(connection=connection, actor=Actor.user(request.user))
        messages.info(request, result.message)


def sync_now(request, *, connection: Connection | None, provider_name: str, queued: str) -> None:
    """A person's "Sync now", through the daily cap; the outcome is said in a message."""
    if connection is None:
        messages.error(request, _("%(provider)s is not connected.") % {"provider": provider_name})
        return
    try:
        connection_sync_request(connection=connection, actor=Actor.user(request.user))
    except NotConnected:
        messages.error(request, _("%(provider)s is not connected.") % {"provider": provider_name})
    except SyncCapReached as exc:
        minutes = max(1, round(exc.retry_after.total_seconds() / 60))
        messages.error(
            request,
            _("%(why)s The next sync can be asked for in %(n)d min.") % {"why": exc, "n": minutes},
        )
    else:
        messages.info(request, queued)


def oauth_callback(
    request,
    *,
    session_key: str,
    provider_name: str,
    complete: Callable[..., ConnectOutcome],
    back: Callable[[str], HttpResponse],
):
    """A provider's global callback: the workspace comes from the state bound to this session,
    never the URL; `back(slug)` is the provider's page of that workspace."""
    pending = request.session.pop(session_key, None)
    slug = pending_workspace_slug(pending=pending, user=request.user)
    next_url = oauth_callback_next(
        pending=pending, user=request.user, host=request.get_host(), secure=request.is_secure()
    )
    try:
        outcome = complete(
            pending=pending,
            user=request.user,
            state=request.GET.get("state", ""),
            code=request.GET.get("code", ""),
            error=request.GET.get("error", ""),
        )
    except ConnectError as exc:
        messages.error(request, str(exc))
        if next_url:
            return HttpResponseRedirect(next_url)
        return back(slug) if slug else redirect("home")
    except ProviderError:
        messages.error(
            request,
            _("%(provider)s did not complete the connection; please try again.")
            % {"provider": provider_name},
        )
        return back(slug) if slug else redirect("home")
    messages.success(request, outcome.message)
    if next_url:
        return HttpResponseRedirect(next_url)
    return back(outcome.workspace.slug)
