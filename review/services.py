"""Review decisions: approve, reject, pin, upload as new, override, bulk approve.

Each one checks the role, then writes the Decision, the record's new state, its audit events
and (where the outcome is to post) the outbox row in ONE transaction, and feeds the answer to
the workspace's model. The review pages and the partner API call these and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from connectors.qonto.models import Posting, PostingState, QontoEntry
from connectors.qonto.outbox import NotPostable, postings_send_soon
from connectors.qonto.posting_states import posting_retry
from connectors.quickbooks.models import RecordState, SourceRecord
from matching import services as matching
from matching.core import CREATE, LINK
from matching.models import Action, Decision, DecisionKind, Proposal, VendorRule
from well.audit import Actor, audit_event_record
from well.models import ActorType, Membership, Role

# Where a person may act without overriding anything automatic.
OPEN = frozenset({RecordState.IN_REVIEW, RecordState.REFUSED, RecordState.PROPOSED})
REOPENABLE = OPEN | {RecordState.REJECTED, RecordState.FAILED}
EDITABLE_FIELDS = ("ledger_account", "invoice_number", "due_date")


class DecisionError(ValueError):
    """The decision cannot be taken in the record's current state; the message says why."""


@dataclass
class BulkResult:
    decided: list[Decision] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # record pk -> why


# --- checks --------------------------------------------------------------------------------


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


def _locked(record: SourceRecord) -> SourceRecord:
    """The record re-read under a row lock: two reviewers never decide it twice."""
    return (
        SourceRecord.objects.for_workspace(record.workspace_id)
        .select_for_update()
        .get(pk=record.pk)
    )


def _current(record: SourceRecord) -> Proposal | None:
    return (
        Proposal.objects.for_workspace(record.workspace_id)
        .filter(record=record, is_current=True)
        .select_related("target", "record")
        .first()
    )


def _entry(record: SourceRecord, entry: QontoEntry) -> QontoEntry:
    """The entry, re-read inside the record's workspace (never another tenant's)."""
    found = QontoEntry.objects.for_workspace(record.workspace_id).filter(pk=entry.pk).first()
    if found is None:
        raise PermissionDenied("This Qonto entry belongs to another workspace.")
    taken = (
        Posting.objects.for_workspace(record.workspace_id)
        .filter(qonto_id=found.qonto_id)
        .exclude(record=record)
        .exclude(state=PostingState.FAILED)
        .select_related("record")
        .first()
    )
    if taken is not None:
        raise DecisionError(
            f"This Qonto entry is already linked to {taken.record.entity_type} "
            f"{taken.record.qbo_id}."
        )
    return found


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


# --- the one writer ------------------------------------------------------------------------


def _decide(
    *,
    record: SourceRecord,
    actor: Actor,
    membership: Membership | None,
    kind: str,
    allowed: frozenset,
    outcome: str,  # "post", "reject", or "flag" (to review, nothing posted)
    right_action: str,
    right_target: QontoEntry | None,
    note: str = "",
    edits: dict | None = None,
    learn: bool = True,
) -> Decision:
    """Lock, check, write Decision + state + audit (+ posting), learn. Caller holds the atomic."""
    _check_role(actor=actor, membership=membership, record=record)
    row = _locked(record)
    if row.state not in allowed:
        raise DecisionError(
            f"This record is {row.get_state_display().lower()}; it cannot be "
            f"{DecisionKind(kind).label.lower()} now."
        )
    proposal = _current(row)
    clean = record_edits_clean(record=row, edits=edits) if edits else {}
    changes = _apply_edits(row, proposal, clean, actor) if clean else {}
    before = row.state
    after = {
        "reject": RecordState.REJECTED,
        "flag": RecordState.IN_REVIEW,
        "post": RecordState.APPROVED,
    }[outcome]
    decision = Decision.objects.create(
        workspace_id=row.workspace_id,
        record=row,
        proposal=proposal,
        kind=kind,
        note=note,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label[:200],
        user_id=membership.user_id if membership and actor.type == ActorType.USER else None,
        right_action=right_action,
        right_target=right_target,
        edits={k: [str(v[0] or ""), str(v[1] or "")] for k, v in changes.items()},
        state_before=before,
        state_after=after,
    )
    SourceRecord.objects.filter(pk=row.pk).update(state=after)
    row.state = after
    audit_event_record(
        workspace=row.workspace_id,
        actor=actor,
        verb=f"record.{kind}",
        obj=row,
        object_type="quickbooks." + row.entity_type.lower(),
        before={"state": before},
        after={
            "state": after,
            "decision": decision.pk,
            "proposal": proposal.pk if proposal else None,
            "proposed": {
                "action": proposal.action,
                "target": proposal.target.qonto_id if proposal.target else None,
                "confidence": proposal.confidence,
                "band": proposal.band,
            }
            if proposal
            else None,
            "right_action": right_action,
            "right_target": right_target.qonto_id if right_target else None,
            "edits": decision.edits,
        },
        reason=note,
    )
    if outcome == "post":
        try:
            with transaction.atomic():
                matching.posting_for_outcome(
                    record=row,
                    action=right_action,
                    target=right_target,
                    actor=actor,
                    reason=f"{kind} by {actor.label}",
                )
        except NotPostable as exc:
            raise DecisionError(f"Nothing can be posted to Qonto for this record: {exc}") from exc
    record.state = row.state
    for name in ("invoice_number", "due_date"):
        setattr(record, name, getattr(row, name))
    if learn and proposal is not None and right_action:
        matching.workspace_model_learn(
            workspace=row.workspace_id,
            labels=[
                matching.labelled(
                    proposal=proposal, right_action=right_action, right_target=right_target
                )
            ],
        )
    return decision


# --- decisions -----------------------------------------------------------------------------


@transaction.atomic
def record_approve(
    *,
    record: SourceRecord,
    actor: Actor,
    membership: Membership | None,
    note: str = "",
    edits: dict | None = None,
) -> Decision:
    """Approve the current proposal (after optional edits of mapped fields) and post it."""
    proposal = _current(record)
    if proposal is None:
        raise DecisionError("This record has no proposal to approve yet.")
    target = proposal.target
    if proposal.action == Action.LINK and target is None:
        raise DecisionError("The proposed Qonto entry no longer exists; pin another one.")
    return _decide(
        record=record,
        actor=actor,
        membership=membership,
        kind=DecisionKind.APPROVE,
        allowed=OPEN,
        outcome="post",
        right_action=proposal.action,
        right_target=target,
        note=note,
        edits=edits,
    )


@transaction.atomic
def record_reject(
    *, record: SourceRecord, actor: Actor, membership: Membership | None, note: str = ""
) -> Decision:
    """The proposal is wrong: nothing is posted; the model learns that it was wrong."""
    proposal = _current(record)
    right_action = ""
    if proposal is not None:
        right_action = CREATE if proposal.action == LINK else LINK
    return _decide(
        record=record,
        actor=actor,
        membership=membership,
        kind=DecisionKind.REJECT,
        allowed=OPEN,
        outcome="reject",
        right_action=right_action,
        right_target=None,
        note=note,
    )


@transaction.atomic
def record_pin(
    *,
    record: SourceRecord,
    entry: QontoEntry,
    actor: Actor,
    membership: Membership | None,
    note: str = "",
    edits: dict | None = None,
) -> Decision:
    """Link the record to another Qonto entry (refused and rejected records too) and post it."""
    _check_role(actor=actor, membership=membership, record=record)
    entry = _entry(record, entry)
    return _decide(
        record=record,
        actor=actor,
        membership=membership,
        kind=DecisionKind.PIN,
        allowed=REOPENABLE,
        outcome="post",
        right_action=LINK,
        right_target=entry,
        note=note,
        edits=edits,
    )


@transaction.atomic
def record_upload_as_new(
    *,
    record: SourceRecord,
    actor: Actor,
    membership: Membership | None,
    note: str = "",
    edits: dict | None = None,
) -> Decision:
    """No Qonto entry is this record: upload it as a new supplier invoice."""
    return _decide(
        record=record,
        actor=actor,
        membership=membership,
        kind=DecisionKind.UPLOAD_AS_NEW,
        allowed=REOPENABLE,
        outcome="post",
        right_action=CREATE,
        right_target=None,
        note=note,
        edits=edits,
    )


def _withdraw_unsent(record: SourceRecord, actor: Actor, note: str) -> bool:
    """Withdraw postings not yet sent; False when one is in flight or done (it reached Qonto)."""
    postings = list(
        Posting.objects.for_workspace(record.workspace_id)
        .select_for_update()
        .filter(record=record)
        .exclude(state=PostingState.FAILED)
    )
    if any(p.state != PostingState.READY or p.sent_at for p in postings):
        return False
    for posting in postings:
        Posting.objects.filter(pk=posting.pk, state=PostingState.READY).update(
            state=PostingState.FAILED,
            message=f"Withdrawn before sending: overridden by {actor.label}: {note}"[:4000],
            error_code="withdrawn",
        )
        audit_event_record(
            workspace=record.workspace_id,
            actor=actor,
            verb="posting.withdrawn",
            obj=posting,
            before={"state": PostingState.READY},
            after={"state": PostingState.FAILED, "error_code": "withdrawn"},
            reason=note,
        )
    return True


@transaction.atomic
def record_override(
    *,
    record: SourceRecord,
    actor: Actor,
    membership: Membership | None,
    note: str,
    outcome: str = "reject",
    entry: QontoEntry | None = None,
) -> Decision:
    """Override any decision, automatic ones included, at any time; a note is required.

    `outcome` is "reject", "link" (with `entry`) or "create". What has not been sent yet is
    withdrawn; what already reached Qonto is not posted again: the override is recorded, the
    record flagged for review, and a person fixes Qonto by hand.
    """
    if not (note or "").strip():
        raise ValidationError({"note": ["Say why you override this decision."]})
    if outcome not in ("reject", LINK, CREATE):
        raise ValidationError({"outcome": ["Choose reject, link or create."]})
    if outcome == LINK and entry is None:
        raise ValidationError({"entry": ["Choose the Qonto entry to link."]})
    _check_role(actor=actor, membership=membership, record=record)
    row = _locked(record)
    target = _entry(row, entry) if outcome == LINK else None
    right_action = {"reject": "", LINK: LINK, CREATE: CREATE}[outcome]
    proposal = _current(row)
    if outcome == "reject" and proposal is not None:
        right_action = CREATE if proposal.action == LINK else LINK
    reached = row.state in (RecordState.POSTING, RecordState.POSTED, RecordState.AUTO_APPROVED)
    reached = reached and not _withdraw_unsent(row, actor, note)
    if reached:
        # Already in Qonto (or being sent): record the judgement, never post twice.
        return _decide(
            record=row,
            actor=actor,
            membership=membership,
            kind=DecisionKind.OVERRIDE,
            allowed=frozenset({row.state}),
            outcome="flag",
            right_action=right_action,
            right_target=target,
            note=f"{note} (already sent to Qonto: fix Qonto by hand; it is not posted again)",
        )
    return _decide(
        record=row,
        actor=actor,
        membership=membership,
        kind=DecisionKind.OVERRIDE,
        allowed=frozenset(RecordState.values),
        outcome="reject" if outcome == "reject" else "post",
        right_action=right_action,
        right_target=target,
        note=note,
    )


@transaction.atomic
def records_bulk_approve(
    *, records: list[SourceRecord], actor: Actor, membership: Membership | None, note: str = ""
) -> BulkResult:
    """Approve a selection in one transaction; records no longer open are skipped with why."""
    result = BulkResult()
    labels = []
    for record in sorted(records, key=lambda r: r.pk):
        _check_role(actor=actor, membership=membership, record=record)
        proposal = _current(record)
        if proposal is None or (proposal.action == Action.LINK and proposal.target is None):
            result.skipped[record.pk] = "no proposal to approve"
            continue
        try:
            with transaction.atomic():
                decision = _decide(
                    record=record,
                    actor=actor,
                    membership=membership,
                    kind=DecisionKind.APPROVE,
                    allowed=OPEN,
                    outcome="post",
                    right_action=proposal.action,
                    right_target=proposal.target,
                    note=note,
                    learn=False,
                )
        except DecisionError as exc:
            result.skipped[record.pk] = str(exc)
            continue
        result.decided.append(decision)
        labels.append(
            matching.labelled(
                proposal=proposal, right_action=proposal.action, right_target=proposal.target
            )
        )
    if labels:
        matching.workspace_model_learn(workspace=records[0].workspace_id, labels=labels)
    return result


# --- vendor rules (the threshold settings page and the partner API) -------------------------


def _rule_public(rule) -> dict:
    return {
        "vendor_qbo_id": rule.vendor_qbo_id,
        "vendor_name": rule.vendor_name,
        "auto_threshold": rule.auto_threshold,
        "never_auto": rule.never_auto,
        "note": rule.note,
    }


@transaction.atomic
def vendor_rule_set(
    *,
    workspace,
    vendor_qbo_id: str,
    actor: Actor,
    vendor_name: str = "",
    auto_threshold: float | None = None,
    never_auto: bool = False,
    note: str = "",
):
    """Create or replace the workspace's rule for one vendor, with its audit event."""
    if auto_threshold is not None and not 0 <= auto_threshold <= 1:
        raise ValidationError({"auto_threshold": ["Give a threshold between 0 and 1."]})
    rule = (
        VendorRule.objects.for_workspace(workspace)
        .select_for_update()
        .filter(vendor_qbo_id=vendor_qbo_id)
        .first()
    )
    before = _rule_public(rule) if rule else None
    if rule is None:
        rule = VendorRule(
            workspace_id=getattr(workspace, "pk", workspace), vendor_qbo_id=vendor_qbo_id
        )
    rule.vendor_name = vendor_name[:500]
    rule.auto_threshold = auto_threshold
    rule.never_auto = never_auto
    rule.note = note
    rule.save()
    audit_event_record(
        workspace=rule.workspace_id,
        actor=actor,
        verb="vendor_rule.set",
        obj=rule,
        before=before,
        after=_rule_public(rule),
    )
    return rule


@transaction.atomic
def vendor_rule_delete(*, rule, actor: Actor) -> None:
    audit_event_record(
        workspace=rule.workspace_id,
        actor=actor,
        verb="vendor_rule.deleted",
        obj=rule,
        before=_rule_public(rule),
    )
    rule.delete()


# --- failed postings -----------------------------------------------------------------------


def record_postings_retry(
    *, record: SourceRecord, actor: Actor, membership: Membership | None
) -> int:
    """Send the record's failed postings to Qonto again; returns how many were queued.

    Each keeps its idempotency key (same version, same action), so Qonto never gets it twice;
    connectors.qonto.posting_states.posting_retry writes each one's `posting.retried` event.
    """
    _check_role(actor=actor, membership=membership, record=record)
    with transaction.atomic():
        failed = list(
            Posting.objects.for_workspace(record.workspace_id)
            .select_for_update()
            .filter(record=record, state=PostingState.FAILED)
        )
        if not failed:
            raise DecisionError("Nothing to retry: no posting of this record has failed.")
        retried = sum(posting_retry(posting=posting, actor=actor) for posting in failed)
        postings_send_soon()
    return retried
