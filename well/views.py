from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from well.api_auth import api_key_create, api_keys_for_workspace
from well.api_auth import api_key_revoke as revoke_api_key
from well.audit import Actor
from well.decorators import workspace_view
from well.models import ApiKey, ApiScope, Role
from well.selectors import memberships_for_user


@require_GET
def healthz(request):
    """Liveness and database check for load balancers and monitors."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@login_required
@require_GET
def home(request):
    """Open the last workspace used, the only one, or let the user pick."""
    memberships = list(memberships_for_user(user=request.user))
    slugs = [m.workspace.slug for m in memberships]
    last = request.session.get("workspace_slug")
    if last in slugs:
        return redirect("review:dashboard", workspace_slug=last)
    if len(memberships) == 1:
        return redirect("review:dashboard", workspace_slug=slugs[0])
    return render(request, "well/workspaces.html", {"memberships": memberships})


# --- workspace settings: partner API keys (owners only) -------------------------------------


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, label=pgettext_lazy("API key", "Name"))
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiScope.READ],
        label=pgettext_lazy("API key", "Scopes"),
    )


@workspace_view(Role.OWNER)
def api_keys(request):
    """List the workspace's keys; create one (its secret is shown on this answer only)."""
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        key, secret = api_key_create(
            workspace=request.workspace,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            actor=Actor.user(request.user),
            created_by=request.user,
        )
        created = {"key": key, "secret": secret}
        form = ApiKeyForm()
    keys = api_keys_for_workspace(workspace=request.workspace).order_by("-created_at")
    return render(
        request,
        "well/api_keys.html",
        {"keys": keys, "form": form, "created": created},
        status=201 if created else 200,
    )


@workspace_view(Role.OWNER)
def api_key_revoke(request, api_key_id: int):
    key = get_object_or_404(ApiKey.objects.for_workspace(request.workspace), pk=api_key_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if revoke_api_key(key=key, actor=Actor.user(request.user)):
        messages.info(request, _("The key %(prefix)s… is revoked.") % {"prefix": key.prefix})
    return redirect("api_keys", workspace_slug=request.workspace.slug)
