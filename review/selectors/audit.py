"""The audit trail: one record's events (the same on its page and in the API), its timeline
in words, the workspace's log with its filters, and a record's audit pack for an auditor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from connectors.qonto.models import Posting
from connectors.quickbooks.models import SourceRecord
from review.selectors.records import (
    candidates_prefetch,
    record_decisions,
    record_postings,
    record_proposals,
)
from review.words import band_words, state_words, verb_words
from well import formats
from well.models import AuditEvent, Workspace

# What happens to the connections during a record's life, shown on its trail.
CONNECTION_VERBS = (
    "connection.disconnected",
    "connection.needs_reconnect",
    "connection.reconnected",
    "connection.connected",
)


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
    """What happened, in the reader's language (no verb codes, no raw states)."""
    after = event.after or {}
    before = event.before or {}
    verb = event.verb
    what = verb_words(verb)
    if verb == "records.pulled":
        return _("pulled from QuickBooks (first arrival)")
    if verb == "record.proposed":
        thresholds = after.get("thresholds") or {}
        target = (after.get("target") or {}).get("qonto_id")
        action = _("link to Qonto entry %(id)s") % {"id": target} if target else _("upload as new")
        return _(
            "proposed: %(action)s at confidence %(confidence)s (%(band)s; auto-post from "
            "%(auto)s, review from %(review)s)"
        ) % {
            "action": action,
            "confidence": formats.percent(after.get("confidence", 0)),
            "band": band_words(after.get("band") or ""),
            "auto": formats.percent(thresholds.get("auto", 0)),
            "review": formats.percent(thresholds.get("review", 0)),
        }
    if verb.startswith("posting."):
        bits = [what]
        if after.get("qonto_id"):
            bits.append(_("Qonto ID %(id)s") % {"id": after["qonto_id"]})
        if after.get("message"):
            bits.append(str(after["message"]))
        return "; ".join(bits)
    if before.get("state") or after.get("state"):
        return _("%(what)s: %(before)s → %(after)s") % {
            "what": what,
            "before": state_words(before.get("state")),
            "after": state_words(after.get("state")),
        }
    return what


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


def record_audit_events(
    *, record: SourceRecord, postings: list | None = None
) -> QuerySet[AuditEvent]:
    """Every audit event about this record, oldest first: its own, its postings', its first
    arrival (a batch event naming it), and the connection events during its life.

    The record page and the partner API both read this (the API newest first).
    """
    events = AuditEvent.objects.for_workspace(record.workspace_id)
    # Exact object types, so that the (workspace, object_type, object_id, created_at) index
    # answers each part of this read without scanning the workspace's trail.
    record_type = "quickbooks." + record.entity_type.lower()
    if postings is not None:  # the caller has them already (the record page)
        posting_ids = [str(p.pk) for p in postings]
    else:
        posting_ids = [
            str(pk)
            for pk in Posting.objects.for_workspace(record.workspace_id)
            .filter(record=record)
            .values_list("pk", flat=True)
        ]
    window = (
        record.first_pulled_at - timedelta(minutes=5),
        record.first_pulled_at + timedelta(minutes=30),
    )
    # The batch event of its first arrival names it among the QuickBooks IDs of the batch.
    pulled = next(
        (
            e.pk
            for e in events.filter(
                object_type=record_type,
                object_id="",
                created_at__range=window,
                verb="records.pulled",
            ).only("pk", "after")
            if record.qbo_id in ((e.after or {}).get("qbo_ids") or [])
        ),
        None,
    )
    about = Q(object_type=record_type, object_id=str(record.pk)) | Q(
        object_type="connectors.connection",
        verb__in=CONNECTION_VERBS,
        created_at__gte=record.first_pulled_at,
    )
    if posting_ids:
        about |= Q(object_type="connectors.posting", object_id__in=posting_ids)
    if pulled is not None:
        about |= Q(pk=pulled)
    return events.filter(about).order_by("created_at", "pk")


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
    verbs = (
        AuditEvent.objects.for_workspace(workspace)
        .values_list("verb", flat=True)
        .distinct()
        .order_by("verb")[:200]
    )
    return sorted({v.split(".")[0] + "." for v in verbs} | set(verbs))


def record_audit_pack(*, record: SourceRecord) -> dict:
    """Everything an auditor needs about one record, as plain JSON-able data."""
    proposals = list(record_proposals(record=record).prefetch_related(candidates_prefetch()))
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
