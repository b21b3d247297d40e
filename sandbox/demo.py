"""The demo: both sandboxes, the demo workspace connected through the real OAuth flows over
HTTP (a scripted browser clicks "Connect" and "Allow"), then a first sync and posting run.

Only the demo points Well at the sandboxes, and only through settings, as an operator would;
while it serves, the other commands on its data folder do too (sandbox/running_demo.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import requests
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count

from connectors.models import Connection, ConnectionStatus, Provider
from connectors.qonto.posting import postings_send
from connectors.qonto.sync import qonto_sync
from connectors.quickbooks.models import RecordState, SourceRecord
from connectors.quickbooks.sync import quickbooks_sync
from matching.models import Band, Proposal
from sandbox.runner import sandbox_credentials
from well.audit import Actor
from well.models import Role, Workspace
from well.services import membership_add, workspace_create

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "well-demo"
DEMO_SLUG = "demo"
QUICKBOOKS_PORT = 8765
QONTO_PORT = 8766
_HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass(frozen=True)
class DemoUrls:
    site: str
    quickbooks: str
    qonto: str


def demo_settings_apply(urls: DemoUrls) -> None:
    """Point the provider settings at the sandboxes, unless the environment already did."""
    client_id, client_secret = sandbox_credentials()
    overrides = {
        "SITE_URL": urls.site,
        "QUICKBOOKS_CLIENT_ID": client_id,
        "QUICKBOOKS_CLIENT_SECRET": client_secret,
        "QUICKBOOKS_AUTHORIZE_URL": f"{urls.quickbooks}/connect/oauth2",
        "QUICKBOOKS_TOKEN_URL": f"{urls.quickbooks}/oauth2/v1/tokens/bearer",
        "QUICKBOOKS_REVOKE_URL": f"{urls.quickbooks}/v2/oauth2/tokens/revoke",
        "QUICKBOOKS_API_URL": urls.quickbooks,
        "QUICKBOOKS_DOWNLOAD_HOSTS": ["127.0.0.1"],
        "WELL_ALLOW_LOOPBACK_DOWNLOADS": True,
        "QONTO_CLIENT_ID": client_id,
        "QONTO_CLIENT_SECRET": client_secret,
        "QONTO_AUTHORIZE_URL": f"{urls.qonto}/oauth2/auth",
        "QONTO_TOKEN_URL": f"{urls.qonto}/oauth2/token",
        "QONTO_REVOKE_URL": f"{urls.qonto}/oauth2/revoke",
        "QONTO_API_URL": urls.qonto,
    }
    for name, value in overrides.items():
        setattr(settings, name, value)


def _signed_in_browser(site: str) -> requests.Session:
    browser = requests.Session()
    browser.trust_env = False
    page = browser.get(f"{site}/accounts/login/", timeout=30)
    token = _CSRF_INPUT.search(page.text).group(1)
    response = browser.post(
        f"{site}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "login": DEMO_EMAIL, "password": DEMO_PASSWORD},
        headers={"Referer": f"{site}/accounts/login/"},
        timeout=30,
    )
    response.raise_for_status()
    return browser


def _click_connect_and_allow(browser: requests.Session, site: str, connect_path: str) -> str:
    """Press "Connect" in Well, then "Allow" on the consent page; return where we land."""
    page = browser.get(f"{site}/w/{DEMO_SLUG}/connections/", timeout=30)
    token = _CSRF_INPUT.search(page.text).group(1)
    consent = browser.post(
        f"{site}{connect_path}",
        data={"csrfmiddlewaretoken": token},
        headers={"Referer": page.url},
        timeout=30,
    )
    consent.raise_for_status()
    form = {name: unescape(value) for name, value in _HIDDEN_INPUT.findall(consent.text)}
    action = re.search(r'<form method="post" action="([^"]+)"', consent.text).group(1)
    landed = browser.post(
        urljoin(consent.url, action), data={**form, "decision": "allow"}, timeout=60
    )
    landed.raise_for_status()
    return landed.url


def demo_connect(*, workspace: Workspace, site: str) -> None:
    """Connect QuickBooks, then Qonto, through the real authorization-code flows."""
    connected = set(
        Connection.objects.for_workspace(workspace)
        .filter(status=ConnectionStatus.CONNECTED)
        .values_list("provider", flat=True)
    )
    if connected >= {Provider.QUICKBOOKS, Provider.QONTO}:
        return
    browser = _signed_in_browser(site)
    base = f"/w/{DEMO_SLUG}/connections"
    if Provider.QUICKBOOKS not in connected:
        _click_connect_and_allow(browser, site, f"{base}/quickbooks/connect/")
    if Provider.QONTO not in connected:
        _click_connect_and_allow(browser, site, f"{base}/qonto/connect/")


def demo_sync_and_post(*, workspace: Workspace) -> None:
    """One round of what the worker does every hour: read Qonto, sync QuickBooks, post."""
    connections = {
        c.provider: c
        for c in Connection.objects.for_workspace(workspace).filter(
            status=ConnectionStatus.CONNECTED
        )
    }
    if Provider.QONTO in connections:
        qonto_sync(connection_id=connections[Provider.QONTO].pk, trigger="demo")
    if Provider.QUICKBOOKS in connections:
        quickbooks_sync(connection_id=connections[Provider.QUICKBOOKS].pk, trigger="demo")
    if Provider.QONTO in connections:
        qonto_sync(connection_id=connections[Provider.QONTO].pk, trigger="demo")
        postings_send()


def demo_counts(*, workspace: Workspace, qonto_url: str) -> dict:
    states = dict(
        SourceRecord.objects.for_workspace(workspace)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    auto_approved = Proposal.objects.for_workspace(workspace).filter(
        is_current=True, band=Band.AUTO
    )
    qonto_state = requests.get(f"{qonto_url}/_sandbox/state", timeout=30).json()
    return {
        "pulled": sum(states.values()),
        # Decided by Well alone, whether already posted or still on its way.
        "auto_approved": auto_approved.count(),
        "in_review": states.get(RecordState.IN_REVIEW, 0),
        "refused": states.get(RecordState.REFUSED, 0),
        "posting": states.get(RecordState.POSTING, 0),
        "posted": states.get(RecordState.POSTED, 0),
        "failed": states.get(RecordState.FAILED, 0),
        "qonto_supplier_invoices": qonto_state["supplier_invoices"],
        "qonto_duplicates": qonto_state["duplicates"],
        # Every invoice Well uploads names its supplier (issue 17: the demo had 9 of 203).
        "qonto_without_supplier": qonto_state["without_supplier"],
    }


def demo_data_dir() -> Path:
    return Path(settings.DATA_DIR) / "sandbox"


@transaction.atomic
def demo_tenant_ensure() -> Workspace:
    """Create the demo user and workspace once; later runs reuse them."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=DEMO_EMAIL, defaults={"email": DEMO_EMAIL}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        EmailAddress.objects.create(user=user, email=DEMO_EMAIL, verified=True, primary=True)
    workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
    if workspace is None:
        workspace = workspace_create(
            name="Demo company", slug=DEMO_SLUG, actor=Actor.system("demo")
        )
    membership_add(workspace=workspace, user=user, role=Role.OWNER, actor=Actor.system("demo"))
    return workspace
