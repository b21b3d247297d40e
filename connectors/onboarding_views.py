"""The onboarding wizard's pages (connectors/onboarding.py holds the logic)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors import onboarding, views
from connectors.models import Provider
from connectors.quickbooks.models import SourceRecord
from well import formats
from well.audit import Actor
from well.decorators import workspace_view
from well.models import Role

STEP_TITLES = {
    "quickbooks": "Connect QuickBooks",
    "mapping": "Map your accounts",
    "qonto": "Connect Qonto",
    "sync": "First sync",
}


def _step_url(workspace, step: str) -> str:
    name = "sync" if step == "done" else step
    return reverse(f"onboarding:{name}", kwargs={"workspace_slug": workspace.slug})


def _render(request, template: str, step: str, state, **extra):
    context = {
        "step": step,
        "steps": [
            {"name": name, "title": title, "url": _step_url(request.workspace, name)}
            for name, title in STEP_TITLES.items()
        ],
        "state": state,
        "current_step": state.current_step,
        "is_owner": request.membership.allows(Role.OWNER),
        # Where each provider's OAuth callback should bring the user back to.
        "next_url": reverse("onboarding:wizard", kwargs={"workspace_slug": request.workspace.slug}),
        **extra,
    }
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def workspace_new(request):
    """A new workspace for the signed-in user, straight into the wizard."""
    errors: dict = {}
    name = request.POST.get("name", "")
    if request.method == "POST":
        try:
            workspace = onboarding.workspace_onboarding_start(
                name=name, user=request.user, language=translation.get_language()
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            return redirect("onboarding:wizard", workspace_slug=workspace.slug)
    return render(
        request,
        "onboarding/workspace_new.html",
        {"name": name, "errors": errors},
        status=400 if errors else 200,
    )


@workspace_view()
@require_GET
def wizard(request):
    """Open the step the workspace is at (derived from its state)."""
    state = onboarding.wizard_state_get(workspace=request.workspace)
    return redirect(_step_url(request.workspace, state.current_step))


@workspace_view()
@require_GET
def step_quickbooks(request):
    state = onboarding.wizard_state_get(workspace=request.workspace)
    return _render(request, "onboarding/quickbooks.html", "quickbooks", state)


def _pairings_from(post, discovery) -> dict[str, str]:
    """Form values to the service's pairings: a Qonto account's pk, "" for none; auto omitted."""
    pairings = {}
    for pairing in discovery.bank_pairings:
        value = post.get(f"bank_{pairing.qbo_id}", "auto")
        if value == "auto":
            continue
        pairings[pairing.qbo_id] = "" if value == "none" else value
    return pairings


def _bank_selected(pairing, posted) -> str:
    """The option shown for one account: what was posted, else the user's choice, else the
    automatic pairing (pre-filled), else "auto"."""
    if posted is not None:
        return posted.get(f"bank_{pairing.qbo_id}", "auto")
    if pairing.chosen is not None:
        bank = pairing.chosen.qonto_bank_account_id
        return str(bank) if bank else "none"
    return str(pairing.automatic.pk) if pairing.automatic else "auto"


@workspace_view()
@require_http_methods(["GET", "POST"])
def step_mapping(request):
    workspace = request.workspace
    errors: dict = {}
    if request.method == "POST":
        if not request.membership.allows(Role.OWNER):
            raise PermissionDenied(_("Only an owner confirms the mapping."))
        discovery = onboarding.discovery_get(workspace=workspace)
        raw_threshold = request.POST.get("auto_threshold", "").strip()
        try:  # "85", "85 %" or "85,5": a percentage, decimal comma or point
            threshold = float(formats.decimal_parse(raw_threshold.rstrip("%").strip())) / 100
        except ValueError:
            errors = {"auto_threshold": [_("Give the threshold as a percentage, e.g. 85.")]}
        if not errors:
            try:
                onboarding.mapping_confirm(
                    workspace=workspace,
                    pairings=_pairings_from(request.POST, discovery),
                    default_expense_account_qbo_id=request.POST.get("default_expense_account", ""),
                    auto_threshold=threshold,
                    actor=Actor.user(request.user),
                )
            except ValidationError as exc:
                errors = exc.message_dict
            else:
                messages.success(request, _("Your account mapping is saved."))
                state = onboarding.wizard_state_get(workspace=workspace)
                return redirect(_step_url(workspace, state.current_step))
    state = onboarding.wizard_state_get(workspace=workspace)
    discovery = onboarding.discovery_get(workspace=workspace)
    discovery_run = None
    if state.quickbooks_connected and not discovery.discovered:
        discovery_run = onboarding.discovery_run_get(workspace=workspace)
    response = _render(
        request,
        "onboarding/mapping.html",
        "mapping",
        state,
        discovery=discovery,
        discovery_run=discovery_run,
        bank_rows=[
            {"pairing": p, "selected": _bank_selected(p, request.POST if errors else None)}
            for p in discovery.bank_pairings
        ],
        default_expense=(
            request.POST.get("default_expense_account", "")
            if errors
            else getattr(state.onboarding, "default_expense_account_qbo_id", "")
        ),
        ledger_sample=onboarding.LEDGER_SAMPLE,
        errors=errors,
        posted=request.POST if errors else None,
        threshold_percent=(
            request.POST.get("auto_threshold") if errors else round(workspace.auto_threshold * 100)
        ),
        review_percent=round(workspace.review_threshold * 100),
        review_share=workspace.review_threshold,
    )
    if errors:
        response.status_code = 400
    return response


@workspace_view(Role.OWNER)
def bank_mapping_reset(request, record_id: int):
    # The account is looked up before the method is checked: another workspace's ID is a 404
    # whatever the method.
    account = (
        SourceRecord.objects.for_workspace(request.workspace)
        .filter(pk=record_id, entity_type="Account")
        .first()
    )
    if account is None:
        raise Http404
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if onboarding.bank_mapping_reset(
        workspace=request.workspace, account=account, actor=Actor.user(request.user)
    ):
        messages.info(request, _("That account is paired automatically again (by IBAN or number)."))
    return redirect("onboarding:mapping", workspace_slug=request.workspace.slug)


# Read QuickBooks now, when the sync queued on connecting did not run or failed.
discovery_request = views.sync_now_view(
    provider=Provider.QUICKBOOKS,
    queued="Well is reading your QuickBooks company again.",
    back="onboarding:mapping",
)


@workspace_view()
@require_GET
def step_qonto(request):
    state = onboarding.wizard_state_get(workspace=request.workspace)
    return _render(request, "onboarding/qonto.html", "qonto", state)


@workspace_view()
@require_GET
def step_sync(request):
    state = onboarding.wizard_state_get(workspace=request.workspace)
    progress = onboarding.first_sync_progress_get(workspace=request.workspace, state=state)
    return _render(request, "onboarding/sync.html", "sync", state, progress=progress)


@workspace_view(Role.OWNER)
@require_POST
def sync_start(request):
    try:
        started = onboarding.first_sync_start(
            workspace=request.workspace, actor=Actor.user(request.user)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if started:
            messages.success(request, _("The first sync has started; you can leave and come back."))
    return redirect("onboarding:sync", workspace_slug=request.workspace.slug)


@workspace_view(Role.OWNER)
@require_POST
def sync_retry(request):
    """Queue again the parts of the first sync that stopped (the page shows why they did)."""
    try:
        onboarding.first_sync_retry(workspace=request.workspace, actor=Actor.user(request.user))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Well is trying the first sync again."))
    return redirect("onboarding:sync", workspace_slug=request.workspace.slug)


@workspace_view()
@require_GET
def sync_progress(request):
    """The live part of the first-sync page (htmx polls it until the sync is done)."""
    progress = onboarding.first_sync_progress_get(workspace=request.workspace)
    return render(
        request,
        "onboarding/_progress.html",
        {"progress": progress, "is_owner": request.membership.allows(Role.OWNER)},
    )
