"""Oversized and malformed requests to Well's own endpoints: a clear 4xx, never a 500, no loss.

Review pages (decisions, settings), the partner API (JSON bodies, webhooks), exports and list
parameters. Each hostile request leaves the workspace exactly as it was.
"""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.core import serializers
from rest_framework.test import APIClient

from well.api_auth import api_key_create
from well.audit import Actor
from well.models import ApiKey

pytestmark = pytest.mark.django_db

TOO_BIG = 3 * 1024 * 1024  # past DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB)


def _snapshot(workspace) -> str:
    """Every tenant row but API keys (a request touches its key's `last_used_at`)."""
    rows = []
    for model in apps.get_models():
        if model is ApiKey:
            continue
        if any(f.name == "workspace" for f in model._meta.fields):
            rows.extend(model._default_manager.filter(workspace=workspace).order_by("pk"))
    return serializers.serialize("json", rows)


@pytest.fixture
def world(books, client, in_review):
    from django.core.cache import cache

    cache.clear()
    record = in_review(books)
    client.force_login(books.owner)
    _, secret = api_key_create(
        workspace=books.workspace,
        name="partner",
        scopes=["read", "decide", "admin"],
        actor=Actor.system("tests"),
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return books.workspace, record, client, api


def _message(response) -> str:
    return response.content.decode(errors="replace")


# --- Review pages --------------------------------------------------------------------------


def test_an_oversized_form_post_is_refused_with_a_clear_error_and_changes_nothing(world):
    workspace, record, client, _ = world
    before = _snapshot(workspace)

    response = client.post(
        f"/w/{workspace.slug}/records/{record.pk}/override/",
        {"outcome": "new", "note": "x" * TOO_BIG},
    )

    assert response.status_code in (400, 413)
    assert "too large" in _message(response).lower()
    assert _snapshot(workspace) == before


def test_too_many_form_fields_are_refused_with_a_clear_error(world):
    workspace, record, client, _ = world
    before = _snapshot(workspace)
    fields = {f"f{i}": "1" for i in range(1500)}

    response = client.post(f"/w/{workspace.slug}/records/{record.pk}/approve/", fields)

    assert response.status_code in (400, 413)
    assert "too many" in _message(response).lower()
    assert _snapshot(workspace) == before


def test_a_file_sent_to_a_decision_endpoint_is_ignored_not_stored(world, tmp_path, settings):
    workspace, record, client, _ = world
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    before = _snapshot(workspace)
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * (12 * 1024 * 1024))

    with big.open("rb") as upload:
        response = client.post(
            f"/w/{workspace.slug}/records/{record.pk}/override/",
            {"outcome": "nothing", "note": "", "file": upload},
        )

    assert response.status_code in (400, 413)
    assert _snapshot(workspace) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.pdf"]  # no temporary copy left


@pytest.mark.parametrize(
    "fields",
    [
        {"review_threshold": "nan", "auto_threshold": "0.9"},
        {"review_threshold": "inf", "auto_threshold": "1e309"},
        {"review_threshold": "0.9", "auto_threshold": "0.5"},
        {"review_threshold": "x" * 5000, "auto_threshold": ""},
    ],
)
def test_malformed_thresholds_are_refused_with_a_message(world, fields):
    workspace, _, client, _ = world
    before = _snapshot(workspace)

    response = client.post(f"/w/{workspace.slug}/settings/thresholds/", fields)

    assert response.status_code in (302, 400)
    assert _snapshot(workspace) == before


@pytest.mark.parametrize(
    "query",
    [
        "amount_min=abc&amount_max=-1&confidence_min=nan&confidence_max=2",
        "page=99999999999999999999999",
        "page=-3&sort=%00&q=" + "%F0%9F%92%A9" * 500,
        "date_from=2026-13-45&date_to=yesterday&state=nope",
        "q=%00%00",
    ],
)
@pytest.mark.parametrize("path", ["queue/", "refused/", "audit/", "audit.csv"])
def test_garbage_list_and_export_parameters_never_break_a_page(world, path, query):
    workspace, _, client, _ = world

    response = client.get(f"/w/{workspace.slug}/{path}?{query}")

    assert response.status_code in (200, 400), _message(response)[:500]


# --- Partner API ---------------------------------------------------------------------------


def _api_post(api, url: str, body: bytes | str, content_type: str = "application/json"):
    return api.generic("POST", url, body, content_type=content_type)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ('{"note": "' + "x" * TOO_BIG + '"}', "application/json", (400, 413)),
        ("[" * 100_000 + "]" * 100_000, "application/json", 400),
        ('["a list", "not an object"]', "application/json", 400),
        ('{"note": {"nested": [1, 2, {"x": null}]}}', "application/json", 400),
        ("note=hello", "text/plain", 415),
        ('{"note": "\\u0000"}', "application/json", (200, 400)),
    ],
)
def test_malformed_or_oversized_api_bodies_get_a_clear_error(world, body, content_type, status):
    workspace, record, _, api = world
    before = _snapshot(workspace)

    response = _api_post(api, f"/api/v1/records/{record.pk}/reject/", body, content_type)

    expected = status if isinstance(status, tuple) else (status,)
    assert response.status_code in expected, _message(response)[:500]
    error = response.json()["error"]
    assert error["code"] != "server_error" and error["detail"]
    if response.status_code >= 400:
        assert _snapshot(workspace) == before


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://hooks.example.com/" + "a" * 10_000, "events": ["record.posted"]},
        {"url": 12, "events": ["record.posted"]},
        {"url": "javascript:alert(1)", "events": ["record.posted"]},
        {"url": "https://169.254.169.254/latest", "events": ["record.posted"]},
        {"url": "https://hooks.example.com/x", "events": "record.posted"},
        {"url": "https://hooks.example.com/x", "events": [{"nested": True}]},
        {"url": "https://hooks.example.com/x", "events": ["no.such.event"] * 10_000},
        {"url": ["https://hooks.example.com/x"]},
    ],
)
def test_malformed_webhook_settings_are_refused_field_by_field(world, body):
    workspace, _, _, api = world
    before = _snapshot(workspace)

    response = api.post("/api/v1/webhooks/", json.dumps(body), content_type="application/json")

    assert response.status_code == 400, _message(response)[:500]
    assert response.json()["error"]["fields"]
    assert _snapshot(workspace) == before


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=-1",
        "page=99999999999999999999999",
        "page_size=100000000",
        "state=%00",
        "ordering=-no_such_field",
        "created_after=not-a-date&confidence_min=nan",
        "cursor=%FF%FE",
    ],
)
@pytest.mark.parametrize("path", ["records/", "audit-events/", "postings/", "sync-runs/"])
def test_garbage_api_list_parameters_never_give_a_500(world, path, query):
    _, _, _, api = world

    response = api.get(f"/api/v1/{path}?{query}")

    assert response.status_code in (200, 400, 404), _message(response)[:500]
