"""Outgoing webhooks: events to partners' endpoints, signed, retried with backoff, logged.

Signature (docs/api.md): header `Well-Signature: t=<unix seconds>,v1=<hex>` where
hex = HMAC-SHA256(endpoint secret, f"{t}.{raw body}"). Receivers recompute it over the raw
body, compare in constant time, and refuse a timestamp older than five minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

import requests
import requests.adapters
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from well import safe_fetch
from well.audit import Actor, audit_event_record
from well.encryption import secret_open, secret_seal
from well.models import (
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    Workspace,
)

logger = logging.getLogger("well.webhooks")

MAX_ATTEMPTS = 6
BACKOFF = [timedelta(seconds=30 * 4**n) for n in range(MAX_ATTEMPTS)]  # 30 s, 2 min … 8.5 h
TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "Well-Signature"
CACHE_SECONDS = 10  # how long "this workspace has no endpoint" is believed


def _cache_key(workspace_id: int) -> str:
    return f"webhooks:endpoints:{workspace_id}"


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_verify(*, secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does (and what the tests do): recompute, compare, check freshness."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = signature(secret=secret, timestamp=timestamp, body=body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# What partners see when a delivery is refused for where it would go: nothing of what the
# name resolved to (the full reason goes to Well's log only).
REFUSED_NOT_PUBLIC = "refused: not a public address"


def _allowed_ports() -> list[int]:
    return list(getattr(settings, "WELL_WEBHOOK_PORTS", [443, 80]))


def url_check(url: str) -> None:
    """HTTPS to a public host on an allowed port (loopback only where the sandboxes are)."""
    parts = urlsplit(url)
    loopback_ok = getattr(settings, "WELL_ALLOW_LOOPBACK_DOWNLOADS", False)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" and not (loopback_ok and parts.scheme == "http"):
        raise ValidationError({"url": ["Webhook URLs must use https."]})
    if not host:
        raise ValidationError({"url": ["Give a full URL."]})
    try:
        port = parts.port
    except ValueError:
        raise ValidationError({"url": ["The port is not a number from 1 to 65535."]}) from None
    # An unusual port is let through here only where loopback is (tests, the demo); the
    # delivery then connects to it only if the name resolves to loopback.
    if port is not None and port not in _allowed_ports() and not loopback_ok:
        ports = ", ".join(str(p) for p in _allowed_ports())
        raise ValidationError({"url": [f"Webhook URLs may use port {ports} only."]})
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    internal = host == "localhost" or host.endswith(".localhost") or host.endswith(".internal")
    if address is not None:
        internal = not address.is_global
    if internal and not loopback_ok:
        raise ValidationError({"url": ["Webhook URLs cannot point at internal addresses."]})


def _address_vetted(url: str) -> str:
    """Resolve the endpoint's host once and return the address to connect to.

    Every address the name has must be public (well.safe_fetch's rules): a name that
    answers a public address to the check and a private one to the connection (DNS
    rebinding) cannot reach the inside, because the delivery connects to this address only.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loopback_ok = getattr(settings, "WELL_ALLOW_LOOPBACK_DOWNLOADS", False)
    try:
        addresses = list(dict.fromkeys(safe_fetch.resolve(host, port)))
    except (OSError, UnicodeError):
        raise requests.ConnectionError(f"{host} could not be resolved.") from None
    if not addresses:
        raise requests.ConnectionError(f"{host} could not be resolved.")
    for address in addresses:
        reason = safe_fetch.address_refusal(address, allow_loopback=loopback_ok)
        if reason:
            logger.info("webhook to %s refused: %s", host, reason)
            raise ValidationError(REFUSED_NOT_PUBLIC)
    if port not in _allowed_ports() and not all(
        ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses
    ):
        raise ValidationError(
            f"refused: port {port} is not allowed (only {', '.join(map(str, _allowed_ports()))})"
        )
    return addresses[0]


class _PinnedAdapter(requests.adapters.HTTPAdapter):
    """Connects to one vetted address whatever DNS answers later; the host name still names
    the server in the Host header, SNI and certificate check."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
        address = self.address
        base = pool.ConnectionCls

        class PinnedConnection(base):
            def _new_conn(self):
                host, self._dns_host = self._dns_host, address
                try:
                    return super()._new_conn()
                finally:
                    self._dns_host = host

        pool.ConnectionCls = PinnedConnection
        return pool


def _post_pinned(url: str, *, body: bytes, headers: dict) -> requests.Response:
    address = _address_vetted(url)
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: it would re-resolve the name
        session.mount("https://", _PinnedAdapter(address))
        session.mount("http://", _PinnedAdapter(address))
        return session.post(
            url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
        )


def _events_clean(events) -> list[str]:
    wanted = set(events or WebhookEvent.values)
    unknown = wanted - set(WebhookEvent.values)
    if unknown:
        raise ValidationError({"events": [f"Unknown events: {', '.join(sorted(unknown))}."]})
    return [e for e in WebhookEvent.values if e in wanted]


def _public(endpoint: WebhookEndpoint) -> dict:
    return {"url": endpoint.url, "events": endpoint.events, "active": endpoint.active}


@transaction.atomic
def webhook_endpoint_create(
    *, workspace: Workspace, url: str, events, actor: Actor
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (returned once; stored sealed)."""
    url_check(url)
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace, url=url, events=_events_clean(events)
    )
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint.secret = secret_seal(endpoint, "secret", secret)
    endpoint.save(update_fields=["secret"])
    audit_event_record(
        workspace=workspace,
        actor=actor,
        verb="webhook.created",
        obj=endpoint,
        after=_public(endpoint),
    )
    transaction.on_commit(lambda: cache.delete(_cache_key(workspace.pk)))
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, actor: Actor, url=None, events=None, active=None
) -> WebhookEndpoint:
    before = _public(endpoint)
    if url is not None:
        url_check(url)
        endpoint.url = url
    if events is not None:
        endpoint.events = _events_clean(events)
    if active is not None:
        endpoint.active = active
    endpoint.save(update_fields=["url", "events", "active", "updated_at"])
    audit_event_record(
        workspace=endpoint.workspace_id,
        actor=actor,
        verb="webhook.updated",
        obj=endpoint,
        before=before,
        after=_public(endpoint),
    )
    transaction.on_commit(lambda: cache.delete(_cache_key(endpoint.workspace_id)))
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    audit_event_record(
        workspace=endpoint.workspace_id,
        actor=actor,
        verb="webhook.deleted",
        obj=endpoint,
        before=_public(endpoint),
    )
    workspace_id = endpoint.workspace_id
    endpoint.delete()
    transaction.on_commit(lambda: cache.delete(_cache_key(workspace_id)))


# --- emitting ------------------------------------------------------------------------------


def webhooks_emit(*, workspace: Workspace | int, event: str, payload: dict) -> None:
    """Send `event` to the workspace's subscribed endpoints once the current transaction commits.

    Nothing is sent for a change that rolls back. Cheap when the workspace has no endpoint.
    """
    workspace_id = workspace.pk if isinstance(workspace, Workspace) else workspace
    body = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    occurred = timezone.now()
    transaction.on_commit(lambda: _deliveries_create(workspace_id, event, body, occurred))


def _endpoint_ids(workspace_id: int, event: str) -> list[int]:
    subscribed = cache.get(_cache_key(workspace_id))
    if subscribed is None:
        subscribed = list(
            WebhookEndpoint.objects.filter(workspace_id=workspace_id, active=True).values_list(
                "pk", "events"
            )
        )
        cache.set(_cache_key(workspace_id), subscribed, CACHE_SECONDS)
    return [pk for pk, events in subscribed if event in events]


def _deliveries_create(workspace_id: int, event: str, data: dict, occurred) -> None:
    endpoint_ids = _endpoint_ids(workspace_id, event)
    if not endpoint_ids:
        return
    with transaction.atomic():
        for endpoint_id in endpoint_ids:
            delivery = WebhookDelivery.objects.create(
                workspace_id=workspace_id, endpoint_id=endpoint_id, event=event, payload={}
            )
            delivery.payload = {
                "id": str(delivery.event_id),
                "type": event,
                "created_at": occurred.isoformat(),
                "data": data,
            }
            delivery.save(update_fields=["payload"])
            async_task(
                "well.webhooks.webhook_deliver",
                delivery.pk,
                task_name=f"webhook {delivery.pk}",
                group="webhooks",
            )


# --- delivering (django-q2 task) -----------------------------------------------------------


def _retry_later(delivery: WebhookDelivery) -> None:
    schedule(
        "well.webhooks.webhook_deliver",
        delivery.pk,
        name=f"webhook {delivery.pk} attempt {delivery.attempts + 1}",
        schedule_type=Schedule.ONCE,
        next_run=delivery.next_attempt_at,
        repeats=1,
    )


def _delivery_error(exc: requests.RequestException) -> str:
    """A partner-facing reason for a failed connection: its kind, never addresses or sockets."""
    logger.info("webhook connection error: %r", exc)
    if isinstance(exc, requests.Timeout):
        return f"Timeout: no answer within {TIMEOUT_SECONDS} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return "SSLError: the TLS handshake or certificate check failed"
    if isinstance(exc, requests.ConnectionError):
        message = str(exc)
        if message.endswith("could not be resolved."):
            return f"ConnectionError: {message}"
        return "ConnectionError: the endpoint could not be reached"
    return f"{type(exc).__name__}: the request failed"


def webhook_deliver(delivery_id: int) -> str:
    """Send one delivery; on failure schedule the next one (BACKOFF), up to MAX_ATTEMPTS."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint")
            .filter(pk=delivery_id, state__in=[DeliveryState.PENDING, DeliveryState.RETRYING])
            .first()
        )
        if delivery is None:
            return "nothing to do"
        endpoint = delivery.endpoint
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Well-Webhooks/1",
            "Well-Event": delivery.event,
            "Well-Delivery": str(delivery.event_id),
            SIGNATURE_HEADER: signature(
                secret=secret_open(endpoint, "secret"), timestamp=int(time.time()), body=body
            ),
        }
        delivery.attempts += 1
        status, error = None, ""
        try:
            url_check(endpoint.url)
            if not endpoint.active:
                raise ValidationError("The endpoint was turned off.")
            response = _post_pinned(endpoint.url, body=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except ValidationError as exc:
            error = "; ".join(exc.messages)[:2000]
        except requests.RequestException as exc:
            error = _delivery_error(exc)
        delivery.response_status = status
        delivery.last_error = error
        if not error:
            delivery.state = DeliveryState.DELIVERED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        elif delivery.attempts >= MAX_ATTEMPTS or not endpoint.active:
            delivery.state = DeliveryState.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.state = DeliveryState.RETRYING
            delivery.next_attempt_at = timezone.now() + BACKOFF[delivery.attempts - 1]
            _retry_later(delivery)
        delivery.save(
            update_fields=[
                "attempts",
                "state",
                "response_status",
                "last_error",
                "next_attempt_at",
                "delivered_at",
            ]
        )
    if error:
        logger.info("webhook %s to endpoint %s failed: %s", delivery.pk, endpoint.pk, error)
    return delivery.state


def webhook_deliveries_for_endpoint(*, endpoint: WebhookEndpoint):
    return WebhookDelivery.objects.for_workspace(endpoint.workspace_id).filter(endpoint=endpoint)


def webhook_endpoints_for_workspace(*, workspace: Workspace | int):
    return WebhookEndpoint.objects.for_workspace(workspace)


# --- payloads (read attributes only: `well` imports no app) --------------------------------


def record_summary(record) -> dict:
    return {
        "record": {
            "id": record.pk,
            "kind": record.entity_type,
            "qbo_id": record.qbo_id,
            "state": record.state,
        }
    }


def sync_run_summary(run) -> dict:
    return {
        "sync_run": {
            "id": run.pk,
            "connection": str(run.connection_id),
            "status": run.status,
            "error": (run.error or "")[:1000],
        }
    }


def connection_summary(connection) -> dict:
    return {
        "connection": {
            "id": str(connection.pk),
            "provider": connection.provider,
            "status": connection.status,
            "reason": (connection.last_error or "")[:1000],
        }
    }
