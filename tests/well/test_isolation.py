"""Every route, every method, as a member of workspace A aimed at workspace B: 404, B unchanged.

The walk reads the URL configuration itself, so a new route is covered the day it is added;
a route whose parameters this file does not know how to fill fails the meta-test below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from django.apps import apps
from django.core import serializers
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from connectors.models import Connection, Provider, SyncRun
from connectors.qonto.models import Posting, QontoEntry
from connectors.quickbooks.models import SourceFile, SourceRecord
from matching.models import VendorRule
from review.models import Decision
from well.api_auth import api_key_create
from well.audit import Actor, audit_event_record
from well.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete"]

# Routes outside any workspace, with why they need no tenant check.
GLOBAL_PREFIXES = {
    "admin/": "staff only, behind MFA (tests/well/test_admin_mfa.py)",
    "accounts/": "allauth sign-in pages, about the signed-in user only",
    "healthz": "database liveness, no tenant data",
    "i18n/": "the language switcher: sets the person's language cookie, reads no tenant",
    "static/": "static files",
    "api/schema/": "the OpenAPI document, no tenant data",
    "api/docs/": "interactive API docs, no tenant data",
}
GLOBAL_ROUTES = {
    "": "lists the signed-in user's own workspaces",
    "oauth/quickbooks/callback": (
        "OAuth redirect registered with Intuit; the workspace comes from the state bound to "
        "the session that started the flow (tests/connectors/test_quickbooks_oauth.py)"
    ),
    "onboarding/new/": "creates a new workspace owned by the signed-in user; reads no tenant",
    "oauth/qonto/callback": (
        "OAuth redirect registered with Qonto; the workspace comes from the state bound to "
        "the session that started the flow (tests/connectors/test_qonto_oauth.py)"
    ),
}


def _b_connection(workspace) -> Connection:
    connection, _ = Connection.objects.get_or_create(
        workspace=workspace, provider=Provider.QUICKBOOKS
    )
    return connection


def _b_record(workspace, qbo_id: str = "B-1") -> SourceRecord:
    record, _ = SourceRecord.objects.get_or_create(
        workspace=workspace,
        entity_type="Bill",
        qbo_id=qbo_id,
        defaults={"connection": _b_connection(workspace), "state": "in_review"},
    )
    return record


def _b_file(workspace):
    return SourceFile.objects.create(
        workspace=workspace,
        record=_b_record(workspace),
        attachable=_b_record(workspace, "B-att"),
        sha256="0" * 64,
    ).pk


def _b_posting(workspace):
    return Posting.objects.create(
        workspace=workspace,
        record=_b_record(workspace),
        source_version="0",
        action="upload",
        idempotency_key=f"b-{workspace.pk}",
    ).pk


def _b_decision(workspace):
    return Decision.objects.create(
        workspace=workspace,
        record=_b_record(workspace),
        kind="approve",
        actor_type="system",
        actor_label="tests",
        state_before="in_review",
        state_after="approved",
    ).pk


def _b_webhook(workspace):
    return WebhookEndpoint.objects.create(workspace=workspace, url="https://b.example/hook").pk


def _b_api_key(workspace):
    return api_key_create(
        workspace=workspace, name="b", scopes=["admin"], actor=Actor.system("tests")
    )[0].pk


def _b_audit_event(workspace):
    return audit_event_record(workspace=workspace, actor=Actor.system("tests"), verb="b").pk


# URL parameter name -> factory of workspace B's object ID.
OBJECT_PARAMETERS: dict[str, Callable] = {
    "connection_id": lambda workspace: _b_connection(workspace).pk,
    "record_id": lambda workspace: _b_record(workspace).pk,
    "file_id": _b_file,
    "posting_id": _b_posting,
    "sync_run_id": lambda ws: SyncRun.objects.create(workspace=ws, connection=_b_connection(ws)).pk,
    "decision_id": _b_decision,
    "vendor_rule_id": lambda ws: VendorRule.objects.create(workspace=ws, vendor_qbo_id="B").pk,
    "audit_event_id": _b_audit_event,
    "webhook_id": _b_webhook,
    "api_key_id": _b_api_key,
}


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        else:
            yield route, entry


def _is_global(route: str) -> bool:
    return route in GLOBAL_ROUTES or any(route.startswith(p) for p in GLOBAL_PREFIXES)


# The partner API has no workspace in its URLs: the API key (or, for the browsable API, the
# session's workspace) scopes every route; the API walk below tries them all.
API_PREFIX = "api/v1/"


def _is_api(route: str) -> bool:
    return route.startswith(API_PREFIX)


def workspace_routes() -> list[str]:
    return [
        route
        for route, _ in _walk(get_resolver().url_patterns)
        if not _is_global(route) and not _is_api(route)
    ]


def api_routes() -> list[str]:
    return [route for route, _ in _walk(get_resolver().url_patterns) if _is_api(route)]


_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def _fill(route: str, values: dict[str, object]) -> str:
    return "/" + _PARAM.sub(lambda m: str(values[m.group("name")]), route)


def _snapshot(workspace) -> str:
    """Every row of every tenant model that belongs to the workspace, serialised."""
    rows = []
    for model in apps.get_models():
        if any(f.name == "workspace" for f in model._meta.fields):
            rows.extend(model._default_manager.filter(workspace=workspace).order_by("pk"))
    rows.append(workspace)
    return serializers.serialize("json", rows)


def test_every_workspace_route_has_known_parameters():
    unknown = {
        (route, m.group("name"))
        for route in workspace_routes() + api_routes()
        for m in _PARAM.finditer(route)
        if m.group("name") != "workspace_slug" and m.group("name") not in OBJECT_PARAMETERS
    }
    assert not unknown, (
        "Routes with parameters the isolation walk cannot fill; add a factory to "
        f"OBJECT_PARAMETERS in {__file__}: {sorted(unknown)}"
    )


def test_every_route_outside_a_workspace_is_declared_global():
    for route, _ in _walk(get_resolver().url_patterns):
        if "workspace_slug" not in route:
            assert _is_global(route) or _is_api(route), (
                f"route /{route} has no workspace: declare why in this file"
            )


def test_the_api_walk_covers_every_api_route():
    routes = api_routes()
    assert any("<int:record_id>" in route for route in routes)
    assert any(route.endswith("approve/") for route in routes)
    assert all(route.startswith(API_PREFIX) for route in routes)


@pytest.fixture
def tenants(make_user, make_workspace, client):
    ann = make_user("ann@a.example")
    workspace_a = make_workspace("Alpha", owner=ann)
    workspace_b = make_workspace("Beta", owner=make_user("bob@b.example"))
    client.force_login(ann)
    return workspace_a, workspace_b, client


def test_a_member_of_a_reaches_nothing_of_b_on_any_route(tenants):
    workspace_a, workspace_b, client = tenants
    b_objects = {name: make(workspace_b) for name, make in OBJECT_PARAMETERS.items()}
    before = _snapshot(workspace_b)
    tried = 0

    for route in workspace_routes():
        names = {m.group("name") for m in _PARAM.finditer(route)}
        attempts = [{"workspace_slug": workspace_b.slug, **b_objects}]
        if names - {"workspace_slug"}:
            # Own workspace in the URL, the other tenant's object IDs in the parameters.
            attempts.append({"workspace_slug": workspace_a.slug, **b_objects})
        for values in attempts:
            url = _fill(route, values)
            for method in METHODS:
                response = getattr(client, method)(url)
                tried += 1
                assert response.status_code == 404, f"{method.upper()} {url}"

    assert tried >= len(METHODS)
    assert _snapshot(workspace_b) == before


def _api_clients(workspace_a, user_a) -> dict[str, APIClient]:
    """A key of A with every scope, and A's member on the browsable API (session auth)."""
    _, secret = api_key_create(
        workspace=workspace_a,
        name="a",
        scopes=["read", "decide", "admin"],
        actor=Actor.system("tests"),
    )
    by_key = APIClient()
    by_key.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    by_session = APIClient()
    by_session.force_login(user_a)
    session = by_session.session
    session["workspace_slug"] = workspace_a.slug
    session.save()
    return {"key": by_key, "session": by_session}


def test_a_key_or_session_of_a_reaches_nothing_of_b_on_any_api_route(
    make_user, make_workspace, settings
):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "100000/min"},
    }
    ann = make_user("ann@a.example")
    workspace_a = make_workspace("Alpha", owner=ann)
    workspace_b = make_workspace("Beta", owner=make_user("bob@b.example"))
    b_objects = {name: make(workspace_b) for name, make in OBJECT_PARAMETERS.items()}
    b_entry = QontoEntry.objects.create(
        workspace=workspace_b, connection=_b_connection(workspace_b), kind="supplier_invoice"
    )
    # A body that points at B wherever a write takes an ID.
    body = {
        "note": "from A",
        "entry": str(b_entry.pk),
        "record": b_objects["record_id"],
        "connection": str(b_objects["connection_id"]),
        "vendor_qbo_id": "B",
        "url": "https://a.example/hook",
        "name": "a",
        "scopes": ["read"],
    }
    before = _snapshot(workspace_b)
    detail_of = {}  # list route -> the parameter of its detail route
    for route in api_routes():
        m = _PARAM.search(route)
        if m and route.endswith(f"<{m.group('converter')}:{m.group('name')}>/"):
            detail_of[route[: m.start()]] = m.group("name")
    tried = 0

    for who, client in _api_clients(workspace_a, ann).items():
        for route in api_routes():
            url = _fill(route, b_objects)
            has_object = bool(_PARAM.search(route))
            for method in METHODS:
                response = getattr(client, method)(url, body, format="json")
                tried += 1
                where = f"{who}: {method.upper()} {url} -> {response.status_code}"
                assert response.status_code < 500, where
                if has_object or route.endswith("$"):
                    assert response.status_code == 404, where
                    assert response.json()["error"]["code"] == "not_found", where
                elif method == "get" and route in detail_of:
                    ids = {str(row["id"]) for row in response.json()["results"]}
                    assert str(b_objects[detail_of[route]]) not in ids, where

    assert tried >= 2 * len(METHODS) * len(api_routes())
    assert _snapshot(workspace_b) == before
