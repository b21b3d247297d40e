"""Connecting, refreshing, revoking and disconnecting QuickBooks, over real HTTP (sandbox)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus, Provider, SyncStatus
from connectors.oauth import oauth_callback_next
from connectors.quickbooks import oauth, services
from connectors.quickbooks.models import SourceRecord
from connectors.quickbooks.sync import quickbooks_sync
from connectors.tokens import tokens_seal
from tests.connectors.oauth_flows import quickbooks_oauth_dance as oauth_dance
from well.audit import Actor
from well.encryption import secret_open
from well.http import AuthRevoked
from well.models import AuditEvent

pytestmark = pytest.mark.django_db


def token_calls(qbo) -> int:
    return sum(v for k, v in qbo.stats()["calls"].items() if "token" in k)


def expire_access_token(connection):
    Connection.objects.filter(pk=connection.pk).update(
        access_expires_at=timezone.now() - timedelta(minutes=1)
    )


def test_connecting_stores_the_realm_and_sealed_tokens(connected, qbo, client):
    realm = qbo.control("state")["realm_id"]
    assert connected.external_id == realm
    assert connected.status == ConnectionStatus.CONNECTED
    assert connected.access_token.startswith("v1.")
    access = secret_open(connected, "access_token")
    refresh = secret_open(connected, "refresh_token")
    assert access and refresh and access not in connected.access_token
    assert connected.access_expires_at > timezone.now()
    assert connected.refresh_expires_at > timezone.now() + timedelta(days=30)
    assert AuditEvent.objects.filter(
        workspace_id=connected.workspace_id, verb="connection.connected"
    ).exists()
    page = client.get(reverse("connectors:list", args=[connected.workspace.slug]))
    html = page.content.decode()
    assert realm in html
    assert access not in html and refresh not in html


def test_the_authorization_request_asks_the_accounting_scope_with_a_random_state(
    qbo, client, owner, workspace
):
    client.force_login(owner)
    response = client.post(reverse("connectors:quickbooks_connect", args=[workspace.slug]))
    location = response["Location"]
    assert "scope=com.intuit.quickbooks.accounting" in location
    pending = client.session[services.OAUTH_SESSION_KEY]
    assert pending["workspace_id"] == workspace.pk
    assert f"state={pending['state']}" in location
    assert len(pending["state"]) >= 32


def test_a_mismatched_state_stores_nothing(qbo, client, owner, workspace):
    client.force_login(owner)
    client.post(reverse("connectors:quickbooks_connect", args=[workspace.slug]))
    response = client.get("/oauth/quickbooks/callback?code=abc&state=forged&realmId=1", follow=True)
    assert not Connection.objects.filter(workspace=workspace).exists()
    assert "state mismatch" in response.content.decode()


def test_a_callback_without_a_flow_started_here_stores_nothing(qbo, client, owner):
    client.force_login(owner)
    client.get("/oauth/quickbooks/callback?code=abc&state=x&realmId=1")
    assert not Connection.objects.exists()


def test_workspace_a_state_cannot_attach_workspace_b(qbo, client, owner, make_workspace):
    a = make_workspace("Alpha", owner=owner)
    b = make_workspace("Beta", owner=owner)
    client.force_login(owner)
    oauth_dance(client, a)
    assert Connection.objects.filter(workspace=a).exists()
    assert not Connection.objects.filter(workspace=b).exists()


def test_a_cancelled_consent_says_so_and_stores_nothing(qbo, client, owner, workspace):
    client.force_login(owner)
    response = oauth_dance(client, workspace, decision="deny")
    assert response.status_code == 302
    assert not Connection.objects.filter(workspace=workspace).exists()
    page = client.get(response["Location"])
    assert "You cancelled the QuickBooks connection" in page.content.decode()


def test_only_an_owner_may_connect(qbo, client, make_user, workspace):
    from well.models import Role
    from well.services import membership_add

    accountant = make_user("acc@well.example")
    membership_add(workspace=workspace, user=accountant, role=Role.ACCOUNTANT, actor=Actor.system())
    client.force_login(accountant)
    response = client.post(reverse("connectors:quickbooks_connect", args=[workspace.slug]))
    assert response.status_code == 403


def test_another_company_is_refused_unless_the_user_starts_over(connected, qbo):
    SourceRecord.objects.create(
        workspace_id=connected.workspace_id, connection=connected, entity_type="Bill", qbo_id="1"
    )
    tokens = oauth.TokenSet(
        access_token="a" * 20,
        refresh_token="r" * 20,
        access_expires_at=timezone.now() + timedelta(hours=1),
        refresh_expires_at=None,
        scope=oauth.SCOPE,
    )
    with pytest.raises(services.DifferentCompany):
        services.quickbooks_connection_check_realm(
            workspace=connected.workspace, realm_id="999", start_over=False
        )
    with pytest.raises(services.DifferentCompany):
        services.quickbooks_connection_complete(
            workspace=connected.workspace, realm_id="999", tokens=tokens, actor=Actor.system()
        )
    assert SourceRecord.objects.filter(connection=connected).count() == 1
    services.quickbooks_connection_complete(
        workspace=connected.workspace,
        realm_id="999",
        tokens=tokens,
        actor=Actor.system(),
        start_over=True,
    )
    connected.refresh_from_db()
    assert connected.external_id == "999"
    assert connected.sync_marker == ""
    assert not SourceRecord.objects.filter(connection=connected).exists()
    assert AuditEvent.objects.filter(verb="connection.started_over").exists()


def test_an_expired_access_token_is_refreshed_and_the_new_pair_stored(connected, qbo):
    old_refresh = secret_open(connected, "refresh_token")
    expire_access_token(connected)
    qbo.control("stats", {"reset": True})
    token = services.access_token_get(connection_id=connected.pk)
    connected.refresh_from_db()
    assert token == secret_open(connected, "access_token")
    assert secret_open(connected, "refresh_token") != old_refresh  # rotation kept
    assert connected.access_expires_at > timezone.now() + timedelta(minutes=30)
    assert token_calls(qbo) == 1


@pytest.mark.django_db(transaction=True)
def test_ten_threads_needing_a_token_cause_one_refresh(connected, qbo):
    qbo.faults(refresh_rotation="always")
    expire_access_token(connected)
    qbo.control("stats", {"reset": True})
    tokens: list[str] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(10)

    def worker():
        try:
            barrier.wait()
            tokens.append(services.access_token_get(connection_id=connected.pk))
        except Exception as exc:  # collected for the assertion
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(tokens) == 10 and len(set(tokens)) == 1
    assert token_calls(qbo) == 1
    connected.refresh_from_db()
    assert connected.status == ConnectionStatus.CONNECTED
    # and the token works
    run = quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    assert run.status == SyncStatus.SUCCEEDED


def test_invalid_grant_after_another_worker_refreshed_is_not_fatal(connected, qbo, monkeypatch):
    expire_access_token(connected)
    real_refresh = oauth.token_refresh

    def refreshed_elsewhere(*, refresh_token):
        # Another worker (without our lock) rotated the pair and stored it first.
        fresh = real_refresh(refresh_token=refresh_token)
        row = Connection.objects.get(pk=connected.pk)
        tokens_seal(row, fresh)
        row.save(update_fields=["access_token", "refresh_token", "access_expires_at"])
        return real_refresh(refresh_token=refresh_token)  # the old value: invalid_grant

    monkeypatch.setattr(oauth, "token_refresh", refreshed_elsewhere)
    token = services.access_token_get(connection_id=connected.pk)
    connected.refresh_from_db()
    assert token == secret_open(connected, "access_token")
    assert connected.status == ConnectionStatus.CONNECTED


def test_a_revoked_grant_stops_calls_and_shows_needs_reconnect(connected, qbo, client):
    quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    qbo.faults(revoke=True)
    qbo.control("stats", {"reset": True})
    run = quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    assert run.status == SyncStatus.FAILED
    connected.refresh_from_db()
    assert connected.status == ConnectionStatus.NEEDS_RECONNECT
    assert "reconnect" in connected.last_error.lower()
    api_calls = sum(v for k, v in qbo.stats()["calls"].items() if "token" not in k)
    assert api_calls <= 2  # 401 storm capped
    qbo.control("stats", {"reset": True})
    again = quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    assert again.status == SyncStatus.SKIPPED
    assert qbo.stats()["total"] == 0
    with pytest.raises(AuthRevoked):
        services.access_token_get(connection_id=connected.pk)
    page = client.get(reverse("connectors:list", args=[connected.workspace.slug]))
    assert "needs to be reconnected" in page.content.decode()


def test_disconnect_revokes_deletes_tokens_keeps_records_and_reconnect_resumes(
    connected, qbo, client
):
    first = quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    records = SourceRecord.objects.filter(connection=connected).count()
    marker = first.marker_after
    response = client.post(
        reverse("connectors:quickbooks_disconnect", args=[connected.workspace.slug])
    )
    assert response.status_code == 302
    connected.refresh_from_db()
    assert connected.status == ConnectionStatus.DISCONNECTED
    assert connected.access_token == connected.refresh_token == ""
    assert qbo.control("state")["grants"] == 0
    assert SourceRecord.objects.filter(connection=connected).count() == records
    assert connected.sync_marker == marker
    assert quickbooks_sync(connection_id=connected.pk).status == SyncStatus.SKIPPED

    qbo.mutate(action="add", entity="Bill", count=2)
    oauth_dance(client, connected.workspace)
    connected.refresh_from_db()
    assert connected.status == ConnectionStatus.CONNECTED
    assert connected.sync_marker == marker
    qbo.control("stats", {"reset": True})
    run = quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    assert run.marker_before == marker
    assert run.counts["Bill"]["new"] == 2
    assert "GET cdc" in qbo.stats()["calls"]
    assert SourceRecord.objects.filter(connection=connected).count() >= records + 2
    assert AuditEvent.objects.filter(verb="connection.reconnected").exists()


def test_tokens_never_reach_the_logs(connected, qbo, caplog):
    with caplog.at_level(logging.DEBUG):
        expire_access_token(connected)
        quickbooks_sync(connection_id=connected.pk, sleep=lambda s: None)
    connected.refresh_from_db()
    for secret in (secret_open(connected, "access_token"), secret_open(connected, "refresh_token")):
        assert secret not in caplog.text
    assert Connection.objects.filter(provider=Provider.QUICKBOOKS).count() == 1


def _connect_with_next(client, workspace, next_url: str, *, decision: str = "allow"):
    """The real flow with a `next` posted by the connect form (as the onboarding wizard does)."""
    from urllib.parse import parse_qs, urlsplit

    import requests

    start = client.post(
        reverse("connectors:quickbooks_connect", args=[workspace.slug]), {"next": next_url}
    )
    authorize = urlsplit(start["Location"])
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    consent = requests.post(
        f"{authorize.scheme}://{authorize.netloc}{authorize.path}",
        data={**params, "decision": decision},
        allow_redirects=False,
        timeout=10,
    )
    callback = urlsplit(consent.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}")


def test_a_same_host_next_is_where_a_successful_connection_returns(qbo, client, owner, workspace):
    client.force_login(owner)
    wizard = f"/w/{workspace.slug}/onboarding/?step=2"
    response = _connect_with_next(client, workspace, wizard)
    assert response.status_code == 302
    assert response["Location"] == wizard
    assert Connection.objects.filter(workspace=workspace, provider=Provider.QUICKBOOKS).exists()


def test_a_cancelled_connection_also_returns_to_next(qbo, client, owner, workspace):
    client.force_login(owner)
    wizard = f"/w/{workspace.slug}/onboarding/"
    response = _connect_with_next(client, workspace, wizard, decision="deny")
    assert response["Location"] == wizard
    assert not Connection.objects.filter(workspace=workspace).exists()


@pytest.mark.parametrize(
    "unsafe",
    [
        "https://evil.example/steal",
        "//evil.example/steal",
        "/\\evil.example/steal",
        "http://testserver/absolute-url-is-not-a-path",
        "javascript:alert(1)",
        "relative/path",
    ],
)
def test_an_unsafe_next_is_ignored_and_the_connections_page_is_used(
    qbo, client, owner, workspace, unsafe
):
    client.force_login(owner)
    client.post(reverse("connectors:quickbooks_connect", args=[workspace.slug]), {"next": unsafe})
    assert client.session[services.OAUTH_SESSION_KEY]["next"] == ""
    response = _connect_with_next(client, workspace, unsafe)
    assert response["Location"] == reverse("connectors:list", args=[workspace.slug])


def test_a_next_edited_into_the_session_is_checked_again_at_the_callback(
    qbo, client, owner, workspace
):
    pending = {"state": "s", "workspace_id": workspace.pk, "user_id": owner.pk, "next": "//evil"}
    assert oauth_callback_next(pending=pending, user=owner, host="testserver", secure=False) == ""
    pending["next"] = "/w/books-co/onboarding/"
    assert (
        oauth_callback_next(pending=pending, user=owner, host="testserver", secure=False)
        == "/w/books-co/onboarding/"
    )
