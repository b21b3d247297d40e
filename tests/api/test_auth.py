"""Keys, scopes, revocation, throttling, idempotent retries and the one error shape."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from connectors.quickbooks.models import RecordState, SourceRecord
from review.models import Decision
from well.api_auth import api_key_authenticate, api_key_revoke
from well.audit import Actor
from well.models import ApiKey, AuditEvent

pytestmark = pytest.mark.django_db


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "detail", "fields"}, body
    return body["error"]


def test_only_the_hash_and_a_prefix_of_a_key_are_stored(books, make_key):
    key, secret = make_key(books.workspace)
    row = ApiKey.objects.get(pk=key.pk)
    assert secret.startswith("well_") and len(secret) > 40
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().first())
    assert row.prefix == secret[:12]
    assert api_key_authenticate(secret=secret) == row


def test_a_request_without_a_key_is_401_in_the_error_shape(client):
    response = client.get("/api/v1/records/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_key_is_refused(client_for):
    response = client_for(secret="well_not-a-real-key").get("/api/v1/records/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


def test_a_revoked_key_is_refused(books, make_key, client_for):
    key, secret = make_key(books.workspace)
    client = client_for(secret=secret)
    assert client.get("/api/v1/records/").status_code == 200
    api_key_revoke(key=key, actor=Actor.system("tests"))
    response = client.get("/api/v1/records/")
    assert response.status_code == 401
    assert AuditEvent.objects.filter(verb="api_key.revoked", object_id=str(key.pk)).exists()


def test_a_read_key_cannot_decide(books, client_for, in_review):
    bill = in_review(books)
    client = client_for(books.workspace, scopes=["read"])
    assert client.get(f"/api/v1/records/{bill.pk}/").status_code == 200
    for action in ("approve", "reject", "upload-as-new"):
        response = client.post(f"/api/v1/records/{bill.pk}/{action}/", {}, format="json")
        assert response.status_code == 403, action
        assert error_of(response)["code"] == "forbidden"
    assert not Decision.objects.filter(record=bill).exists()
    assert SourceRecord.objects.get(pk=bill.pk).state == RecordState.IN_REVIEW


def test_a_decide_key_cannot_change_thresholds_or_keys(books, client_for):
    client = client_for(books.workspace, scopes=["read", "decide"])
    response = client.patch(
        "/api/v1/workspace/", {"auto_threshold": 0.9, "review_threshold": 0.5}, format="json"
    )
    assert response.status_code == 403
    assert client.get("/api/v1/api-keys/").status_code == 403
    assert client.get("/api/v1/webhooks/").status_code == 403


def test_an_admin_key_changes_thresholds_through_the_workspace_service(books, client_for):
    client = client_for(books.workspace, scopes=["admin"])
    response = client.patch(
        "/api/v1/workspace/", {"auto_threshold": 0.9, "review_threshold": 0.4}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["auto_threshold"] == 0.9
    event = AuditEvent.objects.get(verb="workspace.thresholds_changed", actor_type="api_key")
    assert event.after["review_threshold"] == 0.4


def test_thresholds_out_of_order_are_a_validation_error(books, client_for):
    response = client_for(books.workspace).patch(
        "/api/v1/workspace/", {"auto_threshold": 0.3, "review_threshold": 0.6}, format="json"
    )
    assert response.status_code == 400
    assert error_of(response)["fields"]


def test_a_missing_field_is_reported_per_field(books, client_for):
    response = client_for(books.workspace).post("/api/v1/vendor-rules/", {}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid" and "vendor_qbo_id" in error["fields"]


def test_an_unknown_path_and_another_workspace_s_record_are_404_in_the_error_shape(
    books, other_books, client_for
):
    client = client_for(books.workspace)
    assert error_of(client.get("/api/v1/nothing-here/"))["code"] == "not_found"
    theirs = other_books.bill()
    response = client.get(f"/api/v1/records/{theirs.pk}/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_key_over_its_rate_gets_429_with_retry_after(books, client_for, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "3/min"},
    }
    client = client_for(books.workspace)
    assert [client.get("/api/v1/records/").status_code for _ in range(3)] == [200] * 3
    response = client.get("/api/v1/records/")
    assert response.status_code == 429
    assert error_of(response)["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Another key of the same workspace has its own allowance.
    assert client_for(books.workspace).get("/api/v1/records/").status_code == 200


def test_a_retried_decision_with_the_same_idempotency_key_is_replayed_not_redone(
    books, client_for, in_review
):
    bill = in_review(books)
    client = client_for(books.workspace)
    url = f"/api/v1/records/{bill.pk}/reject/"
    first = client.post(url, {"note": "dup"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    again = client.post(url, {"note": "dup"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Decision.objects.filter(record=bill).count() == 1
    # Without the key, the same call is a new decision, refused by the record's state.
    assert client.post(url, {"note": "dup"}, format="json").status_code == 409


def test_an_idempotency_key_reused_for_another_request_is_422(books, client_for, in_review):
    bill = in_review(books)
    client = client_for(books.workspace)
    url = f"/api/v1/records/{bill.pk}/reject/"
    client.post(url, {"note": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = client.post(url, {"note": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_mismatch"


def test_a_failed_decision_keeps_no_idempotent_answer(books, client_for):
    bill = books.bill(state=RecordState.POSTED)
    client = client_for(books.workspace)
    url = f"/api/v1/records/{bill.pk}/reject/"
    for _ in range(2):
        response = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
        assert response.status_code == 409


def test_the_command_prints_a_working_key_with_the_asked_scopes(books, client_for):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_key", books.workspace.slug, "--scopes", "read,decide", stdout=out, stderr=err
    )
    secret = out.getvalue().strip()
    assert secret.startswith("well_") and "\n" not in secret
    key = ApiKey.objects.get(workspace=books.workspace)
    assert key.scopes == ["read", "decide"]
    assert client_for(secret=secret).get("/api/v1/records/").status_code == 200


def test_the_command_refuses_an_unknown_workspace_or_scope(books):
    with pytest.raises(CommandError):
        call_command("create_api_key", "nope", "--scopes", "read")
    with pytest.raises(CommandError):
        call_command("create_api_key", books.workspace.slug, "--scopes", "read,root")
    assert not ApiKey.objects.exists()


def test_keys_are_created_and_revoked_over_the_api_with_the_admin_scope(books, client_for):
    client = client_for(books.workspace, scopes=["admin"])
    response = client.post("/api/v1/api-keys/", {"name": "ci", "scopes": ["read"]}, format="json")
    assert response.status_code == 201, response.content
    secret, key_id = response.json()["key"], response.json()["id"]
    assert client_for(secret=secret).get("/api/v1/records/").status_code == 200
    assert client.delete(f"/api/v1/api-keys/{key_id}/").status_code == 204
    assert client_for(secret=secret).get("/api/v1/records/").status_code == 401
    listed = client.get("/api/v1/api-keys/").json()["results"]
    assert all("key" not in row and "hashed" not in row for row in listed)


def test_the_browsable_api_works_for_a_signed_in_member(books, client):
    client.force_login(books.owner)
    session = client.session
    session["workspace_slug"] = books.workspace.slug
    session.save()
    response = client.get("/api/v1/records/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content.lower()
