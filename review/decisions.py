"""The one decision service: every way of deciding a record goes through `decision_take`.

Automatic approval, approve (and link), bulk approve, pin, upload as new, reject and override,
from the pages, the partner API and the proposal hand-over, all call it; `decision_check` answers
the same question without writing, so a page offers a button only where the service would
accept it. Each promise is held once, here (docs/review.md, "The decision service"):

- the role: viewers, strangers and other workspaces' members cannot decide;
- the record's state allows the decision (and the lifecycle allows the move:
  connectors/lifecycle.py);
- the decision is about the proposal the person saw: a proposal replaced since the page was
  rendered, or one made for an older QuickBooks version, is refused with the reason;
- a Qonto entry is the target of at most one live link (checked here with the record that holds
  it, and held by the database: connectors.QontoLink);
- the currency and tax-ID gates of a link;
- the thresholds in force for automatic approval (the vendor rule's, if any);
- what the outcome means in Qonto (connectors/qonto/triggers.posting_plan): a purchase whose bank
  payment Qonto has not got yet waits for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, TextChoices
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from connectors.lifecycle import record_transition, transition_is_legal
from connectors.qonto.errors import NotPostable, WaitingForPayment
from connectors.qonto.links import entry_holders, record_label
from connectors.qonto.models import Posting, PostingState, QontoEntry, QontoLink
from connectors.qonto.posting_states import posting_withdraw
from connectors.qonto.triggers import posting_plan, record_outcome_post
from connectors.quickbooks.models import RecordState, SourceRecord
from matching import services as matching
from matching.core import CREATE, LINK, LabelledDecision
from matching.models import Band, Proposal, VendorRule
from review.models import Decision
from well.audit import Actor
from well.models import ActorType, Membership, Role

S = RecordState
SYSTEM = Actor.system("Well (automatic approval)")
# The fit that learns from the reviewers' answers (review.services.workspace_model_refit),
# queued by its dotted path: review.tasks imports this module.
REFIT_TASK = "review.tasks.workspace_model_fit_task"


class Kind(TextChoices):
    """Every decision a path may ask for (the stored ones are review.models.DecisionKind)."""

    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    PIN = "pin", "Pin"
    UPLOAD_AS_NEW = "upload_as_new", "Upload as new"
    OVERRIDE = "override", "Override"
    AUTO_APPROVE = "auto_approve", "Automatic approval"


# Where a person may act without overriding anything automatic.
OPEN = frozenset({S.IN_REVIEW, S.REFUSED, S.PROPOSED, S.WAITING_PAYMENT})
REOPENABLE = OPEN | {S.REJECTED, S.FAILED}
FROM_STATES: dict[str, frozenset[str]] = {
    Kind.APPROVE: OPEN,
    Kind.REJECT: OPEN,
    Kind.PIN: REOPENABLE,
    Kind.UPLOAD_AS_NEW: REOPENABLE,
    Kind.OVERRIDE: frozenset(RecordState.values),
    Kind.AUTO_APPROVE: frozenset({S.PROPOSED}),
}
OVERRIDE_OUTCOMES = ("reject", LINK, CREATE)
EDITABLE_FIELDS = ("ledger_account", "invoice_number", "due_date")


class DecisionError(ValueError):
    """The decision cannot be taken; the message says why (the same words the page shows)."""


@dataclass(frozen=True)
class Verdict:
    """The service's answer: may this decision be taken now, and what would it do."""

    kind: str
    allowed: bool
    reason: str = ""  # why not, in words
    outcome: str = ""  # what it does, in words ("Link to Qonto supplier invoice ...")
    waiting_for_payment: bool = False

    def __bool__(self) -> bool:
        return self.allowed


@dataclass
class BulkResult:
    decided: list[Decision] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # record pk -> why


# --- the checks (no writes) -----------------------------------------------------------------


def _check_role(*, actor: Actor, membership: Membership | None, record: SourceRecord) -> None:
    """Viewers, strangers and other workspaces' members cannot act.

    A person acts through their membership; an API key (authenticated for its workspace by the
    API layer) or the system may pass no membership.
    """
    if membership is None:
        if actor.type == ActorType.USER:
            raise PermissionDenied("A person acts through their membership of the workspace.")
        return
    if membership.workspace_id != record.workspace_id:
        raise PermissionDenied("This record belongs to another workspace.")
    if actor.type == ActorType.USER and str(membership.user_id) != actor.id:
        raise PermissionDenied("The membership is not the acting person's.")
    if not membership.allows(Role.ACCOUNTANT):
        raise PermissionDenied("Viewers can look but not decide.")


def _tax_id(value: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", (value or "").upper())


def _same_tax_id(ours: str, theirs: str) -> bool:
    """Two tax IDs that may be the same: QuickBooks masks all but the last four characters
    ("XXXXXXX0704"), and a VAT number may carry its country prefix ("GB543820704")."""
    ours, theirs = ours.lstrip("X"), theirs.lstrip("X")
    if not ours or not theirs:
        return True
    return ours.endswith(theirs) or theirs.endswith(ours)


def link_gate(*, record: SourceRecord, entry: QontoEntry) -> str:
    """Why this record may not be linked to this entry (currency, tax ID), or ""."""
    theirs = {c for c in (entry.currency, entry.local_currency) if c}
    if record.currency and theirs and record.currency not in theirs:
        return _(
            "The Qonto entry is in %(theirs)s and the record in %(ours)s: they are not the same "
            "document."
        ) % {"theirs": "/".join(sorted(theirs)), "ours": record.currency}
    ours, vat = _tax_id(record.supplier_tax_id), _tax_id(entry.vat_number)
    if ours and vat and not _same_tax_id(ours, vat):
        return _(
            "The supplier's tax ID (%(ours)s) is not the Qonto entry's VAT number (%(vat)s)."
        ) % {"ours": record.supplier_tax_id, "vat": entry.vat_number}
    return ""


def _state_reason(record: SourceRecord, kind: str) -> str:
    return _("This record is %(state)s; it cannot be %(what)s now.") % {
        "state": record.get_state_display().lower(),
        "what": {
            Kind.APPROVE: _("approved"),
            Kind.REJECT: _("rejected"),
            Kind.PIN: _("pinned"),
            Kind.UPLOAD_AS_NEW: _("uploaded as new"),
            Kind.OVERRIDE: _("overridden"),
            Kind.AUTO_APPROVE: _("approved automatically"),
        }[kind],
    }


def _auto_reason(record: SourceRecord, proposal: Proposal) -> str:
    """Why the thresholds in force now do not let this proposal be approved automatically."""
    if proposal.band != Band.AUTO or proposal.gates_failed or proposal.changed_after_posting:
        return _("The proposal was not in the automatic band.")
    rule = (
        VendorRule.objects.for_workspace(record.workspace_id)
        .filter(vendor_qbo_id=proposal.vendor_id)
        .first()
        if proposal.vendor_id
        else None
    )
    if rule is not None and rule.never_auto:
        return _("not auto-posted: a vendor rule says never auto-post")
    auto, _review = matching.thresholds_for(workspace=record.workspace, rule=rule)
    if proposal.confidence < auto:
        return _("not auto-posted: confidence %(c).2f is below %(t).2f") % {
            "c": proposal.confidence,
            "t": auto,
        }
    return ""


@dataclass
class _Asked:
    kind: str
    entry: QontoEntry | None = None
    proposal_id: int | None = None
    outcome: str = ""  # override: reject, link or create


def _right_answer(asked: _Asked, proposal: Proposal | None) -> tuple[str, QontoEntry | None]:
    """The action the decision says was right (what the model learns from, what is posted)."""
    kind = asked.kind
    if kind in (Kind.APPROVE, Kind.AUTO_APPROVE):
        return (proposal.action, proposal.target) if proposal else ("", None)
    if kind == Kind.PIN:
        return LINK, asked.entry
    if kind == Kind.UPLOAD_AS_NEW:
        return CREATE, None
    if kind == Kind.OVERRIDE and asked.outcome in (LINK, CREATE):
        return asked.outcome, asked.entry if asked.outcome == LINK else None
    # A rejection (or an override to reject) says the other action was right.
    if proposal is None:
        return "", None
    return (CREATE if proposal.action == LINK else LINK), None


def _posts(asked: _Asked) -> bool:
    if asked.kind == Kind.OVERRIDE:
        return asked.outcome in (LINK, CREATE)
    return asked.kind != Kind.REJECT


def _reached_qonto(record: SourceRecord) -> bool:
    """Something of this record is in Qonto, or may be: an override can only flag it."""
    if record.state not in (S.POSTING, S.POSTED, S.AUTO_APPROVED, S.FAILED):
        return False
    return (
        Posting.objects.for_workspace(record.workspace_id)
        .filter(record=record)
        .exclude(state=PostingState.FAILED)
        .exclude(state=PostingState.READY, sent_at__isnull=True)
        .exists()
    )


def _verdict(
    record: SourceRecord,
    proposal: Proposal | None,
    asked: _Asked,
    *,
    holders: dict[str, SourceRecord] | None = None,
    plan: bool = True,
) -> Verdict:
    """Every promise, in order; the first one broken is the reason. Reads, never writes."""
    kind = asked.kind

    def no(reason: str, waiting: bool = False) -> Verdict:
        return Verdict(kind, False, reason, waiting_for_payment=waiting)

    if record.state not in FROM_STATES[kind]:
        return no(_state_reason(record, kind))
    if record.deleted and _posts(asked):
        return no(_("This record was deleted in QuickBooks: nothing is posted."))
    if asked.proposal_id is not None and (proposal is None or proposal.pk != asked.proposal_id):
        return no(
            _(
                "This record changed since you opened it (a new proposal was made): look at it "
                "again and decide."
            )
        )
    if kind in (Kind.APPROVE, Kind.AUTO_APPROVE):
        if proposal is None:
            return no(_("This record has no proposal to approve yet."))
        if proposal.record_version != record.sync_token:
            return no(
                _(
                    "QuickBooks sent a new version of this record since this proposal: it is "
                    "being proposed again."
                )
            )
        if proposal.action == LINK and proposal.target_id is None:
            return no(_("The proposed Qonto entry no longer exists; pin another one."))
    if kind == Kind.AUTO_APPROVE:
        why = _auto_reason(record, proposal)
        if why:
            return no(why)
    if kind == Kind.OVERRIDE and asked.outcome not in OVERRIDE_OUTCOMES:
        return no(_("Choose reject, link or create."))
    action, target = _right_answer(asked, proposal)
    if not _posts(asked):
        return Verdict(kind, True, outcome=_("Reject: nothing is posted to Qonto."))
    if action == LINK and target is not None:
        if target.workspace_id != record.workspace_id:
            return no(_("This Qonto entry belongs to another workspace."))
        if holders is None:
            holders = entry_holders(
                workspace=record.workspace_id,
                qonto_ids=[target.qonto_id],
                exclude_record_id=record.pk,
            )
        holder = holders.get(target.qonto_id)
        if holder is not None and holder.pk != record.pk:
            return no(
                _("This Qonto entry is already linked to %(record)s.")
                % {"record": record_label(holder)}
            )
        gate = link_gate(record=record, entry=target)
        if gate:
            return no(gate)
    if kind == Kind.OVERRIDE and _reached_qonto(record):
        return Verdict(
            kind,
            True,
            outcome=_("Recorded and flagged: already sent to Qonto, it is not posted again."),
        )
    if not plan:
        if action == LINK and target is not None:
            return Verdict(kind, True, outcome=_("Link to the proposed Qonto entry"))
        return Verdict(kind, True, outcome=_("Upload to Qonto as new"))
    try:
        planned = posting_plan(record=record, action=action, target=target)
    except WaitingForPayment as exc:
        return no(str(exc), waiting=True)
    except NotPostable as exc:
        return no(str(exc))
    return Verdict(kind, True, outcome=planned.words())


def _current(record: SourceRecord) -> Proposal | None:
    return (
        Proposal.objects.for_workspace(record.workspace_id)
        .filter(record=record, is_current=True)
        .select_related("target", "record")
        .first()
    )


def decision_check(
    *,
    record: SourceRecord,
    kind: str,
    entry: QontoEntry | None = None,
    proposal_id: int | None = None,
    outcome: str = "",
    proposal: Proposal | bool | None = False,
) -> Verdict:
    """Would `decision_take` accept this decision now? The reason when not; what it does if so.

    Pass the record's current `proposal` when the page has it already (None for none).
    """
    if proposal is False:
        proposal = _current(record)
    return _verdict(
        record, proposal, _Asked(kind, entry=entry, proposal_id=proposal_id, outcome=outcome)
    )


def decisions_check_rows(
    *, proposals: Iterable[Proposal], kind: str = Kind.APPROVE
) -> dict[int, Verdict]:
    """{record pk: verdict} for list rows (current proposals with their records and targets).

    Who holds the proposed entries is read once for the whole page; the posting plan is worded
    from the proposal (a list shows no more than that), so a page of rows takes two queries.
    """
    proposals = list(proposals)
    if not proposals:
        return {}
    holders_all: dict[str, list[SourceRecord]] = {}
    ids = [p.target.qonto_id for p in proposals if p.target_id]
    workspace_id = proposals[0].workspace_id
    if ids:
        for qonto_id, holder in _holders_by_entry(workspace_id, ids).items():
            holders_all[qonto_id] = holder
    verdicts = {}
    for proposal in proposals:
        record = proposal.record
        others = {
            qonto_id: next((r for r in rows if r.pk != record.pk), None)
            for qonto_id, rows in holders_all.items()
        }
        holders = {k: v for k, v in others.items() if v is not None}
        verdicts[record.pk] = _verdict(record, proposal, _Asked(kind), holders=holders, plan=False)
    return verdicts


def decisions_check_bulk(
    *, records: Iterable[SourceRecord]
) -> list[tuple[SourceRecord, Any, Verdict]]:
    """(record, current proposal, verdict) of a bulk approval, in the order it approves them.

    A Qonto entry proposed to several selected records goes to the first one only: the others
    say so before anything happens, as `records_bulk_approve` would refuse them.
    """
    claimed: dict[str, SourceRecord] = {}
    rows = []
    for record in sorted(records, key=lambda r: r.pk):
        proposal = _current(record)
        verdict = decision_check(record=record, kind=Kind.APPROVE, proposal=proposal)
        target = proposal.target if proposal is not None and proposal.action == LINK else None
        if verdict and target is not None:
            first = claimed.setdefault(target.qonto_id, record)
            if first.pk != record.pk:
                verdict = Verdict(
                    Kind.APPROVE,
                    False,
                    _(
                        "This Qonto entry is already linked to %(record)s (approved first in "
                        "this selection)."
                    )
                    % {"record": record_label(first)},
                )
        rows.append((record, proposal, verdict))
    return rows


def _holders_by_entry(workspace_id: int, qonto_ids: list[str]) -> dict[str, list[SourceRecord]]:
    """Every record holding each of these entries (a list row excludes itself)."""
    found: dict[str, list[SourceRecord]] = {}
    links = (
        QontoLink.objects.for_workspace(workspace_id)
        .filter(qonto_id__in=qonto_ids, live=True)
        .select_related("record")
    )
    for row in links:
        found.setdefault(row.qonto_id, []).append(row.record)
    postings = (
        Posting.objects.for_workspace(workspace_id)
        .filter(qonto_id__in=qonto_ids)
        .exclude(state=PostingState.FAILED)
        .exclude(action__in=["mark_paid", "unmark_paid"])
        .select_related("record")
    )
    for row in postings:
        rows = found.setdefault(row.qonto_id, [])
        if all(r.pk != row.record_id for r in rows):
            rows.append(row.record)
    return found


# --- edits (corrections of mapped fields, kept with whatever action is taken) ----------------


def record_edits_clean(*, record: SourceRecord, edits: dict[str, Any]) -> dict[str, Any]:
    """Validate edits of mapped fields; raises ValidationError per field, changing nothing."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    unknown = set(edits) - set(EDITABLE_FIELDS)
    if unknown:
        errors["__all__"] = [f"These fields cannot be edited: {', '.join(sorted(unknown))}."]
    if "invoice_number" in edits:
        number = str(edits["invoice_number"] or "").strip()
        if len(number) > 100:
            errors["invoice_number"] = ["An invoice number has at most 100 characters."]
        clean["invoice_number"] = number
    if "due_date" in edits:
        value = edits["due_date"]
        if value in (None, ""):
            clean["due_date"] = None
        elif isinstance(value, date):
            clean["due_date"] = value
        else:
            try:
                clean["due_date"] = date.fromisoformat(str(value).strip())
            except ValueError:
                errors["due_date"] = ["Give the due date as YYYY-MM-DD."]
        due = clean.get("due_date")
        if due and record.issue_date and due < record.issue_date:
            errors["due_date"] = ["The due date cannot be before the invoice date."]
    if "ledger_account" in edits:
        wanted = str(edits["ledger_account"] or "").strip()
        account = None
        if wanted:
            account = (
                SourceRecord.objects.for_workspace(record.workspace_id)
                .filter(entity_type="Account", deleted=False)
                .filter(
                    Q(qbo_id=wanted) | Q(payload__AcctNum=wanted) | Q(payload__Name__iexact=wanted)
                )
                .first()
            )
        if account is None:
            errors["ledger_account"] = ["Choose an account of this QuickBooks company."]
        else:
            clean["ledger_account"] = {
                "id": account.qbo_id,
                "label": account.payload.get("AcctNum") or account.payload.get("Name") or "",
            }
    if errors:
        raise ValidationError(errors)
    return clean


def _apply_edits(
    record: SourceRecord, proposal: Proposal | None, clean: dict, actor: Actor
) -> dict:
    """Write validated edits; returns {field: [before, after]} for the audit trail."""
    changes: dict[str, list] = {}
    fields = []
    for name in ("invoice_number", "due_date"):
        if name in clean and getattr(record, name) != clean[name]:
            changes[name] = [getattr(record, name), clean[name]]
            setattr(record, name, clean[name])
            fields.append(name)
    if fields:
        record.save(update_fields=fields)
    if "ledger_account" in clean and proposal is not None:
        party = dict(proposal.counterparty or {})
        before = party.get("ledger_account")
        party["ledger_account"] = clean["ledger_account"]["label"] or clean["ledger_account"]["id"]
        provenance = dict(party.get("provenance") or {})
        provenance["ledger_account"] = f"set by {actor.label}"
        party["provenance"] = provenance
        proposal.counterparty = party
        proposal.save(update_fields=["counterparty"])
        changes["ledger_account"] = [before, party["ledger_account"]]
    return changes


# --- the one writer -------------------------------------------------------------------------


def _locked(record: SourceRecord) -> SourceRecord:
    """The record re-read under a row lock: two reviewers never decide it twice."""
    return (
        SourceRecord.objects.for_workspace(record.workspace_id)
        .select_for_update()
        .get(pk=record.pk)
    )


def _withdraw_unsent(record: SourceRecord, actor: Actor, note: str) -> None:
    """Withdraw the record's postings not yet sent (an override came before the worker)."""
    postings = list(
        Posting.objects.for_workspace(record.workspace_id)
        .select_for_update()
        .filter(record=record, state=PostingState.READY, sent_at__isnull=True)
    )
    for posting in postings:
        posting_withdraw(
            posting=posting, actor=actor, reason=f"overridden by {actor.label}: {note}"
        )


def _state_after(asked: _Asked, reached: bool) -> str:
    if asked.kind == Kind.AUTO_APPROVE:
        return S.AUTO_APPROVED
    if asked.kind == Kind.OVERRIDE and reached:
        return S.IN_REVIEW  # flagged: a person fixes Qonto by hand
    return S.APPROVED if _posts(asked) else S.REJECTED


def _proposed_facts(proposal: Proposal | None) -> dict | None:
    if proposal is None:
        return None
    return {
        "action": proposal.action,
        "target": proposal.target.qonto_id if proposal.target else None,
        "confidence": proposal.confidence,
        "band": proposal.band,
        "thresholds": {"auto": proposal.auto_threshold, "review": proposal.review_threshold},
    }


def decision_take(
    *,
    record: SourceRecord,
    kind: str,
    actor: Actor,
    membership: Membership | None = None,
    entry: QontoEntry | None = None,
    proposal_id: int | None = None,
    outcome: str = "",
    note: str = "",
    edits: dict | None = None,
    learn: bool = True,
) -> Decision | None:
    """Take one decision: check every promise, then write it all in one transaction.

    The Decision (none for an automatic approval: it is not a person's answer), the edits, the
    record's move with its audit event, and the posting its outcome means. Raises DecisionError
    with the reason (the same as `decision_check`'s), PermissionDenied or ValidationError.
    """
    if kind == Kind.OVERRIDE:
        if not (note or "").strip():
            raise ValidationError({"note": ["Say why you override this decision."]})
        if outcome not in OVERRIDE_OUTCOMES:
            raise ValidationError({"outcome": ["Choose reject, link or create."]})
        if outcome == LINK and entry is None:
            raise ValidationError({"entry": ["Choose the Qonto entry to link."]})
    if kind == Kind.PIN and entry is None:
        raise ValidationError({"entry": ["Choose the Qonto entry to link."]})
    _check_role(actor=actor, membership=membership, record=record)
    if entry is not None and entry.workspace_id != record.workspace_id:
        raise PermissionDenied("This Qonto entry belongs to another workspace.")
    asked = _Asked(kind, entry=entry, proposal_id=proposal_id, outcome=outcome)
    with transaction.atomic():
        row = _locked(record)
        proposal = _current(row)
        verdict = _verdict(row, proposal, asked)
        if not verdict:
            raise DecisionError(verdict.reason)
        reached = kind == Kind.OVERRIDE and _reached_qonto(row)
        after = _state_after(asked, reached)
        if not transition_is_legal(row.state, after):
            raise DecisionError(_state_reason(row, kind))
        clean = record_edits_clean(record=row, edits=edits) if edits else {}
        changes = _apply_edits(row, proposal, clean, actor) if clean else {}
        right_action, right_target = _right_answer(asked, proposal)
        if kind == Kind.OVERRIDE and not reached:
            _withdraw_unsent(row, actor, note)
        stored_note = note
        if reached:
            stored_note = (
                f"{note} (already sent to Qonto: fix Qonto by hand; it is not posted again)"
            )
        decision = None
        if kind != Kind.AUTO_APPROVE:
            decision = Decision.objects.create(
                workspace_id=row.workspace_id,
                record=row,
                proposal=proposal,
                kind=kind,
                note=stored_note,
                actor_type=actor.type,
                actor_id=actor.id,
                actor_label=actor.label[:200],
                user_id=membership.user_id if membership and actor.type == ActorType.USER else None,
                right_action=right_action,
                right_target=right_target,
                edits={k: [str(v[0] or ""), str(v[1] or "")] for k, v in changes.items()},
                state_before=row.state,
                state_after=after,
            )
        record_transition(
            record=row,
            state=after,
            actor=actor,
            verb=f"record.{kind}",
            always_audit=True,
            after={
                "decision": decision.pk if decision else None,
                "proposal": proposal.pk if proposal else None,
                "proposed": _proposed_facts(proposal),
                "right_action": right_action,
                "right_target": right_target.qonto_id if right_target else None,
                "edits": decision.edits if decision else {},
                "outcome": verdict.outcome,
            },
            reason=stored_note,
        )
        if after in (S.APPROVED, S.AUTO_APPROVED):
            try:
                with transaction.atomic():
                    record_outcome_post(
                        record=row,
                        actor=actor,
                        action=right_action,
                        target=right_target,
                        reason=f"{kind} by {actor.label}"
                        if kind != Kind.AUTO_APPROVE
                        else f"auto-approved at {proposal.confidence:.2f}",
                    )
            except NotPostable as exc:
                raise DecisionError(
                    _("Nothing can be posted to Qonto for this record: %(why)s") % {"why": exc}
                ) from exc
        record.state = row.state
        for name in ("invoice_number", "due_date"):
            setattr(record, name, getattr(row, name))
        if learn and decision is not None and proposal is not None and right_action:
            _answers_count(
                row.workspace_id,
                [
                    matching.labelled(
                        proposal=proposal, right_action=right_action, right_target=right_target
                    )
                ],
            )
    return decision


def _answers_count(workspace_id: int, labels: list[LabelledDecision]) -> None:
    """Count reviewers' answers with matching; when it wants a new fit, queue it after commit."""
    if matching.workspace_model_learn(workspace=workspace_id, labels=labels):
        transaction.on_commit(lambda: async_task(REFIT_TASK, workspace_id, group="matching"))


@transaction.atomic
def records_bulk_approve(
    *,
    records: list[SourceRecord],
    actor: Actor,
    membership: Membership | None,
    note: str = "",
    proposal_ids: dict[int, int] | None = None,
) -> BulkResult:
    """Approve each record through `decision_take`; a refused one is skipped with the reason.

    `proposal_ids` ({record pk: proposal id}, from the confirmation page) refuses a record whose
    proposal changed after the person confirmed what would happen to it.
    """
    result = BulkResult()
    labels = []
    for record in sorted(records, key=lambda r: r.pk):
        _check_role(actor=actor, membership=membership, record=record)
        try:
            with transaction.atomic():
                decision = decision_take(
                    record=record,
                    kind=Kind.APPROVE,
                    actor=actor,
                    membership=membership,
                    proposal_id=(proposal_ids or {}).get(record.pk),
                    note=note,
                    learn=False,
                )
        except DecisionError as exc:
            result.skipped[record.pk] = str(exc)
            continue
        result.decided.append(decision)
        if decision.proposal is not None:
            labels.append(
                matching.labelled(
                    proposal=decision.proposal,
                    right_action=decision.right_action,
                    right_target=decision.right_target,
                )
            )
    if labels:
        _answers_count(records[0].workspace_id, labels)
    return result


# --- the hand-over from matching ------------------------------------------------------------


def proposal_route(*, record: SourceRecord) -> str:
    """A proposal matching made: approve it automatically, or say it waits for its payment.

    Returns the record's state after. An automatic approval the service refuses goes to a person
    with the reason; a purchase whose bank payment Qonto has not got leaves the queue for the
    waiting-for-payment list until a Qonto sync brings it (and matching proposes it again).
    """
    with transaction.atomic():
        row = _locked(record)
        proposal = _current(row)
        if proposal is None or row.state not in (S.PROPOSED, S.IN_REVIEW, S.REFUSED):
            return row.state
        if row.state == S.PROPOSED:
            verdict = _verdict(row, proposal, _Asked(Kind.AUTO_APPROVE))
            if verdict:
                try:
                    with transaction.atomic():
                        decision_take(record=row, kind=Kind.AUTO_APPROVE, actor=SYSTEM)
                    return row.state
                except DecisionError as exc:
                    verdict = Verdict(Kind.AUTO_APPROVE, False, str(exc))
            if verdict.waiting_for_payment:
                return _wait(row, proposal, verdict.reason)
            reason = verdict.reason
            if not reason.startswith("not auto-posted"):
                reason = f"not auto-posted: {reason}"
            proposal.band = Band.REVIEW
            proposal.reasons = [
                *proposal.reasons,
                {"signal": "gate", "weight": 0.0, "detail": reason},
            ]
            proposal.save(update_fields=["band", "reasons"])
            record_transition(
                record=row,
                state=S.IN_REVIEW,
                actor=SYSTEM,
                after={"proposal": proposal.pk},
                reason=reason,
            )
            return row.state
        if row.entity_type != "Purchase":
            return row.state  # only a purchase without its receipt is its bank payment
        action, target = proposal.action, proposal.target
        try:
            posting_plan(record=row, action=action, target=target)
        except WaitingForPayment as exc:
            return _wait(row, proposal, str(exc))
        except NotPostable:
            pass
        return row.state


def _wait(row: SourceRecord, proposal: Proposal, reason: str) -> str:
    record_transition(
        record=row,
        state=S.WAITING_PAYMENT,
        actor=SYSTEM,
        after={"proposal": proposal.pk, "confidence": proposal.confidence},
        reason=reason,
    )
    return row.state
