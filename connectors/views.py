"""The connections page, and what every provider's pages share: connect, disconnect, sync now,
callback.

Each provider's own views (connectors/quickbooks/views.py, connectors/qonto/views.py) are these
given its services and its messages.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from connectors.models import Connection
from connectors.oauth import (
    ConnectError,
    ConnectOutcome,
    oauth_callback_next,
    oauth_next_clean,
    pending_workspace_slug,
)
from connectors.selectors import (
    connection_get,
    connections_for_workspace,
    quickbooks_connection_get,
    source_record_counts,
    sync_runs_recent,
)
from connectors.services import PROVIDER_NAMES, DisconnectResult
from connectors.sync_requests import NotConnected, SyncCapReached, connection_sync_request
from well.audit import Actor
from well.decorators import workspace_view
from well.http import ProviderError
from well.models import Role, Workspace

# A message given at import time: a string, or a lazy translation (gettext_lazy).
StrOrPromise = str | Promise


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


def disconnect_view(*, provider: str, disconnect: Callable[..., DisconnectResult], back: str):
    """A provider's "Disconnect" page: owners only; `disconnect` is the provider's service.

    The grant is revoked and the tokens forgotten (records stay), the outcome said in a message,
    and the person sent back to the page named `back`.
    """

    @workspace_view(Role.OWNER)
    @require_POST
    def provider_disconnect(request):
        connection = connection_get(workspace=request.workspace, provider=provider)
        if connection is not None:
            result = disconnect(connection=connection, actor=Actor.user(request.user))
            messages.info(request, result.message)
        return redirect(back, workspace_slug=request.workspace.slug)

    return provider_disconnect


def sync_now_view(*, provider: str, queued: StrOrPromise, back: str):
    """A provider's "Sync now" page: accountants and owners, through the daily cap.

    The outcome is said in a message (`queued` once the sync is queued), and the person sent back
    to the page named `back`.
    """

    @workspace_view(Role.ACCOUNTANT)
    @require_POST
    def provider_sync_now(request):
        connection = connection_get(workspace=request.workspace, provider=provider)
        _sync_request(request, connection=connection, provider=provider, queued=queued)
        return redirect(back, workspace_slug=request.workspace.slug)

    return provider_sync_now


def _sync_request(
    request, *, connection: Connection | None, provider: str, queued: StrOrPromise
) -> None:
    not_connected = _("%(provider)s is not connected.") % {"provider": PROVIDER_NAMES[provider]}
    if connection is None:
        messages.error(request, not_connected)
        return
    try:
        connection_sync_request(connection=connection, actor=Actor.user(request.user))
    except NotConnected:
        messages.error(request, not_connected)
    except SyncCapReached as exc:
        minutes = max(1, round(exc.retry_after.total_seconds() / 60))
        messages.error(
            request,
            _("%(why)s The next sync can be asked for in %(n)d min.") % {"why": exc, "n": minutes},
        )
    else:
        # Translated now, in the language this request is answered in.
        messages.info(request, str(queued))


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
