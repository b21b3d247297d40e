"""Syncing a connection now, at most 24 times in any 24 hours: the service and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from connectors.models import ConnectionStatus, SyncRun, SyncStatus
from connectors.sync_requests import (
    SYNCS_PER_DAY,
    NotConnected,
    SyncCapReached,
    connection_sync_request,
)
from well.audit import Actor
from well.models import AuditEvent

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")


def runs(books, n: int, *, hours_ago: float = 1, status=SyncStatus.SUCCEEDED) -> None:
    started = timezone.now() - timedelta(hours=hours_ago)
    SyncRun.objects.bulk_create(
        SyncRun(workspace=books.workspace, connection=books.qbo, status=status, started_at=started)
        for _ in range(n)
    )


def test_a_request_under_the_cap_queues_one_sync_with_its_audit_event(books):
    runs(books, SYNCS_PER_DAY - 1)
    runs(books, 5, hours_ago=25)  # outside the window
    runs(books, 5, status=SyncStatus.SKIPPED)  # skipped runs did not sync
    tasks = OrmQ.objects.count()
    requested = connection_sync_request(connection=books.qbo, actor=ACTOR, full=True)
    assert requested.syncs_last_24h == SYNCS_PER_DAY - 1
    assert OrmQ.objects.count() == tasks + 1
    event = AuditEvent.objects.get(verb="connection.sync_requested")
    assert event.after == {"full": True} and event.actor_label == ACTOR.label


def test_the_request_beyond_the_cap_is_refused_with_the_wait_and_audited(books):
    runs(books, 1, hours_ago=23)  # the oldest: its slot frees in about an hour
    runs(books, SYNCS_PER_DAY - 1)
    tasks = OrmQ.objects.count()
    with pytest.raises(SyncCapReached) as refused:
        connection_sync_request(connection=books.qbo, actor=ACTOR)
    assert timedelta(minutes=59) < refused.value.retry_after <= timedelta(hours=1)
    assert OrmQ.objects.count() == tasks
    assert not AuditEvent.objects.filter(verb="connection.sync_requested").exists()
    event = AuditEvent.objects.get(verb="connection.sync_refused")
    assert event.after == {"syncs_last_24h": SYNCS_PER_DAY, "cap": SYNCS_PER_DAY}


def test_a_disconnected_connection_is_not_queued_and_nothing_is_written(books):
    books.qbo.status = ConnectionStatus.DISCONNECTED
    books.qbo.save(update_fields=["status"])
    events = AuditEvent.objects.count()
    with pytest.raises(NotConnected):
        connection_sync_request(connection=books.qbo, actor=ACTOR)
    assert AuditEvent.objects.count() == events


def test_the_api_answers_202_then_429_with_retry_after_at_the_cap(books, client_for):
    client = client_for(books.workspace)
    path = f"/api/v1/connections/{books.qbo.pk}/sync/"
    runs(books, SYNCS_PER_DAY - 1)
    accepted = client.post(path, {}, format="json")
    assert accepted.status_code == 202, accepted.content
    assert accepted.json() == {"queued": True, "syncs_last_24h": SYNCS_PER_DAY - 1}
    runs(books, 1)
    refused = client.post(path, {}, format="json")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert 23 * 3600 - 60 < int(refused["Retry-After"]) <= 23 * 3600  # the oldest run is 1 h old
    assert AuditEvent.objects.filter(verb="connection.sync_refused").count() == 1


def test_the_api_answers_409_for_a_connection_that_needs_reconnecting(books, client_for):
    books.qbo.status = ConnectionStatus.NEEDS_RECONNECT
    books.qbo.save(update_fields=["status"])
    response = client_for(books.workspace).post(
        f"/api/v1/connections/{books.qbo.pk}/sync/", {}, format="json"
    )
    assert response.status_code == 409
