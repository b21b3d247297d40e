"""Who holds each Qonto entry: the live links (QontoLink), claimed with their link posting.

A Qonto supplier invoice or transaction is the target of at most one live link; the check here
names the record that holds it, and the database (qonto_link_one_live_per_entry) holds the line
when two claims race.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.qonto.errors import EntryTaken
from connectors.qonto.models import (
    Posting,
    PostingAction,
    PostingState,
    QontoEntry,
    QontoEntryKind,
    QontoLink,
)
from connectors.quickbooks.models import SourceRecord
from well.models import Workspace

# What a posting calls the kind of Qonto object it acts on.
LINK_KIND = {QontoEntryKind.SUPPLIER_INVOICE: "invoice", QontoEntryKind.TRANSACTION: "transaction"}
# Postings whose Qonto object is the record's in Qonto: a link, or the invoice an upload created.
HOLDING_ACTIONS = [PostingAction.LINK, PostingAction.UPLOAD, PostingAction.CREDIT_NOTE]


def record_label(record: SourceRecord) -> str:
    """How a person names a record: "Bill 603" (its invoice number, else its QuickBooks ID)."""
    return f"{record.entity_type} {record.invoice_number or record.qbo_id}"


def entry_holders(
    *,
    workspace: Workspace | int,
    qonto_ids: Iterable[str],
    exclude_record_id: int | None = None,
) -> dict[str, SourceRecord]:
    """{Qonto ID: the record holding it} for these entries, in two queries whatever their number.

    A record holds an entry through a live link, or through a posting that reached (or is on its
    way to) Qonto for it: an upload that created that invoice.
    """
    ids = sorted({qonto_id for qonto_id in qonto_ids if qonto_id})
    if not ids:
        return {}
    links = QontoLink.objects.for_workspace(workspace).filter(qonto_id__in=ids, live=True)
    postings = (
        Posting.objects.for_workspace(workspace)
        .filter(qonto_id__in=ids, action__in=HOLDING_ACTIONS)
        .exclude(state=PostingState.FAILED)
    )
    if exclude_record_id is not None:
        links = links.exclude(record_id=exclude_record_id)
        postings = postings.exclude(record_id=exclude_record_id)
    held: dict[str, SourceRecord] = {}
    for row in links.select_related("record").order_by("created_at"):
        held.setdefault(row.qonto_id, row.record)
    for row in postings.select_related("record").order_by("created_at"):
        held.setdefault(row.qonto_id, row.record)
    return held


def entry_holder(*, record: SourceRecord, entry: QontoEntry) -> SourceRecord | None:
    """The other record holding this entry, or None when it is free for `record`."""
    return entry_holders(
        workspace=record.workspace_id, qonto_ids=[entry.qonto_id], exclude_record_id=record.pk
    ).get(entry.qonto_id)


def qonto_link_claim(*, record: SourceRecord, target_kind: str, qonto_id: str) -> QontoLink:
    """Claim the entry for this record (caller's transaction); EntryTaken if another has it."""
    holder = entry_holders(
        workspace=record.workspace_id, qonto_ids=[qonto_id], exclude_record_id=record.pk
    ).get(qonto_id)
    if holder is not None:
        raise EntryTaken(f"This Qonto entry is already linked to {record_label(holder)}.")
    try:
        with transaction.atomic():
            link, created = QontoLink.objects.get_or_create(
                workspace_id=record.workspace_id,
                record=record,
                target_kind=target_kind,
                qonto_id=qonto_id,
            )
            if not created and not link.live:
                QontoLink.objects.filter(pk=link.pk).update(live=True, released_at=None)
                link.live, link.released_at = True, None
    except IntegrityError as exc:  # a claim committed between the check and ours
        raise EntryTaken("This Qonto entry was just linked to another record.") from exc
    return link


def qonto_link_release(*, posting: Posting) -> None:
    """A link posting failed or was withdrawn: its claim ends unless another posting keeps it."""
    if posting.action != PostingAction.LINK or not posting.qonto_id:
        return
    kept = (
        Posting.objects.filter(
            record_id=posting.record_id, action=PostingAction.LINK, qonto_id=posting.qonto_id
        )
        .exclude(pk=posting.pk)
        .exclude(state=PostingState.FAILED)
        .exists()
    )
    if kept:
        return
    QontoLink.objects.filter(
        record_id=posting.record_id, qonto_id=posting.qonto_id, live=True
    ).update(live=False, released_at=timezone.now())
