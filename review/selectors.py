"""Reads for the review pages and the partner API: the queue, refused records, one record.

Every list joins what it shows (select_related / prefetch_related): the query count of a page
does not grow with its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast

from connectors.models import RecordState, SourceRecord
from matching.models import Candidate, Decision, Proposal
from well.models import Workspace

SORTS = {
    "confidence": ("confidence", "pk"),
    "-confidence": ("-confidence", "-pk"),
    "amount": ("record__total_amount", "pk"),
    "-amount": ("-record__total_amount", "-pk"),
    "date": ("record__issue_date", "pk"),
    "-date": ("-record__issue_date", "-pk"),
    "vendor": ("record__supplier_name", "pk"),
    "-vendor": ("-record__supplier_name", "-pk"),
    "newest": ("-created_at", "-pk"),
    "oldest": ("created_at", "pk"),
}


@dataclass(frozen=True)
class QueueFilters:
    """What the queue page's filter form (or the API's query string) asks for."""

    vendor: str = ""  # QuickBooks vendor ID or part of the supplier name
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    date_from: date | None = None
    date_to: date | None = None
    kind: str = ""  # QuickBooks entity type: Bill, Purchase, VendorCredit
    confidence_min: float | None = None
    confidence_max: float | None = None
    reason: str = ""  # words in the reasons (e.g. "period closed", "tax ID")
    search: str = ""
    sort: str = "-confidence"


def _candidates_prefetch() -> Prefetch:
    return Prefetch(
        "candidates",
        queryset=Candidate.objects.select_related("target").order_by("rank"),
    )


def proposals_in_state(
    *, workspace: Workspace | int, states, filters: QueueFilters | None = None
) -> QuerySet[Proposal]:
    """Current proposals of records in these states, filtered, searched and sorted."""
    f = filters or QueueFilters()
    query = (
        Proposal.objects.for_workspace(workspace)
        .filter(is_current=True, record__state__in=list(states))
        .select_related("record", "target")
    )
    if f.vendor:
        query = query.filter(
            Q(record__vendor_qbo_id=f.vendor) | Q(record__supplier_name__icontains=f.vendor)
        )
    if f.amount_min is not None:
        query = query.filter(record__total_amount__gte=f.amount_min)
    if f.amount_max is not None:
        query = query.filter(record__total_amount__lte=f.amount_max)
    if f.date_from:
        query = query.filter(record__issue_date__gte=f.date_from)
    if f.date_to:
        query = query.filter(record__issue_date__lte=f.date_to)
    if f.kind:
        query = query.filter(record__entity_type=f.kind)
    if f.confidence_min is not None:
        query = query.filter(confidence__gte=f.confidence_min)
    if f.confidence_max is not None:
        query = query.filter(confidence__lte=f.confidence_max)
    if f.reason:
        query = query.annotate(reasons_text=Cast("reasons", TextField())).filter(
            reasons_text__icontains=f.reason
        )
    if f.search:
        words = f.search.strip()
        query = query.filter(
            Q(record__supplier_name__icontains=words)
            | Q(record__invoice_number__icontains=words)
            | Q(record__qbo_id=words)
            | Q(record__label__icontains=words)
            | Q(target__counterparty__icontains=words)
            | Q(target__invoice_number__icontains=words)
        )
    return query.order_by(*SORTS.get(f.sort, SORTS["-confidence"]))


def review_queue(
    *, workspace: Workspace | int, filters: QueueFilters | None = None
) -> QuerySet[Proposal]:
    """Records between the thresholds (in review), each with its record and proposed entry."""
    return proposals_in_state(
        workspace=workspace, states=[RecordState.IN_REVIEW], filters=filters
    ).prefetch_related(_candidates_prefetch())


def refused_list(
    *, workspace: Workspace | int, filters: QueueFilters | None = None
) -> QuerySet[Proposal]:
    """Records below the review threshold with their kept candidates."""
    return proposals_in_state(
        workspace=workspace, states=[RecordState.REFUSED], filters=filters
    ).prefetch_related(_candidates_prefetch())


def queue_reasons(*, workspace: Workspace | int) -> list[str]:
    """The gates that sent records to review, for the reason filter's choices."""
    rows = (
        Proposal.objects.for_workspace(workspace)
        .filter(is_current=True, record__state=RecordState.IN_REVIEW)
        .exclude(gates_failed=[])
        .values_list("gates_failed", flat=True)[:2000]
    )
    return sorted({gate.split(":")[0] for gates in rows for gate in gates})


def record_get(*, workspace: Workspace | int, pk: int) -> SourceRecord | None:
    """One record of this workspace (None for another tenant's ID)."""
    return SourceRecord.objects.for_workspace(workspace).filter(pk=pk).first()


def record_current_proposal(*, record: SourceRecord) -> Proposal | None:
    """The record's current proposal with its ranked candidates and their entries."""
    return (
        Proposal.objects.for_workspace(record.workspace_id)
        .filter(record=record, is_current=True)
        .select_related("target", "record")
        .prefetch_related(_candidates_prefetch())
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
