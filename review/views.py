"""The accountant pages: parse the request, call one service or selector, render.

Every action is a plain POST form that redirects with a message; htmx (when present) swaps
the queue row in place instead. Object IDs are always looked up inside the URL's workspace
first, so another tenant's ID is a 404 whatever the method.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from connectors.onboarding import onboarding_redirect_due
from connectors.quickbooks.attachments import source_file_served
from review import charts, exports, services
from review.decisions import Kind, decision_check, decisions_check_bulk, decisions_check_rows
from review.forms import (
    AuditFilterForm,
    BulkApproveForm,
    EditForm,
    MemberRoleForm,
    OverrideForm,
    PinForm,
    QueueFilterForm,
    ThresholdForm,
    VendorRuleForm,
    WhatIfForm,
    WorkspaceLocaleForm,
)
from review.paging import page_number_parse, window_page
from review.selectors.audit import AuditFilters, audit_log, audit_verbs, record_audit_pack
from review.selectors.dashboard import dashboard_get
from review.selectors.qonto_entries import (
    EntryNotFound,
    qonto_entries_pick,
    qonto_entry_choice_get,
)
from review.selectors.queue import (
    QueueFilters,
    queue_reasons,
    records_for_bulk,
    refused_list,
    review_queue,
    waiting_for_payment_list,
)
from review.selectors.record_page import record_page
from review.selectors.records import (
    record_detail_get,
    record_file_get,
    record_ledger_accounts,
)
from review.selectors.whatif import decided_history, whatif_replay
from review.selectors.workspace import vendor_rules, vendors_for_rules, workspace_members
from review.words import isolated, record_name
from well import formats
from well.audit import Actor
from well.decorators import workspace_view
from well.models import Role
from well.services import (
    ThresholdError,
    membership_add,
    workspace_locale_update,
    workspace_thresholds_update,
)

PAGE_SIZE = 25
WHATIF_THRESHOLDS = [round(0.5 + 0.05 * i, 2) for i in range(11)]


# --- helpers: parsing only -----------------------------------------------------------------


def _record_or_404(request, record_id: int):
    record = record_detail_get(workspace=request.workspace, pk=record_id)
    if record is None:
        raise Http404(_("No such record."))
    return record


def _back(request, record):
    """Where to go after an action: a same-site `next`, else the record page."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return redirect(target)
    return redirect("review:record", workspace_slug=request.workspace.slug, record_id=record.pk)


def _errors_text(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return " ".join(f"{m}" for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(exc.messages)


def _answer(request, record, ok: bool):
    """htmx from the queue: the row, updated in place; otherwise redirect after POST."""
    if request.htmx and request.POST.get("from") == "queue":
        record.refresh_from_db(fields=["state"])
        return render(request, "review/_queue_row_done.html", {"record": record, "ok": ok})
    return _back(request, record)


def _actor(request):
    return {"actor": Actor.user(request.user), "membership": request.membership}


def _proposal_id(request) -> int | None:
    """The proposal the page showed when the person decided (stale ones are refused)."""
    value = request.POST.get("proposal", "")
    return int(value) if value.isdigit() else None


def _edit_form(request, record):
    """The corrections and the note, posted with whichever action the person chose."""
    initial = {
        "invoice_number": record.invoice_number,
        "due_date": record.due_date.isoformat() if record.due_date else "",
    }
    return EditForm(
        request.POST,
        initial=initial,
        accounts=record_ledger_accounts(workspace=request.workspace),
    )


def _label(record) -> str:
    return record_name(record)


# --- dashboard -----------------------------------------------------------------------------


@workspace_view()
@require_GET
def dashboard(request):
    if onboarding_redirect_due(workspace=request.workspace):  # a wizard left unfinished
        return redirect("onboarding:wizard", workspace_slug=request.workspace.slug)
    data = dashboard_get(workspace=request.workspace)
    workspace = request.workspace
    return render(
        request,
        "review/dashboard.html",
        {
            "data": data,
            "histogram_svg": charts.confidence_histogram_chart(
                data.histogram, auto=workspace.auto_threshold, review=workspace.review_threshold
            ),
            "volume_svg": charts.volume_chart(data.volume),
            "reviewers_svg": charts.horizontal_bars(
                data.reviewers, title=_("Decisions per reviewer")
            ),
        },
    )


# --- queue and refused ---------------------------------------------------------------------


def _list_page(request, select, template: str, extra: dict | None = None):
    """A filtered list page: `select(workspace=, filters=)` is the list's selector."""
    form = QueueFilterForm(request.GET or None)
    filters = form.filters() if request.GET else QueueFilters()
    query = select(workspace=request.workspace, filters=filters)
    page = window_page(query, number=page_number_parse(request.GET.get("page")), per_page=PAGE_SIZE)
    params = request.GET.copy()
    params.pop("page", None)
    extra = extra or {}
    context = {"page": page, "params": params.urlencode(), "form": form, **extra}
    context["can_act"] = request.membership.allows(Role.ACCOUNTANT)
    if context["can_act"] and extra.get("check"):
        # A row offers an action only where the decision service would take it.
        verdicts = decisions_check_rows(proposals=page.object_list, kind=extra["check"])
        for proposal in page.object_list:
            proposal.verdict = verdicts.get(proposal.record_id)
    return render(request, template, context)


@workspace_view()
@require_GET
def queue(request):
    return _list_page(
        request,
        review_queue,
        "review/queue.html",
        {"reasons": queue_reasons(workspace=request.workspace), "check": Kind.APPROVE},
    )


@workspace_view()
@require_GET
def refused(request):
    return _list_page(request, refused_list, "review/refused.html")


@workspace_view()
@require_GET
def waiting(request):
    """Purchases waiting for their bank payment in Qonto: nothing to decide until it comes."""
    return _list_page(request, waiting_for_payment_list, "review/waiting.html")


@workspace_view(Role.ACCOUNTANT)
def bulk_approve(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = BulkApproveForm(request.POST)
    back = reverse("review:queue", kwargs={"workspace_slug": request.workspace.slug})
    if not form.is_valid():
        messages.error(request, _("Select the records to approve first."))
        return redirect(back)
    records = records_for_bulk(workspace=request.workspace, pks=form.cleaned_data["records"])
    if not records:
        messages.warning(request, _("None of the selected records is still in review."))
        return redirect(back)
    if not form.cleaned_data["confirm"]:
        # Each row says what will happen to it (or why it will not be approved) before it does.
        rows = [
            {"record": record, "proposal": proposal, "verdict": verdict}
            for record, proposal, verdict in decisions_check_bulk(records=records)
        ]
        return render(
            request,
            "review/bulk_confirm.html",
            {
                "rows": rows,
                "records": records,
                "approvable": sum(1 for row in rows if row["verdict"]),
                "form": form,
            },
        )
    proposal_ids = {}
    for value in request.POST.getlist("proposal"):
        record_pk, _sep, proposal_pk = value.partition(":")
        if record_pk.isdigit() and proposal_pk.isdigit():
            proposal_ids[int(record_pk)] = int(proposal_pk)
    result = services.records_bulk_approve(
        records=records,
        note=form.cleaned_data["note"],
        proposal_ids=proposal_ids,
        **_actor(request),
    )
    if result.decided:
        messages.success(
            request,
            ngettext(
                "%(n)d record approved; it is being posted to Qonto.",
                "%(n)d records approved; they are being posted to Qonto.",
                len(result.decided),
            )
            % {"n": len(result.decided)},
        )
    named = {record.pk: record for record in records}
    for pk, why in result.skipped.items():
        record = named[pk]
        amount = f"{record.total_amount or ''} {record.currency}".strip()
        who = f"{record.supplier_name}, {amount}" if record.supplier_name else amount
        messages.warning(
            request,
            isolated(
                _("%(record)s (%(who)s) was not approved: %(why)s"),
                record=_label(record),
                who=who,
                why=why,
            ),
        )
    return redirect(back)


# --- one record ----------------------------------------------------------------------------


def _entry_picker(request, record):
    """The Qonto entry picker (pin, override): searched by `entry_q`, the record's amount by
    default; an empty search lists every entry."""
    query = request.GET.get("entry_q")
    if query is None and record.total_amount is not None:
        query = f"{abs(record.total_amount):.2f}"
    return qonto_entries_pick(
        workspace=request.workspace,
        query=query or "",
        page=page_number_parse(request.GET.get("entry_page")),
    )


def _record_page(request, record_id: int, *, edit_form=None, override_form=None, status=200):
    page = record_page(workspace=request.workspace, pk=record_id)
    if page is None:
        raise Http404(_("No such record."))
    initial = {
        "invoice_number": page.record.invoice_number,
        "due_date": page.record.due_date.isoformat() if page.record.due_date else "",
    }
    can_act = request.membership.allows(Role.ACCOUNTANT)
    verdicts = {}
    if can_act:
        # The page offers an action only where the decision service would take it.
        record, proposal = page.record, page.proposal
        for kind in (Kind.APPROVE, Kind.REJECT, Kind.UPLOAD_AS_NEW):
            verdicts[kind] = decision_check(record=record, kind=kind, proposal=proposal)
        for candidate in page.candidates:
            candidate.verdict = (
                decision_check(
                    record=record, kind=Kind.PIN, entry=candidate.target, proposal=proposal
                )
                if candidate.target
                else None
            )
    return render(
        request,
        "review/record.html",
        {
            "p": page,
            "record": page.record,
            "edit_form": edit_form or EditForm(initial=initial, accounts=page.accounts),
            # Its own ids: the approve form has a note field too (one id="id_note" per page).
            "override_form": override_form or OverrideForm(auto_id="override_%s"),
            "picker": _entry_picker(request, page.record),
            "can_act": can_act,
            "v": verdicts,
            "can_decide": any(verdicts.values()),
            "open_states": services.OPEN,
            "reopenable": services.REOPENABLE,
        },
        status=status,
    )


@workspace_view()
def record(request, record_id: int):
    if request.method not in ("GET", "HEAD"):
        _record_or_404(request, record_id)  # another tenant's ID is a 404 whatever the method
        return HttpResponseNotAllowed(["GET"])
    return _record_page(request, record_id)


@workspace_view(Role.ACCOUNTANT)
def record_approve(request, record_id: int):
    record = _record_or_404(request, record_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return _decide_with_form(
        request,
        record,
        services.record_approve,
        isolated(_("%(record)s approved; it is being posted to Qonto."), record=_label(record)),
    )


def _decide_with_form(request, record, service, done: str, **extra):
    """A decision posted with the record page's one form: its note and corrections are kept
    whatever the action (approve, reject, upload as new, pin)."""
    form = _edit_form(request, record)
    if not form.is_valid():
        messages.error(request, _("Nothing was decided: correct the highlighted fields."))
        return _record_page(request, record.pk, edit_form=form, status=400)
    try:
        service(
            record=record,
            note=form.cleaned_data["note"],
            edits=form.edits() or None,
            proposal_id=_proposal_id(request),
            **extra,
            **_actor(request),
        )
    except ValidationError as exc:
        # Keep what the person typed; show each field's error next to it.
        for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
            form.add_error(None if field not in form.fields else field, errors)
        messages.error(request, _("Nothing was decided: correct the highlighted fields."))
        return _record_page(request, record.pk, edit_form=form, status=400)
    except services.DecisionError as exc:
        messages.error(request, str(exc))
        return _answer(request, record, False)
    messages.success(request, done)
    return _answer(request, record, True)


@workspace_view(Role.ACCOUNTANT)
def record_reject(request, record_id: int):
    record = _record_or_404(request, record_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return _decide_with_form(
        request,
        record,
        services.record_reject,
        isolated(_("%(record)s rejected; nothing is posted."), record=_label(record)),
    )


@workspace_view(Role.ACCOUNTANT)
def record_pin(request, record_id: int):
    record = _record_or_404(request, record_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = PinForm(request.POST)
    try:
        if not form.is_valid():
            raise EntryNotFound(_("Choose the Qonto entry to pin in the list."))
        entry = qonto_entry_choice_get(
            workspace=request.workspace, key=form.cleaned_data["entry"]
        ).entry
    except EntryNotFound as exc:
        messages.error(request, str(exc))
        return _back(request, record)
    return _decide_with_form(
        request,
        record,
        services.record_pin,
        isolated(
            _("%(record)s pinned to the Qonto %(kind)s %(id)s; it is being posted."),
            record=_label(record),
            kind=entry.get_kind_display().lower(),
            id=entry.qonto_id,
        ),
        entry=entry,
    )


@workspace_view(Role.ACCOUNTANT)
def record_upload_as_new(request, record_id: int):
    record = _record_or_404(request, record_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return _decide_with_form(
        request,
        record,
        services.record_upload_as_new,
        isolated(
            _("%(record)s will be uploaded to Qonto as a new supplier invoice."),
            record=_label(record),
        ),
    )


@workspace_view(Role.ACCOUNTANT)
def record_override(request, record_id: int):
    record = _record_or_404(request, record_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = OverrideForm(request.POST, auto_id="override_%s")
    if not form.is_valid():
        messages.error(request, _("Nothing was overridden: a note is required."))
        return _record_page(request, record_id, override_form=form, status=400)
    entry = None
    if form.cleaned_data["outcome"] == "link":
        try:
            entry = qonto_entry_choice_get(
                workspace=request.workspace, key=form.cleaned_data["entry"]
            ).entry
        except EntryNotFound as exc:
            form.add_error(None, str(exc))
            return _record_page(request, record_id, override_form=form, status=400)
    try:
        services.record_override(
            record=record,
            note=form.cleaned_data["note"],
            outcome=form.cleaned_data["outcome"],
            entry=entry,
            proposal_id=_proposal_id(request),
            **_actor(request),
        )
    except ValidationError as exc:
        form.add_error(None, _errors_text(exc))
        return _record_page(request, record_id, override_form=form, status=400)
    except services.DecisionError as exc:
        messages.error(request, str(exc))
        return _back(request, record)
    messages.success(
        request, isolated(_("%(record)s: your override is recorded."), record=_label(record))
    )
    return _back(request, record)


@workspace_view(Role.ACCOUNTANT)
def record_postings_retry(request, record_id: int):
    record = _record_or_404(request, record_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        retried = services.record_postings_retry(record=record, **_actor(request))
    except services.DecisionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            isolated(
                ngettext(
                    "%(record)s: %(n)d failed posting sent to Qonto again, under the same "
                    "idempotency key (never twice).",
                    "%(record)s: %(n)d failed postings sent to Qonto again, under the same "
                    "idempotency key (never twice).",
                    retried,
                ),
                record=_label(record),
                n=retried,
            ),
        )
    return _back(request, record)


@workspace_view()
@xframe_options_sameorigin
def record_file(request, record_id: int, file_id: int):
    """The QuickBooks attachment as what validation found it to be, under a sandboxing CSP.

    Only a PDF that passes validation again is shown inline (the preview frame); an image is a
    download of its type and anything else a download of opaque bytes. The provider's
    Content-Type is never used.
    """
    found = record_file_get(workspace=request.workspace, record_pk=record_id, file_pk=file_id)
    if found is None:
        raise Http404(_("No such file."))
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    served = source_file_served(source=found)
    if served is None:
        raise Http404("The file is no longer in storage; sync again.")
    if not served.inline and request.headers.get("Sec-Fetch-Dest") in ("iframe", "frame"):
        # A frame shows validated PDFs only; anything else would start a download by itself.
        raise Http404("This attachment is not a PDF Well can show; download it instead.")
    response = HttpResponse(served.content, content_type=served.content_type)
    response["Content-Disposition"] = content_disposition_header(
        not served.inline, served.filename or "document"
    )
    response["X-Content-Type-Options"] = "nosniff"
    # `sandbox`: even opened on its own, the file is an opaque origin that runs no script,
    # submits no form and opens no window (the preview iframe itself cannot carry the
    # attribute: Chromium then refuses to show any PDF, see docs/security.md).
    response["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; object-src 'self'; style-src 'unsafe-inline'; "
        "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
    )
    response["Cache-Control"] = "private, max-age=300"
    response._csp_exempt = True  # our header above, not the site's
    return response


# --- audit ---------------------------------------------------------------------------------


@workspace_view()
def record_audit_pack_download(request, record_id: int):
    record = _record_or_404(request, record_id)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET"])
    pack = record_audit_pack(record=record)
    response = HttpResponse(
        json.dumps(pack, cls=DjangoJSONEncoder, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{record.entity_type.lower()}-{record.qbo_id}.json"'
    )
    return response


@workspace_view()
@require_GET
def audit(request):
    form = AuditFilterForm(request.GET or None)
    query = audit_log(
        workspace=request.workspace,
        filters=form.filters() if request.GET else AuditFilters(),
    )
    page = window_page(query, number=page_number_parse(request.GET.get("page")), per_page=50)
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "review/audit.html",
        {
            "form": form,
            "page": page,
            "params": params.urlencode(),
            "verbs": audit_verbs(workspace=request.workspace),
            "audit_names": exports.event_record_names(list(page.object_list)),
        },
    )


def _audit_events(request):
    form = AuditFilterForm(request.GET or None)
    query = audit_log(
        workspace=request.workspace,
        filters=form.filters() if request.GET else AuditFilters(),
    )
    return query.iterator(chunk_size=2000)


@workspace_view()
@require_GET
def audit_csv(request):
    """The trail as CSV for Excel: BOM, ";" in French, formula-looking cells neutralised."""
    response = StreamingHttpResponse(
        exports.audit_csv_lines(_audit_events(request)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="audit-{request.workspace.slug}.csv"'
    return response


@workspace_view()
@require_GET
def audit_xlsx(request):
    """The same rows as an Excel workbook, every text stored as text."""
    response = HttpResponse(
        exports.audit_xlsx(_audit_events(request)),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="audit-{request.workspace.slug}.xlsx"'
    return response


# --- settings ------------------------------------------------------------------------------


def _settings_page(request, *, threshold_form=None, rule_form=None, locale_form=None, status=200):
    workspace = request.workspace
    whatif = WhatIfForm(request.GET or None)
    tried = whatif.cleaned_data.get("threshold") if whatif.is_valid() else None
    thresholds = sorted({*WHATIF_THRESHOLDS, workspace.auto_threshold, *([tried] if tried else [])})
    points = whatif_replay(cases=decided_history(workspace=workspace), thresholds=thresholds)
    return render(
        request,
        "review/settings.html",
        {
            "threshold_form": threshold_form
            or ThresholdForm(
                initial={
                    "review_threshold": workspace.review_threshold,
                    "auto_threshold": workspace.auto_threshold,
                }
            ),
            "whatif_form": whatif,
            "points": points,
            "tried": tried,
            "whatif_svg": charts.whatif_chart(
                points, current=workspace.auto_threshold, chosen=tried
            ),
            "rules": vendor_rules(workspace=workspace),
            "rule_form": rule_form
            or VendorRuleForm(vendors=vendors_for_rules(workspace=workspace)),
            "members": workspace_members(workspace=workspace),
            "roles": Role.choices,
            "is_owner": request.membership.allows(Role.OWNER),
            "locale_form": locale_form
            or WorkspaceLocaleForm(
                initial={"language": workspace.language, "time_zone": workspace.time_zone}
            ),
        },
        status=status,
    )


@workspace_view()
@require_GET
def settings(request):
    return _settings_page(request)


@workspace_view(Role.OWNER)
def thresholds_update(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = ThresholdForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The thresholds were not changed: see below."))
        return _settings_page(request, threshold_form=form, status=400)
    try:
        workspace_thresholds_update(
            workspace=request.workspace,
            auto_threshold=form.cleaned_data["auto_threshold"],
            review_threshold=form.cleaned_data["review_threshold"],
            actor=Actor.user(request.user),
        )
    except ThresholdError as exc:
        form.add_error(None, str(exc))
        return _settings_page(request, threshold_form=form, status=400)
    messages.success(
        request,
        _(
            "Thresholds saved: review from %(review)s, auto-post from %(auto)s. "
            "They apply to the next proposals."
        )
        % {
            "review": formats.percent(form.cleaned_data["review_threshold"]),
            "auto": formats.percent(form.cleaned_data["auto_threshold"]),
        },
    )
    return redirect("review:settings", workspace_slug=request.workspace.slug)


@workspace_view(Role.OWNER)
def workspace_locale(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = WorkspaceLocaleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The language and time zone were not changed: see below."))
        return _settings_page(request, locale_form=form, status=400)
    workspace_locale_update(
        workspace=request.workspace,
        language=form.cleaned_data["language"],
        time_zone=form.cleaned_data["time_zone"],
        actor=Actor.user(request.user),
    )
    messages.success(request, _("Language and time zone saved."))
    return redirect("review:settings", workspace_slug=request.workspace.slug)


@workspace_view(Role.OWNER)
def vendor_rule_save(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = VendorRuleForm(request.POST, vendors=vendors_for_rules(workspace=request.workspace))
    if not form.is_valid():
        messages.error(request, _("The vendor rule was not saved: see below."))
        return _settings_page(request, rule_form=form, status=400)
    vendor = form.cleaned_data["vendor"]
    services.vendor_rule_set(
        workspace=request.workspace,
        vendor_qbo_id=vendor,
        vendor_name=form.vendor_names[vendor],
        auto_threshold=form.cleaned_data["auto_threshold"],
        never_auto=form.cleaned_data["never_auto"],
        note=form.cleaned_data["note"],
        actor=Actor.user(request.user),
    )
    messages.success(
        request, isolated(_("Rule saved for %(vendor)s."), vendor=form.vendor_names[vendor])
    )
    return redirect("review:settings", workspace_slug=request.workspace.slug)


@workspace_view(Role.OWNER)
def member_role(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = MemberRoleForm(request.POST)
    member = None
    if form.is_valid():
        member = (
            workspace_members(workspace=request.workspace)
            .filter(Q(pk=form.cleaned_data["member"]))
            .first()
        )
    if member is None:
        messages.error(request, _("Choose a member of this workspace."))
    elif member.user_id == request.user.pk:
        messages.error(request, _("You cannot change your own role."))
    else:
        membership_add(
            workspace=request.workspace,
            user=member.user,
            role=form.cleaned_data["role"],
            actor=Actor.user(request.user),
        )
        messages.success(
            request,
            isolated(
                _("%(email)s is now %(role)s."),
                email=member.user.email,
                role=Role(form.cleaned_data["role"]).label,
            ),
        )
    return redirect("review:settings", workspace_slug=request.workspace.slug)
