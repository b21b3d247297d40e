"""Review services: the decisions (each one a call of review/decisions.py), vendor rules, retries,
and the matching model's fits on the reviewers' answers.

Every decision goes through `review.decisions.decision_take`, which holds the promises once;
these named entry points keep the pages', the API's and the tests' vocabulary.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from connectors.qonto.errors import NotPostable
from connectors.qonto.models import Posting, PostingState, QontoEntry
from connectors.qonto.outbox import postings_send_soon
from connectors.qonto.posting_states import posting_retry
from connectors.quickbooks.models import SourceRecord
from matching import services as matching
from matching.core import CREATE, LINK
from matching.models import VendorRule, WorkspaceModel
from matching.selectors import workspace_models_stale
from review.decisions import (
    EDITABLE_FIELDS,
    OPEN,
    REOPENABLE,
    BulkResult,
    DecisionError,
    Kind,
    _check_role,
    decision_take,
    record_edits_clean,
    records_bulk_approve,
)
from review.models import Decision
from review.selectors.learning import reviewer_answers
from well.audit import Actor, audit_event_record
from well.models import Membership, Workspace

logger = logging.getLogger(__name__)

__all__ = [
    "EDITABLE_FIELDS",
    "OPEN",
    "REOPENABLE",
    "BulkResult",
    "DecisionError",
    "record_approve",
    "record_edits_clean",
    "record_override",
    "record_pin",
    "record_reject",
    "record_upload_as_new",
    "records_bulk_approve",
    "workspace_model_refit",
    "workspace_models_refresh",
]


def record_approve(
    *,
    record: SourceRecord,
    actor: Actor,
    membership: Membership | None,
    note: str = "",
    edits: dict | None = None,
    proposal_id: int | None = None,
) -> Decision:
    """Approve the current proposal (after optional edits of mapped fields) and post it."""
    return decision_take(
        record=record,
        kind=Kind.APPROVE,
        actor=actor,
        membership=membership,
        note=note,
        edits=edits,
        proposal_id=proposal_id,
    )


def record_reject(
    *,
    record: SourceRecord,
    actor: Actor,
    membership: Membership | None,
    note: str = "",
    edits: dict | None = None,
    proposal_id: int | None = None,
) -> Decision:
    """The proposal is wrong: nothing is posted; the model learns that it was wrong."""
    return decision_take(
        record=record,
        kind=Kind.REJECT,
        actor=actor,
        membership=membership,
        note=note,
        edits=edits,
        proposal_id=proposal_id,
    )


def record_pin(
    *,
    record: SourceRecord,
    entry: QontoEntry,
    actor: Actor,
    membership: Membership | None,
    note: str = "",
    edits: dict | None = None,
    proposal_id: int | None = None,
) -> Decision:
    """Link the record to another Qonto entry (refused and rejected records too) and post it."""
    return decision_take(
        record=record,
        kind=Kind.PIN,
        entry=entry,
        actor=actor,
        membership=membership,
        note=note,
        edits=edits,
        proposal_id=proposal_id,
    )


def record_upload_as_new(
    *,
    record: SourceRecord,
    actor: Actor,
    membership: Membership | None,
    note: str = "",
    edits: dict | None = None,
    proposal_id: int | None = None,
) -> Decision:
    """No Qonto entry is this record: upload it as a new supplier invoice."""
    return decision_take(
        record=record,
        kind=Kind.UPLOAD_AS_NEW,
        actor=actor,
        membership=membership,
        note=note,
        edits=edits,
        proposal_id=proposal_id,
    )


def record_override(
    *,
    record: SourceRecord,
    actor: Actor,
    membership: Membership | None,
    note: str,
    outcome: str = "reject",
    entry: QontoEntry | None = None,
    proposal_id: int | None = None,
) -> Decision:
    """Override any decision, automatic ones included, at any time; a note is required.

    `outcome` is "reject", "link" (with `entry`) or "create". What has not been sent yet is
    withdrawn; what already reached Qonto is not posted again: the override is recorded, the
    record flagged for review, and a person fixes Qonto by hand.
    """
    if outcome not in ("reject", LINK, CREATE):
        raise ValidationError({"outcome": ["Choose reject, link or create."]})
    return decision_take(
        record=record,
        kind=Kind.OVERRIDE,
        outcome=outcome,
        entry=entry,
        actor=actor,
        membership=membership,
        note=note,
        proposal_id=proposal_id,
    )


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
        try:
            retried = sum(posting_retry(posting=posting, actor=actor) for posting in failed)
        except NotPostable as exc:
            raise DecisionError(str(exc)) from exc
        postings_send_soon()
    return retried


# --- the matching model's fits (what it learns from the decisions) --------------------------


def workspace_model_refit(
    *, workspace: Workspace | int, actor: Actor = matching.SYSTEM
) -> WorkspaceModel:
    """Fit the workspace's matching model on its books and its reviewers' answers.

    The one way a fit learns from people: matching sits below review and reads no decision, so
    the answers are handed to it. The fit is matching's work, audited as its own by default.
    """
    return matching.workspace_model_fit(
        workspace=workspace, answers=reviewer_answers(workspace=workspace), actor=actor
    )


def workspace_models_refresh(*, actor: Actor = matching.SYSTEM) -> list[int]:
    """Fit again every workspace model that its books have outgrown (matching says which)."""
    refreshed = []
    for workspace_id in workspace_models_stale(now=timezone.now()):
        try:
            workspace_model_refit(workspace=workspace_id, actor=actor)
        except Exception:  # one workspace's bad data never stops the others' refresh
            logger.exception("matching model fit failed", extra={"workspace": workspace_id})
            continue
        refreshed.append(workspace_id)
    return refreshed
