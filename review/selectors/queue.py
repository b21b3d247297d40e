"""The review queue and the refused list: filters, search, sorts, and the bulk selection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from connectors.qonto.models import QontoEntry
from connectors.quickbooks.models import DOCUMENT_KINDS, RecordState, SourceRecord
from matching.models import Proposal
from review.selectors.records import candidates_prefetch
from well.models import Workspace

# Each sort ends on the ID of the table whose column it sorts by, so that one index gives the
# whole order (source_record_*_idx, proposal_current_*_idx): a page deep in 50,000 rows reads
# its rows in index order instead of sorting them all.
SORTS = {
    "confidence": ("confidence", "pk"),
    "-confidence": ("-confidence", "-pk"),
    "amount": ("record__total_amount", "record_id"),
    "-amount": ("-record__total_amount", "-record_id"),
    "date": ("record__issue_date", "record_id"),
    "-date": ("-record__issue_date", "-record_id"),
    "vendor": ("record__supplier_name", "record_id"),
    "-vendor": ("-record__supplier_name", "-record_id"),
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


def proposals_in_state(
    *, workspace: Workspace | int, states, filters: QueueFilters | None = None
) -> QuerySet[Proposal]:
    """Current proposals of records in these states, filtered, searched and sorted."""
    f = filters or QueueFilters()
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    query = (
        Proposal.objects.for_workspace(workspace_id)
        # The record's own workspace too (always the same): the record-side indexes lead with it.
        .filter(is_current=True, record__workspace_id=workspace_id, record__state__in=list(states))
        .select_related("record", "target")
        # Not shown in a list row: the engine's features and comparisons, the enrichment, and
        # the Qonto entry's raw payload (the row shows its typed columns).
        .defer("features", "comparisons", "counterparty", "target__payload")
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
        query = query.filter(_search_condition(workspace=workspace, words=f.search.strip()))
    return query.order_by(*SORTS.get(f.sort, SORTS["-confidence"]))


SEARCH_IDS_MAX = 2000


def _search_condition(*, workspace: Workspace | int, words: str) -> Q:
    """Records or proposed Qonto entries whose names, numbers or labels contain the words.

    Each table is searched on its own, answered by its trigram indexes (PostgreSQL), where one
    OR across the joined tables reads every row of the queue. A usual search finds few rows:
    their IDs are passed on as lists, which the planner sizes right; a broad one stays a
    subquery.
    """
    records = (
        SourceRecord.objects.for_workspace(workspace)
        .filter(
            Q(supplier_name__icontains=words)
            | Q(invoice_number__icontains=words)
            | Q(entity_type__in=DOCUMENT_KINDS, qbo_id=words)  # source_record_unique's index
            | Q(label__icontains=words)
        )
        .values_list("pk", flat=True)
    )
    entries = (
        QontoEntry.objects.for_workspace(workspace)
        .filter(Q(counterparty__icontains=words) | Q(invoice_number__icontains=words))
        .values_list("pk", flat=True)
    )
    record_ids = list(records[: SEARCH_IDS_MAX + 1])
    entry_ids = list(entries[: SEARCH_IDS_MAX + 1])
    if len(record_ids) > SEARCH_IDS_MAX or len(entry_ids) > SEARCH_IDS_MAX:
        return Q(record__in=records) | Q(target__in=entries)
    # The current proposals they concern, found through the record and target indexes: given
    # these few IDs, the page query sorts a handful of rows instead of walking its sort index
    # past every row that does not match.
    proposal_ids = list(
        Proposal.objects.for_workspace(workspace)
        .filter(Q(record__in=record_ids) | Q(target__in=entry_ids), is_current=True)
        .order_by()
        .values_list("pk", flat=True)
    )
    return Q(pk__in=proposal_ids)


def review_queue(
    *, workspace: Workspace | int, filters: QueueFilters | None = None
) -> QuerySet[Proposal]:
    """Records between the thresholds (in review), each with its record and proposed entry."""
    return proposals_in_state(workspace=workspace, states=[RecordState.IN_REVIEW], filters=filters)


def refused_list(
    *, workspace: Workspace | int, filters: QueueFilters | None = None
) -> QuerySet[Proposal]:
    """Records below the review threshold with their kept candidates."""
    return proposals_in_state(
        workspace=workspace, states=[RecordState.REFUSED], filters=filters
    ).prefetch_related(candidates_prefetch())


def waiting_for_payment_list(
    *, workspace: Workspace | int, filters: QueueFilters | None = None
) -> QuerySet[Proposal]:
    """Purchases waiting for their bank payment in Qonto: out of the queue until it comes."""
    return proposals_in_state(
        workspace=workspace, states=[RecordState.WAITING_PAYMENT], filters=filters
    )


def queue_reasons(*, workspace: Workspace | int) -> list[str]:
    """The gates that sent records to review, for the reason filter's choices."""
    rows = (
        Proposal.objects.for_workspace(workspace)
        .filter(is_current=True, record__state=RecordState.IN_REVIEW)
        .exclude(gates_failed=[])  # proposal_current_gated_idx holds just these
        .order_by()
        .values_list("gates_failed", flat=True)[:2000]
    )
    return sorted({gate.split(":")[0] for gates in rows for gate in gates})


def records_for_bulk(*, workspace: Workspace | int, pks: list[int]) -> list[SourceRecord]:
    """The selected records of this workspace that are still in review (others dropped)."""
    return list(
        SourceRecord.objects.for_workspace(workspace)
        .filter(pk__in=pks, state=RecordState.IN_REVIEW)
        .order_by("pk")
    )
