"""The outbox toward Qonto: one posting row per (record version, action), queued with the
decision that made it, each with the idempotency key its sends will carry (qonto-api.md §7.4).

The worker (connectors/qonto/posting.py) sends what is ready; connectors/qonto/posting_states.py
moves each posting along; connectors/qonto/triggers.py says what a record means in Qonto.
"""

from __future__ import annotations

import uuid
from datetime import date

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task

from connectors.qonto.models import PAYMENT_ACTIONS, Posting, PostingAction
from connectors.quickbooks.models import RecordState, SourceRecord
from well.audit import Actor, audit_event_record
from well.webhooks import record_summary, webhooks_emit

# The kinds that live in Qonto as supplier invoices (uploaded, or linked to one).
INVOICE_KINDS = frozenset({"Bill", "VendorCredit"})

# Who Well is in the audit trail when the Qonto side acts on its own.
SYSTEM = Actor.system("Qonto connector")
IDEMPOTENCY_NAMESPACE = uuid.UUID("8a3c4a52-64a4-4f83-8b3e-6f1f2f6f7b10")


class NotPostable(ValueError):
    """This record means nothing to post in Qonto (or not yet); the message says why."""


def idempotency_key(
    *, workspace_id: int, entity_type: str, qbo_id: str, version: str, action: str, target: str = ""
):
    """Stable per (workspace, QuickBooks entity and ID, version posted, action): a UUID (§7.4).

    A mark_paid or unmark_paid adds its target (the Qonto invoice): a payment of several bills
    has one each. An unmark_paid's version is the version of the mark it undoes.
    """
    name = f"{workspace_id}:{entity_type}:{qbo_id}:{version}:{action}"
    if target:
        name += f":{target}"
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, name))


def qonto_url_for(kind: str, qonto_id: str) -> str:
    """A link to the object in the Qonto web app (settings.QONTO_APP_URL)."""
    base = settings.QONTO_APP_URL.rstrip("/")
    if kind == "transaction":
        return f"{base}/transactions/{qonto_id}"
    return f"{base}/supplier-invoices/{qonto_id}"


def postings_send_soon() -> None:
    """Queue a run of the outbox worker in the caller's transaction.

    The ORM broker lives on the main database: the task row commits, or rolls back, with the
    postings it is meant to send.
    """
    async_task(
        "connectors.qonto.tasks.postings_send_task", task_name="qonto postings", group="post"
    )


@transaction.atomic
def posting_enqueue(
    *,
    record: SourceRecord,
    action: str,
    actor: Actor,
    target_qonto_id: str = "",
    target_kind: str = "",
    payment_date: date | None = None,
    reason: str = "",
    undoes_version: str = "",
) -> Posting:
    """Add the outbox row for this version of the record, in the caller's transaction.

    Call it in the same transaction as the approval. The idempotency key is stored now, before
    any request. Calling twice for the same version and action returns the same row.
    An unmark_paid carries the version of the mark it undoes (`undoes_version`): one per mark,
    even when the deletion or the new version is delivered twice.
    """
    if action not in PostingAction.values:
        raise ValueError(f"unknown posting action {action!r}")
    undoing = action == PostingAction.UNMARK_PAID
    # Undoing a mark is exactly what a deleted payment needs; nothing else posts a deleted one.
    if (record.deleted and not undoing) or record.errored:
        raise NotPostable("A deleted or malformed QuickBooks record is not posted.")
    if target_kind == "transaction" and record.entity_type in INVOICE_KINDS:
        # A bill (or vendor credit) belongs in Qonto's supplier invoices: linked to a bank
        # transaction it would never reach them (issue 17). Only a purchase without a receipt
        # is closed by its transaction.
        raise NotPostable(
            f"A QuickBooks {record.entity_type} is uploaded to Qonto's supplier invoices or "
            "linked to one there; it is never closed by a link to a bank transaction."
        )
    if undoing and not undoes_version:
        raise ValueError("an unmark_paid posting needs the version of the mark it undoes")
    version = undoes_version if undoing else record.sync_token or "0"
    paying = action in PAYMENT_ACTIONS
    if paying and not target_qonto_id:
        raise ValueError(f"a {action} posting needs the Qonto invoice it acts on")
    key = idempotency_key(
        workspace_id=record.workspace_id,
        entity_type=record.entity_type,
        qbo_id=record.qbo_id,
        version=version,
        action=action,
        target=target_qonto_id if paying else "",
    )
    # One row per version and action; a payment has one per Qonto invoice it marks paid.
    lookup = {"qonto_id": target_qonto_id} if paying else {}
    posting, created = Posting.objects.get_or_create(
        workspace_id=record.workspace_id,
        record=record,
        source_version=version,
        action=action,
        **lookup,
        defaults={
            "idempotency_key": key,
            "qonto_id": target_qonto_id if action == PostingAction.LINK or paying else "",
            "target_kind": target_kind,
            "payment_date": payment_date,
        },
    )
    if not created:
        return posting
    audit_event_record(
        workspace=record.workspace_id,
        actor=actor,
        verb="posting.enqueued",
        obj=posting,
        after={
            "record": str(record.pk),
            "entity": record.entity_type,
            "qbo_id": record.qbo_id,
            "version": version,
            "action": action,
            "idempotency_key": key,
            "target": target_qonto_id,
        },
        reason=reason,
    )
    record_state_change(
        record=record, state=RecordState.POSTING, actor=actor, reason=f"{action} queued"
    )
    postings_send_soon()
    return posting


def record_state_change(
    *, record: SourceRecord, state: str, actor: Actor, reason: str = ""
) -> None:
    """Move the record along its lifecycle with its audit event (caller holds a transaction)."""
    before = SourceRecord.objects.filter(pk=record.pk).values_list("state", flat=True).first()
    if before == state:
        return
    SourceRecord.objects.filter(pk=record.pk).update(state=state)
    record.state = state
    if state in (RecordState.POSTED, RecordState.FAILED):
        webhooks_emit(
            workspace=record.workspace_id, event=f"record.{state}", payload=record_summary(record)
        )
    audit_event_record(
        workspace=record.workspace_id,
        actor=actor,
        verb=f"record.{state}",
        obj=record,
        object_type="quickbooks." + record.entity_type.lower(),
        before={"state": before},
        after={"state": state},
        reason=reason,
    )
