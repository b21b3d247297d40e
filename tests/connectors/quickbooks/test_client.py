"""The QuickBooks client against `responses`: every error shape, retries, 429, read-only."""

from __future__ import annotations

import inspect
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses

from connectors.quickbooks import client
from well.http import AuthExpired, AuthRevoked, PermanentError, RateLimited, TransientError

BASE = "https://qbo.test"
REALM = "123"
API = f"{BASE}/v3/company/{REALM}"
TID = {"intuit_tid": "1-abc-tid"}


class Tokens:
    def __init__(self):
        self.calls: list[str | None] = []

    def __call__(self, rejected):
        self.calls.append(rejected)
        return f"access-{len(self.calls)}"


@pytest.fixture
def api():
    sleeps: list[float] = []
    tokens = Tokens()
    api = client.QuickBooksApi(
        base_url=BASE, realm_id=REALM, token=tokens, sleep=sleeps.append, limiter=None
    )
    api.sleeps = sleeps  # type: ignore[attr-defined]
    api.tokens = tokens  # type: ignore[attr-defined]
    return api


def page(entity, records, time="2026-03-01T10:00:00.000-08:00"):
    return {"QueryResponse": {entity: records, "startPosition": 1}, "time": time}


@responses.activate
def test_query_sends_minorversion_accept_and_bearer_and_parses_decimals(api):
    responses.get(f"{API}/query", json=page("Bill", [{"Id": "1", "TotalAmt": 12.30}]))
    result = client.query(api, "SELECT * FROM Bill", entity="Bill")
    request = responses.calls[0].request
    assert "minorversion=75" in request.url
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Authorization"] == "Bearer access-1"
    assert result.records[0]["TotalAmt"] == Decimal("12.30")
    assert result.time == "2026-03-01T10:00:00.000-08:00"


@responses.activate
def test_query_pages_stream_until_a_short_page(api):
    responses.get(f"{API}/query", json=page("Vendor", [{"Id": "1"}, {"Id": "2"}]))
    responses.get(f"{API}/query", json=page("Vendor", [{"Id": "3"}]))
    pages = list(client.query_pages(api, "Vendor", page_size=2))
    assert [len(p.records) for p in pages] == [2, 1]
    statements = [c.request.params["query"] for c in responses.calls]
    assert "Active IN (true, false)" in statements[0]
    assert "STARTPOSITION 1 MAXRESULTS 2" in statements[0]
    assert "STARTPOSITION 3 MAXRESULTS 2" in statements[1]


@responses.activate
def test_an_empty_query_response_ends_paging(api):
    responses.get(f"{API}/query", json={"QueryResponse": {}, "time": "2026-03-01T10:00:00-08:00"})
    assert [p.records for p in client.query_pages(api, "Bill")] == [[]]


@responses.activate
def test_json_validation_fault_is_permanent_and_names_the_code(api, caplog):
    body = {
        "Fault": {
            "Error": [{"Message": "Invalid query", "Detail": "bad property", "code": "4000"}],
            "type": "ValidationFault",
        }
    }
    responses.get(f"{API}/query", json=body, status=400, headers=TID)
    with caplog.at_level(logging.WARNING), pytest.raises(PermanentError) as info:
        client.query(api, "SELECT * FROM Bill", entity="Bill")
    assert info.value.permanent
    assert "code 4000" in str(info.value)
    assert info.value.provider_request_id == "1-abc-tid"
    assert "1-abc-tid" in caplog.text


@responses.activate
def test_lowercase_fault_on_401_refreshes_once_then_gives_up(api):
    body = {
        "fault": {
            "error": [
                {"message": "message=AuthenticationFailed; errorCode=003200", "code": "3200"}
            ],
            "type": "AUTHENTICATION",
        }
    }
    responses.get(f"{API}/query", json=body, status=401, headers=TID)
    with pytest.raises(AuthExpired):
        client.query(api, "SELECT * FROM Bill", entity="Bill")
    # Two requests at most (401 storms capped), the second with a forced refresh.
    assert len(responses.calls) == 2
    assert api.tokens.calls == [None, "access-1"]


@responses.activate
def test_a_401_then_success_uses_the_refreshed_token(api):
    responses.get(f"{API}/query", status=401, body="")
    responses.get(f"{API}/query", json=page("Bill", []))
    client.query(api, "SELECT * FROM Bill", entity="Bill")
    assert responses.calls[1].request.headers["Authorization"] == "Bearer access-2"


@responses.activate
def test_xml_401_body_is_parsed(api):
    xml = (
        '<?xml version="1.0"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3">'
        '<Fault type="AUTHENTICATION"><Error code="3200"><Message>message=AuthenticationFailed'
        "</Message><Detail>Token expired</Detail></Error></Fault></IntuitResponse>"
    )
    responses.get(f"{API}/query", body=xml, status=401, content_type="application/xml")
    with pytest.raises(AuthExpired) as info:
        client.query(api, "SELECT * FROM Bill", entity="Bill")
    assert "code 3200" in str(info.value)


@responses.activate
def test_xml_throttle_fault_waits_sixty_seconds_without_retry_after(api):
    xml = (
        '<IntuitResponse><Fault type="SERVICE"><Error code="3001"><Message>'
        "message=ThrottleExceeded; errorCode=003001; statusCode=429</Message></Error></Fault>"
        "</IntuitResponse>"
    )
    responses.get(f"{API}/query", body=xml, status=429, content_type="text/xml")
    responses.get(f"{API}/query", json=page("Bill", []))
    client.query(api, "SELECT * FROM Bill", entity="Bill")
    assert api.sleeps == [60.0]


@responses.activate
def test_429_retry_after_is_honoured(api):
    responses.get(f"{API}/query", status=429, headers={"Retry-After": "7"}, body="")
    responses.get(f"{API}/query", json=page("Bill", []))
    client.query(api, "SELECT * FROM Bill", entity="Bill")
    assert api.sleeps == [7.0]
    assert len(responses.calls) == 2


@responses.activate
def test_429_that_never_ends_raises_rate_limited(api):
    responses.get(f"{API}/query", status=429, headers={"Retry-After": "7"}, body="")
    with pytest.raises(RateLimited) as info:
        client.query(api, "SELECT * FROM Bill", entity="Bill")
    assert not info.value.permanent
    assert len(responses.calls) == 4  # bounded retries


@responses.activate
def test_5xx_is_retried_then_transient(api):
    responses.get(f"{API}/query", status=503, body="")
    with pytest.raises(TransientError) as info:
        client.query(api, "SELECT * FROM Bill", entity="Bill")
    assert not info.value.permanent
    assert len(responses.calls) == 4


@responses.activate
def test_fault_inside_a_200_is_an_error(api):
    body = {
        "Fault": {"Error": [{"Message": "System failure", "code": "10000"}], "type": "SystemFault"},
        "time": "2026-03-01T10:00:00-08:00",
    }
    responses.get(f"{API}/query", json=body, status=200, headers=TID)
    with pytest.raises(TransientError) as info:
        client.query(api, "SELECT * FROM Bill", entity="Bill")
    assert "code 10000" in str(info.value)


@responses.activate
def test_403_application_authorization_failed_is_revoked(api):
    body = {"Fault": {"Error": [{"Message": "ApplicationAuthorizationFailed", "code": "3100"}]}}
    responses.get(f"{API}/query", json=body, status=403)
    with pytest.raises(AuthRevoked) as info:
        client.query(api, "SELECT * FROM Bill", entity="Bill")
    assert info.value.permanent


@responses.activate
def test_xml_where_json_was_asked_without_fault_is_permanent(api):
    responses.get(f"{API}/query", body="<IntuitResponse/>", status=200)
    with pytest.raises(PermanentError, match="XML where JSON"):
        client.query(api, "SELECT * FROM Bill", entity="Bill")


@responses.activate
def test_junk_body_is_transient(api):
    responses.get(f"{API}/query", body="<<not json", status=200)
    with pytest.raises(PermanentError):
        client.query(api, "SELECT * FROM Bill", entity="Bill")
    responses.replace(responses.GET, f"{API}/query", body="{oops", status=200)
    with pytest.raises(TransientError):
        client.query(api, "SELECT * FROM Bill", entity="Bill")


@responses.activate
def test_cdc_groups_changes_and_deletes_with_an_explicit_offset(api):
    body = {
        "CDCResponse": [
            {
                "QueryResponse": [
                    {"Bill": [{"Id": "1"}, {"Id": "39", "status": "Deleted"}]},
                    {},
                    {"Vendor": [{"Id": "5"}]},
                ]
            }
        ],
        "time": "2026-03-01T10:00:00.000-08:00",
    }
    responses.get(f"{API}/cdc", json=body)
    result = client.cdc(
        api, entities=["Bill", "Vendor"], changed_since=datetime(2026, 3, 1, 9, tzinfo=UTC)
    )
    assert result.total == 3
    assert result.by_entity["Bill"][1]["status"] == "Deleted"
    params = responses.calls[0].request.params
    assert params["changedSince"] == "2026-03-01T09:00:00+00:00"
    assert params["entities"] == "Bill,Vendor"


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        client.qbo_time(datetime(2026, 1, 1))


@responses.activate
def test_attachables_for_uses_the_post_form_of_query(api):
    responses.post(f"{API}/query", json=page("Attachable", [{"Id": "9"}]))
    pages = list(client.attachables_for(api, entity_type="Bill", entity_ids=["1", "2'x"]))
    request = responses.calls[0].request
    assert request.headers["Content-Type"] == "application/text"
    assert "AttachableRef.EntityRef.value IN ('1', '2\\'x')" in request.body.decode()
    assert pages[0].records == [{"Id": "9"}]


@responses.activate
def test_download_url_returns_the_temporary_link(api):
    responses.get(f"{API}/download/9", body="https://files.intuit.com/abc?sig=1")
    assert client.download_url(api, "9") == "https://files.intuit.com/abc?sig=1"


@responses.activate
def test_company_info_and_preferences(api):
    responses.get(f"{API}/companyinfo/{REALM}", json={"CompanyInfo": {"CompanyName": "Co"}})
    responses.get(
        f"{API}/preferences",
        json={"Preferences": {"CurrencyPrefs": {"HomeCurrency": {"value": "EUR"}}}},
    )
    assert client.company_info(api)[0]["CompanyName"] == "Co"
    assert client.preferences(api)[0]["CurrencyPrefs"]["HomeCurrency"]["value"] == "EUR"


def test_the_client_has_no_function_that_writes():
    names = {name for name, obj in inspect.getmembers(client, inspect.isfunction)}
    writes = {n for n in names if any(w in n for w in ("create", "update", "delete", "batch"))}
    assert not writes


def test_the_request_path_refuses_any_write(api):
    for method, path in [("POST", "bill"), ("POST", "batch"), ("DELETE", "bill/1"), ("PUT", "x")]:
        with pytest.raises(PermanentError, match="read-only"):
            client._send(api, method, path, what="write")


def test_faults_parse_in_every_shape():
    assert client.parse_fault(json.dumps({"Fault": {"Error": [{"code": "610"}]}})).code == "610"
    assert client.parse_fault(json.dumps({"fault": {"error": [{"code": "3200"}]}})).code == "3200"
    assert client.parse_fault('<Fault type="X"><Error code="1"/></Fault>').code == "1"
    assert client.parse_fault(json.dumps({"error": "invalid_grant"})).message == "invalid_grant"
    assert client.parse_fault("plain text") is None
