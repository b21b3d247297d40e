"""The Qonto sandbox, driven over real HTTP as Qonto's own clients would (qonto-api.md)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import socket
import uuid
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.qonto import QontoSandbox
from sandbox.qonto_analysis import parse_invoice_text, render_invoice_pdf
from sandbox.qonto_seed import MAIN_ACCOUNT_ID, SAVINGS_ACCOUNT_ID, default_seed
from sandbox.server import serve_in_thread

CLIENT_ID = "well-client"
CLIENT_SECRET = "well-secret"
REDIRECT_URI = "http://127.0.0.1:8000/connect/qonto/callback"
FULL_SCOPE = (
    "offline_access organization.read supplier_invoice.read supplier_invoice.write "
    "attachment.read attachment.write"
)
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Sandbox:
    """A running sandbox plus the helpers the tests share."""

    def __init__(self, app: QontoSandbox, base_url: str) -> None:
        self.app = app
        self.base = base_url
        self.token: dict = {}

    def url(self, path: str) -> str:
        return self.base + path

    def consent(self, scope: str = FULL_SCOPE, decision: str = "allow", **extra) -> dict:
        """Walk the consent screen and return the callback's query parameters."""
        params = {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": scope,
            "state": "state-1234567",
            **extra,
        }
        page = requests.get(self.url("/oauth2/auth"), params=params, timeout=5)
        assert page.status_code == 200, page.text
        challenge = re.search(r'name="challenge" value="(\w+)"', page.text).group(1)
        answer = requests.post(
            self.url("/oauth2/auth"),
            data={"challenge": challenge, "decision": decision},
            allow_redirects=False,
            timeout=5,
        )
        assert answer.status_code == 302
        return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}

    def exchange(self, code: str, **overrides) -> requests.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": REDIRECT_URI,
            **overrides,
        }
        return requests.post(self.url("/oauth2/token"), data=data, timeout=5)

    def refresh(self, refresh_token: str) -> requests.Response:
        data = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        return requests.post(self.url("/oauth2/token"), data=data, timeout=5)

    def connect(self, scope: str = FULL_SCOPE) -> dict:
        """Consent, exchange the code, and remember the tokens."""
        response = self.exchange(self.consent(scope)["code"])
        assert response.status_code == 200, response.text
        self.token = response.json()
        return self.token

    def headers(self, token: str | None = None) -> dict:
        return {"Authorization": f"Bearer {token or self.token['access_token']}"}

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return requests.get(self.url(path), headers=self.headers(token), timeout=10, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        headers = {**self.headers(token), **kwargs.pop("headers", {})}
        return requests.post(self.url(path), headers=headers, **kwargs)

    def upload(self, items: list[tuple], **data) -> requests.Response:
        """POST the bulk endpoint with a list of tuples, as §4.2 shows."""
        return self.post("/v2/supplier_invoices/bulk", files=items, data=data)

    def control(self, name: str, body: dict | None = None) -> dict:
        if body is None:
            response = requests.get(self.url(f"/_sandbox/{name}"), timeout=5)
        else:
            response = requests.post(self.url(f"/_sandbox/{name}"), json=body, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def advance(self, seconds: float) -> None:
        self.control("clock", {"advance_seconds": seconds})


def pdf(number: str = "INV-1", supplier: str = "Acme GmbH", total: str = "120.00") -> bytes:
    return render_invoice_pdf(
        {
            "supplier_name": supplier,
            "invoice_number": number,
            "issue_date": "2024-03-01",
            "due_date": "2024-03-31",
            "total_amount": {"value": total, "currency": "EUR"},
            "vat_number": "DE123456789",
        }
    )


def item(
    content: bytes, key: str | None, name: str = "invoice.pdf", ctype: str = "application/pdf"
):
    """The multipart tuples of one invoice: file, then its idempotency key (§4.2)."""
    parts = [("supplier_invoices[][file]", (name, content, ctype))]
    if key is not None:
        parts.append(("supplier_invoices[][idempotency_key]", (None, key)))
    return parts


@pytest.fixture(scope="module")
def running():
    """One server for the module (stopping one takes half a second); each test resets it."""
    app = QontoSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    server = serve_in_thread(app)
    yield app, server.base_url
    server.stop()


@pytest.fixture
def sandbox(running):
    app, base_url = running
    app.seed(**default_seed())
    box = Sandbox(app, base_url)
    box.control("reset", {"auth": True})
    return box


@pytest.fixture
def connected(sandbox):
    sandbox.connect()
    return sandbox


# --- OAuth -----------------------------------------------------------------------------------


def test_token_endpoint_refuses_client_credentials_sent_with_http_basic(sandbox):
    code = sandbox.consent()["code"]
    response = requests.post(
        sandbox.url("/oauth2/token"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert (
        "Client authentication failed (e.g., unknown client" in response.json()["error_description"]
    )


def test_code_exchange_with_body_credentials_returns_the_documented_fields(sandbox):
    callback = sandbox.consent()
    assert callback["state"] == "state-1234567"
    assert callback["code"].startswith("ory_ac_")
    body = sandbox.exchange(callback["code"]).json()
    assert body["access_token"].startswith("ory_at_")
    assert body["refresh_token"].startswith("ory_rt_")
    assert body["expires_in"] == 3600
    assert body["token_type"] == "bearer"
    assert body["scope"] == FULL_SCOPE


def test_wrong_client_secret_is_invalid_client(sandbox):
    response = sandbox.exchange(sandbox.consent()["code"], client_secret="nope")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_authorization_code_is_single_use(sandbox):
    code = sandbox.consent()["code"]
    assert sandbox.exchange(code).status_code == 200
    second = sandbox.exchange(code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


def test_authorization_code_expires_after_ten_minutes(sandbox):
    code = sandbox.consent()["code"]
    sandbox.advance(601)
    assert sandbox.exchange(code).json()["error"] == "invalid_grant"


def test_code_exchange_needs_the_same_redirect_uri(sandbox):
    code = sandbox.consent()["code"]
    response = sandbox.exchange(code, redirect_uri="http://127.0.0.1:9999/other")
    assert response.json()["error"] == "invalid_grant"


def test_deny_redirects_with_access_denied_and_the_state(sandbox):
    callback = sandbox.consent(decision="deny")
    assert callback == {
        "error": "access_denied",
        "error_description": "The resource owner denied the request.",
        "state": "state-1234567",
    }


def test_consent_only_redirects_to_this_machine(sandbox):
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": "https://evil.example/callback",
        "response_type": "code",
        "scope": FULL_SCOPE,
        "state": "state-1234567",
    }
    response = requests.get(sandbox.url("/oauth2/auth"), params=params, timeout=5)
    assert response.status_code == 400
    assert "redirect_uri" in response.text


def test_consent_refuses_scopes_the_oauth_server_rejects(sandbox):
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "organization.read beneficiary.trust",
        "state": "state-1234567",
    }
    response = requests.get(
        sandbox.url("/oauth2/auth"), params=params, allow_redirects=False, timeout=5
    )
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["invalid_scope"]
    assert "beneficiary.trust" in query["error_description"][0]


def test_refresh_token_only_comes_with_offline_access(sandbox):
    token = sandbox.connect("organization.read")
    assert "refresh_token" not in token
    assert token["scope"] == "organization.read"


def test_refresh_rotates_and_the_old_token_has_a_60_second_grace(connected):
    first = connected.token["refresh_token"]
    rotated = connected.refresh(first).json()
    assert rotated["refresh_token"] != first
    connected.advance(30)
    assert connected.refresh(first).status_code == 200  # still inside the grace period
    connected.advance(31)
    late = connected.refresh(first)
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_grant"
    assert connected.refresh(rotated["refresh_token"]).status_code == 200


def test_access_token_expires_after_its_ttl(connected):
    assert connected.get("/v2/organization").status_code == 200
    connected.advance(3601)
    assert connected.get("/v2/organization").status_code == 401


def test_revoking_an_access_token_makes_it_401(connected):
    response = requests.post(
        connected.url("/oauth2/revoke"),
        data={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token": connected.token["access_token"],
        },
        timeout=5,
    )
    assert response.status_code == 200
    assert connected.get("/v2/organization").status_code == 401


def test_revoking_a_refresh_token_revokes_the_whole_grant(connected):
    requests.post(
        connected.url("/oauth2/revoke"),
        data={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token": connected.token["refresh_token"],
        },
        timeout=5,
    )
    assert connected.get("/v2/organization").status_code == 401
    assert connected.refresh(connected.token["refresh_token"]).json()["error"] == "invalid_grant"


def test_deleting_consents_disconnects_the_app(connected):
    response = requests.delete(
        connected.url("/v2/oauth2/consents"), headers=connected.headers(), timeout=5
    )
    assert response.status_code == 204
    assert connected.get("/v2/organization").status_code == 401
    assert connected.refresh(connected.token["refresh_token"]).json()["error"] == "invalid_grant"


def test_control_api_can_revoke_a_grant_and_force_a_rotation(connected):
    rotated = connected.control(
        "rotate", {"refresh_token": connected.token["refresh_token"], "expire_grace": True}
    )
    assert rotated["refresh_token"].startswith("ory_rt_")
    # As if another worker refreshed long ago: the old refresh token is dead.
    assert connected.refresh(connected.token["refresh_token"]).json()["error"] == "invalid_grant"
    connected.control("revoke", {"token": rotated["refresh_token"]})
    assert connected.get("/v2/organization", token=rotated["access_token"]).status_code == 401


def test_staging_token_is_required_when_configured():
    app = QontoSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, staging_token="stg-1")
    server = serve_in_thread(app)
    try:
        box = Sandbox(app, server.base_url)
        code = box.consent()["code"]
        missing = box.exchange(code)
        assert missing.status_code == 200
        assert missing.headers["Content-Type"].startswith("text/html")
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": REDIRECT_URI,
        }
        ok = requests.post(
            box.url("/oauth2/token"),
            data=data,
            headers={"X-Qonto-Staging-Token": "stg-1"},
            timeout=5,
        )
        assert ok.status_code == 200
        assert ok.json()["access_token"].startswith("ory_at_")
    finally:
        server.stop()


# --- scopes and errors -----------------------------------------------------------------------


def test_a_missing_scope_is_a_403_naming_it(sandbox):
    sandbox.connect("organization.read")
    response = sandbox.get("/v2/supplier_invoices")
    assert response.status_code == 403
    assert "missing required OAuth scope" in response.json()["errors"][0]["detail"]
    assert sandbox.get("/v2/organization").status_code == 200


def test_errors_use_the_envelope_and_the_trace_id_header(sandbox):
    response = requests.get(sandbox.url("/v2/organization"), timeout=5)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"errors", "trace_id"}
    assert body["errors"][0]["code"] == "unauthorized"
    assert response.headers["X-Tyk-Trace-Id"] == body["trace_id"]


def test_unknown_routes_are_a_plain_text_gateway_404(connected):
    response = connected.get("/v2/does_not_exist")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "X-Tyk-Trace-Id" in response.headers
    assert "X-Request-Id" not in response.headers


def test_more_than_200_unauthorized_answers_in_an_hour_throttle_the_ip(connected):
    statuses = [
        requests.get(
            connected.url("/v2/organization"), headers={"Authorization": "Bearer x"}
        ).status_code
        for _ in range(201)
    ]
    assert set(statuses) == {401}
    throttled = connected.get("/v2/organization")  # even a good token from this IP
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    connected.advance(3601)
    fresh = connected.refresh(connected.token["refresh_token"]).json()["access_token"]
    assert connected.get("/v2/organization", token=fresh).status_code == 200


@pytest.mark.slow
def test_the_1000_requests_per_10_seconds_limit_answers_429(connected):
    assert connected.control("limits")["per_10s"] == 1000
    connected.control("reset", {})  # forget the token call, which counted too
    session = requests.Session()
    session.headers.update(connected.headers())
    statuses = [session.get(connected.url("/v2/bank_accounts")).status_code for _ in range(1001)]
    assert statuses[:1000] == [200] * 1000
    assert statuses[1000] == 429


def test_the_10_minute_limit_answers_429_with_retry_after(connected):
    connected.control("reset", {})  # forget the token call, which counted too
    connected.control("limits", {"per_10min": 5})
    statuses = [connected.get("/v2/organization").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    connected.advance(11)
    limited = connected.get("/v2/organization")
    assert limited.status_code == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 600
    connected.advance(600)
    assert connected.get("/v2/organization").status_code == 200


# --- organisation ----------------------------------------------------------------------------


def test_organization_lists_its_bank_accounts(connected):
    organization = connected.get("/v2/organization").json()["organization"]
    assert {a["id"] for a in organization["bank_accounts"]} == {MAIN_ACCOUNT_ID, SAVINGS_ACCOUNT_ID}
    accounts = connected.get("/v2/bank_accounts").json()
    assert len(accounts["bank_accounts"]) == 2
    assert accounts["meta"]["total_count"] == 2


# --- bulk upload -----------------------------------------------------------------------------


def test_bulk_upload_creates_to_review_invoices_pending_analysis(connected):
    response = connected.upload(
        item(pdf("A-1"), "key-a") + item(pdf("B-2"), "key-b", name="b.pdf"),
        source="integration",
        meta='{"integration_type": "accounting", "connector": "well"}',
        skip_attachment_matcher="true",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == []
    first, second = body["supplier_invoices"]
    assert first["status"] == "to_review"
    assert first["file_name"] == "invoice.pdf" and second["file_name"] == "b.pdf"
    assert first["source_type"] == "direct_upload"
    assert first["source"] == "integration"
    assert first["meta"]["connector"] == "well"
    assert first["analyzed_at"] is None
    assert first["supplier_name"] is None and first["total_amount"] is None
    assert first["attachment_id"] != second["attachment_id"]


def test_analysis_fills_the_fields_after_the_delay(connected):
    upload = connected.upload(item(pdf("INV-77", "Papeterie Martin", "1234.50"), "k"))
    invoice = upload.json()["supplier_invoices"][0]
    assert (
        connected.get(f"/v2/supplier_invoices/{invoice['id']}").json()["supplier_invoice"][
            "invoice_number"
        ]
        is None
    )
    connected.advance(2)
    analysed = connected.get(f"/v2/supplier_invoices/{invoice['id']}").json()["supplier_invoice"]
    assert analysed["supplier_name"] == "Papeterie Martin"
    assert analysed["invoice_number"] == "INV-77"
    assert analysed["total_amount"] == {"value": "1234.50", "currency": "EUR"}
    assert analysed["issue_date"] == "2024-03-01"
    assert analysed["due_date"] == "2024-03-31"
    assert analysed["vat_number"] == "DE123456789"
    assert analysed["analyzed_at"] is not None
    assert analysed["updated_at"] > invoice["updated_at"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "ACME SAS\nInvoice #F-2024-9\nDate: 05/02/2024\nAmount due: 1.234,56 €",
            {
                "supplier_name": "ACME SAS",
                "invoice_number": "F-2024-9",
                "issue_date": "2024-02-05",
                "total_amount": {"value": "1234.56", "currency": "EUR"},
            },
        ),
        (
            "INVOICE\nGlobex Ltd\nInvoice no. 88\nDue date: March 3, 2024\nTotal: $1,020.00",
            {
                "supplier_name": "Globex Ltd",
                "invoice_number": "88",
                "due_date": "2024-03-03",
                "total_amount": {"value": "1020.00", "currency": "USD"},
            },
        ),
    ],
)
def test_analysis_reads_labelled_lines_leniently(text, expected):
    fields = parse_invoice_text(text)
    assert {key: fields.get(key) for key in expected} == expected


def test_more_than_20_invoices_is_limit_reached_and_creates_nothing(connected):
    items = [part for n in range(21) for part in item(pdf(f"N-{n}"), f"key-{n}")]
    response = connected.upload(items)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "limit_reached"
    assert connected.control("state")["created_by_upload"] == 0


def test_twenty_invoices_are_accepted(connected):
    items = [part for n in range(20) for part in item(pdf(f"N-{n}"), f"key-{n}")]
    assert len(connected.upload(items).json()["supplier_invoices"]) == 20


def test_a_file_over_10_mb_is_an_item_error_and_a_body_over_15_mb_a_413(connected):
    big = b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024 + 1)
    response = connected.upload(item(big, "big") + item(pdf(), "small"))
    assert response.status_code == 200
    body = response.json()
    assert body["errors"][0]["code"] == "invalid"
    assert body["errors"][0]["source"]["pointer"] == "/supplier_invoices/0/file"
    assert len(body["supplier_invoices"]) == 1
    huge = connected.upload(item(big, "a") + item(big[: 6 * 1024 * 1024], "b"))
    assert huge.status_code == 413
    assert huge.json()["errors"][0]["code"] == "request_entity_too_large"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (JPEG_BYTES, "application/pdf"),  # JPEG bytes claiming to be a PDF
        (b"this is not a pdf at all", "application/pdf"),
        (b"MZ\x90\x00 windows executable", "application/octet-stream"),
        (b"%PDF-1.4 but declared", "image/png"),
        (b"<html><body>hi</body></html>", "text/html"),
    ],
)
def test_files_are_sniffed_and_bad_types_are_invalid(connected, content, content_type):
    response = connected.upload(item(content, "k", ctype=content_type))
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["code"] == "invalid"
    assert error["source"]["pointer"] == "/supplier_invoices/0/file"


@pytest.mark.parametrize(
    ("content", "content_type"), [(JPEG_BYTES, "image/jpeg"), (PNG_BYTES, "image/png")]
)
def test_jpeg_and_png_are_accepted(connected, content, content_type):
    response = connected.upload(item(content, "k", name="scan", ctype=content_type))
    assert response.json()["errors"] == []


def test_a_missing_key_is_required_and_pairs_stay_in_order(connected):
    items = item(pdf("ONE"), "k1") + item(pdf("TWO"), None) + item(pdf("THREE"), "k3")
    body = connected.upload(items).json()
    assert body["errors"] == [
        {
            "code": "required",
            "detail": "idempotency_key is required.",
            "source": {"pointer": "/supplier_invoices/1/idempotency_key"},
        }
    ]
    keys = {row["idempotency_key"] for row in connected.control("invoices")["invoices"]}
    assert keys == {"k1", "k3"}


def test_partial_bulk_fault_fails_the_second_item_only(connected):
    connected.control("faults", {"queue": ["partial_bulk"]})
    body = connected.upload(item(pdf("ONE"), "k1") + item(pdf("TWO"), "k2")).json()
    assert len(body["supplier_invoices"]) == 1
    assert body["errors"][0]["code"] == "internal_server_error"
    assert body["errors"][0]["source"]["pointer"] == "/supplier_invoices/1"
    retry = connected.upload(item(pdf("ONE"), "k1") + item(pdf("TWO"), "k2")).json()
    assert retry["errors"] == []
    assert retry["supplier_invoices"][0]["id"] == body["supplier_invoices"][0]["id"]
    assert connected.control("state")["created_by_upload"] == 2


def test_a_key_replays_for_30_minutes_even_with_another_body_then_creates_anew(connected):
    original = pdf("ORIGINAL")
    first = connected.upload(item(original, "same-key")).json()["supplier_invoices"][0]
    connected.advance(29 * 60)
    replay = connected.upload(item(pdf("CHANGED"), "same-key", name="other.pdf")).json()
    assert replay["supplier_invoices"][0] == first
    assert connected.control("state")["created_by_upload"] == 1
    connected.advance(2 * 60)
    again = connected.upload(item(original, "same-key")).json()["supplier_invoices"][0]
    assert again["id"] != first["id"]
    state = connected.control("state")
    assert state["created_by_upload"] == 2
    assert state["duplicates"] == 2


def test_an_invoice_can_be_created_from_an_uploaded_attachment(connected):
    attachment = connected.post(
        "/v2/attachments",
        files={"file": ("scan.pdf", pdf("ATT-1"), "application/pdf")},
        headers={**connected.headers(), "X-Qonto-Idempotency-Key": str(uuid.uuid4())},
    )
    assert attachment.status_code == 200, attachment.text
    attachment_id = attachment.json()["attachment"]["id"]
    body = connected.upload(
        [
            ("supplier_invoices[][attachment_id]", (None, attachment_id)),
            ("supplier_invoices[][idempotency_key]", (None, "from-attachment")),
        ]
    ).json()
    assert body["supplier_invoices"][0]["attachment_id"] == attachment_id


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"files": [("source", (None, "integration"))]}, "required"),  # no items at all
        ({"data": {"source": "integration"}}, "invalid"),  # urlencoded, not multipart
        ({"json": {"supplier_invoices": [{"file": "x"}]}}, "invalid"),  # JSON instead of multipart
        ({"files": item(b"%PDF-1.4", "k"), "data": {"meta": "{not json"}}, "invalid"),
        ({"files": item(b"%PDF-1.4", "k"), "data": {"meta": "[1, 2]"}}, "invalid"),
        ({"files": item(b"%PDF-1.4", "k"), "data": {"source": "dropbox"}}, "invalid"),
        (
            {"files": item(b"%PDF-1.4", "k"), "data": {"skip_attachment_matcher": "maybe"}},
            "invalid",
        ),
    ],
)
def test_malformed_bulk_requests_are_400_envelopes(connected, kwargs, code):
    response = connected.post("/v2/supplier_invoices/bulk", **kwargs)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code


def raw_request(base_url: str, raw: bytes) -> bytes:
    """Send bytes as they are and read the whole answer."""
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "body",
    [
        b'--XX\r\nContent-Disposition: form-data; name="supplier_invoices[][file]"; '
        b'filename="a.pdf"\r\n\r\n%PDF-1.4 truncated',  # no closing boundary
        b"garbage without any boundary",
        b"--XX\r\nno-headers-here\r\n\r\nvalue\r\n--XX--\r\n",
    ],
)
def test_broken_multipart_bodies_are_400_not_tracebacks(connected, body):
    head = (
        "POST /v2/supplier_invoices/bulk HTTP/1.0\r\n"
        f"Host: x\r\nAuthorization: Bearer {connected.token['access_token']}\r\n"
        "Content-Type: multipart/form-data; boundary=XX\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    answer = raw_request(connected.base, head + body)
    assert answer.startswith(b"HTTP/1.0 400")
    assert b'"errors"' in answer and b"Traceback" not in answer


def test_hostile_inputs_get_envelopes(connected):
    invoice_id = connected.get("/v2/supplier_invoices").json()["supplier_invoices"][0]["id"]
    bad_json = connected.post(
        f"/v2/supplier_invoices/{invoice_id}/mark_as_paid",
        data=b"{\xff\xfe",
        headers={**connected.headers(), "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["errors"][0]["code"] == "invalid"
    for query in (
        "page=abc",
        "per_page=1000",
        "page=-1",
        "sort_by=;drop",
        "filter[status]=%ff",
        "filter[updated_at_from]=yesterday",
        "page=99999999999999999999",
    ):
        response = requests.get(
            connected.url(f"/v2/supplier_invoices?{query}"), headers=connected.headers(), timeout=5
        )
        assert response.status_code == 422, query
        assert response.json()["errors"][0]["source"]["parameter"]
    for path in (
        "/v2/supplier_invoices/..%2F..%2Fetc",
        "/v2/attachments/%00",
        "/v2/transactions/é",
    ):
        response = requests.get(connected.url(path), headers=connected.headers(), timeout=5)
        assert response.status_code == 404
    weird = connected.upload(item(b"%PDF-1.7\n" + bytes(range(256)) * 50, "k\u00e9\u2603"))
    assert weird.status_code == 200
    connected.advance(5)  # analysis of an unreadable PDF leaves the fields empty
    stored = connected.get(f"/v2/supplier_invoices/{weird.json()['supplier_invoices'][0]['id']}")
    assert stored.json()["supplier_invoice"]["analyzed_at"] is not None


def test_control_invoices_lists_uploads_with_hash_and_key(connected):
    content = pdf("HASHED")
    connected.upload(item(content, "hash-key"))
    (row,) = connected.control("invoices")["invoices"]
    assert row["sha256"] == hashlib.sha256(content).hexdigest()
    assert row["idempotency_key"] == "hash-key"


# --- attachments -----------------------------------------------------------------------------


def test_attachment_url_serves_the_file_for_30_minutes(connected):
    content = pdf("DL-1")
    invoice = connected.upload(item(content, "dl")).json()["supplier_invoices"][0]
    attachment = connected.get(f"/v2/attachments/{invoice['attachment_id']}").json()["attachment"]
    assert attachment["file_content_type"] == "application/pdf"
    assert attachment["file_size"] == str(len(content))
    assert requests.get(attachment["url"], timeout=5).content == content
    connected.advance(31 * 60)
    assert requests.get(attachment["url"], timeout=5).status_code == 403
    fresh = connected.get(f"/v2/attachments/{invoice['attachment_id']}").json()["attachment"]
    assert requests.get(fresh["url"], timeout=5).content == content


def test_seeded_invoices_have_a_downloadable_pdf(connected):
    invoice = connected.get("/v2/supplier_invoices").json()["supplier_invoices"][0]
    attachment = connected.get(f"/v2/attachments/{invoice['attachment_id']}").json()["attachment"]
    assert requests.get(attachment["url"], timeout=5).content.startswith(b"%PDF-")


# --- supplier invoice lists ------------------------------------------------------------------


def test_list_filters_by_status_in_both_forms(connected):
    one = connected.get("/v2/supplier_invoices", params={"filter[status]": "paid"}).json()
    assert {i["status"] for i in one["supplier_invoices"]} == {"paid"}
    both = connected.get(
        "/v2/supplier_invoices",
        params=[("filter[status][]", "paid"), ("filter[status][]", "to_pay")],
    ).json()
    assert {i["status"] for i in both["supplier_invoices"]} == {"paid", "to_pay"}
    assert both["meta"]["total_count"] == 3


def test_list_filters_by_dates_attachment_and_query(connected):
    connected.advance(10)
    upload = connected.upload(item(pdf("NEW-1"), "n1")).json()["supplier_invoices"][0]
    since = connected.get(
        "/v2/supplier_invoices", params={"filter[updated_at_from]": upload["created_at"]}
    ).json()
    assert [i["id"] for i in since["supplier_invoices"]] == [upload["id"]]
    window = connected.get(
        "/v2/supplier_invoices",
        params={
            "filter[created_at_from]": "2024-02-01T00:00:00Z",
            "filter[created_at_to]": "2024-02-10T23:59:59Z",
        },
    ).json()
    assert window["meta"]["total_count"] == 3
    by_attachment = connected.get(
        "/v2/supplier_invoices", params={"filter[attachment_id]": upload["attachment_id"]}
    ).json()
    assert [i["id"] for i in by_attachment["supplier_invoices"]] == [upload["id"]]
    found = connected.get("/v2/supplier_invoices", params={"query": "ovh"}).json()
    assert [i["supplier_name"] for i in found["supplier_invoices"]] == ["OVH SAS"]


def test_list_sorts_and_pages_with_meta(connected):
    asc = connected.get(
        "/v2/supplier_invoices", params={"sort_by": "created_at:asc", "per_page": 4}
    ).json()
    assert asc["meta"] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 2,
        "total_count": 6,
        "per_page": 4,
    }
    last = connected.get(
        "/v2/supplier_invoices", params={"sort_by": "created_at:asc", "per_page": 4, "page": 2}
    ).json()
    assert last["meta"]["next_page"] is None and last["meta"]["prev_page"] == 1
    created = [i["created_at"] for i in asc["supplier_invoices"] + last["supplier_invoices"]]
    assert created == sorted(created)
    desc = connected.get("/v2/supplier_invoices", params={"sort_by": "total_amount:desc"}).json()
    amounts = [float(i["total_amount"]["value"]) for i in desc["supplier_invoices"]]
    assert amounts == sorted(amounts, reverse=True)
    past = connected.get("/v2/supplier_invoices", params={"per_page": 4, "page": 3})
    assert past.status_code == 422  # reported quirk (§7.2), kept on purpose


def test_seeded_invoices_use_both_matched_transaction_shapes(connected):
    invoices = connected.get("/v2/supplier_invoices").json()["supplier_invoices"]
    by_number = {i["invoice_number"]: i for i in invoices}
    old_shape = by_number["FR-OVH-88231"]
    new_shape = by_number["IE-993-221"]
    assert "matched_transactions_ids" not in old_shape
    assert isinstance(old_shape["matched_transactions"][0], str)
    (matched,) = new_shape["matched_transactions"]
    assert new_shape["matched_transactions_ids"] == [matched["transaction_id"]]
    assert matched["subject_type"] == "Transaction"


# --- status changes --------------------------------------------------------------------------


def test_mark_as_paid_is_idempotent_and_unmark_restores(connected):
    invoice = connected.upload(item(pdf(), "pay")).json()["supplier_invoices"][0]
    path = f"/v2/supplier_invoices/{invoice['id']}"
    paid = connected.post(
        f"{path}/mark_as_paid", json={"supplier_invoice": {"payment_date": "2024-04-02"}}
    )
    assert paid.status_code == 200
    assert paid.json()["status"] == "paid" and paid.json()["payment_date"] == "2024-04-02"
    again = connected.post(
        f"{path}/mark_as_paid", json={"supplier_invoice": {"payment_date": "2024-05-01"}}
    )
    assert again.status_code == 200 and again.json()["payment_date"] == "2024-04-02"
    unpaid = connected.post(f"{path}/unmark_as_paid")
    assert unpaid.json()["status"] == "to_review" and unpaid.json()["payment_date"] is None
    assert connected.post(f"{path}/unmark_as_paid").status_code == 400


def test_mark_as_paid_refuses_scheduled_and_bad_dates(sandbox):
    seed = default_seed()
    seed["supplier_invoices"][0]["status"] = "scheduled"
    sandbox.app.seed(**seed)
    sandbox.connect()
    scheduled_id = seed["supplier_invoices"][0]["id"]
    refused = sandbox.post(f"/v2/supplier_invoices/{scheduled_id}/mark_as_paid", json={})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "invalid_transition"
    other = seed["supplier_invoices"][2]["id"]
    bad = sandbox.post(
        f"/v2/supplier_invoices/{other}/mark_as_paid",
        json={"supplier_invoice": {"payment_date": "02/04"}},
    )
    assert bad.status_code == 400


def test_reject_moves_to_rejected_once(connected):
    invoice = connected.upload(item(pdf(), "rej")).json()["supplier_invoices"][0]
    path = f"/v2/supplier_invoices/{invoice['id']}/reject"
    rejected = connected.post(path, json={"declined_note": "Duplicate"})
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["declined_note"] == "Duplicate"
    assert connected.post(path, json={"declined_note": "again"}).status_code == 400
    paid_id = next(
        i["id"]
        for i in connected.get("/v2/supplier_invoices", params={"filter[status]": "paid"}).json()[
            "supplier_invoices"
        ]
    )
    assert connected.post(f"/v2/supplier_invoices/{paid_id}/reject", json={}).status_code == 400


def test_unknown_invoice_is_404(connected):
    response = connected.get(f"/v2/supplier_invoices/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


# --- transactions ----------------------------------------------------------------------------


def test_transactions_need_a_bank_account(connected):
    response = connected.get("/v2/transactions")
    assert response.status_code == 422
    assert response.json()["errors"][0]["source"]["parameter"] == "bank_account_id"


def test_transactions_filter_sort_and_include(connected):
    base = {"bank_account_id": MAIN_ACCOUNT_ID}
    everything = connected.get("/v2/transactions", params=base).json()
    assert everything["meta"]["total_count"] == 7
    settled = [t["settled_at"] for t in everything["transactions"] if t["settled_at"]]
    assert settled == sorted(settled, reverse=True)
    debits = connected.get(
        "/v2/transactions",
        params={**base, "side": "debit", "status[]": ["completed", "pending"]},
    ).json()["transactions"]
    assert {t["side"] for t in debits} == {"debit"}
    assert {t["status"] for t in debits} == {"completed", "pending"}
    recent = connected.get(
        "/v2/transactions",
        params={**base, "updated_at_from": "2024-02-20T00:00:00Z", "sort_by": "updated_at:asc"},
    ).json()["transactions"]
    assert [t["label"] for t in recent] == ["UBER *TRIP", "UNKNOWN MERCHANT", "Cabinet Comptable"]
    settled_window = connected.get(
        "/v2/transactions",
        params={
            **base,
            "settled_at_from": "2024-02-10T00:00:00Z",
            "settled_at_to": "2024-02-12T00:00:00Z",
        },
    ).json()["transactions"]
    assert [t["label"] for t in settled_window] == ["BOULANGERIE DUPONT"]
    by_iban = connected.get("/v2/transactions", params={"iban": "FR7616958000010000000000202"})
    assert [t["label"] for t in by_iban.json()["transactions"]] == ["DGFIP"]
    included = connected.get(
        "/v2/transactions", params={**base, "includes[]": ["attachments", "labels"], "per_page": 1}
    ).json()
    assert included["transactions"][0]["attachments"] == []
    assert included["transactions"][0]["labels"] == []
    assert included["meta"]["next_page"] == 2
    one = connected.get(f"/v2/transactions/{included['transactions'][0]['id']}").json()
    assert one["transaction"]["id"] == included["transactions"][0]["id"]
    assert "attachments" not in one["transaction"]
    assert connected.get("/v2/transactions", params={**base, "side": "sideways"}).status_code == 422


# --- faults ----------------------------------------------------------------------------------


def test_fault_429_carries_retry_after(connected):
    connected.control("faults", {"queue": ["429"], "retry_after_seconds": 7})
    response = connected.get("/v2/organization")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert connected.get("/v2/organization").status_code == 200


def test_fault_5xx_is_an_enveloped_server_error(connected):
    connected.control("faults", {"queue": ["5xx"]})
    response = connected.get("/v2/organization")
    assert response.status_code >= 500
    assert response.json()["trace_id"] == response.headers["X-Tyk-Trace-Id"]


def test_timeout_fault_applies_the_upload_but_the_client_never_hears(connected):
    connected.control("faults", {"queue": ["timeout"], "timeout_seconds": 1.5})
    with pytest.raises(requests.exceptions.ReadTimeout):
        connected.post("/v2/supplier_invoices/bulk", files=item(pdf(), "lost-answer"), timeout=0.5)
    assert connected.control("state")["created_by_upload"] == 1
    retry = connected.upload(item(pdf(), "lost-answer")).json()
    assert retry["errors"] == []
    assert connected.control("state")["created_by_upload"] == 1


def test_stats_count_calls_per_route_and_reset_clears(connected):
    connected.get("/v2/organization")
    connected.upload(item(pdf(), "s1"))
    calls = connected.control("stats")["calls"]
    assert calls["GET /v2/organization"] == 1
    assert calls["POST /v2/supplier_invoices/bulk"] == 1
    assert calls["POST /oauth2/token"] == 1
    counts = connected.control("reset", {})
    assert counts["created_by_upload"] == 0 and counts["supplier_invoices"] == 6
    assert connected.control("stats")["calls"] == {}
    assert connected.get("/v2/organization").status_code == 200  # grants survive a reset


# --- persistence -----------------------------------------------------------------------------


def test_state_survives_a_restart_with_a_data_dir(tmp_path):
    def start():
        app = QontoSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, data_dir=tmp_path)
        app.seed(**default_seed())
        return app, serve_in_thread(app)

    app, server = start()
    box = Sandbox(app, server.base_url)
    box.connect()
    content = pdf("KEEP-1")
    invoice = box.upload(item(content, "persisted-key")).json()["supplier_invoices"][0]
    box.advance(120)
    server.stop()

    app, server = start()
    try:
        box.app, box.base = app, server.base_url
        assert box.control("state")["created_by_upload"] == 1  # no reseed wiped it
        kept = box.get(f"/v2/supplier_invoices/{invoice['id']}")
        assert kept.status_code == 200  # the access token survived too
        assert kept.json()["supplier_invoice"]["invoice_number"] == "KEEP-1"
        replay = box.upload(item(pdf("OTHER"), "persisted-key")).json()["supplier_invoices"][0]
        assert replay["id"] == invoice["id"]  # idempotency keys kept with their times
        attachment = box.get(f"/v2/attachments/{invoice['attachment_id']}").json()["attachment"]
        assert requests.get(attachment["url"], timeout=5).content == content
        assert box.refresh(box.token["refresh_token"]).status_code == 200
    finally:
        server.stop()


# --- a third-party client --------------------------------------------------------------------


def test_the_qodev_client_works_with_only_its_base_url_changed(connected):
    import qodev_qonto_api as qodev

    key = connected.control("api_key", {})

    async def scenario():
        async with qodev.QontoClient(
            login=key["login"], secret_key=key["secret_key"], base_url=connected.url("/v2")
        ) as client:
            organization = await client.get_organization()
            accounts = await client.list_bank_accounts()
            transactions = await client.list_transactions(
                bank_account_id=MAIN_ACCOUNT_ID, status=["completed"], includes=["attachments"]
            )
            invoices = await client.list_supplier_invoices(per_page=2)
            to_pay = await client.list_supplier_invoices(**{"filter[status]": "to_pay"})
            invoice = await client.get_supplier_invoice(to_pay.items[0].id)
            attachment = await client.get_attachment(invoice.attachment_id)
            paid = await client.mark_supplier_invoice_paid(invoice.id)
            # Its JSON "bulk" call is not the multipart the real endpoint takes (§4.2).
            with pytest.raises(qodev.APIError):
                await client.create_supplier_invoice([{"file": "x", "idempotency_key": "k"}])
            return organization, accounts, transactions, invoices, attachment, paid

    organization, accounts, transactions, invoices, attachment, paid = asyncio.run(scenario())
    assert organization.slug == key["login"]
    assert len(accounts) == 2
    assert {t.status for t in transactions.items} == {"completed"}
    assert invoices.total == 6 and invoices.total_pages == 3
    assert attachment.url.startswith(connected.base)
    assert paid.status == "paid"


def test_a_regenerated_api_key_revokes_the_old_one(sandbox):
    old = sandbox.control("api_key", {})
    new = sandbox.control("api_key", {})
    header = {"Authorization": f"{old['login']}:{old['secret_key']}"}
    assert (
        requests.get(sandbox.url("/v2/organization"), headers=header, timeout=5).status_code == 401
    )
    header = {"Authorization": f"{new['login']}:{new['secret_key']}"}
    assert (
        requests.get(sandbox.url("/v2/organization"), headers=header, timeout=5).status_code == 200
    )


def test_pdf_helper_round_trips_through_pypdf():
    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(pdf("RT-1"))).pages[0].extract_text()
    assert "Invoice number: RT-1" in text


def test_concurrent_uploads_with_one_key_create_one_invoice(connected):
    from concurrent.futures import ThreadPoolExecutor

    def upload(_):
        return connected.upload(item(pdf("RACE"), "race-key")).json()["supplier_invoices"][0]["id"]

    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = set(pool.map(upload, range(10)))
    assert len(ids) == 1
    assert connected.control("state")["created_by_upload"] == 1


def test_due_date_filter_uses_the_sandbox_today(connected):
    missing = connected.get("/v2/supplier_invoices", params={"filter[due_date]": "missing_date"})
    assert missing.json()["meta"]["total_count"] == 0
    past = connected.get("/v2/supplier_invoices", params={"filter[due_date]": "past_and_today"})
    assert past.json()["meta"]["total_count"] == 6


def test_control_writes_need_post(sandbox):
    response = requests.get(sandbox.url("/_sandbox/reset"), timeout=5)
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "method_not_allowed"


def _all_invoices(box) -> list[dict]:
    return box.get("/v2/supplier_invoices", params={"per_page": 100}).json()["supplier_invoices"]


def test_payable_amount_filter_compares_amount_and_currency(connected):
    invoices = _all_invoices(connected)
    limit = sorted(Decimal(i["total_amount"]["value"]) for i in invoices)[2]
    expected = {
        i["id"]
        for i in invoices
        if i["total_amount"]["currency"] == "EUR" and Decimal(i["total_amount"]["value"]) <= limit
    }

    found = connected.get(
        "/v2/supplier_invoices", params={"filter[payable_amount]": f"lte:{limit}:EUR"}
    ).json()["supplier_invoices"]

    assert {i["id"] for i in found} == expected and expected
    bad = connected.get("/v2/supplier_invoices", params={"filter[payable_amount]": "about:5"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["code"] == "invalid"


def test_missing_data_filter_finds_uploads_not_yet_analysed(connected):
    upload = connected.upload(item(pdf("NEW-9"), "k9")).json()["supplier_invoices"][0]

    missing = connected.get("/v2/supplier_invoices", params={"filter[missing_data]": "true"})

    assert upload["id"] in {i["id"] for i in missing.json()["supplier_invoices"]}


def test_friendly_date_ranges_select_by_the_sandbox_today(connected):
    today = date.fromisoformat(connected.control("clock", {"advance_seconds": 0})["now"][:10])
    first = today.replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    issued = [date.fromisoformat(i["issue_date"]) for i in _all_invoices(connected)]
    expected = {
        "today": sum(d == today for d in issued),
        "this_month": sum(first <= d <= today for d in issued),
        "past_month": sum(previous <= d < first for d in issued),
    }

    counts = {
        period: connected.get(
            "/v2/supplier_invoices", params={"filter[issue_date]": period}
        ).json()["meta"]["total_count"]
        for period in expected
    }

    assert counts == expected
    unknown = connected.get("/v2/supplier_invoices", params={"filter[issue_date]": "someday"})
    assert unknown.status_code == 422


def test_approver_filter_matches_nothing_without_approval_workflows(connected):
    found = connected.get("/v2/supplier_invoices", params={"filter[approver_id][]": "someone"})

    assert found.json()["meta"]["total_count"] == 0
