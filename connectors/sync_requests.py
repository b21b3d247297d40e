"""A person's (or a partner's) request to sync a connection now, within the daily cap.

Every "Sync now" (the connection pages, the onboarding wizard, the API) comes here. Every
connection syncs at most SYNCS_PER_DAY times in any 24 hours (hourly syncs included): a request
beyond the cap is refused, with the time until a slot frees, and the refusal is in the audit
trail next to the accepted requests (`connection.sync_requested`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors.dispatch import sync_enqueue
from connectors.models import Connection, ConnectionStatus, Provider, SyncRun, SyncStatus
from well.audit import Actor, audit_event_record

SYNCS_PER_DAY = 24


class SyncCapReached(Exception):
    """The connection has used its syncs of the last 24 hours; `retry_after` says for how long."""

    def __init__(self, *, done: int, retry_after: timedelta) -> None:
        self.done = done
        self.retry_after = retry_after
        super().__init__(
            _("This connection has synced %(n)d times in the last 24 hours.") % {"n": done}
        )


class NotConnected(Exception):
    """The connection cannot sync until it is reconnected."""


@dataclass(frozen=True)
class SyncRequested:
    syncs_last_24h: int  # before this one


def syncs_in_last_day(
    *, connection: Connection, now: datetime | None = None
) -> tuple[int, datetime | None]:
    """Syncs started in the last 24 hours and when the oldest of them started (the window)."""
    now = now or timezone.now()
    runs = (
        SyncRun.objects.for_workspace(connection.workspace_id)
        .filter(connection=connection, started_at__gte=now - timedelta(days=1))
        .exclude(status=SyncStatus.SKIPPED)
    )
    return runs.count(), runs.order_by("started_at").values_list("started_at", flat=True).first()


def connection_sync_request(
    *, connection: Connection, actor: Actor, full: bool = False
) -> SyncRequested:
    """Queue a sync now, or raise SyncCapReached (the refusal audited) or NotConnected."""
    refused = None
    queued = False
    with transaction.atomic():
        # One request at a time per connection: two at the 24th sync cannot both pass the check.
        Connection.objects.select_for_update().filter(pk=connection.pk).first()
        now = timezone.now()
        done, oldest = syncs_in_last_day(connection=connection, now=now)
        if done >= SYNCS_PER_DAY:
            wait = max(oldest + timedelta(days=1) - now, timedelta(seconds=1))
            audit_event_record(
                workspace=connection.workspace_id,
                actor=actor,
                verb="connection.sync_refused",
                obj=connection,
                after={"syncs_last_24h": done, "cap": SYNCS_PER_DAY},
                reason=f"daily cap reached; next slot in {int(wait.total_seconds())} s",
            )
            refused = SyncCapReached(done=done, retry_after=wait)
        elif connection.status == ConnectionStatus.CONNECTED:
            # Qonto is always read incrementally: "full" means something to QuickBooks only.
            quickbooks = connection.provider == Provider.QUICKBOOKS
            audit_event_record(
                workspace=connection.workspace_id,
                actor=actor,
                verb="connection.sync_requested",
                obj=connection,
                after={"full": full} if quickbooks else None,
            )
            sync_enqueue(connection=connection, trigger="manual", full=full and quickbooks)
            queued = True
    if refused is not None:
        raise refused  # after the commit: the refusal stays in the audit trail
    if not queued:
        raise NotConnected("This connection is not connected; reconnect it in Well first.")
    return SyncRequested(syncs_last_24h=done)
