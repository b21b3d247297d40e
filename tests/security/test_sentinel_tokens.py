"""A demo-style sync where every secret carries a sentinel: none of them ever comes back out.

Both sandboxes run over real HTTP; the demo workspace connects to them through the real OAuth
flows (the demo's scripted browser), syncs and posts. Every secret contains MARKER: the OAuth
access and refresh tokens the sandboxes issue (their `secrets` module is swapped for one that
prefixes MARKER), the OAuth client secret, the partner API key, the webhook signing secret and
the master key. The scanner then reads every log line (every logger at DEBUG), every page an
owner, accountant and staff member can GET, every partner API answer and the schema, the mails
and pages of a forced 500, the errors a provider failure leaves behind, and the whole database
in clear (sealed secrets are ciphertext and must stay so). MARKER is looked for as is and in
base64 at all three alignments and in hex, so an encoded leak is caught too.
"""

from __future__ import annotations

import base64
import logging
import secrets as real_secrets
from types import SimpleNamespace

import pytest
from allauth.mfa.models import Authenticator  # noqa: F401 - the TOTP tables must exist
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.admin.sites import site as admin_site
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from connectors.models import Connection, Provider, SyncRun
from connectors.qonto.models import Posting
from connectors.quickbooks.models import SourceFile, SourceRecord
from connectors.quickbooks.sync import quickbooks_sync
from matching.models import VendorRule
from review.models import Decision
from sandbox.demo import (
    DemoUrls,
    demo_connect,
    demo_settings_apply,
    demo_sync_and_post,
    demo_tenant_ensure,
)
from sandbox.runner import start_sandboxes
from sandbox.server import serve_in_thread
from tests.well.test_admin_mfa import _current_code
from tests.well.test_isolation import _PARAM, _fill, api_routes, workspace_routes
from well.api_auth import api_key_create
from well.audit import Actor
from well.encryption import secret_open
from well.models import ApiKey, AuditEvent, Role, WebhookEndpoint
from well.services import membership_add
from well.webhooks import webhook_endpoint_create

MARKER = "ZZSENTINELZZ"
CLIENT_SECRET = f"{MARKER}-oauth-client-secret"
MASTER_KEY = b"ZZSENTINELZZ-master-key-32-bytes"
assert len(MASTER_KEY) == 32


def marker_forms(marker: str = MARKER) -> set[str]:
    """MARKER as text, URL-quoted (the same: it is alphanumeric), hex and base64 at any offset.

    A secret that contains MARKER, base64-encoded anywhere inside a longer value (a Basic auth
    header, a JWT, a pickled task), shows one of these: the complete 4-character groups that
    encode only MARKER's bytes, for each of the 3 positions MARKER can take in a 3-byte group.
    """
    data = marker.encode()
    forms = {marker, marker.lower(), data.hex()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode()
        first, last = -(-shift // 3), (shift + len(data)) // 3
        piece = encoded[4 * first : 4 * last]
        forms |= {piece, piece.replace("+", "-").replace("/", "_")}
    return forms


FORMS = marker_forms()


def leaks(text: str) -> list[str]:
    """The sentinel forms found in `text`, each with some context."""
    found = []
    for form in FORMS:
        at = text.find(form)
        if at >= 0:
            found.append(f"{form!r} in ...{text[max(0, at - 80) : at + 80]!r}...")
    return found


class _SentinelSecrets(SimpleNamespace):
    """A stand-in for the `secrets` module of the sandboxes: every token begins with MARKER."""

    def __init__(self) -> None:
        super().__init__(
            token_hex=real_secrets.token_hex, compare_digest=real_secrets.compare_digest
        )

    @staticmethod
    def token_urlsafe(nbytes: int | None = None) -> str:
        return MARKER + real_secrets.token_urlsafe(nbytes)


class _EverythingLogged(logging.Handler):
    """Keeps every record as the text a log file would hold, plus its extra attributes."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        # Extra attributes too: the JSON log format prints them.
        self.lines.append(f"{self.format(record)} {vars(record)!r}")


@pytest.fixture
def all_logs():
    # Building the WSGI application runs django.setup(), whose dictConfig would drop a handler
    # added before it: build it first.
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    handler = _EverythingLogged()
    handler.application = application
    names = ["", "django", "django.request", "django.server", "urllib3", "requests", "well"]
    names += ["connectors", "matching", "review", "django_q", "allauth"]
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def sentinel_world(settings, monkeypatch, tmp_path, provider_settings_restored, all_logs):
    """The demo, connected and synced, with sentinel secrets everywhere."""
    monkeypatch.setenv("SANDBOX_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    for module in ("sandbox.qbo_oauth", "sandbox.qonto_oauth"):
        monkeypatch.setattr(f"{module}.secrets", _SentinelSecrets())
    monkeypatch.setattr("well.api_auth.secrets", _SentinelSecrets())
    monkeypatch.setattr("well.webhooks.secrets", _SentinelSecrets())
    key = base64.urlsafe_b64encode(MASTER_KEY).decode().rstrip("=")
    settings.WELL_MASTER_KEYS = [f"sentinel:{key}"]
    settings.ADMINS = [("Ops", "ops@well.example")]
    settings.DATA_DIR = tmp_path
    settings.DEBUG = False

    from django.contrib.staticfiles.handlers import StaticFilesHandler

    workspace = demo_tenant_ensure()
    qbo, qonto = start_sandboxes(bills=30, data_dir=tmp_path / "sandbox")
    site = serve_in_thread(StaticFilesHandler(all_logs.application))
    urls = DemoUrls(site=site.base_url, quickbooks=qbo.base_url, qonto=qonto.base_url)
    demo_settings_apply(urls)
    try:
        demo_connect(workspace=workspace, site=urls.site)
        demo_sync_and_post(workspace=workspace)
        yield SimpleNamespace(workspace=workspace, urls=urls)
    finally:
        site.stop()
        qbo.stop()
        qonto.stop()


def _provider_failures(world) -> None:
    """A QuickBooks outage (5xx on every attempt), then both grants revoked at the providers."""
    import requests

    qbo_connection = Connection.objects.get(workspace=world.workspace, provider=Provider.QUICKBOOKS)
    requests.post(
        f"{world.urls.quickbooks}/_sandbox/faults", json={"queue": ["5xx"] * 8}, timeout=10
    ).raise_for_status()
    failed = quickbooks_sync(connection_id=qbo_connection.pk, trigger="test", sleep=lambda s: 0)
    assert failed.status == "failed" and failed.error
    requests.post(f"{world.urls.quickbooks}/_sandbox/faults", json={"clear": True, "revoke": True})
    qonto_connection = Connection.objects.get(workspace=world.workspace, provider=Provider.QONTO)
    requests.post(
        f"{world.urls.qonto}/_sandbox/revoke",
        json={"token": secret_open(qonto_connection, "refresh_token")},
        timeout=10,
    ).raise_for_status()
    # Access tokens still live for an hour at Qonto's side of the sandbox: expire them too.
    requests.post(f"{world.urls.quickbooks}/_sandbox/faults", json={"expire_access": True})
    requests.post(f"{world.urls.qonto}/_sandbox/faults", json={"expire_access": True})
    demo_sync_and_post(workspace=world.workspace)


def _object_ids(workspace) -> dict[str, object]:
    """A real object of the demo workspace for every URL parameter the routes take."""
    # A posted bill with its attachment: the richest record page (evidence, files, audit).
    source_file = (
        SourceFile.objects.filter(workspace=workspace, record__entity_type="Bill", error="")
        .select_related("record")
        .first()
    )
    record = source_file.record if source_file else None
    if record is None:
        record = SourceRecord.objects.for_workspace(workspace).filter(entity_type="Bill").first()
    posting = Posting.objects.filter(workspace=workspace).first()
    decision = Decision.objects.filter(workspace=workspace).first()
    values = {
        "workspace_slug": workspace.slug,
        "connection_id": Connection.objects.filter(workspace=workspace).first().pk,
        "record_id": record.pk,
        "file_id": source_file.pk if source_file else None,
        "posting_id": posting.pk if posting else None,
        "sync_run_id": SyncRun.objects.filter(workspace=workspace).first().pk,
        "decision_id": decision.pk if decision else None,
        "vendor_rule_id": VendorRule.objects.get_or_create(workspace=workspace, vendor_qbo_id="1")[
            0
        ].pk,
        "audit_event_id": AuditEvent.objects.filter(workspace=workspace).first().pk,
        "webhook_id": WebhookEndpoint.objects.filter(workspace=workspace).first().pk,
        "api_key_id": ApiKey.objects.filter(workspace=workspace).first().pk,
    }
    return values


def _get_all(client, routes: list[str], values: dict, seen: dict[str, str], who: str) -> None:
    for route in routes:
        names = {m.group("name") for m in _PARAM.finditer(route)}
        if any(values.get(name) is None for name in names):
            continue
        url = _fill(route, values)
        response = client.get(url)
        where = f"{who} GET {url} -> {response.status_code}"
        assert response.status_code < 500, where
        body = b"".join(response) if response.streaming else response.content
        seen[where] = f"{response.headers!r}\n{body.decode(errors='replace')}"


def _staff_client(make_user) -> Client:
    staff = make_user("staff@well.example", is_staff=True, is_superuser=True)
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    client = Client()
    client.post("/accounts/login/", {"login": staff.email, "password": "correct horse battery"})
    client.post("/accounts/2fa/authenticate/", {"code": _current_code(secret)})
    assert client.get("/admin/").status_code == 200
    return client


def _admin_urls() -> list[str]:
    urls = []
    for model in admin_site._registry:
        meta = model._meta
        base = f"admin:{meta.app_label}_{meta.model_name}"
        urls.append(reverse(f"{base}_changelist"))
        urls.append(reverse(f"{base}_changelist") + "?q=ZZ")
        urls.append(reverse(f"{base}_add"))  # 403 where staff may not add: still scanned
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"{base}_change", args=[first.pk]))
            urls.append(reverse(f"{base}_history", args=[first.pk]))
    return urls


def _force_a_500(monkeypatch, client: Client, key_secret: str, workspace) -> str:
    """A view that crashes while the request carries the API key: the page and the mail."""

    def crash(**kwargs):
        raise RuntimeError("the dashboard selector broke")

    monkeypatch.setattr("review.views.dashboard_get", crash)
    client.raise_request_exception = False
    response = client.get(
        f"/w/{workspace.slug}/",
        HTTP_AUTHORIZATION=f"Bearer {key_secret}",
        HTTP_X_API_KEY=key_secret,
        QUERY_STRING="next=/",
    )
    assert response.status_code == 500
    return response.content.decode(errors="replace")


def _crash_inside_a_provider_call(monkeypatch, workspace) -> str:
    """An unexpected bug while a request to QuickBooks is being sent: the technical report.

    Django's technical 500 (DEBUG on, or a mail with include_html) shows every frame's local
    variables, and the bearer token is a local variable of the provider call.
    """
    import sys

    from django.views.debug import ExceptionReporter
    from requests.adapters import HTTPAdapter

    def broken_send(self, request, **kwargs):
        raise RuntimeError("adapter bug")

    connection = Connection.objects.get(workspace=workspace, provider=Provider.QUICKBOOKS)
    monkeypatch.setattr(HTTPAdapter, "send", broken_send)
    try:
        quickbooks_sync(connection_id=connection.pk, full=True, trigger="test")
    except RuntimeError:
        reporter = ExceptionReporter(None, *sys.exc_info())
        return reporter.get_traceback_html() + reporter.get_traceback_text()
    finally:
        monkeypatch.undo()
    raise AssertionError("the sync should have raised the adapter bug")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_sentinel_secret_leaks_from_a_full_demo_sync(
    sentinel_world, all_logs, make_user, monkeypatch, tmp_path, settings
):
    workspace = sentinel_world.workspace
    # The sentinels really are the secrets in use (else this test could not fail).
    qbo = Connection.objects.get(workspace=workspace, provider=Provider.QUICKBOOKS)
    qonto = Connection.objects.get(workspace=workspace, provider=Provider.QONTO)
    for connection in (qbo, qonto):
        for field in ("access_token", "refresh_token"):
            assert MARKER in secret_open(connection, field), (connection.provider, field)
    assert SourceRecord.objects.for_workspace(workspace).count() > 30
    assert MARKER in settings.QUICKBOOKS_CLIENT_SECRET and MARKER in settings.QONTO_CLIENT_SECRET
    _, key_secret = api_key_create(
        workspace=workspace,
        name="partner",
        scopes=["read", "decide", "admin"],
        actor=Actor.system(),
    )
    _, webhook_secret = webhook_endpoint_create(
        workspace=workspace,
        url="https://hooks.example.com/well",
        events=["record.posted"],
        actor=Actor.system(),
    )
    assert MARKER in key_secret and MARKER in webhook_secret
    seen: dict[str, str] = {}

    seen["technical 500 of a provider call"] = _crash_inside_a_provider_call(monkeypatch, workspace)
    _provider_failures(sentinel_world)

    values = _object_ids(workspace)
    owner = Client()
    owner.force_login(workspace.memberships.get(role=Role.OWNER).user)
    accountant_user = make_user("accountant@well.example")
    membership_add(
        workspace=workspace, user=accountant_user, role=Role.ACCOUNTANT, actor=Actor.system()
    )
    accountant = Client()
    accountant.force_login(accountant_user)
    for who, client in (("owner", owner), ("accountant", accountant)):
        _get_all(client, ["", *workspace_routes()], values, seen, who)

    staff = _staff_client(make_user)
    for url in _admin_urls():
        response = staff.get(url)
        where = f"staff GET {url} -> {response.status_code}"
        assert response.status_code < 500, where
        seen[where] = response.content.decode(errors="replace")

    partner = APIClient()
    partner.credentials(HTTP_AUTHORIZATION=f"Bearer {key_secret}")
    _get_all(partner, [*api_routes(), "api/schema/", "api/docs/"], values, seen, "partner")

    seen["500 page"] = _force_a_500(monkeypatch, owner, key_secret, workspace)
    assert mail.outbox, "the 500 should have mailed the admins"
    for message in mail.outbox:
        alternatives = " ".join(str(content) for content, _ in message.alternatives)
        seen[f"mail {message.subject}"] = f"{message.subject}\n{message.body}\n{alternatives}"

    # Everything stored in clear: audit events, sync and posting errors, sessions, tasks.
    dump = tmp_path / "database.json"
    call_command("dumpdata", "--natural-foreign", output=str(dump))
    seen["database"] = dump.read_text()
    seen["logs"] = "\n".join(all_logs.lines)
    # The capture saw the whole run: OAuth, provider calls, the failures, the 500.
    for expected in ("oauth2/v1/tokens/bearer", "/oauth2/token", "Internal Server Error"):
        assert expected in seen["logs"], expected

    assert len(seen) > 40
    assert SyncRun.objects.filter(workspace=workspace, status="failed").count() >= 2
    found = {where: hits for where, text in seen.items() if (hits := leaks(text))}
    assert not found, found

    # The same capture and scanner catch a leak when there is one.
    logging.getLogger("well.http").debug("refreshing with %s", key_secret)
    assert leaks("\n".join(all_logs.lines[-1:]))
    encoded = base64.b64encode(f"client:{CLIENT_SECRET}".encode()).decode()
    assert leaks(f"Authorization: Basic {encoded}")


@pytest.mark.parametrize("shift", ["", "a", "ab"])
def test_the_scanner_finds_a_secret_in_clear_quoted_hex_and_base64_at_any_offset(shift):
    from urllib.parse import quote_plus

    token = f"{MARKER}{real_secrets.token_urlsafe(20)}"
    for text in (
        token,
        quote_plus(f"refresh_token={token}&x=1"),
        token.encode().hex(),
        base64.b64encode(f"{shift}{token}".encode()).decode(),
        base64.urlsafe_b64encode(f"{shift}{token}".encode()).decode(),
    ):
        assert leaks(f"<p>{text}</p>"), text
    assert not leaks(base64.b64encode(real_secrets.token_bytes(4000)).decode())


def test_error_reports_hide_secrets_held_in_local_variables(settings):
    """The leak this sweep found: a provider call's bearer token in the technical report."""
    import sys

    from django.views.debug import ExceptionReporter

    settings.DEBUG = False
    token = f"{MARKER}{real_secrets.token_urlsafe(20)}"

    def provider_call(headers, value):
        raise RuntimeError("boom")

    try:
        provider_call({"Authorization": f"Bearer {token}"}, f"Basic {token}")
    except RuntimeError:
        reporter = ExceptionReporter(None, *sys.exc_info())
        report = reporter.get_traceback_html() + reporter.get_traceback_text()

    assert "provider_call" in report and "boom" in report
    assert not leaks(report)
