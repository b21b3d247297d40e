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
    from connectors.qonto.models import QontoEntry

    records = (
        SourceRecord.objects.for_workspace(workspace)
        .filter(
            Q(supplier_name__icontains=words)
            | Q(invoice_number__icontains=words)
            | Q(entity_type__in=RECORD_KINDS, qbo_id=words)  # source_record_unique's index
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
    ).prefetch_related(_candidates_prefetch())


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


# --- the accountant pages (issue 7): dashboard, timeline, audit log, what-if ------------------
# New functions only, below this line; each is one read for one page or one part of a page.

RECORD_KINDS = ("Bill", "Purchase", "VendorCredit")
DASHBOARD_STATES = ("auto_approved", "in_review", "refused", "posted", "failed")
CHANGING_KINDS = ("reject", "pin", "upload_as_new", "override")


def record_state_counts(*, workspace: Workspace | int) -> dict[str, int]:
    """How many transaction records are in each state (every state present, zero included)."""
    from django.db.models import Count

    rows = (
        SourceRecord.objects.for_workspace(workspace)
        .filter(entity_type__in=RECORD_KINDS, deleted=False)
        .values("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {state: 0 for state in RecordState.values}
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


def confidence_histogram(*, workspace: Workspace | int, bins: int = 10) -> list[int]:
    """Current proposals per confidence bin ([0, 0.1), ..., [0.9, 1.0])."""
    from django.db.models import Count, F, IntegerField
    from django.db.models.functions import Cast, Floor, Least

    rows = (
        Proposal.objects.for_workspace(workspace)
        .filter(is_current=True)
        .annotate(
            bin=Least(Cast(Floor(F("confidence") * _int(bins)), IntegerField()), _int(bins - 1))
        )
        .values("bin")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = [0] * bins
    for row in rows:
        counts[max(0, min(bins - 1, int(row["bin"])))] += row["n"]
    return counts


def _int(number: int):
    from django.db.models import IntegerField, Value

    return Value(number, output_field=IntegerField())


@dataclass(frozen=True)
class DayVolume:
    day: date
    proposed: int
    auto: int

    @property
    def auto_rate(self) -> float:
        return self.auto / self.proposed if self.proposed else 0.0


def proposal_volume_by_day(*, workspace: Workspace | int, days: int = 30) -> list[DayVolume]:
    """Proposals made per day over the last `days` days, and how many were auto-approved."""
    from datetime import timedelta

    from django.db.models import Count
    from django.db.models.functions import TruncDate
    from django.utils import timezone

    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    rows = (
        Proposal.objects.for_workspace(workspace)
        .filter(created_at__date__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"), auto=Count("id", filter=Q(band="auto")))
        .order_by()
    )
    found = {row["day"]: row for row in rows}
    out = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        row = found.get(day)
        out.append(DayVolume(day, row["n"] if row else 0, row["auto"] if row else 0))
    return out


def decisions_per_reviewer(*, workspace: Workspace | int, limit: int = 8) -> list[tuple[str, int]]:
    """People (and API keys) by number of decisions, most first."""
    from django.db.models import Count

    rows = (
        Decision.objects.for_workspace(workspace)
        .exclude(actor_type="system")
        .values("actor_label")
        .annotate(n=Count("id"))
        .order_by("-n", "actor_label")[:limit]
    )
    return [(row["actor_label"], row["n"]) for row in rows]


def sync_runs_running(*, workspace: Workspace | int):
    """Sync runs still running (the dashboard shows their progress)."""
    from connectors.models import SyncRun

    return (
        SyncRun.objects.for_workspace(workspace)
        .filter(status="running")
        .select_related("connection")
        .order_by("-started_at")
    )


def record_detail_get(*, workspace: Workspace | int, pk: int) -> SourceRecord | None:
    """One transaction record of this workspace with its connection (None for another's)."""
    return (
        SourceRecord.objects.for_workspace(workspace)
        .filter(pk=pk, entity_type__in=RECORD_KINDS)
        .select_related("connection")
        .first()
    )


def record_postings(*, record: SourceRecord):
    """Every posting of the record toward Qonto, newest first."""
    from connectors.qonto.models import Posting

    return (
        Posting.objects.for_workspace(record.workspace_id)
        .filter(record=record)
        .order_by("-created_at")
    )


def record_files(*, record: SourceRecord):
    """The record's QuickBooks attachments (good ones and refused ones)."""
    from connectors.models import SourceFile

    return (
        SourceFile.objects.for_workspace(record.workspace_id)
        .filter(record=record)
        .order_by("-fetched_at")
    )


def record_file_get(*, workspace: Workspace | int, record_pk: int, file_pk: int):
    """One stored attachment of one record of this workspace, or None."""
    from connectors.models import SourceFile

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


@dataclass(frozen=True)
class TimelineEntry:
    at: object
    verb: str
    actor: str
    actor_type: str
    summary: str
    reason: str
    before: object
    after: object
    event_id: int


def _event_summary(event) -> str:
    after = event.after or {}
    before = event.before or {}
    verb = event.verb
    if verb == "records.pulled":
        return "pulled from QuickBooks (first arrival)"
    if verb == "record.proposed":
        thresholds = after.get("thresholds") or {}
        target = (after.get("target") or {}).get("qonto_id")
        action = "link to " + target if target else "upload as new"
        return (
            f"proposed: {action} at confidence {after.get('confidence', 0):.2f} "
            f"({after.get('band')}; auto ≥ {thresholds.get('auto', 0):.2f}, "
            f"review ≥ {thresholds.get('review', 0):.2f})"
        )
    if verb.startswith("posting."):
        bits = [verb.split(".", 1)[1].replace("_", " ")]
        for key in ("qonto_id", "outcome", "error_code", "message"):
            if after.get(key):
                bits.append(f"{key.replace('_', ' ')}: {after[key]}")
        return "posting " + "; ".join(str(b) for b in bits)
    if verb.startswith("connection."):
        return verb.split(".", 1)[1].replace("_", " ") + f" ({event.object_type or 'connection'})"
    if before.get("state") or after.get("state"):
        return f"{verb.split('.', 1)[-1].replace('_', ' ')}: {before.get('state', '—')} → " + str(
            after.get("state", "—")
        )
    return verb.replace(".", " ").replace("_", " ")


def _timeline_entry(event) -> TimelineEntry:
    return TimelineEntry(
        at=event.created_at,
        verb=event.verb,
        actor=event.actor_label,
        actor_type=event.actor_type,
        summary=_event_summary(event),
        reason=event.reason,
        before=event.before,
        after=event.after,
        event_id=event.pk,
    )


def record_audit_events(*, record: SourceRecord, postings: list | None = None) -> list:
    """Every audit event about this record, oldest first: its own, its postings', its first
    arrival (a batch event naming it), and the connection events during its life."""
    from datetime import timedelta

    from connectors.qonto.models import Posting
    from well.models import AuditEvent

    events = AuditEvent.objects.for_workspace(record.workspace_id)
    # Exact object types, so that the (workspace, object_type, object_id, created_at) index
    # answers each of these reads without scanning the workspace's trail.
    record_type = "quickbooks." + record.entity_type.lower()
    own = list(events.filter(object_type=record_type, object_id=str(record.pk)))
    if postings is not None:  # the caller has them already (the record page)
        posting_ids = [str(p.pk) for p in postings]
    else:
        posting_ids = [
            str(pk)
            for pk in Posting.objects.for_workspace(record.workspace_id)
            .filter(record=record)
            .values_list("pk", flat=True)
        ]
    postings = (
        list(events.filter(object_type="connectors.posting", object_id__in=posting_ids))
        if posting_ids
        else []
    )
    window = (
        record.first_pulled_at - timedelta(minutes=5),
        record.first_pulled_at + timedelta(minutes=30),
    )
    pulled = [
        e
        for e in events.filter(
            object_type=record_type, object_id="", created_at__range=window, verb="records.pulled"
        )
        if record.qbo_id in ((e.after or {}).get("qbo_ids") or [])
    ]
    connection = list(
        events.filter(
            object_type="connectors.connection",
            verb__in=[
                "connection.disconnected",
                "connection.needs_reconnect",
                "connection.reconnected",
                "connection.connected",
            ],
            created_at__gte=record.first_pulled_at,
        )
    )
    everything = {e.pk: e for e in [*own, *postings, *pulled[:1], *connection]}
    return sorted(everything.values(), key=lambda e: (e.created_at, e.pk))


def record_timeline(*, record: SourceRecord, postings: list | None = None) -> list[TimelineEntry]:
    """The record's story in words, oldest first."""
    return [_timeline_entry(e) for e in record_audit_events(record=record, postings=postings)]


@dataclass(frozen=True)
class AuditFilters:
    verb: str = ""  # a prefix: "record.", "posting.", "connection.", or a full verb
    actor: str = ""
    object_id: str = ""
    date_from: date | None = None
    date_to: date | None = None
    search: str = ""


def audit_log(*, workspace: Workspace | int, filters: AuditFilters | None = None):
    """The workspace's audit events, newest first, filtered."""
    from well.models import AuditEvent

    f = filters or AuditFilters()
    query = AuditEvent.objects.for_workspace(workspace)
    if f.verb:
        query = query.filter(verb__startswith=f.verb)
    if f.actor:
        query = query.filter(actor_label__icontains=f.actor)
    if f.object_id:
        query = query.filter(object_id=f.object_id)
    if f.date_from:
        query = query.filter(created_at__date__gte=f.date_from)
    if f.date_to:
        query = query.filter(created_at__date__lte=f.date_to)
    if f.search:
        query = query.filter(Q(reason__icontains=f.search) | Q(verb__icontains=f.search))
    return query.order_by("-created_at", "-id")


def audit_verbs(*, workspace: Workspace | int) -> list[str]:
    """The verb families present in the workspace's trail, for the filter's choices."""
    from well.models import AuditEvent

    verbs = (
        AuditEvent.objects.for_workspace(workspace)
        .values_list("verb", flat=True)
        .distinct()
        .order_by("verb")[:200]
    )
    return sorted({v.split(".")[0] + "." for v in verbs} | set(verbs))


def record_audit_pack(*, record: SourceRecord) -> dict:
    """Everything an auditor needs about one record, as plain JSON-able data."""
    proposals = list(record_proposals(record=record).prefetch_related(_candidates_prefetch()))
    return {
        "record": {
            "id": record.pk,
            "entity_type": record.entity_type,
            "qbo_id": record.qbo_id,
            "sync_token": record.sync_token,
            "state": record.state,
            "payload_hash": record.payload_hash,
            "payload": record.payload,
            "first_pulled_at": record.first_pulled_at,
            "pulled_at": record.pulled_at,
        },
        "proposals": [
            {
                "id": p.pk,
                "version": p.record_version,
                "action": p.action,
                "target": p.target.qonto_id if p.target else None,
                "confidence": p.confidence,
                "band": p.band,
                "thresholds": {"auto": p.auto_threshold, "review": p.review_threshold},
                "rule": p.rule,
                "gates_failed": p.gates_failed,
                "reasons": p.reasons,
                "model_version": p.model_version,
                "is_current": p.is_current,
                "created_at": p.created_at,
                "candidates": [
                    {
                        "rank": c.rank,
                        "action": c.action,
                        "target": c.target.qonto_id if c.target else None,
                        "confidence": c.confidence,
                        "signals": c.signals,
                        "reasons": c.reasons,
                    }
                    for c in p.candidates.all()
                ],
            }
            for p in proposals
        ],
        "decisions": [
            {
                "kind": d.kind,
                "by": d.actor_label,
                "actor_type": d.actor_type,
                "note": d.note,
                "right_action": d.right_action,
                "right_target": d.right_target.qonto_id if d.right_target else None,
                "edits": d.edits,
                "state_before": d.state_before,
                "state_after": d.state_after,
                "at": d.created_at,
            }
            for d in record_decisions(record=record)
        ],
        "postings": [
            {
                "action": p.action,
                "state": p.state,
                "idempotency_key": p.idempotency_key,
                "qonto_id": p.qonto_id,
                "qonto_url": p.qonto_url,
                "outcome": p.outcome,
                "message": p.message,
                "file_sha256": p.file_sha256,
                "sent_at": p.sent_at,
                "done_at": p.done_at,
            }
            for p in record_postings(record=record)
        ],
        "events": [
            {
                "id": e.pk,
                "at": e.created_at,
                "verb": e.verb,
                "actor": e.actor_label,
                "actor_type": e.actor_type,
                "before": e.before,
                "after": e.after,
                "reason": e.reason,
                "request_id": e.request_id,
            }
            for e in record_audit_events(record=record)
        ],
    }


# --- what-if --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecidedCase:
    """One decided record: the confidence proposed, and whether a person changed the outcome."""

    confidence: float
    changed: bool


@dataclass(frozen=True)
class WhatIfPoint:
    threshold: float
    auto_posted: int
    changed: int  # of those auto-posted, how many a reviewer later changed


def whatif_replay(*, cases: list[DecidedCase], thresholds: list[float]) -> list[WhatIfPoint]:
    """Replay decided history at each threshold: auto-posted count and later-changed count.

    Pure: no database; a case auto-posts at threshold t when its confidence is at least t.
    """
    points = []
    for threshold in thresholds:
        auto = [c for c in cases if c.confidence >= threshold]
        points.append(WhatIfPoint(threshold, len(auto), sum(1 for c in auto if c.changed)))
    return points


def decided_history(*, workspace: Workspace | int) -> list[DecidedCase]:
    """The workspace's decided records: each one's last person's (or the system's) judgement
    on the proposal it judged; changed when the right outcome was not the one proposed."""
    rows = (
        Decision.objects.for_workspace(workspace)
        .filter(proposal__isnull=False)
        .order_by("record_id", "-created_at", "-id")
        .values_list(
            "record_id",
            "kind",
            "right_action",
            "right_target_id",
            "proposal__action",
            "proposal__target_id",
            "proposal__confidence",
        )
    )
    cases: dict[int, DecidedCase] = {}
    for record_id, kind, action, target, p_action, p_target, confidence in rows:
        if record_id in cases:
            continue  # the newest decision of the record says what was right
        changed = kind in CHANGING_KINDS and (action, target) != (p_action, p_target)
        cases[record_id] = DecidedCase(float(confidence), changed or kind == "reject")
    auto = (
        Proposal.objects.for_workspace(workspace)
        .filter(is_current=True, band="auto")
        .exclude(record_id__in=list(cases))
        .values_list("record_id", "confidence")
    )
    for record_id, confidence in auto:
        cases[record_id] = DecidedCase(float(confidence), False)
    return list(cases.values())


def workspace_members(*, workspace: Workspace | int):
    """The workspace's members with their users, owners first."""
    from well.models import Membership

    return (
        Membership.objects.for_workspace(workspace)
        .select_related("user")
        .order_by("role", "user__email")
    )


def vendor_rules(*, workspace: Workspace | int):
    """The workspace's per-vendor overrides."""
    from matching.models import VendorRule

    return VendorRule.objects.for_workspace(workspace).order_by("vendor_name", "vendor_qbo_id")


def vendors_for_rules(*, workspace: Workspace | int) -> list[tuple[str, str]]:
    """QuickBooks vendors as (id, name) choices."""
    rows = (
        SourceRecord.objects.for_workspace(workspace)
        .filter(entity_type="Vendor", deleted=False)
        .values_list("qbo_id", "payload")
    )
    return sorted(
        ((qbo_id, p.get("DisplayName") or p.get("CompanyName") or qbo_id) for qbo_id, p in rows),
        key=lambda v: v[1].lower(),
    )


def qonto_entry_find(*, workspace: Workspace | int, key: str):
    """A Qonto entry of this workspace by our ID or by Qonto's ID (pin by hand), or None."""
    import uuid

    from connectors.qonto.models import QontoEntry

    key = (key or "").strip()
    if not key:
        return None
    entries = QontoEntry.objects.for_workspace(workspace)
    try:
        found = entries.filter(pk=uuid.UUID(key)).first()
    except ValueError:
        found = None
    return found or entries.filter(qonto_id=key).order_by("kind").first()


@dataclass
class RecordPage:
    """Everything the record page shows, read in a fixed number of queries."""

    record: SourceRecord
    proposal: Proposal | None
    candidates: list
    history: list
    decisions: list
    postings: list
    files: list
    timeline: list[TimelineEntry]
    accounts: list[tuple[str, str]]
    posted: object  # the posting that reached Qonto, if any

    @property
    def failed_postings(self) -> int:
        return sum(1 for p in self.postings if p.state == "failed")

    @property
    def pdf(self):
        return next((f for f in self.files if f.sha256 and not f.error), None)


def record_page(*, workspace: Workspace | int, pk: int) -> RecordPage | None:
    """The record page's data, or None when the record is not this workspace's."""
    record = record_detail_get(workspace=workspace, pk=pk)
    if record is None:
        return None
    proposal = record_current_proposal(record=record)
    postings = list(record_postings(record=record))
    return RecordPage(
        record=record,
        proposal=proposal,
        candidates=list(proposal.candidates.all()) if proposal else [],
        history=list(record_proposals(record=record)),
        decisions=list(record_decisions(record=record)),
        postings=postings,
        files=list(record_files(record=record)),
        timeline=record_timeline(record=record, postings=postings),
        accounts=record_ledger_accounts(workspace=workspace),
        posted=next((p for p in postings if p.state == "done"), None),
    )


def records_for_bulk(*, workspace: Workspace | int, pks: list[int]) -> list[SourceRecord]:
    """The selected records of this workspace that are still in review (others dropped)."""
    return list(
        SourceRecord.objects.for_workspace(workspace)
        .filter(pk__in=pks, state=RecordState.IN_REVIEW)
        .order_by("pk")
    )


@dataclass
class Dashboard:
    counts: dict[str, int]
    histogram: list[int]
    volume: list[DayVolume]
    reviewers: list[tuple[str, int]]
    connections: list
    running: list
    health: list

    @property
    def auto_rate(self) -> float:
        proposed = sum(d.proposed for d in self.volume)
        return sum(d.auto for d in self.volume) / proposed if proposed else 0.0


def dashboard_get(*, workspace: Workspace) -> Dashboard:
    """The dashboard's counts, charts' numbers and connection health."""
    from connectors.selectors import connections_for_workspace

    connections = list(connections_for_workspace(workspace=workspace))
    return Dashboard(
        counts=record_state_counts(workspace=workspace),
        histogram=confidence_histogram(workspace=workspace),
        volume=proposal_volume_by_day(workspace=workspace),
        reviewers=decisions_per_reviewer(workspace=workspace),
        connections=connections,
        running=list(sync_runs_running(workspace=workspace)),
        health=connection_health(connections=connections),
    )


@dataclass(frozen=True)
class ConnectionHealth:
    connection: object
    next_sync_at: object
    warnings: list[str]


def connection_health(*, connections: list, now=None) -> list[ConnectionHealth]:
    """Per connection: when the next hourly sync runs and what needs a person's attention."""
    from datetime import timedelta

    from django.utils import timezone

    now = now or timezone.now()
    out = []
    for c in connections:
        warnings = []
        next_at = None
        if c.status == "connected":
            next_at = now.replace(minute=c.sync_minute, second=0, microsecond=0)
            if next_at <= now:
                next_at += timedelta(hours=1)
            if c.refresh_expires_at and c.refresh_expires_at < now + timedelta(days=14):
                warnings.append(
                    f"The authorization ends on {c.refresh_expires_at:%d %b %Y}: reconnect before."
                )
            if c.last_good_sync_at is None:
                warnings.append("No successful sync yet.")
            elif c.last_good_sync_at < now - timedelta(hours=3):
                warnings.append("No successful sync in the last three hours.")
        elif c.status == "needs_reconnect":
            warnings.append(
                "Needs to be reconnected: " + (c.last_error or "authorization lost")[:160]
            )
        else:
            warnings.append("Disconnected: nothing is synced.")
        out.append(ConnectionHealth(c, next_at, warnings))
    return out
