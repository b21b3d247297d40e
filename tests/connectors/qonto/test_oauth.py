"""Connecting, refreshing and disconnecting Qonto, over real HTTP against the sandbox."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.qonto import services
from connectors.qonto.models import Posting, QontoEntry
from connectors.qonto.outbox import posting_enqueue
from connectors.qonto.services import qonto_access_token_get
from connectors.qonto.sync import qonto_sync
from tests.connectors.oauth_flows import qonto_consent as consent
from well.audit import Actor
from well.encryption import secret_open
from well.http import AuthRevoked

pytestmark = pytest.mark.django_db
TOKEN = "POST /oauth2/token"


def test_connect_through_the_pages_binds_the_grant_to_the_workspace(
    qonto_settings, qonto, client, make_user, make_workspace
):
    owner = make_user("ann@alpha.example")
    workspace = make_workspace("Alpha", owner=owner)
    client.force_login(owner)

    start = client.post(reverse("connectors:qonto:connect", args=[workspace.slug]))
    assert start.status_code == 302
    assert "client_secret" not in start["Location"]
    assert "scope=offline_access%20organization.read%20supplier_invoice.read" in start["Location"]
    answer = consent(start["Location"])
    done = client.get(reverse("qonto_oauth:callback"), answer)

    assert done.status_code == 302
    connection = Connection.objects.get(workspace=workspace, provider=Provider.QONTO)
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.external_name == "Sandbox SAS"
    # Sealed: the stored value is not the token, and it opens only for this row.
    assert not connection.access_token.startswith("ory_at_")
    assert secret_open(connection, "access_token").startswith("ory_at_")
    panel = client.get(reverse("connectors:qonto:panel", args=[workspace.slug]))
    assert b"Sandbox SAS" in panel.content
    assert secret_open(connection, "access_token").encode() not in panel.content


def test_a_callback_with_another_state_stores_nothing(
    qonto_settings, qonto, client, make_user, make_workspace
):
    owner = make_user("ann@alpha.example")
    workspace = make_workspace("Alpha", owner=owner)
    client.force_login(owner)
    start = client.post(reverse("connectors:qonto:connect", args=[workspace.slug]))
    answer = consent(start["Location"])

    client.get(reverse("qonto_oauth:callback"), {**answer, "state": "forged-state-123"})

    assert not Connection.objects.filter(provider=Provider.QONTO).exists()


def test_a_cancelled_consent_stores_nothing(
    qonto_settings, qonto, client, make_user, make_workspace
):
    owner = make_user("ann@alpha.example")
    workspace = make_workspace("Alpha", owner=owner)
    client.force_login(owner)
    start = client.post(reverse("connectors:qonto:connect", args=[workspace.slug]))
    answer = consent(start["Location"], decision="deny")

    response = client.get(reverse("qonto_oauth:callback"), answer, follow=True)

    assert b"cancelled" in response.content
    assert not Connection.objects.filter(provider=Provider.QONTO).exists()


def test_credentials_go_in_the_form_body_not_basic(connected, qonto):
    # The sandbox refuses Basic like Qonto (n8n #9178); a refresh that works proves the body.
    Connection.objects.filter(pk=connected.pk).update(access_expires_at=timezone.now())
    token = qonto_access_token_get(connection_id=connected.pk)
    assert token.startswith("ory_at_")


@pytest.mark.django_db(transaction=True)
def test_ten_threads_wanting_a_token_cause_exactly_one_refresh(connected, qonto):
    Connection.objects.filter(pk=connected.pk).update(
        access_expires_at=timezone.now() - timedelta(minutes=1)
    )
    before = qonto.calls(TOKEN)
    barrier = threading.Barrier(10)
    tokens: list[str] = []
    errors: list[Exception] = []

    def want() -> None:
        try:
            barrier.wait()
            tokens.append(qonto_access_token_get(connection_id=connected.pk))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=want) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert qonto.calls(TOKEN) - before == 1
    assert len(set(tokens)) == 1 and len(tokens) == 10
    connected.refresh_from_db()
    assert connected.status == ConnectionStatus.CONNECTED
    # The rotated pair was committed: the old refresh token is no longer the stored one.
    assert qonto_access_token_get(connection_id=connected.pk) == tokens[0]


def test_a_refresh_token_rotated_elsewhere_past_its_grace_needs_reconnect(connected, qonto):
    old = secret_open(connected, "refresh_token")
    qonto.control("rotate", {"refresh_token": old, "expire_grace": True})
    Connection.objects.filter(pk=connected.pk).update(access_expires_at=timezone.now())

    with pytest.raises(AuthRevoked):
        qonto_access_token_get(connection_id=connected.pk)

    connected.refresh_from_db()
    assert connected.status == ConnectionStatus.NEEDS_RECONNECT
    assert "invalid_grant" in connected.last_error


def test_a_revoked_grant_marks_needs_reconnect_after_at_most_two_401s(connected, qonto):
    grant = qonto.control("grants")["grants"][0]["id"]
    qonto.control("revoke", {"grant_id": grant})

    run = qonto_sync(connection_id=connected.pk)

    connected.refresh_from_db()
    assert run.status == "failed"
    assert connected.status == ConnectionStatus.NEEDS_RECONNECT
    stats = qonto.control("stats")["calls"]
    api_calls = sum(n for route, n in stats.items() if " /v2/" in route)
    assert api_calls <= 2
    # A second sync makes no call at all.
    qonto_sync(connection_id=connected.pk)
    assert qonto.control("stats")["calls"] == stats


def test_disconnect_revokes_the_grant_and_keeps_postings_and_candidates(connected, qonto, bill):
    qonto_sync(connection_id=connected.pk)
    posting_enqueue(record=bill, action="upload", actor=Actor.system("tests"))
    entries = QontoEntry.objects.count()

    result = services.qonto_disconnect(connection=connected, actor=Actor.system("tests"))

    assert result.revoked
    grants = qonto.control("grants")["grants"]
    assert all(g["revoked_at"] for g in grants)
    connected.refresh_from_db()
    assert connected.status == ConnectionStatus.DISCONNECTED
    assert connected.access_token == "" and connected.refresh_token == ""
    assert Posting.objects.count() == 1
    assert QontoEntry.objects.count() == entries


def test_tokens_never_reach_the_logs(connected, qonto, caplog, bill):
    caplog.set_level("DEBUG")
    Connection.objects.filter(pk=connected.pk).update(access_expires_at=timezone.now())
    qonto_sync(connection_id=connected.pk)
    connected.refresh_from_db()
    for name in ("access_token", "refresh_token"):
        assert secret_open(connected, name) not in caplog.text


def test_a_same_host_next_is_where_a_successful_connection_returns(
    qonto_settings, qonto, client, make_user, make_workspace
):
    owner = make_user("ann@alpha.example")
    workspace = make_workspace("Alpha", owner=owner)
    client.force_login(owner)
    wizard = f"/w/{workspace.slug}/onboarding/?step=3"
    connect_url = reverse("connectors:qonto:connect", args=[workspace.slug])
    start = client.post(connect_url, {"next": wizard})
    done = client.get(reverse("qonto_oauth:callback"), consent(start["Location"]))
    assert done.status_code == 302
    assert done["Location"] == wizard
    assert Connection.objects.filter(workspace=workspace, provider=Provider.QONTO).exists()


def test_a_cancelled_qonto_connection_returns_to_next(
    qonto_settings, qonto, client, make_user, make_workspace
):
    owner = make_user("ann@alpha.example")
    workspace = make_workspace("Alpha", owner=owner)
    client.force_login(owner)
    wizard = f"/w/{workspace.slug}/onboarding/"
    connect_url = reverse("connectors:qonto:connect", args=[workspace.slug])
    start = client.post(connect_url, {"next": wizard})
    done = client.get(reverse("qonto_oauth:callback"), consent(start["Location"], decision="deny"))
    assert done["Location"] == wizard
    assert not Connection.objects.filter(provider=Provider.QONTO).exists()


@pytest.mark.parametrize("unsafe", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_an_unsafe_next_for_qonto_is_ignored(
    qonto_settings, qonto, client, make_user, make_workspace, unsafe
):
    owner = make_user("ann@alpha.example")
    workspace = make_workspace("Alpha", owner=owner)
    client.force_login(owner)
    connect_url = reverse("connectors:qonto:connect", args=[workspace.slug])
    start = client.post(connect_url, {"next": unsafe})
    done = client.get(reverse("qonto_oauth:callback"), consent(start["Location"]))
    assert done["Location"] == reverse("connectors:qonto:panel", args=[workspace.slug])
