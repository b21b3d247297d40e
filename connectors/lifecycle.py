"""A record's lifecycle: the one writer of `SourceRecord.state`, and the transitions it allows.

Matching (a proposal), review (a decision) and the Qonto outbox (a posting sent, done or failed)
all move a record through `record_transition`, which checks the move against `LEGAL` and writes
the record's audit event in the caller's transaction (docs/review.md, "The lifecycle").
"""

from __future__ import annotations

from django.db import transaction

from connectors.quickbooks.models import RecordState, SourceRecord
from well.audit import Actor, audit_event_record
from well.webhooks import record_summary, webhooks_emit

S = RecordState
# Re-proposal (a new version, a new Qonto entry) may come in any state short of Qonto.
_BEFORE_QONTO = frozenset(
    {
        S.PULLED,
        S.PROPOSED,
        S.IN_REVIEW,
        S.REFUSED,
        S.WAITING_PAYMENT,
        S.REJECTED,
        S.FAILED,
    }
)
# Every state a record may leave for each state it may enter.
LEGAL: dict[str, frozenset[str]] = {
    S.PULLED: frozenset({S.POSTING}),  # a payment whose only marks were withdrawn
    S.PROPOSED: _BEFORE_QONTO,
    # A person decides; a record changed or deleted after posting is flagged back to review; an
    # override of what already reached Qonto is flagged too.
    S.IN_REVIEW: frozenset(RecordState.values),
    S.REFUSED: _BEFORE_QONTO,
    S.WAITING_PAYMENT: _BEFORE_QONTO | {S.AUTO_APPROVED},
    S.AUTO_APPROVED: frozenset({S.PROPOSED}),
    # A person's approval, pin or upload; an override of an automatic decision not yet sent.
    S.APPROVED: _BEFORE_QONTO - {S.PULLED} | {S.AUTO_APPROVED, S.POSTING},
    S.REJECTED: _BEFORE_QONTO | {S.AUTO_APPROVED, S.APPROVED, S.POSTING},
    # Only what was approved is posted (a payment or another never-reviewed kind is posted as
    # pulled: it is not a decision); a failed posting retried; a changed payment posted again.
    S.POSTING: frozenset({S.PULLED, S.APPROVED, S.AUTO_APPROVED, S.FAILED, S.POSTED}),
    S.POSTED: frozenset({S.POSTING, S.FAILED, S.PULLED}),
    S.FAILED: frozenset({S.POSTING, S.PULLED, S.POSTED}),
}


class IllegalTransition(ValueError):
    """A move the lifecycle forbids (a bug in the caller: nothing is written)."""


def transition_is_legal(before: str, after: str) -> bool:
    return before == after or before in LEGAL.get(after, frozenset())


@transaction.atomic
def record_transition(
    *,
    record: SourceRecord,
    state: str,
    actor: Actor,
    verb: str = "",
    reason: str = "",
    after: dict | None = None,
    always_audit: bool = False,
) -> bool:
    """Move the record to `state` with its audit event; False when it is there already.

    `verb` defaults to `record.<state>`; `after` adds facts to the event (the decision, the
    proposal). A move to the same state writes nothing unless `always_audit` (a decision that
    keeps the state, like a flag, is still an event).
    """
    before = (
        SourceRecord.objects.select_for_update()
        .filter(pk=record.pk)
        .values_list("state", flat=True)
        .first()
    )
    if before == state and not always_audit:
        record.state = state
        return False
    if not transition_is_legal(before, state):
        raise IllegalTransition(f"{record.entity_type} {record.qbo_id}: {before} -> {state}")
    if before != state:
        SourceRecord.objects.filter(pk=record.pk).update(state=state)
    record.state = state
    if before != state and state in (S.POSTED, S.FAILED, S.IN_REVIEW):
        webhooks_emit(
            workspace=record.workspace_id,
            event=f"record.{'needs_review' if state == S.IN_REVIEW else state}",
            payload=record_summary(record),
        )
    audit_event_record(
        workspace=record.workspace_id,
        actor=actor,
        verb=verb or f"record.{state}",
        obj=record,
        object_type="quickbooks." + record.entity_type.lower(),
        before={"state": before},
        after={"state": state, **(after or {})},
        reason=reason,
    )
    return True
