from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors import services
from connectors.forms import ReimportForm
from connectors.http import ProviderError
from connectors.quickbooks import oauth
from connectors.selectors import (
    connections_for_workspace,
    quickbooks_connection_get,
    source_record_counts,
    sync_runs_recent,
)
from well.audit import Actor
from well.decorators import workspace_view
from well.models import Role, Workspace


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


@workspace_view(Role.OWNER)
@require_POST
def quickbooks_connect(request):
    url, pending = services.quickbooks_authorization_begin(
        workspace=request.workspace,
        user=request.user,
        start_over=request.POST.get("start_over") == "1",
    )
    pending["next"] = oauth_next_from_request(request)
    request.session[services.OAUTH_SESSION_KEY] = pending
    return HttpResponseRedirect(url)


@workspace_view(Role.OWNER)
@require_POST
def quickbooks_disconnect(request):
    connection = quickbooks_connection_get(workspace=request.workspace)
    if connection is not None:
        result = services.quickbooks_disconnect(
            connection=connection, actor=Actor.user(request.user)
        )
        messages.info(request, result.message)
    return redirect("connectors:list", workspace_slug=request.workspace.slug)


@workspace_view(Role.ACCOUNTANT)
@require_POST
def quickbooks_sync_now(request):
    connection = quickbooks_connection_get(workspace=request.workspace)
    if connection is None or not services.sync_request(
        connection=connection, actor=Actor.user(request.user)
    ):
        messages.error(request, "QuickBooks is not connected.")
    else:
        messages.info(request, "A sync was queued; this page shows its progress.")
    return redirect("connectors:list", workspace_slug=request.workspace.slug)


def oauth_next_from_request(request) -> str:
    """The safe `next` a connect form (or link) asked to return to; "" when absent or unsafe."""
    return services.oauth_next_clean(
        next_url=request.POST.get("next") or request.GET.get("next"),
        host=request.get_host(),
        secure=request.is_secure(),
    )


def oauth_callback_next(request, pending) -> str:
    return services.oauth_callback_next(
        pending=pending, user=request.user, host=request.get_host(), secure=request.is_secure()
    )


@workspace_view(Role.ACCOUNTANT)
@require_http_methods(["GET", "POST"])
def quickbooks_reimport(request):
    """GET: the re-import form and what it will do; POST with `confirm`: queue it."""
    connection = quickbooks_connection_get(workspace=request.workspace)
    form = ReimportForm(request.POST or request.GET or None)
    confirming = form.is_bound and form.is_valid()
    if request.method == "POST" and confirming and request.POST.get("confirm") == "1":
        data = form.cleaned_data
        everything = data["scope"] == ReimportForm.EVERYTHING
        try:
            outcome = services.quickbooks_reimport(
                connection=connection,
                actor=Actor.user(request.user),
                since=None if everything else data["since"],
                everything=everything,
            )
        except services.ConnectError as exc:
            messages.error(request, str(exc))
        else:
            messages.info(request, outcome.message)
            return redirect("connectors:list", workspace_slug=request.workspace.slug)
    return render(
        request,
        "connectors/reimport.html",
        {"quickbooks": connection, "form": form, "confirming": confirming},
    )


@login_required
@require_GET
def quickbooks_callback(request):
    """Global route: the workspace comes from the state bound to this session, never the URL."""
    pending = request.session.pop(services.OAUTH_SESSION_KEY, None)
    next_url = oauth_callback_next(request, pending)
    try:
        outcome = services.quickbooks_authorization_complete(
            pending=pending,
            user=request.user,
            state=request.GET.get("state", ""),
            code=request.GET.get("code", ""),
            realm_id=request.GET.get("realmId", ""),
            error=request.GET.get("error", ""),
        )
    except services.ConnectError as exc:
        messages.error(request, str(exc))
        if next_url:
            return HttpResponseRedirect(next_url)
        slug = services.pending_workspace_slug(pending=pending, user=request.user)
        return redirect("connectors:list", workspace_slug=slug) if slug else redirect("home")
    except (ProviderError, oauth.InvalidGrant):
        messages.error(request, "QuickBooks did not complete the connection; please try again.")
        slug = services.pending_workspace_slug(pending=pending, user=request.user)
        return redirect("connectors:list", workspace_slug=slug) if slug else redirect("home")
    messages.success(request, outcome.message)
    if next_url:
        return HttpResponseRedirect(next_url)
    return redirect("connectors:list", workspace_slug=outcome.workspace.slug)
