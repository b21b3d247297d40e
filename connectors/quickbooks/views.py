"""QuickBooks pages: connect, disconnect, sync now, re-import, and the OAuth callback."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors import views as shared
from connectors.forms import ReimportForm
from connectors.models import Provider
from connectors.oauth import ConnectError
from connectors.quickbooks import services
from connectors.selectors import quickbooks_connection_get
from well.audit import Actor
from well.decorators import workspace_view
from well.models import Role

# Where this provider's pages send the person back to.
PAGE = "connectors:list"


def _back(slug: str):
    return redirect(PAGE, workspace_slug=slug)


@workspace_view(Role.OWNER)
@require_POST
def connect(request):
    start_over = request.POST.get("start_over") == "1"
    return shared.connect_redirect(
        request,
        session_key=services.OAUTH_SESSION_KEY,
        begin=lambda **who: services.quickbooks_authorization_begin(**who, start_over=start_over),
    )


disconnect = shared.disconnect_view(
    provider=Provider.QUICKBOOKS, disconnect=services.quickbooks_disconnect, back=PAGE
)

sync_now = shared.sync_now_view(
    provider=Provider.QUICKBOOKS,
    queued=_("A sync was queued; this page shows its progress."),
    back=PAGE,
)


@workspace_view(Role.ACCOUNTANT)
@require_http_methods(["GET", "POST"])
def reimport(request):
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
        except ConnectError as exc:
            messages.error(request, str(exc))
        else:
            messages.info(request, outcome.message)
            return _back(request.workspace.slug)
    return render(
        request,
        "connectors/reimport.html",
        {"quickbooks": connection, "form": form, "confirming": confirming},
    )


@login_required
@require_GET
def callback(request):
    """Global route registered with Intuit for every workspace (quickbooks-api.md §1.3)."""
    realm_id = request.GET.get("realmId", "")
    return shared.oauth_callback(
        request,
        session_key=services.OAUTH_SESSION_KEY,
        provider_name="QuickBooks",
        complete=lambda **answer: services.quickbooks_authorization_complete(
            **answer, realm_id=realm_id
        ),
        back=_back,
    )
