"""Fixtures shared by the QuickBooks tests: the sandbox over real HTTP and a connected workspace.

Imported by the other test_quickbooks_* modules (no conftest of our own in this folder).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from connectors.models import Connection, Provider
from sandbox.quickbooks import QuickBooksSandbox
from sandbox.runner import sandbox_credentials
from sandbox.server import serve_in_thread
from sandbox.world import build_world

SANDBOX_BILLS = 60

__all__ = [
    "Sandbox",
    "connected",
    "oauth_dance",
    "owner",
    "qbo",
    "qbo_server",
    "qbo_world",
    "workspace",
]


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


class Sandbox:
    """Control-API helper for one test."""

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
    sandbox = Sandbox(base)
    sandbox.control("reset", {"grants": True, "clock": True})
    return sandbox


def oauth_dance(client, workspace, *, decision: str = "allow", start_over: bool = False):
    """Connect through the real flow: Well -> sandbox consent -> Well's callback."""
    response = client.post(
        reverse("connectors:quickbooks_connect", args=[workspace.slug]),
        {"start_over": "1"} if start_over else {},
    )
    assert response.status_code == 302, response.status_code
    authorize = urlsplit(response["Location"])
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    consent = requests.post(
        f"{authorize.scheme}://{authorize.netloc}{authorize.path}",
        data={**params, "decision": decision},
        allow_redirects=False,
        timeout=10,
    )
    assert consent.status_code in (302, 303), consent.text[:300]
    callback = urlsplit(consent.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}")


@pytest.fixture
def owner(make_user):
    return make_user("owner@well.example")


@pytest.fixture
def workspace(make_workspace, owner):
    return make_workspace("Books Co", owner=owner)


@pytest.fixture
def connected(qbo, client, owner, workspace):
    """A workspace connected to the sandbox company through the real OAuth flow."""
    client.force_login(owner)
    response = oauth_dance(client, workspace)
    assert response.status_code == 302
    return Connection.objects.get(workspace=workspace, provider=Provider.QUICKBOOKS)
