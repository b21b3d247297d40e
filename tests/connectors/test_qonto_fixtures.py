"""Shared fixtures for the Qonto tests: a sandbox on 127.0.0.1, a connected workspace, records.

Import with `from tests.connectors.test_qonto_fixtures import *`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.qonto import services
from connectors.quickbooks.models import SourceRecord
from sandbox.qonto import QontoSandbox
from sandbox.server import serve_in_thread

CLIENT_ID = "well-qonto-test"
CLIENT_SECRET = "well-qonto-test-secret"

__all__ = [
    "QontoBox",
    "bill",
    "connected",
    "consent",
    "make_record",
    "qbo_connection",
    "qonto",
    "qonto_server",
    "qonto_settings",
]


class QontoBox:
    """The running sandbox and its control API."""

    def __init__(self, app: QontoSandbox, base_url: str) -> None:
        self.app = app
        self.base = base_url

    def control(self, name: str, body: dict | None = None) -> dict:
        if body is None:
            response = requests.get(f"{self.base}/_sandbox/{name}", timeout=5)
        else:
            response = requests.post(f"{self.base}/_sandbox/{name}", json=body, timeout=5)
        response.raise_for_status()
        return response.json()

    def calls(self, route: str) -> int:
        return self.control("stats")["calls"].get(route, 0)

    def uploads(self) -> list[dict]:
        return self.control("invoices")["invoices"]


@pytest.fixture(scope="module")
def qonto_server():
    """One server for the module; each test resets it."""
    app = QontoSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, analysis_delay_seconds=0)
    server = serve_in_thread(app)
    yield QontoBox(app, server.base_url)
    server.stop()


@pytest.fixture
def qonto(qonto_server):
    qonto_server.control("reset", {"auth": True})
    return qonto_server


@pytest.fixture
def qonto_settings(settings, qonto):
    settings.QONTO_CLIENT_ID = CLIENT_ID
    settings.QONTO_CLIENT_SECRET = CLIENT_SECRET
    settings.QONTO_AUTHORIZE_URL = f"{qonto.base}/oauth2/auth"
    settings.QONTO_TOKEN_URL = f"{qonto.base}/oauth2/token"
    settings.QONTO_REVOKE_URL = f"{qonto.base}/oauth2/revoke"
    settings.QONTO_API_URL = qonto.base
    settings.QONTO_STAGING_TOKEN = ""
    settings.QONTO_APP_URL = "https://app.qonto.example"
    settings.SITE_URL = "http://127.0.0.1:8000"
    return settings


def consent(url: str, decision: str = "allow") -> dict:
    """Walk the sandbox consent screen for an authorization URL; the callback's parameters."""
    page = requests.get(url, timeout=5)
    assert page.status_code == 200, page.text
    challenge = re.search(r'name="challenge" value="(\w+)"', page.text).group(1)
    base = url.split("/oauth2/auth")[0]
    answer = requests.post(
        f"{base}/oauth2/auth",
        data={"challenge": challenge, "decision": decision},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


@pytest.fixture
def connected(qonto_settings, make_user, make_workspace):
    """A workspace whose owner connected Qonto through the real OAuth flow."""
    owner = make_user("owner@qonto.example")
    workspace = make_workspace("Qonto Co", owner=owner)
    url, pending = services.qonto_authorization_begin(workspace=workspace, user=owner)
    answer = consent(url)
    outcome = services.qonto_authorization_complete(
        pending=pending, user=owner, state=answer["state"], code=answer["code"]
    )
    assert outcome.connection.status == ConnectionStatus.CONNECTED
    # As after a first Qonto read (postings wait for one); tests that read Qonto do it for real.
    Connection.objects.filter(pk=outcome.connection.pk).update(last_good_sync_at=timezone.now())
    outcome.connection.refresh_from_db()
    return outcome.connection


@pytest.fixture
def qbo_connection(connected):
    return Connection.objects.create(
        workspace_id=connected.workspace_id,
        provider=Provider.QUICKBOOKS,
        status=ConnectionStatus.CONNECTED,
        external_id="9130",
    )


@pytest.fixture
def make_record(qbo_connection):
    counter = {"n": 100}

    def make(entity: str = "Bill", *, qbo_id: str | None = None, **fields) -> SourceRecord:
        counter["n"] += 1
        qbo_id = qbo_id or str(counter["n"])
        payload = fields.pop("payload", None) or {
            "Id": qbo_id,
            "SyncToken": "0",
            "DocNumber": fields.get("invoice_number", ""),
            "Line": [{"Amount": str(fields.get("total_amount", "100.00")), "Description": "Work"}],
        }
        defaults = {
            "sync_token": "0",
            "total_amount": Decimal("100.00"),
            "currency": "EUR",
            "supplier_name": "Atelier Lumière",
            "invoice_number": f"INV-{qbo_id}",
            "state": "approved",
        }
        defaults.update(fields)
        return SourceRecord.objects.create(
            workspace_id=qbo_connection.workspace_id,
            connection=qbo_connection,
            entity_type=entity,
            qbo_id=qbo_id,
            payload=payload,
            **defaults,
        )

    return make


@pytest.fixture
def bill(make_record):
    return make_record("Bill", total_amount=Decimal("240.00"), invoice_number="AL-2026-17")
