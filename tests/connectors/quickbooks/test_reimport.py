"""Manual re-import from the connection page: the marker moves back (or a full read), nothing
is posted twice, and a record QuickBooks changed after posting is flagged for review."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.qonto.models import Posting
from connectors.qonto.posting import postings_send
from connectors.qonto.sync import qonto_sync
from connectors.quickbooks import services
from connectors.quickbooks.client import parse_qbo_time
from connectors.quickbooks.models import RecordState, SourceRecord
from connectors.quickbooks.sync import quickbooks_sync
from matching.models import Proposal
from well.audit import Actor
from well.models import AuditEvent

pytestmark = pytest.mark.django_db


def _queued_syncs() -> list[tuple]:
    return [
        task.task["args"]
        for task in OrmQ.objects.all()
        if task.task["func"] == "connectors.quickbooks.tasks.quickbooks_sync_task"
    ]


# --- the service and the page (QuickBooks sandbox over HTTP) ------------------------------------


def test_a_reimport_from_a_date_moves_the_marker_back_audits_and_queues_a_sync(connected, qbo):
    quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    connected.refresh_from_db()
    marker = connected.sync_marker
    OrmQ.objects.all().delete()
    since = timezone.localdate() - timedelta(days=10)

    outcome = services.quickbooks_reimport(
        connection=connected, actor=Actor.system("tests"), since=since
    )

    connected.refresh_from_db()
    assert outcome.marker_before == marker
    assert parse_qbo_time(connected.sync_marker).date() == since
    event = AuditEvent.objects.get(verb="connection.reimport_requested")
    assert event.before == {"sync_marker": marker}
    assert event.after["since"] == since.isoformat() and event.after["everything"] is False
    assert _queued_syncs() == [(str(connected.pk), False, "reimport")]


def test_a_reimport_of_everything_keeps_the_marker_and_queues_a_full_sync(connected, qbo):
    quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    connected.refresh_from_db()
    marker = connected.sync_marker
    OrmQ.objects.all().delete()
    services.quickbooks_reimport(connection=connected, actor=Actor.system(), everything=True)
    connected.refresh_from_db()
    assert connected.sync_marker == marker
    assert _queued_syncs() == [(str(connected.pk), True, "reimport")]


def test_a_date_after_the_marker_never_moves_it_forward(connected, qbo):
    quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    connected.refresh_from_db()
    marker = connected.sync_marker
    services.quickbooks_reimport(
        connection=connected, actor=Actor.system(), since=timezone.localdate()
    )
    connected.refresh_from_db()
    assert parse_qbo_time(connected.sync_marker) <= parse_qbo_time(marker)


@pytest.mark.parametrize(
    "status", [ConnectionStatus.NEEDS_RECONNECT, ConnectionStatus.DISCONNECTED]
)
def test_a_reimport_of_a_connection_that_cannot_sync_is_refused_and_changes_nothing(
    connected, qbo, status
):
    Connection.objects.filter(pk=connected.pk).update(status=status, sync_marker="M")
    OrmQ.objects.all().delete()
    with pytest.raises(services.ReimportRefused):
        services.quickbooks_reimport(
            connection=connected, actor=Actor.system(), since=date(2020, 1, 1)
        )
    connected.refresh_from_db()
    assert connected.sync_marker == "M"
    assert not _queued_syncs()
    assert not AuditEvent.objects.filter(verb="connection.reimport_requested").exists()


def test_a_future_date_is_refused(connected, qbo):
    with pytest.raises(services.ReimportRefused, match="future"):
        services.quickbooks_reimport(
            connection=connected,
            actor=Actor.system(),
            since=timezone.localdate() + timedelta(days=2),
        )


def test_the_page_explains_then_asks_to_confirm_before_anything_changes(connected, qbo, client):
    quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    connected.refresh_from_db()
    marker = connected.sync_marker
    OrmQ.objects.all().delete()
    url = reverse("connectors:quickbooks_reimport", args=[connected.workspace.slug])
    listing = client.get(reverse("connectors:list", args=[connected.workspace.slug]))
    assert url in listing.content.decode()

    page = client.get(url).content.decode()
    assert "recognised by their" in page and "QuickBooks ID" in page
    assert "changed after posting" in page

    confirm = client.get(url, {"scope": "since", "since": "2026-01-15"})
    html = confirm.content.decode()
    assert "Confirm re-import" in html and "Jan 15, 2026" in html
    connected.refresh_from_db()
    assert connected.sync_marker == marker  # looking at the confirmation changes nothing
    # A POST without the confirmation step only shows it again.
    client.post(url, {"scope": "since", "since": "2026-01-15"})
    connected.refresh_from_db()
    assert connected.sync_marker == marker and not _queued_syncs()

    done = client.post(url, {"scope": "since", "since": "2026-01-15", "confirm": "1"})
    assert done.status_code == 302
    connected.refresh_from_db()
    assert parse_qbo_time(connected.sync_marker).date() == date(2026, 1, 15)
    assert len(_queued_syncs()) == 1


@pytest.mark.parametrize(
    "params,error",
    [
        ({"scope": "since"}, "Choose the date"),
        ({"scope": "since", "since": "2999-01-01"}, "in the future"),
        ({"scope": "since", "since": "not-a-date"}, "Enter a valid date"),
        ({"scope": "sideways"}, "Select a valid choice"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(connected, qbo, client, params, error):
    marker = connected.sync_marker
    url = reverse("connectors:quickbooks_reimport", args=[connected.workspace.slug])
    response = client.post(url, {**params, "confirm": "1"})
    assert response.status_code == 200
    assert error in response.content.decode()
    connected.refresh_from_db()
    assert connected.sync_marker == marker
    assert not AuditEvent.objects.filter(verb="connection.reimport_requested").exists()


def test_a_viewer_cannot_reimport(connected, qbo, client, make_user):
    from well.models import Role
    from well.services import membership_add

    viewer = make_user("viewer@well.example")
    membership_add(
        workspace=connected.workspace, user=viewer, role=Role.VIEWER, actor=Actor.system()
    )
    client.force_login(viewer)
    url = reverse("connectors:quickbooks_reimport", args=[connected.workspace.slug])
    response = client.post(url, {"scope": "everything", "confirm": "1"})
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(verb="connection.reimport_requested").exists()


def test_a_sync_running_while_the_marker_is_moved_back_keeps_the_rewind(
    connected, qbo, monkeypatch
):
    """The running sync's end must not overwrite the re-import's marker with its own window."""
    from connectors.quickbooks import sync as sync_module

    quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    original = sync_module._Engine.sync

    def sync_then_rewind(engine, *, full):
        marker = original(engine, full=full)
        services.quickbooks_reimport(
            connection=engine.connection, actor=Actor.system(), since=date(2026, 2, 1)
        )
        return marker

    monkeypatch.setattr(sync_module._Engine, "sync", sync_then_rewind)
    run = quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    assert run.status == "succeeded"
    connected.refresh_from_db()
    assert parse_qbo_time(connected.sync_marker).date() == date(2026, 2, 1)


# --- end to end: both sandboxes, posting included ----------------------------------------------


def _qonto_invoices(qonto_url: str) -> int:
    return requests.get(f"{qonto_url}/_sandbox/state", timeout=30).json()["supplier_invoices"]


def _qbo(url: str, name: str, body: dict) -> dict:
    response = requests.post(f"{url}/_sandbox/{name}", json=body, timeout=60)
    response.raise_for_status()
    return response.json()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("everything", [False, True], ids=["from_a_date", "everything"])
def test_a_reimport_posts_nothing_twice_and_flags_a_bill_changed_after_posting(
    sandboxes,
    everything,
):
    workspace, urls = sandboxes
    qbo_connection = Connection.objects.get(workspace=workspace, provider=Provider.QUICKBOOKS)
    qonto_connection = Connection.objects.get(workspace=workspace, provider=Provider.QONTO)
    quickbooks_sync(connection_id=qbo_connection.pk, trigger="test")
    qonto_sync(connection_id=qonto_connection.pk, trigger="test")
    postings_send()
    posted = SourceRecord.objects.for_workspace(workspace).filter(
        entity_type="Bill", state=RecordState.POSTED
    )
    assert posted.exists(), "the sandbox world has bills Well posts on its own"
    invoices = _qonto_invoices(urls.qonto)
    postings = Posting.objects.for_workspace(workspace).count()
    changed = posted.order_by("pk").first()
    _qbo(
        urls.quickbooks,
        "mutate",
        {"action": "edit", "entity": "Bill", "id": changed.qbo_id, "set": {"DocNumber": "EDITED"}},
    )

    services.quickbooks_reimport(
        connection=qbo_connection,
        actor=Actor.system("tests"),
        since=None if everything else date(2020, 1, 1),
        everything=everything,
    )
    run = quickbooks_sync(connection_id=qbo_connection.pk, full=everything, trigger="reimport")
    assert run.status == "succeeded", run.error
    qonto_sync(connection_id=qonto_connection.pk, trigger="test")
    postings_send()

    assert _qonto_invoices(urls.qonto) == invoices  # nothing posted twice
    assert Posting.objects.for_workspace(workspace).count() == postings
    assert run.counts["Bill"]["updated"] == 1  # only the edited bill is news
    changed.refresh_from_db()
    assert changed.invoice_number == "EDITED"
    assert changed.state == RecordState.IN_REVIEW
    proposal = Proposal.objects.get(record=changed, is_current=True)
    assert proposal.changed_after_posting
    assert proposal.record_version == changed.sync_token
    others = posted.exclude(pk=changed.pk)
    assert others.exists() and not others.exclude(state=RecordState.POSTED).exists()


@pytest.mark.django_db
def test_a_reimport_in_a_workspace_without_quickbooks_is_a_clear_error_not_a_500(
    client, make_user, make_workspace
):
    owner = make_user("alone@well.example")
    workspace = make_workspace("No Books", owner=owner)
    client.force_login(owner)
    url = reverse("connectors:quickbooks_reimport", args=[workspace.slug])

    assert client.get(url).status_code == 200
    response = client.post(url, {"scope": "everything", "confirm": "1"})

    assert response.status_code == 200
    assert "QuickBooks is not connected" in response.content.decode()
    assert not AuditEvent.objects.filter(verb="connection.reimport_requested").exists()
