"""Qonto pages: the connection panel, connect, disconnect, read now, and the OAuth callback."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from connectors.http import ProviderError
from connectors.qonto import selectors, services
from connectors.services import pending_workspace_slug
from connectors.views import oauth_callback_next, oauth_next_from_request
from well.audit import Actor
from well.decorators import workspace_view
from well.models import Role


def _back(request):
    return redirect("connectors:qonto:panel", workspace_slug=request.workspace.slug)


@workspace_view()
@require_GET
def panel(request):
    workspace = request.workspace
    return render(
        request,
        "connectors/qonto_panel.html",
        {
            "qonto": services.qonto_connection_get(workspace=workspace),
            "posting_counts": selectors.posting_counts(workspace=workspace),
            "postings": selectors.postings_for_workspace(workspace=workspace).order_by(
                "-created_at"
            )[:20],
        },
    )


@workspace_view(Role.OWNER)
@require_POST
def connect(request):
    url, pending = services.qonto_authorization_begin(
        workspace=request.workspace, user=request.user
    )
    pending["next"] = oauth_next_from_request(request)
    request.session[services.OAUTH_SESSION_KEY] = pending
    return HttpResponseRedirect(url)


@workspace_view(Role.OWNER)
@require_POST
def disconnect(request):
    connection = services.qonto_connection_get(workspace=request.workspace)
    if connection is not None:
        result = services.qonto_disconnect(connection=connection, actor=Actor.user(request.user))
        messages.info(request, result.message)
    return _back(request)


@workspace_view(Role.ACCOUNTANT)
@require_POST
def sync_now(request):
    connection = services.qonto_connection_get(workspace=request.workspace)
    if connection is None or not services.qonto_sync_request(
        connection=connection, actor=Actor.user(request.user)
    ):
        messages.error(request, "Qonto is not connected.")
    else:
        messages.info(request, "A Qonto read was queued.")
    return _back(request)


@login_required
@require_GET
def callback(request):
    """Global route: the workspace comes from the state bound to this session, never the URL."""
    pending = request.session.pop(services.OAUTH_SESSION_KEY, None)
    slug = pending_workspace_slug(pending=pending, user=request.user)
    next_url = oauth_callback_next(request, pending)
    try:
        outcome = services.qonto_authorization_complete(
            pending=pending,
            user=request.user,
            state=request.GET.get("state", ""),
            code=request.GET.get("code", ""),
            error=request.GET.get("error", ""),
        )
    except services.ConnectError as exc:
        messages.error(request, str(exc))
        if next_url:
            return HttpResponseRedirect(next_url)
        return redirect("connectors:qonto:panel", workspace_slug=slug) if slug else redirect("home")
    except ProviderError:
        messages.error(request, "Qonto did not complete the connection; please try again.")
        return redirect("connectors:qonto:panel", workspace_slug=slug) if slug else redirect("home")
    messages.success(request, outcome.message)
    if next_url:
        return HttpResponseRedirect(next_url)
    return redirect("connectors:qonto:panel", workspace_slug=outcome.workspace.slug)
