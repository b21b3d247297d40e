"""The dashboard: counts by state, the charts' numbers, running syncs, connection health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, F, IntegerField, Q, Value
from django.db.models.functions import Cast, Floor, Least, TruncDate
from django.utils import timezone

from connectors.models import SyncRun
from connectors.quickbooks.models import DOCUMENT_KINDS, RecordState, SourceRecord
from connectors.selectors import connections_for_workspace
from matching.models import Proposal
from review.models import Decision
from well.models import Workspace

DASHBOARD_STATES = ("auto_approved", "in_review", "refused", "posted", "failed")


def record_state_counts(*, workspace: Workspace | int) -> dict[str, int]:
    """How many transaction records are in each state (every state present, zero included)."""
    rows = (
        SourceRecord.objects.for_workspace(workspace)
        .filter(entity_type__in=DOCUMENT_KINDS, deleted=False)
        .values("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {state: 0 for state in RecordState.values}
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


def confidence_histogram(*, workspace: Workspace | int, bins: int = 10) -> list[int]:
    """Current proposals per confidence bin ([0, 0.1), ..., [0.9, 1.0])."""
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
    return (
        SyncRun.objects.for_workspace(workspace)
        .filter(status="running")
        .select_related("connection")
        .order_by("-started_at")
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
