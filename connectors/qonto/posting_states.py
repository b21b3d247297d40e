"""The postings' states as the worker moves them: claimed, done, failed, unknown, retried.

Each claim gets a new attempt_id and only its holder may end the attempt (a conditional UPDATE
fenced by it); each change writes its audit event and moves the record along with it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from connectors.lifecycle import record_transition
from connectors.qonto.links import qonto_link_claim, qonto_link_release
from connectors.qonto.models import Posting, PostingAction, PostingState
from connectors.qonto.outbox import SYSTEM, qonto_url_for
from connectors.qonto.payments import bill_payments_settle
from connectors.quickbooks.models import RecordState, SourceRecord
from well.audit import Actor, audit_event_record


def posting_claim(
    *, limit: int, workspace_ids: list[int] | None = None, now: datetime | None = None
) -> list[Posting]:
    """Claim up to `limit` ready or unknown postings; other workers skip them (skip_locked).

    Each claim gets a new attempt_id: only the holder of that id may finish the attempt.
    """
    now = now or timezone.now()
    with transaction.atomic():
        query = Posting.objects.select_for_update(skip_locked=True).filter(
            state__in=[PostingState.READY, PostingState.UNKNOWN]
        )
        if workspace_ids is not None:
            query = query.filter(workspace_id__in=workspace_ids)
        claimed = list(query.order_by("created_at", "id")[:limit])
        if not claimed:
            return []
        before: dict = {}
        for posting in claimed:
            before[posting.pk] = posting.state
            posting.previous_state = posting.state
            posting.state = PostingState.IN_FLIGHT
            posting.attempt_id = uuid.uuid4()
            posting.attempts += 1
            posting.claimed_at = now
        Posting.objects.bulk_update(claimed, ["state", "attempt_id", "attempts", "claimed_at"])
        for posting in claimed:
            audit_event_record(
                workspace=posting.workspace_id,
                actor=SYSTEM,
                verb="posting.claimed",
                obj=posting,
                before={"state": before[posting.pk]},
                after={"state": PostingState.IN_FLIGHT, "attempt": posting.attempts},
            )
    return claimed


def posting_finish(
    *,
    posting: Posting,
    state: str,
    outcome: str = "",
    qonto_id: str = "",
    target_kind: str = "",
    message: str = "",
    error_code: str = "",
    extra: dict | None = None,
) -> bool:
    """End one claimed attempt: a conditional UPDATE fenced by attempt_id, with its audit event.

    Returns False (and changes nothing) when another worker's claim superseded this one.
    """
    now = timezone.now()
    values: dict = {"state": state, "updated_at": now, **(extra or {})}
    if state == PostingState.DONE:
        values.update(qonto_id=qonto_id, done_at=now, outcome=outcome, message=message)
        values["qonto_url"] = qonto_url_for(target_kind or "invoice", qonto_id)
        values["target_kind"] = target_kind or posting.target_kind or "invoice"
        values["error_code"] = ""
    elif state == PostingState.FAILED:
        values.update(message=message[:4000] or "Qonto refused it.", error_code=error_code[:60])
    else:
        values.update(message=message[:4000], error_code=error_code[:60])
    with transaction.atomic():
        updated = Posting.objects.filter(
            pk=posting.pk, attempt_id=posting.attempt_id, state=PostingState.IN_FLIGHT
        ).update(**values)
        if not updated:
            return False
        audit_event_record(
            workspace=posting.workspace_id,
            actor=SYSTEM,
            verb=f"posting.{state}",
            obj=posting,
            before={"state": PostingState.IN_FLIGHT},
            after={
                "state": state,
                "outcome": outcome,
                "qonto_id": qonto_id or posting.qonto_id,
                "idempotency_key": posting.idempotency_key,
                "attempt": posting.attempts,
            },
            reason=message[:2000],
        )
        record = SourceRecord.objects.get(pk=posting.record_id)
        # The record follows its posting while it is on its way to Qonto; one that moved on (a
        # new version back in review, an override) keeps its state: the posting's event says it.
        follows = record.state in (RecordState.POSTING, RecordState.FAILED, RecordState.POSTED)
        if state == PostingState.FAILED:
            qonto_link_release(posting=posting)
        if not follows:
            pass
        elif state == PostingState.DONE:
            record_transition(
                record=record,
                state=RecordState.POSTED,
                actor=SYSTEM,
                reason=f"{posting.action}: Qonto {qonto_id} ({outcome})",
            )
        elif state == PostingState.FAILED:
            record_transition(record=record, state=RecordState.FAILED, actor=SYSTEM, reason=message)
    for name, value in values.items():
        setattr(posting, name, value)
    if (
        state == PostingState.DONE
        and record.entity_type == "Bill"
        and posting.action != PostingAction.MARK_PAID
        and values["target_kind"] == "invoice"
    ):
        bill_payments_settle(bill=record)
    return True


def posting_mark_unknown(*, posting: Posting, reason: str) -> bool:
    """A stale in-flight claim (the worker died) becomes unknown: it may have reached Qonto."""
    with transaction.atomic():
        updated = Posting.objects.filter(
            pk=posting.pk, state=PostingState.IN_FLIGHT, attempt_id=posting.attempt_id
        ).update(state=PostingState.UNKNOWN, message=reason[:4000], updated_at=timezone.now())
        if updated:
            audit_event_record(
                workspace=posting.workspace_id,
                actor=SYSTEM,
                verb="posting.unknown",
                obj=posting,
                before={"state": PostingState.IN_FLIGHT},
                after={"state": PostingState.UNKNOWN},
                reason=reason,
            )
    return bool(updated)


def posting_retry(*, posting: Posting, actor: Actor) -> bool:
    """A person asks to try a failed posting again (same key: same version, same action).

    A mark that was taken back (its payment deleted or re-dated) is not sent any more.
    """
    undone = Posting.objects.filter(
        record_id=posting.record_id,
        action=PostingAction.UNMARK_PAID,
        source_version=posting.source_version,
        qonto_id=posting.qonto_id,
    )
    if posting.action == PostingAction.MARK_PAID and undone.exists():
        return False
    with transaction.atomic():
        updated = Posting.objects.filter(pk=posting.pk, state=PostingState.FAILED).update(
            state=PostingState.READY, updated_at=timezone.now()
        )
        if updated and posting.action == PostingAction.LINK and posting.qonto_id:
            # Its claim on the entry comes back, unless another record took the entry meanwhile
            # (EntryTaken: nothing is retried).
            qonto_link_claim(
                record=posting.record,
                target_kind=posting.target_kind or "invoice",
                qonto_id=posting.qonto_id,
            )
        if updated:
            audit_event_record(
                workspace=posting.workspace_id,
                actor=actor,
                verb="posting.retried",
                obj=posting,
                before={"state": PostingState.FAILED},
                after={"state": PostingState.READY},
            )
    return bool(updated)


def posting_withdraw(*, posting: Posting, actor: Actor, reason: str) -> bool:
    """Withdraw a posting not sent yet (an override came first); its link claim ends with it."""
    with transaction.atomic():
        updated = Posting.objects.filter(
            pk=posting.pk, state=PostingState.READY, sent_at__isnull=True
        ).update(
            state=PostingState.FAILED,
            message=f"Withdrawn before sending: {reason}"[:4000],
            error_code="withdrawn",
            updated_at=timezone.now(),
        )
        if updated:
            qonto_link_release(posting=posting)
            audit_event_record(
                workspace=posting.workspace_id,
                actor=actor,
                verb="posting.withdrawn",
                obj=posting,
                before={"state": PostingState.READY},
                after={"state": PostingState.FAILED, "error_code": "withdrawn"},
                reason=reason,
            )
    return bool(updated)
