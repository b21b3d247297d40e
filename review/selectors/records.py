"""One record's reads: its proposals, decisions, postings, files, and the entries to pin."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch, QuerySet

from connectors.qonto.models import Posting, QontoEntry
from connectors.quickbooks.models import DOCUMENT_KINDS, SourceFile, SourceRecord
from matching.models import Candidate, Proposal
from review.models import Decision
from well.models import Workspace


def candidates_prefetch() -> Prefetch:
    return Prefetch(
        "candidates",
        queryset=Candidate.objects.select_related("target").order_by("rank"),
    )


def record_get(*, workspace: Workspace | int, pk: int) -> SourceRecord | None:
    """One record of this workspace (None for another tenant's ID)."""
    return SourceRecord.objects.for_workspace(workspace).filter(pk=pk).first()


def record_current_proposal(*, record: SourceRecord) -> Proposal | None:
    """The record's current proposal with its ranked candidates and their entries."""
    return (
        Proposal.objects.for_workspace(record.workspace_id)
        .filter(record=record, is_current=True)
        .select_related("target", "record")
        .prefetch_related(candidates_prefetch())
        .first()
    )


def record_proposals(*, record: SourceRecord) -> QuerySet[Proposal]:
    """Every proposal of the record, newest first (the history kept)."""
    return (
        Proposal.objects.for_workspace(record.workspace_id)
        .filter(record=record)
        .select_related("target")
        .order_by("-created_at", "-pk")
    )


def record_decisions(*, record: SourceRecord) -> QuerySet[Decision]:
    """Who decided what about this record, newest first."""
    return (
        Decision.objects.for_workspace(record.workspace_id)
        .filter(record=record)
        .select_related("right_target", "proposal", "user")
        .order_by("-created_at", "-pk")
    )


def decisions_for_workspace(*, workspace: Workspace | int) -> QuerySet[Decision]:
    return (
        Decision.objects.for_workspace(workspace)
        .select_related("record", "right_target", "user")
        .order_by("-created_at", "-pk")
    )


def record_detail_get(*, workspace: Workspace | int, pk: int) -> SourceRecord | None:
    """One transaction record of this workspace with its connection (None for another's)."""
    return (
        SourceRecord.objects.for_workspace(workspace)
        .filter(pk=pk, entity_type__in=DOCUMENT_KINDS)
        .select_related("connection")
        .first()
    )


def record_postings(*, record: SourceRecord):
    """Every posting of the record toward Qonto, newest first."""
    return (
        Posting.objects.for_workspace(record.workspace_id)
        .filter(record=record)
        .order_by("-created_at")
    )


def record_files(*, record: SourceRecord):
    """The record's QuickBooks attachments (good ones and refused ones)."""
    return (
        SourceFile.objects.for_workspace(record.workspace_id)
        .filter(record=record)
        .order_by("-fetched_at")
    )


def record_file_get(*, workspace: Workspace | int, record_pk: int, file_pk: int):
    """One stored attachment of one record of this workspace, or None."""
    return (
        SourceFile.objects.for_workspace(workspace)
        .filter(pk=file_pk, record_id=record_pk, error="")
        .exclude(sha256="")
        .first()
    )


def record_ledger_accounts(*, workspace: Workspace | int) -> list[tuple[str, str]]:
    """The QuickBooks company's accounts as (value, label) choices for the edit form."""
    rows = (
        SourceRecord.objects.for_workspace(workspace)
        .filter(entity_type="Account", deleted=False)
        .values_list("qbo_id", "payload")
        .order_by("qbo_id")
    )
    choices = []
    for qbo_id, payload in rows:
        number = payload.get("AcctNum") or ""
        name = payload.get("Name") or qbo_id
        choices.append((number or qbo_id, f"{number} {name}".strip()))
    return sorted(choices, key=lambda c: c[1])


def qonto_entry_find(*, workspace: Workspace | int, key: str):
    """A Qonto entry of this workspace by our ID or by Qonto's ID (pin by hand), or None."""
    key = (key or "").strip()
    if not key:
        return None
    entries = QontoEntry.objects.for_workspace(workspace)
    try:
        found = entries.filter(pk=uuid.UUID(key)).first()
    except ValueError:
        found = None
    return found or entries.filter(qonto_id=key).order_by("kind").first()
