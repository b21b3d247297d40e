"""Proposals: run the matching core over stored records, write what it decided, learn from people
(fit each workspace's model on its books and the reviewers' answers review gives it).

`records_propose` is the one door from the QuickBooks sync (through connectors.handoff);
`proposals_refresh_for_entries` the one from the Qonto sync. Both drive the core exactly as
`matching.core.io.run` (and so `match_eval`) does: normalise.*, build_book, decide.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from connectors.lifecycle import record_transition
from connectors.qonto.models import Posting, PostingState, QontoEntry
from connectors.quickbooks.models import RecordState, SourceRecord
from matching import selectors
from matching.core import (
    CREATE,
    LINK,
    LabelledDecision,
    Target,
    build_book,
    decide,
    fit,
)
from matching.core import Decision as CoreDecision
from matching.core.compare import LEVEL_INDEX, SIGNALS
from matching.core.model import Group, target_kind
from matching.core.reasons import signal_reasons
from matching.models import Band, Candidate, Proposal, VendorRule, WorkspaceModel
from well.audit import Actor, audit_event_record
from well.models import AuditEvent, Workspace

SYSTEM = Actor.system("matching")

# A record in one of these states has had its outcome settled for its current version.
SETTLED = frozenset(
    {
        RecordState.AUTO_APPROVED,
        RecordState.APPROVED,
        RecordState.REJECTED,
        RecordState.POSTING,
        RecordState.POSTED,
    }
)
# An automatic proposal is `proposed` until the decision service approves it (review).
BAND_STATE = {
    Band.AUTO: RecordState.PROPOSED,
    Band.REVIEW: RecordState.IN_REVIEW,
    Band.REFUSED: RecordState.REFUSED,
}
# The decision service's hand-over task, named by its dotted path (review sits above matching):
# it approves automatic proposals and sets aside purchases waiting for their bank payment.
ROUTE_TASK = "review.tasks.proposals_route_task"
# The fit on the workspace's books and its reviewers' answers, named by its dotted path too:
# review holds the decisions and gives them to `workspace_model_fit`.
FIT_TASK = "review.tasks.workspace_model_fit_task"


# --- proposals -----------------------------------------------------------------------------


def _rule_dict(rule: VendorRule | None) -> dict[str, Any]:
    if rule is None:
        return {}
    return {
        "id": rule.pk,
        "vendor_id": rule.vendor_qbo_id,
        "auto_threshold": rule.auto_threshold,
        "never_auto": rule.never_auto,
    }


def thresholds_for(*, workspace: Workspace, rule: VendorRule | None) -> tuple[float, float]:
    """(auto, review) thresholds in force for a vendor: the rule's auto threshold if it has one."""
    auto = workspace.auto_threshold
    if rule is not None and rule.auto_threshold is not None:
        auto = rule.auto_threshold
    return auto, min(workspace.review_threshold, auto)


def _band(
    decision: CoreDecision, auto: float, review: float, rule: VendorRule | None, flagged: bool
) -> tuple[str, list[dict]]:
    """The band and the reasons explaining why it was not auto-posted, with our thresholds."""
    extra: list[dict] = []
    conf = decision.confidence
    never = rule is not None and rule.never_auto
    if conf >= auto and not decision.gates_failed and not never and not flagged:
        return Band.AUTO, extra
    if never:
        extra.append(
            _reason(
                "gate", "not auto-posted: a vendor rule says never auto-post", level="never_auto"
            )
        )
    if flagged:
        extra.append(
            _reason(
                "gate",
                "not auto-posted: changed in QuickBooks after Well posted it",
                level="changed_after_posting",
            )
        )
    if not decision.gates_failed and conf < auto:
        extra.append(
            _reason(
                "gate",
                f"not auto-posted: confidence {conf:.2f} is below {auto:.2f}",
                level="below_threshold",
                params={"confidence": f"{conf:.4f}", "threshold": f"{auto:.4f}"},
            )
        )
    if flagged or decision.ambiguous or conf >= review:
        # Near-identical candidates share the probability between them: a person picks one.
        return Band.REVIEW, extra
    extra.append(
        _reason(
            "gate",
            f"refused: confidence {conf:.2f} is below the review threshold {review:.2f}",
            level="refused",
            params={"confidence": f"{conf:.4f}", "threshold": f"{review:.4f}"},
        )
    )
    return Band.REFUSED, extra


def _reason(
    signal: str, detail: str, weight: float = 0.0, level: str = "", params: dict | None = None
) -> dict:
    """A stored reason: the English detail, and its level and parameters for the pages to word
    in the reader's language (review/reasons.py)."""
    reason = {"signal": signal, "weight": weight, "detail": detail}
    if level:
        reason["level"] = level
    if params:
        reason["params"] = params
    return reason


def _core_reason(r) -> dict:
    return _reason(r.signal, r.detail, r.weight, r.level, dict(r.params or {}))


def _reasons(decision: CoreDecision) -> list[dict]:
    kept = []
    for r in decision.reasons:
        # The engine words its threshold reason with the workspace's threshold; ours may be a
        # vendor rule's, so it is rewritten by _band.
        if r.signal == "gate" and r.detail.startswith("not auto-posted: confidence"):
            continue
        kept.append(_core_reason(r))
    return kept


def _signals(vector: dict[str, str] | None, group: Group) -> dict[str, dict]:
    _, rounded = group.weight_rows()
    return {
        signal: {
            "level": level,
            "weight": rounded[SIGNALS.index(signal)][LEVEL_INDEX[signal][level]],
        }
        for signal, level in (vector or {}).items()
    }


def _candidates(
    proposal: Proposal,
    decision: CoreDecision,
    inputs: selectors.Inputs,
    record,
    entries: dict[tuple[str, str], Any],
) -> list[Candidate]:
    group = inputs.model.groups[target_kind(record.type)]
    ranked = [(decision.action, decision.target, decision.confidence)]
    ranked += [(a.action, a.target, a.confidence) for a in decision.alternatives]
    rows = []
    for rank, (action, target, confidence) in enumerate(ranked, start=1):
        row = inputs.rows.get((target.type, target.id)) if target else None
        vector = decision.comparisons.get(f"{target.type}:{target.id}") if target else None
        entry = entries.get((target.type, target.id)) if target else None
        if rank == 1:
            reasons = proposal.reasons
        elif entry is not None and vector:
            reasons = [
                _core_reason(r)
                for r in signal_reasons(record, entry, vector, group, record.vendor_name)
            ]
        else:
            reasons = [_reason("create", "upload as a new supplier invoice")]
        rows.append(
            Candidate(
                workspace_id=proposal.workspace_id,
                proposal=proposal,
                rank=rank,
                action=action,
                target=row,
                confidence=max(0.0, min(1.0, confidence)),
                signals=_signals(vector, group),
                reasons=reasons,
            )
        )
    return rows


def _target_dict(row: QontoEntry | None) -> dict | None:
    return {"kind": row.kind, "qonto_id": row.qonto_id, "id": str(row.pk)} if row else None


def _has_reached_qonto(record: SourceRecord, postings: dict[int, bool]) -> bool:
    return postings.get(record.pk, False) or record.state in (
        RecordState.POSTING,
        RecordState.POSTED,
    )


def records_propose(
    *, records: Iterable[SourceRecord], actor: Actor = SYSTEM, force: bool = False
) -> list[Proposal]:
    """Propose an action for each new or changed record; one Book and transaction per workspace.

    Writes the proposal, its candidates, the record's state and an audit event with the scores
    and thresholds in force; an auto-approved record's posting is enqueued in the same
    transaction. A record whose current version was already settled is left alone unless
    `force`; a record changed after it was posted goes to review, flagged, never posted twice.
    """
    by_workspace: dict[int, list[int]] = defaultdict(list)
    for record in records:
        by_workspace[record.workspace_id].append(record.pk)
    made: list[Proposal] = []
    for workspace_id, ids in by_workspace.items():
        made += _propose_workspace(workspace_id, ids, actor, force)
    return made


def record_propose(*, record: SourceRecord, actor: Actor = SYSTEM) -> Proposal | None:
    """Propose for one record (see `records_propose`); None when it is not a matched kind."""
    made = records_propose(records=[record], actor=actor)
    record.refresh_from_db(fields=["state"])
    return made[0] if made else None


@transaction.atomic
def _propose_workspace(workspace_id: int, ids: list[int], actor: Actor, force: bool):
    workspace = Workspace.objects.get(pk=workspace_id)
    rows = list(
        SourceRecord.objects.for_workspace(workspace_id)
        .select_for_update()
        .filter(pk__in=ids, entity_type__in=selectors.MATCHED_KINDS)
        .order_by("pk")
    )
    if not rows:
        return []
    current = selectors.current_proposals_for(records=rows)
    reached = dict.fromkeys(
        Posting.objects.for_workspace(workspace_id)
        .filter(record__in=rows)
        .exclude(state=PostingState.FAILED)
        .values_list("record_id", flat=True),
        True,
    )
    todo: list[SourceRecord] = []
    flagged: set[int] = set()
    for row in rows:
        proposal = current.get(row.pk)
        same_version = proposal is not None and proposal.record_version == row.sync_token
        posted = _has_reached_qonto(row, reached)
        if row.deleted:
            _record_deleted(row, proposal, posted, actor)
            continue
        if same_version and row.state in SETTLED and not force:
            continue
        if posted and not same_version:
            flagged.add(row.pk)
        elif posted:
            continue  # never re-decide what is already on its way to Qonto
        todo.append(row)
    if not todo:
        return []

    if selectors.workspace_model_get(workspace=workspace) is None:
        # A workspace's first proposals already use a model fitted on its own books (and on its
        # reviewers' answers, when a model lost is fitted again), run here as a worker would.
        import_string(FIT_TASK)(workspace.pk)
    inputs = selectors.matching_inputs(workspace=workspace, records=todo)
    book = build_book(inputs.vendors, inputs.accounts, inputs.history, inputs.entries)
    decisions = decide(book, inputs.incoming, inputs.model, inputs.policy)
    entries = {(e.kind, e.id): e for e in inputs.entries}

    Proposal.objects.filter(record__in=todo, is_current=True).update(is_current=False)
    now = timezone.now()
    proposals: list[Proposal] = []
    for row, decision in zip(todo, decisions, strict=True):
        rule = inputs.rules.get(decision.vendor_id)
        auto, review = thresholds_for(workspace=workspace, rule=rule)
        band, extra = _band(decision, auto, review, rule, row.pk in flagged)
        target = (
            inputs.rows.get((decision.target.type, decision.target.id)) if decision.target else None
        )
        reasons = _reasons(decision) + extra
        if row.pk in flagged:
            reasons.insert(
                0,
                _reason(
                    "changed",
                    f"QuickBooks changed this record (version {row.sync_token}) after Well "
                    "posted it; approving links it to what Qonto holds, it is never posted twice",
                    level="after_posting",
                ),
            )
        proposals.append(
            Proposal(
                workspace_id=workspace_id,
                record=row,
                record_version=row.sync_token,
                action=decision.action,
                target=target,
                confidence=max(0.0, min(1.0, decision.confidence)),
                band=band,
                auto_threshold=auto,
                review_threshold=review,
                rule=_rule_dict(rule),
                gates_failed=list(decision.gates_failed),
                reasons=reasons,
                counterparty=dataclasses.asdict(decision.counterparty),
                features=decision.features,
                comparisons=decision.comparisons,
                vendor_id=decision.vendor_id,
                model_version=decision.model_version,
                changed_after_posting=row.pk in flagged,
                is_current=True,
                created_at=now,
            )
        )
    Proposal.objects.bulk_create(proposals, batch_size=500)
    candidates: list[Candidate] = []
    for proposal, decision, record in zip(proposals, decisions, inputs.incoming, strict=True):
        candidates += _candidates(proposal, decision, inputs, record, entries)
    Candidate.objects.bulk_create(candidates, batch_size=1000)

    for row, proposal in zip(todo, proposals, strict=True):
        _apply_proposal(row, proposal, actor)
    # The decision service takes over in this transaction, as a worker would run its task: a
    # proposal and what it means (approved and queued for Qonto, or waiting) commit together.
    import_string(ROUTE_TASK)(workspace_id, [row.pk for row in todo])
    return proposals


def _apply_proposal(row: SourceRecord, proposal: Proposal, actor: Actor) -> None:
    """Move the record to its band's state (the lifecycle's one writer) with its audit event."""
    record_transition(
        record=row,
        state=BAND_STATE[proposal.band],
        actor=actor,
        verb="record.proposed",
        always_audit=True,
        after={
            "proposal": proposal.pk,
            "version": proposal.record_version,
            "action": proposal.action,
            "target": _target_dict(proposal.target),
            "confidence": proposal.confidence,
            "band": proposal.band,
            "thresholds": {
                "auto": proposal.auto_threshold,
                "review": proposal.review_threshold,
            },
            "rule": proposal.rule,
            "gates_failed": proposal.gates_failed,
            "changed_after_posting": proposal.changed_after_posting,
            "reasons": proposal.reasons,
            "model_version": proposal.model_version,
        },
        reason="; ".join(r["detail"] for r in proposal.reasons if r["signal"] == "gate")[:2000],
    )


def _record_deleted(
    row: SourceRecord, proposal: Proposal | None, posted: bool, actor: Actor
) -> None:
    """A record deleted in QuickBooks leaves the queue; a posted one is flagged for a person."""
    if posted:
        # Flag once per deletion: an earlier flag for a change after posting, since approved,
        # does not cover the deletion.
        if AuditEvent.objects.filter(
            workspace_id=row.workspace_id,
            object_id=str(row.pk),
            verb="record.in_review",
            after__deleted=True,
        ).exists():
            return
        if proposal is not None:
            Proposal.objects.filter(pk=proposal.pk).update(changed_after_posting=True)
        state = RecordState.IN_REVIEW
        reason = "deleted in QuickBooks after Well posted it to Qonto: check Qonto by hand"
    else:
        if row.state == RecordState.REJECTED:
            return
        Proposal.objects.filter(record=row, is_current=True).update(is_current=False)
        state = RecordState.REJECTED
        reason = "deleted in QuickBooks before it was posted: nothing to post"
    record_transition(
        record=row,
        state=state,
        actor=actor,
        always_audit=True,
        after={"deleted": True},
        reason=reason,
    )


def proposals_refresh_for_entries(
    *, workspace: Workspace | int, entries: Iterable[QontoEntry], actor: Actor = SYSTEM
) -> list[Proposal]:
    """New or changed Qonto entries: re-propose the open records whose windows reach them."""
    entries = list(entries)
    if not entries:
        return []
    if isinstance(workspace, int):
        workspace = Workspace.objects.get(pk=workspace)
    records = selectors.records_for_entries(workspace=workspace, entries=entries)
    return records_propose(records=records, actor=actor, force=True)


# --- learning ------------------------------------------------------------------------------


def core_decision(proposal: Proposal) -> CoreDecision:
    """The core's Decision a stored proposal came from (what feedback needs)."""
    target = proposal.target
    return CoreDecision(
        type=proposal.record.entity_type,
        id=proposal.record.qbo_id,
        action=proposal.action,
        target=Target(target.kind, target.qonto_id) if target else None,
        confidence=proposal.confidence,
        gates_failed=list(proposal.gates_failed),
        features=dict(proposal.features),
        comparisons=dict(proposal.comparisons),
        vendor_id=proposal.vendor_id,
        model_version=proposal.model_version,
    )


def labelled(
    *, proposal: Proposal, right_action: str, right_target: QontoEntry | None
) -> LabelledDecision:
    target = Target(right_target.kind, right_target.qonto_id) if right_target else None
    return LabelledDecision(core_decision(proposal), right_action, target)


REFIT_AFTER_ANSWERS = 25  # reviewer answers that warrant fitting the workspace's model again


def workspace_model_fit(
    *,
    workspace: Workspace | int,
    answers: Sequence[selectors.ReviewerAnswer],
    actor: Actor = SYSTEM,
) -> WorkspaceModel:
    """Fit the workspace's model on its own books, history and these reviewers' answers; store it.

    `answers` come newest first from review (review.services.workspace_model_refit), which
    holds the decisions: matching reads none itself. Row-locked, so two fits never interleave;
    the audit trail says what it was fitted on.
    """
    if isinstance(workspace, int):
        workspace = Workspace.objects.get(pk=workspace)
    inputs = selectors.fitting_inputs(workspace=workspace, answers=answers)
    model = fit(
        inputs.vendors,
        inputs.accounts,
        inputs.history,
        inputs.entries,
        inputs.open_records,
        inputs.labels,
    ).model
    with transaction.atomic():
        row, _ = WorkspaceModel.objects.select_for_update().get_or_create(
            workspace_id=workspace.pk, defaults={"version": model.version}
        )
        before = {"version": row.version, "fitted_at": row.fitted_at}
        row.data = model.to_dict()
        row.version = model.version
        row.feedback_count = 0
        row.fitted_at = row.updated_at = timezone.now()
        row.history_links = len(inputs.history)
        row.reviewer_labels = len(inputs.labels)
        row.open_records = len(inputs.open_records)
        row.entries = len(inputs.entries)
        row.save()
        audit_event_record(
            workspace=workspace,
            actor=actor,
            verb="matching.model_fitted",
            obj=row,
            before=before,
            after={
                "version": row.version,
                "history_links": row.history_links,
                "reviewer_labels": row.reviewer_labels,
                "open_records": row.open_records,
                "entries": row.entries,
                "calibrator": model.calibrator,
            },
            reason="fitted on the workspace's own books",
        )
    return row


def workspace_model_learn(*, workspace: Workspace | int, labels: list[LabelledDecision]) -> bool:
    """Count reviewer answers; True when enough have come since the last fit to fit again.

    The answers themselves are review's stored decisions: review queues the fit that reads them.
    """
    if not labels:
        return False
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    with transaction.atomic():
        row, _ = WorkspaceModel.objects.select_for_update().get_or_create(
            workspace_id=workspace_id, defaults={"version": "prior"}
        )
        row.feedback_count += len(labels)
        row.updated_at = timezone.now()
        row.save(update_fields=["feedback_count", "updated_at"])
    return row.feedback_count >= REFIT_AFTER_ANSWERS


def right_answer(
    *, kind: str, proposal: Proposal, entry: QontoEntry | None = None
) -> tuple[str, QontoEntry | None]:
    """The action a decision says was right: what the model learns from."""
    if kind == "approve":
        return proposal.action, proposal.target
    if kind == "reject":
        return (CREATE, None) if proposal.action == LINK else (LINK, None)
    if kind == "pin":
        return LINK, entry
    return CREATE, None
