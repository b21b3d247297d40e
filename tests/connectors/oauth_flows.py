"""The providers' consent screens walked over real HTTP, as a person would (sandboxes only)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import requests
from django.urls import reverse


def quickbooks_oauth_dance(client, workspace, *, decision: str = "allow", start_over=False):
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


def qonto_consent(url: str, decision: str = "allow") -> dict:
    """Walk the Qonto sandbox consent screen for an authorization URL; the callback's query."""
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
