"""Issue 17: a QuickBooks company or Qonto organization belongs to one workspace at a time."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.oauth import ConnectError
from connectors.qonto import services as qonto_services
from tests.connectors.oauth_flows import qonto_consent, quickbooks_oauth_dance
from well.models import AuditEvent

pytestmark = pytest.mark.django_db


def qonto_connect(workspace, owner):
    url, pending = qonto_services.qonto_authorization_begin(workspace=workspace, user=owner)
    answer = qonto_consent(url)
    return qonto_services.qonto_authorization_complete(
        pending=pending, user=owner, state=answer["state"], code=answer["code"]
    )


def release_in_admin(client, make_user, connection):
    """The staff admin's "Release" action on the connection (the admin sits behind MFA)."""
    staff = make_user("staff@well.example", is_staff=True, is_superuser=True)
    request = RequestFactory().post("/admin/connectors/connection/")
    request.user = staff
    request.session = {}
    request._messages = FallbackStorage(request)
    model_admin = admin.site._registry[Connection]
    assert "release" in model_admin.get_actions(request)
    model_admin.release(request, Connection.objects.filter(pk=connection.pk))


def test_a_qonto_organization_connected_elsewhere_is_refused_until_staff_release_it(
    qonto_connected, make_user, make_workspace, client
):
    owner = make_user("second@qonto.example")
    second = make_workspace("Second Co", owner=owner)

    with pytest.raises(ConnectError) as refusal:
        qonto_connect(second, owner)

    message = str(refusal.value)
    assert "already connected to another Well workspace" in message
    assert "Disconnect it in that workspace first" in message and "Well support" in message
    assert "Qonto Co" not in message  # the other workspace is not named
    assert not Connection.objects.filter(workspace=second).exists()

    release_in_admin(client, make_user, qonto_connected)
    released = Connection.objects.get(pk=qonto_connected.pk)
    assert released.status == ConnectionStatus.DISCONNECTED and not released.access_token
    assert AuditEvent.objects.filter(verb="connection.released").exists()

    outcome = qonto_connect(second, owner)
    assert outcome.connection.status == ConnectionStatus.CONNECTED
    assert outcome.connection.external_id == qonto_connected.external_id


def test_a_quickbooks_company_connected_elsewhere_is_refused_with_what_to_do(
    quickbooks_connected, make_user, make_workspace, client
):
    owner = make_user("second@books.example")
    second = make_workspace("Second Books", owner=owner)
    client.force_login(owner)

    response = quickbooks_oauth_dance(client, second)

    assert not Connection.objects.filter(workspace=second, provider=Provider.QUICKBOOKS).exists()
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("already connected to another Well workspace" in m for m in shown), shown

    release_in_admin(client, make_user, quickbooks_connected)
    client.force_login(owner)
    quickbooks_oauth_dance(client, second)
    assert Connection.objects.get(workspace=second, provider=Provider.QUICKBOOKS).status == (
        ConnectionStatus.CONNECTED
    )
