"""Every "Sync now" button goes through the sync-request service and its 24-a-day cap."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from connectors.models import Provider, SyncRun, SyncStatus
from connectors.sync_requests import SYNCS_PER_DAY
from tests.factories import ConnectionFactory
from well.models import AuditEvent

pytestmark = pytest.mark.django_db

BUTTONS = [
    (Provider.QUICKBOOKS, "connectors:quickbooks_sync"),
    (Provider.QONTO, "connectors:qonto:sync"),
    (Provider.QUICKBOOKS, "onboarding:discover"),
]


@pytest.fixture
def signed_in(client, make_user, make_workspace):
    owner = make_user("owner@cap.example")
    workspace = make_workspace("Cap Co", owner=owner)
    client.force_login(owner)
    return client, workspace


def _runs(connection, count: int) -> None:
    """`count` syncs in the last 24 hours, 50 minutes apart, the newest a minute ago."""
    now = timezone.now()
    SyncRun.objects.bulk_create(
        SyncRun(
            workspace=connection.workspace,
            connection=connection,
            status=SyncStatus.SUCCEEDED,
            started_at=now - timedelta(minutes=50 * i + 1),
            finished_at=now - timedelta(minutes=50 * i),
        )
        for i in range(count)
    )


@pytest.mark.parametrize(("provider", "button"), BUTTONS)
def test_a_sync_now_past_the_daily_cap_is_refused_and_says_when(signed_in, provider, button):
    client, workspace = signed_in
    connection = ConnectionFactory(workspace=workspace, provider=provider)
    with time_machine.travel(timezone.now(), tick=False):
        _runs(connection, SYNCS_PER_DAY)

        response = client.post(reverse(button, args=[workspace.slug]))

    assert response.status_code == 302
    said = [str(m) for m in get_messages(response.wsgi_request)]
    # The oldest of the 24 started 23 * 50 + 1 minutes ago: its slot frees in 289 minutes.
    assert said == [
        f"This connection has synced {SYNCS_PER_DAY} times in the last 24 hours. "
        "The next sync can be asked for in 289 min."
    ]
    assert not OrmQ.objects.exists()
    assert AuditEvent.objects.filter(verb="connection.sync_refused").count() == 1
    assert not AuditEvent.objects.filter(verb="connection.sync_requested").exists()


@pytest.mark.parametrize(("provider", "button"), BUTTONS)
def test_a_sync_now_below_the_cap_queues_the_providers_sync(signed_in, provider, button):
    client, workspace = signed_in
    connection = ConnectionFactory(workspace=workspace, provider=provider)
    _runs(connection, SYNCS_PER_DAY - 1)

    response = client.post(reverse(button, args=[workspace.slug]))

    assert response.status_code == 302
    [task] = [row.task for row in OrmQ.objects.all()]
    assert task["func"].endswith(f"{provider}_sync_task")
    assert task["args"][0] == str(connection.pk)
    assert AuditEvent.objects.filter(verb="connection.sync_requested").count() == 1
