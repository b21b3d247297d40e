"""A grant revoked on the provider's side (QuickBooks or Qonto), over the sandboxes: Well stops
calling, says "needs reconnect" on the connections page and the dashboard with a one-click
Reconnect, keeps the review queue, and resumes from the last good marker after reconnecting."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.qonto.models import QontoEntry
from connectors.qonto.sync import qonto_sync
from connectors.quickbooks.models import RecordState, SourceRecord
from connectors.quickbooks.sync import quickbooks_sync
from tests.connectors.oauth_flows import qonto_consent
from well.models import AuditEvent, Membership

pytestmark = pytest.mark.django_db


def _banner(client, workspace, page: str) -> str:
    html = client.get(reverse(page, args=[workspace.slug])).content.decode()
    return html


def _reconnect_form(html: str, provider: str) -> tuple[str, str]:
    """The banner's one-click form for `provider`: its action and its `next`."""
    import re

    block = re.search(rf'id="reconnect-{provider}".*?</form>', html, re.S)
    assert block, f"no reconnect banner for {provider}"
    action = re.search(r'action="([^"]+)"', block.group(0)).group(1)
    next_url = re.search(r'name="next" value="([^"]*)"', block.group(0)).group(1)
    return action, next_url


def _quickbooks_consent(location: str) -> str:
    authorize = urlsplit(location)
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    consent = requests.post(
        f"{authorize.scheme}://{authorize.netloc}{authorize.path}",
        data={**params, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    callback = urlsplit(consent.headers["Location"])
    return f"{callback.path}?{callback.query}"


def test_quickbooks_revoked_in_quickbooks_needs_reconnect_then_resumes_from_its_marker(
    quickbooks_connected, qbo, client
):
    workspace = quickbooks_connected.workspace
    assert (
        quickbooks_sync(connection_id=quickbooks_connected.pk, sleep=lambda s: None).status
        == "succeeded"
    )
    bills = SourceRecord.objects.filter(connection=quickbooks_connected, entity_type="Bill")
    in_review = list(bills.order_by("pk").values_list("pk", flat=True)[:3])
    bills.filter(pk__in=in_review).update(state=RecordState.IN_REVIEW)  # a queue to keep
    quickbooks_connected.refresh_from_db()
    marker = quickbooks_connected.sync_marker

    qbo.faults(revoke=True)  # the user removed Well's access in QuickBooks
    qbo.control("stats", {"reset": True})
    failed = quickbooks_sync(connection_id=quickbooks_connected.pk, sleep=lambda s: None)

    assert failed.status == "failed"
    quickbooks_connected.refresh_from_db()
    assert quickbooks_connected.status == ConnectionStatus.NEEDS_RECONNECT
    assert quickbooks_connected.sync_marker == marker
    assert sum(qbo.api_calls().values()) <= 2  # one 401, then the refresh said invalid_grant
    qbo.control("stats", {"reset": True})
    assert quickbooks_sync(connection_id=quickbooks_connected.pk).status == "skipped"
    assert qbo.stats()["total"] == 0  # no call at all while it needs reconnecting

    for page in ("connectors:list", "review:dashboard"):
        html = _banner(client, workspace, page)
        assert "QuickBooks Online needs to be reconnected" in html, page
        assert "Reconnect QuickBooks Online" in html, page
    assert set(bills.filter(pk__in=in_review).values_list("state", flat=True)) == {
        RecordState.IN_REVIEW
    }

    qbo.mutate(action="add", entity="Bill", count=2)
    action, next_url = _reconnect_form(_banner(client, workspace, "review:dashboard"), "quickbooks")
    assert action == reverse("connectors:quickbooks_connect", args=[workspace.slug])
    start = client.post(action, {"next": next_url})
    back = client.get(_quickbooks_consent(start["Location"]))
    assert back.status_code == 302 and back["Location"] == next_url  # back on the dashboard

    quickbooks_connected.refresh_from_db()
    assert quickbooks_connected.status == ConnectionStatus.CONNECTED
    assert quickbooks_connected.sync_marker == marker
    assert AuditEvent.objects.filter(verb="connection.reconnected").exists()
    assert "needs to be reconnected" not in _banner(client, workspace, "connectors:list")
    qbo.control("stats", {"reset": True})
    resumed = quickbooks_sync(connection_id=quickbooks_connected.pk, sleep=lambda s: None)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.marker_before == marker
    assert resumed.progress["mode"] == "cdc"  # from the marker, not a full resync
    # One CDC call and the Attachables of the two new bills: no paging through every record.
    assert qbo.api_calls() == {"GET cdc": 1, "POST query": 1}
    assert resumed.counts["Bill"]["new"] == 2
    assert set(bills.filter(pk__in=in_review).values_list("state", flat=True)) == {
        RecordState.IN_REVIEW
    }


def test_qonto_revoked_in_qonto_needs_reconnect_then_resumes_from_its_marker(
    qonto_connected, qonto, client
):
    connection = qonto_connected
    workspace = connection.workspace
    owner = Membership.objects.get(workspace=workspace).user
    client.force_login(owner)
    qbo_side = Connection.objects.create(
        workspace=workspace,
        provider=Provider.QUICKBOOKS,
        status=ConnectionStatus.CONNECTED,
        external_id="9130",
    )
    waiting = SourceRecord.objects.create(
        workspace=workspace,
        connection=qbo_side,
        entity_type="Bill",
        qbo_id="77",
        sync_token="0",
        state=RecordState.IN_REVIEW,
    )
    assert qonto_sync(connection_id=connection.pk, trigger="test").status == "succeeded"
    connection.refresh_from_db()
    marker = connection.sync_marker
    assert marker
    entries = QontoEntry.objects.filter(connection=connection).count()

    grant = qonto.control("grants")["grants"][0]["id"]
    qonto.control("revoke", {"grant_id": grant})  # the user removed Well's access in Qonto
    failed = qonto_sync(connection_id=connection.pk, trigger="test")
    assert failed.status == "failed"
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT
    stats = qonto.control("stats")["calls"]
    assert qonto_sync(connection_id=connection.pk, trigger="test").status == "skipped"
    assert qonto.control("stats")["calls"] == stats  # no call while it needs reconnecting

    for page in ("connectors:list", "review:dashboard"):
        html = _banner(client, workspace, page)
        assert "Qonto needs to be reconnected" in html, page
        assert "Reconnect Qonto" in html, page
    waiting.refresh_from_db()
    assert waiting.state == RecordState.IN_REVIEW

    action, next_url = _reconnect_form(_banner(client, workspace, "connectors:list"), "qonto")
    assert action == reverse("connectors:qonto:connect", args=[workspace.slug])
    start = client.post(action, {"next": next_url})
    answer = qonto_consent(start["Location"])
    back = client.get(reverse("qonto_oauth:callback"), answer)
    assert back.status_code == 302 and back["Location"] == next_url

    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.sync_marker == marker
    resumed = qonto_sync(connection_id=connection.pk, trigger="test")
    assert resumed.status == "succeeded", resumed.error
    assert resumed.marker_before == marker
    assert QontoEntry.objects.filter(connection=connection).count() == entries
    waiting.refresh_from_db()
    assert waiting.state == RecordState.IN_REVIEW


def test_only_an_owner_gets_the_reconnect_button(quickbooks_connected, qbo, client, make_user):
    from well.audit import Actor
    from well.models import Role
    from well.services import membership_add

    Connection.objects.filter(pk=quickbooks_connected.pk).update(
        status=ConnectionStatus.NEEDS_RECONNECT
    )
    accountant = make_user("acc@well.example")
    membership_add(
        workspace=quickbooks_connected.workspace,
        user=accountant,
        role=Role.ACCOUNTANT,
        actor=Actor.system(),
    )
    client.force_login(accountant)
    html = _banner(client, quickbooks_connected.workspace, "review:dashboard")
    assert "QuickBooks Online needs to be reconnected" in html
    assert "Ask an owner" in html
    assert '<button type="submit">Reconnect' not in html


def test_the_connections_page_and_banner_make_as_many_queries_for_many_runs_as_for_one(
    quickbooks_connected, qbo, client, make_workspace
):
    from django.db import connection as db_connection
    from django.test.utils import CaptureQueriesContext

    from connectors.models import SyncRun

    Connection.objects.filter(pk=quickbooks_connected.pk).update(
        status=ConnectionStatus.NEEDS_RECONNECT
    )
    url = reverse("connectors:list", args=[quickbooks_connected.workspace.slug])

    def queries() -> int:
        with CaptureQueriesContext(db_connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    SyncRun.objects.create(
        workspace=quickbooks_connected.workspace, connection=quickbooks_connected
    )
    one = queries()
    for _ in range(9):
        SyncRun.objects.create(
            workspace=quickbooks_connected.workspace, connection=quickbooks_connected
        )
    Connection.objects.create(
        workspace=quickbooks_connected.workspace,
        provider=Provider.QONTO,
        status=ConnectionStatus.NEEDS_RECONNECT,
        external_id="org-1",
    )
    assert queries() == one
