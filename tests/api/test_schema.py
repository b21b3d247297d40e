"""The OpenAPI schema, the docs page, and schemathesis against the live API with a real key.

schemathesis generates requests for every operation of /api/schema/ and sends them to the
live server; no answer may be a server error or break the schema (status code, content type,
body, headers).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from well.api_auth import api_key_create
from well.audit import Actor

EXAMPLES = 15

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.mark.django_db
def test_the_schema_describes_every_api_route_with_bearer_auth(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    paths = set(schema["paths"])
    for path in (
        "/api/v1/records/",
        "/api/v1/records/{record_id}/",
        "/api/v1/records/{record_id}/approve/",
        "/api/v1/records/{record_id}/pin/",
        "/api/v1/workspace/",
        "/api/v1/connections/{connection_id}/sync/",
        "/api/v1/postings/",
        "/api/v1/audit-events/",
        "/api/v1/webhooks/",
    ):
        assert path in paths, path


@pytest.mark.django_db
def test_the_docs_page_loads_its_assets_from_our_own_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    from django.contrib.staticfiles import finders

    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_operation_answers_with_a_server_error_or_outside_its_schema(
    live_server, settings, make_books, in_review
):
    # schemathesis' lazy pytest fixture mode does not run under pytest 9 yet; we drive each
    # operation's hypothesis strategy ourselves, which is what it does.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "1000000/min"},
    }
    books = make_books("Live")
    in_review(books)
    books.bill(amount="50.00", day="2025-02-01", state="refused")
    _, secret = api_key_create(
        workspace=books.workspace,
        name="schemathesis",
        scopes=["read", "decide", "admin"],
        actor=Actor.system("tests"),
    )
    headers = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    failures, operations = {}, 0

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case):
            case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect all, then report them all
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]

    assert operations >= 30
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
