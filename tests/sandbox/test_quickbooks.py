"""Contract tests of the QuickBooks sandbox over real HTTP, against quickbooks-api.md."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pypdf import PdfReader

from sandbox.qbo_query import PACIFIC, parse_qbo_datetime
from sandbox.quickbooks import QuickBooksSandbox
from sandbox.server import serve_in_thread
from sandbox.world import build_world

CLIENT_ID, CLIENT_SECRET = "test-client", "test-secret"
REDIRECT = "http://localhost:8000/callback"
SCOPE = "com.intuit.quickbooks.accounting"


@pytest.fixture(scope="module")
def world():
    return build_world(seed=7, bills=60)


@pytest.fixture
def sandbox(world, tmp_path):
    app = QuickBooksSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    app.seed(world.quickbooks)
    running = serve_in_thread(app)
    running.app = app
    yield running
    running.stop()


def authorize(base: str, decision: str = "allow", state: str = "st4te") -> requests.Response:
    form = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": SCOPE,
        "redirect_uri": REDIRECT,
        "state": state,
        "decision": decision,
    }
    return requests.post(f"{base}/connect/oauth2", data=form, allow_redirects=False, timeout=10)


def callback_params(response: requests.Response) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def connect(base: str) -> tuple[str, dict]:
    """Run the code flow; returns (realmId, token response)."""
    params = callback_params(authorize(base))
    tokens = requests.post(
        f"{base}/oauth2/v1/tokens/bearer",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT},
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    return params["realmId"], tokens.json()


def refresh(base: str, token: str) -> requests.Response:
    return requests.post(
        f"{base}/oauth2/v1/tokens/bearer",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "refresh_token", "refresh_token": token},
        headers={"Accept": "application/json"},
        timeout=10,
    )


class Api:
    """A tiny authenticated client for the tests."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.realm, self.tokens = connect(base)
        self.headers = {
            "Authorization": f"Bearer {self.tokens['access_token']}",
            "Accept": "application/json",
        }

    def get(self, path: str, **kwargs) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        url = f"{self.base}/v3/company/{self.realm}/{path}"
        return requests.get(url, headers=headers, timeout=30, **kwargs)

    def query(self, statement: str, method: str = "GET") -> requests.Response:
        if method == "POST":
            url = f"{self.base}/v3/company/{self.realm}/query"
            headers = {**self.headers, "Content-Type": "application/text"}
            return requests.post(url, data=statement.encode(), headers=headers, timeout=30)
        return self.get("query", params={"query": statement, "minorversion": "75"})

    def rows(self, statement: str) -> list[dict]:
        response = self.query(statement)
        assert response.status_code == 200, response.text
        body = response.json()["QueryResponse"]
        entity = next((k for k in body if k not in ("startPosition", "maxResults")), None)
        return body.get(entity, []) if entity else []


def control(base: str, name: str, payload: dict | None = None) -> dict:
    if payload is None:
        response = requests.get(f"{base}/_sandbox/{name}", timeout=10)
    else:
        response = requests.post(f"{base}/_sandbox/{name}", json=payload, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def api(sandbox):
    return Api(sandbox.base_url)


# ---- OAuth -------------------------------------------------------------------------------


def test_discovery_documents_list_endpoints_on_the_sandbox_itself(sandbox):
    for path in ("openid_configuration/", "openid_sandbox_configuration/"):
        doc = requests.get(f"{sandbox.base_url}/.well-known/{path}", timeout=10).json()
        assert doc["authorization_endpoint"] == f"{sandbox.base_url}/connect/oauth2"
        assert doc["token_endpoint"] == f"{sandbox.base_url}/oauth2/v1/tokens/bearer"
        assert doc["revocation_endpoint"] == f"{sandbox.base_url}/v2/oauth2/tokens/revoke"
        assert "client_secret_basic" in doc["token_endpoint_auth_methods_supported"]


def test_consent_page_is_a_form_and_allow_redirects_with_code_state_and_realm(sandbox, world):
    page = requests.get(
        f"{sandbox.base_url}/connect/oauth2",
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "scope": SCOPE,
            "redirect_uri": REDIRECT,
            "state": "abc",
        },
        timeout=10,
    )
    assert page.status_code == 200 and "<form" in page.text and "Allow" in page.text
    response = authorize(sandbox.base_url, state="abc")
    assert response.status_code == 302
    params = callback_params(response)
    assert params["state"] == "abc"
    assert params["realmId"] == world.quickbooks["realm_id"]
    assert response.headers["Location"].startswith(REDIRECT + "?")
    assert params["code"]


def test_deny_redirects_with_access_denied(sandbox):
    params = callback_params(authorize(sandbox.base_url, decision="deny", state="s1"))
    assert params == {"error": "access_denied", "state": "s1"}


def test_redirect_uri_off_the_loopback_is_refused_without_redirect(sandbox):
    response = requests.get(
        f"{sandbox.base_url}/connect/oauth2",
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "scope": SCOPE,
            "redirect_uri": "https://evil.example/cb",
            "state": "x",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_token_response_fields_and_single_use_code(sandbox):
    params = callback_params(authorize(sandbox.base_url))
    data = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT}
    url = f"{sandbox.base_url}/oauth2/v1/tokens/bearer"
    first = requests.post(url, auth=(CLIENT_ID, CLIENT_SECRET), data=data, timeout=10)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["x_refresh_token_expires_in"] > 8_000_000
    assert {"access_token", "refresh_token"} <= set(body)
    assert "intuit_tid" in first.headers
    again = requests.post(url, auth=(CLIENT_ID, CLIENT_SECRET), data=data, timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_token_endpoint_requires_client_authentication(sandbox):
    params = callback_params(authorize(sandbox.base_url))
    data = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT}
    url = f"{sandbox.base_url}/oauth2/v1/tokens/bearer"
    assert requests.post(url, data=data, timeout=10).status_code == 401
    wrong = requests.post(url, auth=(CLIENT_ID, "nope"), data=data, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    # client_secret_post is listed in the discovery document, so it works too.
    posted = {**data, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert requests.post(url, data=posted, timeout=10).status_code == 200


def test_refresh_rotates_and_the_superseded_token_gets_invalid_grant(sandbox):
    _, tokens = connect(sandbox.base_url)
    renewed = refresh(sandbox.base_url, tokens["refresh_token"])
    assert renewed.status_code == 200
    assert renewed.json()["refresh_token"] != tokens["refresh_token"]
    stale = refresh(sandbox.base_url, tokens["refresh_token"])
    assert stale.status_code == 400
    assert stale.json()["error"] == "invalid_grant"
    assert refresh(sandbox.base_url, renewed.json()["refresh_token"]).status_code == 200


def test_daily_rotation_keeps_the_value_within_a_day(sandbox):
    control(sandbox.base_url, "faults", {"refresh_rotation": "daily"})
    _, tokens = connect(sandbox.base_url)
    same = refresh(sandbox.base_url, tokens["refresh_token"]).json()
    assert same["refresh_token"] == tokens["refresh_token"]
    control(sandbox.base_url, "clock", {"advance": 86_400})
    rotated = refresh(sandbox.base_url, tokens["refresh_token"]).json()
    assert rotated["refresh_token"] != tokens["refresh_token"]


def test_forced_rotation_kills_the_stored_refresh_token(sandbox):
    _, tokens = connect(sandbox.base_url)
    answer = control(sandbox.base_url, "faults", {"rotate": True})
    new_value = answer["rotated"][0]["refresh_token"]
    assert refresh(sandbox.base_url, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(sandbox.base_url, new_value).status_code == 200


def test_revoke_ends_access_and_refresh(sandbox, api):
    assert api.query("select * from Vendor").status_code == 200
    response = requests.post(
        f"{sandbox.base_url}/v2/oauth2/tokens/revoke",
        json={"token": api.tokens["refresh_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert response.status_code == 200
    assert api.query("select * from Vendor").status_code == 401
    assert refresh(sandbox.base_url, api.tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoke_requires_basic_auth(sandbox, api):
    url = f"{sandbox.base_url}/v2/oauth2/tokens/revoke"
    response = requests.post(url, json={"token": api.tokens["refresh_token"]}, timeout=10)
    assert response.status_code == 401


def test_control_revoke_cuts_every_grant(sandbox, api):
    assert control(sandbox.base_url, "faults", {"revoke": True})["revoked"] == 1
    assert api.query("select * from Vendor").status_code == 401


def test_access_token_expires_with_the_sandbox_clock(sandbox, api):
    assert api.query("select * from Vendor").status_code == 200
    control(sandbox.base_url, "clock", {"advance": 3601})
    expired = api.query("select * from Vendor")
    assert expired.status_code == 401
    assert "expired" in expired.json()["fault"]["error"][0]["detail"].lower()


def test_short_access_token_ttl_is_configurable(world):
    app = QuickBooksSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_token_ttl=5)
    app.seed(world.quickbooks)
    running = serve_in_thread(app)
    try:
        _, tokens = connect(running.base_url)
        assert tokens["expires_in"] == 5
    finally:
        running.stop()


def test_401_uses_the_lowercase_fault_envelope(api):
    api.headers["Authorization"] = "Bearer not-a-token"
    response = api.query("select * from Bill")
    assert response.status_code == 401
    body = response.json()
    assert body["fault"]["type"] == "AUTHENTICATION"
    assert body["fault"]["error"][0]["code"] == "3200"
    assert "Fault" not in body


def test_token_for_another_company_is_refused(api):
    api.realm = "123456789"
    response = api.query("select * from Bill")
    assert response.status_code == 401
    assert response.json()["fault"]["error"][0]["code"] == "100"


# ---- query -------------------------------------------------------------------------------


def test_query_envelope_by_get_and_post(api):
    for method in ("GET", "POST"):
        response = api.query("SELECT * FROM Bill STARTPOSITION 1 MAXRESULTS 5", method=method)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"QueryResponse", "time"}
        page = body["QueryResponse"]
        assert page["startPosition"] == 1 and page["maxResults"] == 5 and len(page["Bill"]) == 5
        parse_qbo_datetime(body["time"])
        bill = page["Bill"][0]
        assert bill["domain"] == "QBO" and bill["sparse"] is False
        assert isinstance(bill["TotalAmt"], float)


def test_paging_is_one_based_and_ends_with_an_empty_query_response(api, world):
    total = len(world.quickbooks["entities"]["Bill"])
    seen = []
    start = 1
    while True:
        page = api.query(f"select * from Bill orderby Id startposition {start} maxresults 25")
        body = page.json()["QueryResponse"]
        if not body:
            break
        assert body["startPosition"] == start
        assert body["maxResults"] == len(body["Bill"])
        seen += [bill["Id"] for bill in body["Bill"]]
        start += 25
    assert len(seen) == total == len(set(seen))


def test_maxresults_over_1000_is_a_validation_fault(api):
    response = api.query("select * from Bill maxresults 1001")
    assert response.status_code == 400
    assert response.json()["Fault"]["type"] == "ValidationFault"


def test_count_star(api, world):
    response = api.query("SELECT COUNT(*) FROM Bill")
    assert response.json()["QueryResponse"] == {
        "totalCount": len(world.quickbooks["entities"]["Bill"])
    }


def test_last_updated_time_filter_honours_offsets(api):
    bills = api.rows("select * from Bill orderby MetaData.LastUpdatedTime maxresults 1000")
    pivot = parse_qbo_datetime(bills[len(bills) // 2]["MetaData"]["LastUpdatedTime"])
    as_utc = pivot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    as_paris = pivot.astimezone(PACIFIC).strftime("%Y-%m-%dT%H:%M:%S%z")  # -0700 style
    expected = [
        b["Id"] for b in bills if parse_qbo_datetime(b["MetaData"]["LastUpdatedTime"]) > pivot
    ]
    for literal in (as_utc, as_paris):
        rows = api.rows(
            f"select * from Bill where Metadata.LastUpdatedTime > '{literal}' maxresults 1000"
        )
        assert sorted(r["Id"] for r in rows) == sorted(expected)


def test_order_by_desc_and_two_word_order_by(api):
    rows = api.rows("select * from Bill ORDER BY TotalAmt DESC maxresults 50")
    amounts = [row["TotalAmt"] for row in rows]
    assert amounts == sorted(amounts, reverse=True)
    ids = [int(row["Id"]) for row in api.rows("select * from Vendor ORDERBY Id")]
    assert ids == sorted(ids)


def test_inactive_list_entities_need_active_in_true_false(api, world):
    every = world.quickbooks["entities"]["Vendor"]
    inactive = [v for v in every if not v["Active"]]
    assert inactive
    assert len(api.rows("select * from Vendor maxresults 1000")) == len(every) - len(inactive)
    both = api.rows("select * from Vendor where Active IN (true, false) maxresults 1000")
    assert len(both) == len(every)
    only = api.rows("select * from Vendor where Active = false")
    assert [v["Id"] for v in only] == [v["Id"] for v in inactive]
    accounts = api.rows("select * from Account where Active in (true,false) maxresults 1000")
    assert any(a["Active"] is False for a in accounts)


def test_in_like_and_escaped_quotes(api, world):
    vendor_ids = [v["Id"] for v in world.quickbooks["entities"]["Vendor"][:2]]
    rows = api.rows(f"select * from Bill where VendorRef IN ('{vendor_ids[0]}', '{vendor_ids[1]}')")
    assert rows and {row["VendorRef"]["value"] for row in rows} <= set(vendor_ids)
    figma = api.rows("select * from Vendor where DisplayName LIKE 'Fig%'")
    assert [v["CompanyName"] for v in figma] == ["Figma, Inc."]
    quoted = api.query("select * from Vendor where DisplayName = 'Brasserie l\\'Océan'")
    assert quoted.status_code == 200 and quoted.json()["QueryResponse"] == {}


def test_bank_accounts_and_attachables_by_entity_ref(api, world):
    banks = api.rows("select * from Account where AccountType = 'Bank'")
    ibans = {a["iban"] for a in world.qonto["organization"]["bank_accounts"]}
    assert banks and all(b["Description"].removeprefix("IBAN ") in ibans for b in banks)
    numbers = {a["account_number"] for a in world.qonto["organization"]["bank_accounts"]}
    assert {b["AcctNum"] for b in banks} == numbers
    bill_id = next(
        t["qbo_id"] for t in world.truth if t["qbo_entity"] == "Bill" and t["attachable_id"]
    )
    rows = api.rows(
        "select * from Attachable where AttachableRef.EntityRef.Type = 'Bill' "
        f"and AttachableRef.EntityRef.value = '{bill_id}'"
    )
    assert len(rows) == 1
    assert rows[0]["ContentType"] == "application/pdf" and rows[0]["Size"] > 500
    assert rows[0]["FileAccessUri"].endswith(f"/download/{rows[0]['Id']}")


def test_vendor_tax_identifier_is_masked_to_last_four(api, world):
    for vendor in api.rows("select * from Vendor maxresults 1000"):
        real = world.vendor_truth[vendor["Id"]]["vat_number"]
        assert vendor["TaxIdentifier"].endswith(real[-4:])
        assert set(vendor["TaxIdentifier"][:-4]) == {"X"}


@pytest.mark.parametrize(
    "statement",
    [
        "select * from Bill where TotalAmt > 1 or TotalAmt < 2",
        "select * from Bill where",
        "select * from Nope",
        "select * from Bill where NotAField = 'x'",
        "select * from Vendor where Active = 'true'",
        "select * from Bill where DocNumber = 'unterminated",
        "drop table Bill",
        "select * from Bill startposition 0",
        "select * from Bill; delete from Bill",
        "select * from Bill where Id = 1 = 2",
    ],
)
def test_bad_queries_are_validation_faults(api, statement):
    response = api.query(statement)
    assert response.status_code == 400, response.text
    fault = response.json()["Fault"]
    assert fault["type"] == "ValidationFault"
    assert fault["Error"][0]["Message"]


def test_tax_codes_rates_company_and_preferences(api):
    rates = {rate["RateValue"] for rate in api.rows("select * from TaxRate")}
    assert {20, 10, 5.5, 0} <= rates
    assert api.rows("select * from TaxCode")
    info = api.get(f"companyinfo/{api.realm}").json()["CompanyInfo"]
    assert info["Country"] == "FR" and info["Id"] == api.realm
    prefs = api.get("preferences").json()["Preferences"]
    assert prefs["CurrencyPrefs"] == {
        "MultiCurrencyEnabled": True,
        "HomeCurrency": {"value": "EUR"},
    }
    currencies = {
        v["CurrencyRef"]["value"] for v in api.rows("select * from Vendor maxresults 1000")
    }
    assert {"EUR", "USD", "GBP"} <= currencies


def test_timestamps_are_pacific_with_offsets(api):
    for bill in api.rows("select * from Bill maxresults 20"):
        stamp = bill["MetaData"]["LastUpdatedTime"]
        assert stamp[-6:] in ("-08:00", "-07:00")


# ---- read by id, XML ---------------------------------------------------------------------


def test_read_by_id_and_object_not_found(api, world):
    bill = world.quickbooks["entities"]["Bill"][0]
    body = api.get(f"bill/{bill['Id']}").json()
    assert body["Bill"]["Id"] == bill["Id"] and "time" in body
    missing = api.get("bill/999999")
    assert missing.status_code == 400
    assert missing.json()["Fault"]["Error"][0]["code"] == "610"


def test_without_accept_json_the_answer_is_xml(api):
    response = api.get(
        "query", params={"query": "select * from Vendor maxresults 1"}, headers={"Accept": "*/*"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    assert response.text.count("<IntuitResponse") == 1 and "<Vendor " in response.text
    fault = api.get("query", params={"query": "select"}, headers={"Accept": "application/xml"})
    assert fault.status_code == 400 and '<Fault type="ValidationFault">' in fault.text


def test_writes_are_refused(api):
    response = requests.post(
        f"{api.base}/v3/company/{api.realm}/bill",
        json={"Line": []},
        headers=api.headers,
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["Fault"]["Error"][0]["code"] == "500"


# ---- attachments -------------------------------------------------------------------------


def test_download_returns_a_temporary_url_serving_the_pdf_without_auth(api, world):
    truth = next(t for t in world.truth if t["qbo_entity"] == "Bill" and t["attachable_id"])
    response = api.get(f"download/{truth['attachable_id']}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    url = response.text.strip()
    assert url.startswith(api.base + "/_files/")
    pdf = requests.get(url, timeout=10)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    legal_name = world.vendor_truth[truth["vendor_id"]]["legal_name"]
    assert text.splitlines()[0] == legal_name
    assert f"Invoice number: {truth['doc_number']}" in text
    assert "VAT number:" in text and "Total:" in text and "Due date:" in text
    attachable = api.get(f"attachable/{truth['attachable_id']}").json()["Attachable"]
    assert attachable["Size"] == len(pdf.content)


def test_temporary_url_expires_after_15_minutes(sandbox, api, world):
    truth = next(t for t in world.truth if t["attachable_id"])
    url = api.get(f"download/{truth['attachable_id']}").text
    control(sandbox.base_url, "clock", {"advance": 14 * 60})
    assert requests.get(url, timeout=10).status_code == 200
    control(sandbox.base_url, "clock", {"advance": 2 * 60})
    expired = requests.get(url, timeout=10)
    assert expired.status_code == 403 and b"expired" in expired.content
    tampered = url[:-3] + ("000" if not url.endswith("000") else "111")
    assert requests.get(tampered, timeout=10).status_code == 403


# ---- CDC ---------------------------------------------------------------------------------


def test_cdc_returns_changes_and_deletes_in_the_documented_envelope(sandbox, api, world):
    since = (
        (datetime.now(UTC) - timedelta(seconds=5)).astimezone(PACIFIC).isoformat(timespec="seconds")
    )
    bills = world.quickbooks["entities"]["Bill"]
    control(
        sandbox.base_url,
        "mutate",
        {
            "action": "edit",
            "entity": "Bill",
            "id": bills[0]["Id"],
            "set": {"PrivateNote": "changed"},
        },
    )
    control(
        sandbox.base_url, "mutate", {"action": "delete", "entity": "Bill", "id": bills[1]["Id"]}
    )
    added = control(sandbox.base_url, "mutate", {"action": "add", "entity": "Bill", "count": 2})
    response = api.get("cdc", params={"entities": "Bill,Vendor", "changedSince": since})
    assert response.status_code == 200, response.text
    body = response.json()
    groups = body["CDCResponse"][0]["QueryResponse"]
    assert len(groups) == 2 and groups[1] == {}
    changed = {row["Id"]: row for row in groups[0]["Bill"]}
    assert groups[0]["maxResults"] == len(changed) == 4
    assert changed[bills[0]["Id"]]["PrivateNote"] == "changed"
    assert changed[bills[0]["Id"]]["SyncToken"] == str(int(bills[0]["SyncToken"]) + 1)
    assert changed[bills[1]["Id"]] == {
        "domain": "QBO",
        "status": "Deleted",
        "Id": bills[1]["Id"],
        "MetaData": {"LastUpdatedTime": changed[bills[1]["Id"]]["MetaData"]["LastUpdatedTime"]},
    }
    assert set(added["ids"]) <= set(changed)
    assert not api.rows(f"select * from Bill where Id = '{bills[1]['Id']}'")


def test_cdc_refuses_more_than_30_days_and_tax_entities(api):
    old = (datetime.now(UTC) - timedelta(days=31)).isoformat(timespec="seconds")
    response = api.get("cdc", params={"entities": "Bill", "changedSince": old})
    assert response.status_code == 400 and response.json()["Fault"]["type"] == "ValidationFault"
    recent = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")
    for entity in ("TaxCode", "TaxRate"):
        refused = api.get("cdc", params={"entities": entity, "changedSince": recent})
        assert refused.status_code == 400


def test_cdc_caps_at_1000_objects_in_total(sandbox, api):
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat(timespec="seconds")
    control(sandbox.base_url, "mutate", {"action": "add", "entity": "Bill", "count": 700})
    control(sandbox.base_url, "mutate", {"action": "add", "entity": "Purchase", "count": 500})
    body = api.get("cdc", params={"entities": "Bill,Purchase", "changedSince": since}).json()
    groups = body["CDCResponse"][0]["QueryResponse"]
    total = sum(group.get("maxResults", 0) for group in groups)
    assert total == 1000
    assert groups[0]["maxResults"] >= 700


def test_empty_cdc(api):
    since = datetime.now(UTC).isoformat(timespec="seconds")
    body = api.get("cdc", params={"entities": "Bill", "changedSince": since}).json()
    assert body["CDCResponse"] == [{"QueryResponse": [{}]}]


# ---- throttling and faults ---------------------------------------------------------------


def test_429_after_10_requests_in_flight(sandbox, api):
    control(sandbox.base_url, "faults", {"latency_ms": 600})
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        status = api.query("select * from TaxCode").status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(14)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 10
    assert statuses.count(429) == 4


def test_429_throttle_exceeded_after_500_requests_a_minute(sandbox, api):
    session = requests.Session()
    url = f"{api.base}/v3/company/{api.realm}/query"
    params = {"query": "select count(*) from TaxCode"}
    statuses = [
        session.get(url, params=params, headers=api.headers, timeout=10).status_code
        for _ in range(501)
    ]
    assert statuses[:500] == [200] * 500
    assert statuses[500] == 429
    fault = session.get(url, params=params, headers=api.headers, timeout=10).json()["Fault"]
    assert fault["type"] == "SERVICE" and fault["Error"][0]["code"] == "3001"
    control(sandbox.base_url, "clock", {"advance": 61})
    assert session.get(url, params=params, headers=api.headers, timeout=10).status_code == 200


def test_injected_faults_429_with_retry_after_then_5xx_then_normal(sandbox, api):
    control(sandbox.base_url, "faults", {"queue": ["429", "5xx"], "retry_after_seconds": 7})
    first = api.query("select * from TaxCode")
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    assert api.query("select * from TaxCode").status_code == 503
    assert api.query("select * from TaxCode").status_code == 200


def test_injected_timeout_answers_after_the_delay(sandbox, api):
    control(sandbox.base_url, "faults", {"rate_timeout": 1.0, "timeout_seconds": 0.5})
    with pytest.raises(requests.Timeout):
        requests.get(
            f"{api.base}/v3/company/{api.realm}/preferences", headers=api.headers, timeout=0.2
        )
    control(sandbox.base_url, "faults", {"clear": True})
    assert api.get("preferences").status_code == 200


def test_random_fault_rates_are_seeded(sandbox, api):
    control(sandbox.base_url, "faults", {"rate_5xx": 0.5, "seed": 3})
    first = [api.query("select * from TaxCode").status_code for _ in range(12)]
    control(sandbox.base_url, "faults", {"seed": 3})
    second = [api.query("select * from TaxCode").status_code for _ in range(12)]
    assert first == second and 503 in first and 200 in first


# ---- control API -------------------------------------------------------------------------


def test_stats_count_calls_per_endpoint_and_method(sandbox, api):
    control(sandbox.base_url, "stats", {"reset": True})
    api.query("select * from Bill")
    api.query("select * from Bill", method="POST")
    api.get("preferences")
    stats = control(sandbox.base_url, "stats")
    assert stats["calls"] == {"GET query": 1, "POST query": 1, "GET preferences": 1}
    assert stats["total"] == 3
    assert {r["method"] for r in stats["requests"]} == {"GET", "POST"}


def test_state_reset_and_mutate(sandbox, api, world):
    state = control(sandbox.base_url, "state")
    assert state["records"]["Bill"] == len(world.quickbooks["entities"]["Bill"])
    bill = world.quickbooks["entities"]["Bill"][3]
    control(sandbox.base_url, "mutate", {"action": "delete", "entity": "Bill", "id": bill["Id"]})
    control(sandbox.base_url, "mutate", {"action": "add", "entity": "Bill", "count": 3})
    state = control(sandbox.base_url, "state")
    assert state["records"]["Bill"] == len(world.quickbooks["entities"]["Bill"]) + 2
    assert state["deleted"]["Bill"] == 1
    assert api.get(f"bill/{bill['Id']}").status_code == 400
    control(sandbox.base_url, "reset", {})
    assert control(sandbox.base_url, "state")["records"]["Bill"] == len(
        world.quickbooks["entities"]["Bill"]
    )
    assert api.get(f"bill/{bill['Id']}").status_code == 200


def test_added_bills_have_their_own_pdf(sandbox, api):
    added = control(sandbox.base_url, "mutate", {"action": "add", "entity": "Bill", "count": 5})
    attached = 0
    for bill_id in added["ids"]:
        rows = api.rows(
            f"select * from Attachable where AttachableRef.EntityRef.value = '{bill_id}'"
        )
        for row in rows:
            bill = api.get(f"bill/{bill_id}").json()["Bill"]
            pdf = requests.get(row["TempDownloadUri"], timeout=10).content
            assert bill["DocNumber"] in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
            attached += 1
    assert attached >= 1


def test_mutate_rejects_unknown_records(sandbox):
    response = requests.post(
        f"{sandbox.base_url}/_sandbox/mutate",
        json={"action": "edit", "entity": "Bill", "id": "nope"},
        timeout=10,
    )
    assert response.status_code == 404


def test_state_survives_a_restart_with_a_data_dir(world, tmp_path):
    app = QuickBooksSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, data_dir=tmp_path)
    app.seed(world.quickbooks)
    running = serve_in_thread(app)
    api = Api(running.base_url)
    bill = world.quickbooks["entities"]["Bill"][0]
    control(
        running.base_url,
        "mutate",
        {"action": "edit", "entity": "Bill", "id": bill["Id"], "set": {"PrivateNote": "persisted"}},
    )
    running.stop()

    again = QuickBooksSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, data_dir=tmp_path)
    assert again.has_state()
    running = serve_in_thread(again)
    try:
        api.base = running.base_url
        assert api.get(f"bill/{bill['Id']}").json()["Bill"]["PrivateNote"] == "persisted"
        assert refresh(running.base_url, api.tokens["refresh_token"]).status_code == 200
    finally:
        running.stop()


# ---- hostile input -----------------------------------------------------------------------


def test_hostile_input_never_yields_a_traceback(sandbox, api):
    base = f"{api.base}/v3/company/{api.realm}"
    attempts = [
        requests.post(
            f"{base}/query",
            data=b"\xff\xfe\x00select",
            headers={**api.headers, "Content-Type": "application/text"},
            timeout=10,
        ),
        requests.post(
            f"{base}/query",
            data=b"select * from Bill " + b"x" * (2 * 1024 * 1024),
            headers={**api.headers, "Content-Type": "application/text"},
            timeout=30,
        ),
        requests.get(
            f"{base}/query",
            params={"query": "select * from Bill where " + "Id = '1' and " * 2000 + "Id = '1'"},
            headers=api.headers,
            timeout=30,
        ),
        requests.get(
            f"{base}/cdc",
            params={"entities": "Bill", "changedSince": "yesterday"},
            headers=api.headers,
            timeout=10,
        ),
        requests.get(f"{base}/cdc", headers=api.headers, timeout=10),
        requests.get(f"{base}/bill/%00%ff", headers=api.headers, timeout=10),
        requests.get(f"{base}/nothing/here/at/all", headers=api.headers, timeout=10),
        requests.get(f"{api.base}/v3/company/", headers=api.headers, timeout=10),
        requests.get(f"{api.base}/_files/garbage", timeout=10),
        requests.post(
            f"{api.base}/oauth2/v1/tokens/bearer",
            headers={"Authorization": "Basic %%%"},
            data=b"\xff",
            timeout=10,
        ),
        requests.post(
            f"{api.base}/v2/oauth2/tokens/revoke",
            auth=(CLIENT_ID, CLIENT_SECRET),
            data=b"{not json",
            timeout=10,
        ),
        requests.post(f"{api.base}/_sandbox/mutate", data=b"[1,2", timeout=10),
        requests.post(f"{api.base}/_sandbox/faults", json={"rate_429": 7}, timeout=10),
        requests.get(
            f"{api.base}/connect/oauth2", params={"redirect_uri": "http://[::1"}, timeout=10
        ),
    ]
    for response in attempts:
        assert response.status_code < 500, (response.request.url[:80], response.text[:200])
        assert "Traceback" not in response.text
        assert "intuit_tid" in response.headers


# ---- unmodified Intuit / community clients ----------------------------------------------


def test_intuit_oauth_and_python_quickbooks_work_with_only_base_urls_changed(
    sandbox, world, monkeypatch
):
    from intuitlib.client import AuthClient
    from intuitlib.enums import Scopes
    from quickbooks import QuickBooks
    from quickbooks.cdc import change_data_capture
    from quickbooks.objects.attachable import Attachable
    from quickbooks.objects.bill import Bill
    from quickbooks.objects.vendor import Vendor

    # requests-oauthlib refuses plain http unless told this is a local test server.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    base = sandbox.base_url
    auth_client = AuthClient(
        CLIENT_ID, CLIENT_SECRET, REDIRECT, f"{base}/.well-known/openid_sandbox_configuration/"
    )
    consent = requests.get(auth_client.get_authorization_url([Scopes.ACCOUNTING]), timeout=10)
    assert consent.status_code == 200
    params = callback_params(authorize(base, state=auth_client.state_token))
    assert params["state"] == auth_client.state_token
    auth_client.get_bearer_token(params["code"], realm_id=params["realmId"])
    first_refresh = auth_client.refresh_token
    auth_client.refresh()
    assert auth_client.refresh_token != first_refresh

    qb = QuickBooks(
        auth_client=auth_client,
        refresh_token=auth_client.refresh_token,
        company_id=params["realmId"],
        minorversion=75,
    )
    qb.api_url_v3 = qb.sandbox_api_url_v3 = f"{base}/v3"

    bills = Bill.all(max_results=1000, qb=qb)
    assert len(bills) == len(world.quickbooks["entities"]["Bill"])
    assert Bill.count(qb=qb) == len(bills)
    one = Bill.get(bills[0].Id, qb=qb)
    assert one.DocNumber == bills[0].DocNumber
    figma = Vendor.filter(DisplayName="Figma", qb=qb)
    assert figma[0].CompanyName == "Figma, Inc."
    assert Vendor.choose(["Figma", "Notion"], field="DisplayName", qb=qb)
    attachables = Attachable.where(f"AttachableRef.EntityRef.value = '{one.Id}'", qb=qb)
    assert all(a.ContentType == "application/pdf" for a in attachables)
    since = (datetime.now(UTC) - timedelta(days=29)).astimezone(PACIFIC)
    changes = change_data_capture([Bill, Vendor], since.isoformat(timespec="seconds"), qb=qb)
    assert hasattr(changes, "Bill") or hasattr(changes, "Vendor") or changes is not None

    auth_client.revoke(token=auth_client.refresh_token)
    stats = control(base, "stats")
    methods = {
        key.split()[0] for key in stats["calls"] if "token" not in key and "revoke" not in key
    }
    assert methods <= {"GET", "POST"}
    assert all(
        key in ("POST query", "POST token", "POST revoke")
        for key in stats["calls"]
        if key.startswith("POST")
    )
