"""End-to-end sync tests over real HTTP against the QuickBooks sandbox."""

from __future__ import annotations

import pytest

from connectors.models import ConnectionStatus, SourceRecord, SyncStatus
from connectors.quickbooks.sync import connection_sync
from tests.connectors.test_quickbooks_fixtures import (  # noqa: F401
    connected,
    owner,
    qbo,
    qbo_server,
    qbo_world,
    workspace,
)

pytestmark = pytest.mark.django_db


def sync(connection, **kwargs):
    kwargs.setdefault("sleep", lambda s: None)
    return connection_sync(connection_id=connection.pk, **kwargs)


def test_first_sync_pulls_every_kind_with_its_fields(connected, qbo):
    assert connected.status == ConnectionStatus.CONNECTED
    run = sync(connected)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    kinds = set(
        SourceRecord.objects.filter(workspace=connected.workspace).values_list(
            "entity_type", flat=True
        )
    )
    print(run.counts, run.api_calls, run.error)
    assert {"Vendor", "Bill", "Purchase", "Attachable", "CompanyInfo", "Preferences"} <= kinds
