"""The connectors' fixtures: both sandboxes over real HTTP on 127.0.0.1, connected workspaces.

The QuickBooks and Qonto fixtures have names of their own here (`quickbooks_connected`,
`qonto_connected`); each provider's folder calls its own one `connected`.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
import requests
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.wsgi import get_wsgi_application
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.qonto import services as qonto_services
from sandbox.demo import DemoUrls, demo_connect, demo_settings_apply, demo_tenant_ensure
from sandbox.qonto import QontoSandbox
from sandbox.quickbooks import QuickBooksSandbox
from sandbox.runner import sandbox_credentials, start_sandboxes
from sandbox.server import serve_in_thread
from sandbox.world import build_world
from tests.connectors.oauth_flows import qonto_consent, quickbooks_oauth_dance
from tests.factories import SourceRecordFactory

SANDBOX_BILLS = 60
QONTO_CLIENT_ID = "well-qonto-test"
QONTO_CLIENT_SECRET = "well-qonto-test-secret"


# --- QuickBooks ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def qbo_world():
    return build_world(seed=1, bills=SANDBOX_BILLS)


@pytest.fixture(scope="session")
def qbo_server(qbo_world):
    client_id, client_secret = sandbox_credentials()
    app = QuickBooksSandbox(client_id=client_id, client_secret=client_secret, data_dir=None)
    app.seed(qbo_world.quickbooks)
    running = serve_in_thread(app)
    yield running
    running.stop()


class QuickBooksBox:
    """The QuickBooks sandbox's control API, for one test."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.trust_env = False

    def control(self, name: str, body: dict | None = None) -> dict:
        url = f"{self.base_url}/_sandbox/{name}"
        response = self.http.post(url, json=body or {}) if body is not None else self.http.get(url)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        return self.control("stats")

    def api_calls(self) -> dict:
        """Calls per 'METHOD endpoint' that reached the QuickBooks API (OAuth excluded)."""
        return {
            key: value
            for key, value in self.stats()["calls"].items()
            if not any(part in key for part in ("token", "revoke", "authorize", "file"))
        }

    def mutate(self, **body) -> dict:
        return self.control("mutate", body)

    def faults(self, **body) -> dict:
        return self.control("faults", body)


@pytest.fixture
def qbo(qbo_server, settings, tmp_path):
    """The sandbox, reset, with Well's settings pointing at it."""
    client_id, client_secret = sandbox_credentials()
    base = qbo_server.base_url
    settings.QUICKBOOKS_CLIENT_ID = client_id
    settings.QUICKBOOKS_CLIENT_SECRET = client_secret
    settings.QUICKBOOKS_AUTHORIZE_URL = f"{base}/connect/oauth2"
    settings.QUICKBOOKS_TOKEN_URL = f"{base}/oauth2/v1/tokens/bearer"
    settings.QUICKBOOKS_REVOKE_URL = f"{base}/v2/oauth2/tokens/revoke"
    settings.QUICKBOOKS_API_URL = base
    settings.QUICKBOOKS_DOWNLOAD_HOSTS = ["127.0.0.1"]
    settings.WELL_ALLOW_LOOPBACK_DOWNLOADS = True
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.MEDIA_ROOT = str(tmp_path / "media")
    sandbox = QuickBooksBox(base)
    sandbox.control("reset", {"grants": True, "clock": True})
    return sandbox


@pytest.fixture
def quickbooks_owner(make_user):
    return make_user("owner@well.example")


@pytest.fixture
def quickbooks_workspace(make_workspace, quickbooks_owner):
    return make_workspace("Books Co", owner=quickbooks_owner)


@pytest.fixture
def quickbooks_connected(qbo, client, quickbooks_owner, quickbooks_workspace):
    """A workspace connected to the sandbox company through the real OAuth flow."""
    client.force_login(quickbooks_owner)
    response = quickbooks_oauth_dance(client, quickbooks_workspace)
    assert response.status_code == 302
    return Connection.objects.get(workspace=quickbooks_workspace, provider=Provider.QUICKBOOKS)


# --- Qonto -----------------------------------------------------------------------------------


class QontoBox:
    """The running Qonto sandbox and its control API."""

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
    app = QontoSandbox(
        client_id=QONTO_CLIENT_ID, client_secret=QONTO_CLIENT_SECRET, analysis_delay_seconds=0
    )
    server = serve_in_thread(app)
    yield QontoBox(app, server.base_url)
    server.stop()


@pytest.fixture
def qonto(qonto_server):
    qonto_server.control("reset", {"auth": True})
    return qonto_server


@pytest.fixture
def qonto_settings(settings, qonto):
    settings.QONTO_CLIENT_ID = QONTO_CLIENT_ID
    settings.QONTO_CLIENT_SECRET = QONTO_CLIENT_SECRET
    settings.QONTO_AUTHORIZE_URL = f"{qonto.base}/oauth2/auth"
    settings.QONTO_TOKEN_URL = f"{qonto.base}/oauth2/token"
    settings.QONTO_REVOKE_URL = f"{qonto.base}/oauth2/revoke"
    settings.QONTO_API_URL = qonto.base
    settings.QONTO_STAGING_TOKEN = ""
    settings.QONTO_APP_URL = "https://app.qonto.example"
    settings.SITE_URL = "http://127.0.0.1:8000"
    return settings


@pytest.fixture
def qonto_connected(qonto_settings, make_user, make_workspace):
    """A workspace whose owner connected Qonto through the real OAuth flow."""
    owner = make_user("owner@qonto.example")
    workspace = make_workspace("Qonto Co", owner=owner)
    url, pending = qonto_services.qonto_authorization_begin(workspace=workspace, user=owner)
    answer = qonto_consent(url)
    outcome = qonto_services.qonto_authorization_complete(
        pending=pending, user=owner, state=answer["state"], code=answer["code"]
    )
    assert outcome.connection.status == ConnectionStatus.CONNECTED
    # As after a first Qonto read (postings wait for one); tests that read Qonto do it for real.
    Connection.objects.filter(pk=outcome.connection.pk).update(last_good_sync_at=timezone.now())
    outcome.connection.refresh_from_db()
    return outcome.connection


@pytest.fixture
def qbo_connection(qonto_connected):
    """A QuickBooks connection row next to the Qonto one (its records are made, not synced)."""
    return Connection.objects.create(
        workspace_id=qonto_connected.workspace_id,
        provider=Provider.QUICKBOOKS,
        status=ConnectionStatus.CONNECTED,
        external_id="9130",
    )


@pytest.fixture
def make_record(qbo_connection):
    """A QuickBooks record of that workspace, approved by default (ready to post)."""
    counter = {"n": 100}

    def make(entity: str = "Bill", *, qbo_id: str | None = None, **fields):
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
            "issue_date": None,
            "vendor_qbo_id": "",
        }
        defaults.update(fields)
        return SourceRecordFactory(
            workspace_id=qbo_connection.workspace_id,
            connection=qbo_connection,
            entity_type=entity,
            qbo_id=qbo_id,
            payload=payload,
            **defaults,
        )

    return make


# --- Both, as the demo runs them -------------------------------------------------------------


@pytest.fixture
def sandboxes(settings, tmp_path, provider_settings_restored):
    """Both sandboxes and the site in-process, the demo workspace connected through OAuth."""
    insecure = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the sandboxes speak plain http
    settings.DATA_DIR = tmp_path
    qbo_running, qonto_running = start_sandboxes(qbo_port=0, qonto_port=0, bills=40, data_dir=None)
    site = serve_in_thread(StaticFilesHandler(get_wsgi_application()), port=0)
    try:
        urls = DemoUrls(
            site=site.base_url, quickbooks=qbo_running.base_url, qonto=qonto_running.base_url
        )
        demo_settings_apply(urls)
        workspace = demo_tenant_ensure()
        demo_connect(workspace=workspace, site=urls.site)
        yield workspace, urls
    finally:
        site.stop()
        qbo_running.stop()
        qonto_running.stop()
        if insecure is None:
            os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
