"""Outgoing webhooks: signed, sent after commit, retried with backoff, logged."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest
import requests
import responses
from django.db import transaction
from django_q.models import OrmQ, Schedule

from connectors.services import connection_mark_needs_reconnect
from well.audit import Actor
from well.encryption import secret_open
from well.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from well.webhooks import (
    BACKOFF,
    MAX_ATTEMPTS,
    signature_verify,
    webhook_deliver,
    webhook_endpoint_create,
    webhooks_emit,
)

pytestmark = pytest.mark.django_db(transaction=True)

HOOK = "https://partner.example/hooks/well"
PUBLIC_ADDRESS = "93.184.215.14"  # what partner.example resolves to in these tests


@pytest.fixture(autouse=True)
def _partner_resolves_to_a_public_address(monkeypatch):
    """No DNS in tests: the partner's name resolves to a public address (calls counted)."""
    from well import safe_fetch

    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [PUBLIC_ADDRESS]

    monkeypatch.setattr(safe_fetch, "resolve", resolve)
    return lookups


@pytest.fixture
def endpoint(books):
    endpoint, secret = webhook_endpoint_create(
        workspace=books.workspace, url=HOOK, events=[], actor=Actor.system("tests")
    )
    return endpoint, secret


def _emit(books, event="sync.failed", payload=None):
    with transaction.atomic():
        webhooks_emit(workspace=books.workspace, event=event, payload=payload or {"n": 1})
    return WebhookDelivery.objects.get(workspace=books.workspace, event=event)


@responses.activate
def test_a_delivery_is_signed_with_the_endpoint_s_secret_over_timestamp_and_body(books, endpoint):
    _, secret = endpoint
    responses.post(HOOK, status=204)
    delivery = _emit(books)
    assert webhook_deliver(delivery.pk) == DeliveryState.DELIVERED

    sent = responses.calls[0].request
    assert sent.headers["Well-Event"] == "sync.failed"
    assert signature_verify(secret=secret, header=sent.headers["Well-Signature"], body=sent.body)
    assert not signature_verify(
        secret="whsec_wrong", header=sent.headers["Well-Signature"], body=sent.body
    )
    assert not signature_verify(
        secret=secret, header=sent.headers["Well-Signature"], body=sent.body + b" "
    )
    body = json.loads(sent.body)
    assert body["type"] == "sync.failed" and body["data"] == {"n": 1}
    assert body["id"] == str(delivery.event_id)
    row = WebhookDelivery.objects.get(pk=delivery.pk)
    assert row.attempts == 1 and row.response_status == 204 and row.delivered_at


def test_the_secret_is_stored_sealed(books, endpoint):
    row, secret = endpoint
    stored = WebhookEndpoint.objects.get(pk=row.pk)
    assert secret not in stored.secret
    assert secret_open(stored, "secret") == secret


@responses.activate
def test_a_failed_delivery_is_retried_with_backoff_until_it_succeeds(books, endpoint):
    responses.post(HOOK, status=503)
    delivery = _emit(books)

    assert webhook_deliver(delivery.pk) == DeliveryState.RETRYING
    row = WebhookDelivery.objects.get(pk=delivery.pk)
    assert row.attempts == 1 and row.response_status == 503 and "503" in row.last_error
    retry = Schedule.objects.get(func="well.webhooks.webhook_deliver")
    assert retry.schedule_type == Schedule.ONCE
    assert abs((retry.next_run - row.next_attempt_at).total_seconds()) < 1
    assert BACKOFF[0].total_seconds() - 5 <= (retry.next_run - row.created_at).total_seconds()

    responses.replace(responses.POST, HOOK, status=200)
    assert webhook_deliver(delivery.pk) == DeliveryState.DELIVERED
    assert WebhookDelivery.objects.get(pk=delivery.pk).attempts == 2
    assert BACKOFF[1] > BACKOFF[0]


@responses.activate
def test_a_delivery_gives_up_after_the_last_attempt_and_a_delivered_one_is_not_resent(
    books, endpoint
):
    responses.post(HOOK, body=requests.ConnectionError("refused"))
    delivery = _emit(books)
    for _ in range(MAX_ATTEMPTS):
        webhook_deliver(delivery.pk)
    row = WebhookDelivery.objects.get(pk=delivery.pk)
    assert row.state == DeliveryState.FAILED and row.attempts == MAX_ATTEMPTS
    assert webhook_deliver(delivery.pk) == "nothing to do"
    assert len(responses.calls) == MAX_ATTEMPTS


def test_nothing_is_emitted_for_a_change_that_rolls_back(books, endpoint):
    with pytest.raises(RuntimeError), transaction.atomic():
        webhooks_emit(workspace=books.workspace, event="sync.failed", payload={})
        raise RuntimeError("rolled back")
    assert not WebhookDelivery.objects.exists()


def test_an_endpoint_only_gets_the_events_it_subscribed_to(books):
    webhook_endpoint_create(
        workspace=books.workspace,
        url=HOOK,
        events=["record.posted"],
        actor=Actor.system("tests"),
    )
    with transaction.atomic():
        webhooks_emit(workspace=books.workspace, event="sync.failed", payload={})
        webhooks_emit(workspace=books.workspace, event="record.posted", payload={})
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["record.posted"]
    assert OrmQ.objects.count() == 1  # one django-q2 task queued for the one delivery


def test_a_record_sent_to_review_and_a_connection_needing_reconnect_emit_their_events(
    books, endpoint, in_review
):
    bill = in_review(books)
    connection_mark_needs_reconnect(
        connection=books.qbo, reason="grant revoked", actor=Actor.system("tests")
    )
    events = {d.event: d.payload["data"] for d in WebhookDelivery.objects.all()}
    assert events["record.needs_review"]["record"]["id"] == bill.pk
    assert events["connection.needs_reconnect"]["connection"]["id"] == str(books.qbo.pk)


def test_webhook_urls_must_be_https_and_not_internal(books, client_for):
    client = client_for(books.workspace, scopes=["admin"])
    for url in ("http://partner.example/h", "https://127.0.0.1/h", "https://10.0.0.5/h"):
        response = client.post("/api/v1/webhooks/", {"url": url}, format="json")
        assert response.status_code == 400, url
        assert "url" in response.json()["error"]["fields"]
    response = client.post("/api/v1/webhooks/", {"url": HOOK}, format="json")
    assert response.status_code == 201
    assert response.json()["secret"].startswith("whsec_")
    assert "secret" not in client.get("/api/v1/webhooks/").json()["results"][0]


# --- DNS rebinding: the address checked is the address connected to -------------------------


class _Hook(http.server.BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        _Hook.seen.append({"host": self.headers["Host"], "body": self.rfile.read(length)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_hook():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.seen = []
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_delivery_connects_to_the_address_it_checked_and_never_looks_the_name_up_again(
    books, settings, monkeypatch, local_hook
):
    from well import safe_fetch

    settings.WELL_ALLOW_LOOPBACK_DOWNLOADS = True  # the local stand-in for the partner
    url = f"http://hooks.partner.test:{local_hook}/well"
    webhook_endpoint_create(
        workspace=books.workspace, url=url, events=[], actor=Actor.system("tests")
    )
    lookups = []
    monkeypatch.setattr(
        safe_fetch, "resolve", lambda host, port: lookups.append(host) or ["127.0.0.1"]
    )

    real_getaddrinfo = socket.getaddrinfo

    def rebound(host, *args, **kwargs):
        # An IP address is parsed, not looked up; a name here would be a second DNS answer.
        if host != "127.0.0.1":
            raise AssertionError(f"{host} was looked up again at connection time")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    delivery = _emit(books)
    assert webhook_deliver(delivery.pk) == DeliveryState.DELIVERED
    assert lookups == ["hooks.partner.test"]
    assert _Hook.seen[0]["host"] == f"hooks.partner.test:{local_hook}"
    assert json.loads(_Hook.seen[0]["body"])["id"] == str(delivery.event_id)


@responses.activate
@pytest.mark.parametrize(
    "answers", [["10.1.2.3"], [PUBLIC_ADDRESS, "169.254.169.254"], ["127.0.0.1"]]
)
def test_a_name_resolving_to_any_internal_address_gets_nothing(
    books, endpoint, monkeypatch, answers
):
    from well import safe_fetch

    monkeypatch.setattr(safe_fetch, "resolve", lambda host, port: answers)
    delivery = _emit(books)
    assert webhook_deliver(delivery.pk) == DeliveryState.RETRYING
    assert len(responses.calls) == 0  # no connection was even attempted
    row = WebhookDelivery.objects.get(pk=delivery.pk)
    assert row.last_error == "refused: not a public address"
    assert row.response_status is None


# --- What partners learn from a refused delivery (issue 19, finding 6) -----------------------


@responses.activate
def test_a_refused_delivery_tells_the_partner_nothing_of_what_the_name_resolved_to(
    books, endpoint, monkeypatch, client_for
):
    from well import safe_fetch

    monkeypatch.setattr(safe_fetch, "resolve", lambda host, port: ["10.20.30.40"])
    delivery = _emit(books)
    webhook_deliver(delivery.pk)

    client = client_for(books.workspace, scopes=["admin"])
    shown = client.get(f"/api/v1/webhooks/{endpoint[0].pk}/deliveries/").content.decode()
    assert "refused: not a public address" in shown
    for leak in ("10.20.30.40", "private network", "10.20"):
        assert leak not in shown


def test_webhook_urls_on_ports_other_than_443_and_80_are_refused(books, client_for, settings):
    settings.WELL_ALLOW_LOOPBACK_DOWNLOADS = False
    client = client_for(books.workspace, scopes=["admin"])
    for url in ("https://partner.example:6379/h", "https://partner.example:8443/h"):
        response = client.post("/api/v1/webhooks/", {"url": url}, format="json")
        assert response.status_code == 400, url
        assert "port" in response.json()["error"]["fields"]["url"][0]
    for url in ("https://partner.example:443/h", "https://partner.example/h"):
        assert client.post("/api/v1/webhooks/", {"url": url}, format="json").status_code == 201
    settings.WELL_WEBHOOK_PORTS = [443, 8443]
    response = client.post("/api/v1/webhooks/", {"url": "https://partner.example:8443/h"})
    assert response.status_code == 201


@responses.activate
def test_an_endpoint_saved_on_another_port_gets_nothing_from_a_public_name(
    books, monkeypatch, settings
):
    # Saved where loopback is allowed (tests, demo), the port is only used for loopback names.
    settings.WELL_ALLOW_LOOPBACK_DOWNLOADS = True
    webhook_endpoint_create(
        workspace=books.workspace,
        url="http://partner.example:6379/h",
        events=[],
        actor=Actor.system("tests"),
    )
    delivery = _emit(books)

    assert webhook_deliver(delivery.pk) == DeliveryState.RETRYING
    assert len(responses.calls) == 0
    row = WebhookDelivery.objects.get(pk=delivery.pk)
    assert row.last_error.startswith("refused: port 6379 is not allowed")
