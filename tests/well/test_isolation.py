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

from connectors.models import Connection, Provider

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete"]

# Routes outside any workspace, with why they need no tenant check.
GLOBAL_PREFIXES = {
    "admin/": "staff only, behind MFA (tests/well/test_admin_mfa.py)",
    "accounts/": "allauth sign-in pages, about the signed-in user only",
    "healthz": "database liveness, no tenant data",
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
    "oauth/qonto/callback": (
        "OAuth redirect registered with Qonto; the workspace comes from the state bound to "
        "the session that started the flow (tests/connectors/test_qonto_oauth.py)"
    ),
}


def _workspace_b_object(kind: str) -> Callable:
    """Factories creating one object of workspace B for each URL parameter kind."""

    def connection(workspace):
        return Connection.objects.create(workspace=workspace, provider=Provider.QUICKBOOKS).pk

    return {"connection_id": connection}[kind]


# URL parameter name -> factory of workspace B's object ID.
OBJECT_PARAMETERS = {"connection_id": _workspace_b_object("connection_id")}


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        else:
            yield route, entry


def _is_global(route: str) -> bool:
    return route in GLOBAL_ROUTES or any(route.startswith(p) for p in GLOBAL_PREFIXES)


def workspace_routes() -> list[str]:
    return [route for route, _ in _walk(get_resolver().url_patterns) if not _is_global(route)]


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
        for route in workspace_routes()
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
            assert _is_global(route), f"route /{route} has no workspace: declare why in this file"


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
