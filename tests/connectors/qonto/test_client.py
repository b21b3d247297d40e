"""The Qonto client against canned answers (responses): shapes, errors, paging, limits."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.qonto import client
from connectors.qonto.sync import invoice_fields, matched_transaction_ids, transaction_fields
from well.http import NO_RETRY, AuthRevoked, PermanentError, ProviderError, RateLimited

BASE = "https://thirdparty.qonto.test"
SECRET = "ory_at_SENTINEL-do-not-log"


def api(**options) -> client.QontoApi:
    options.setdefault("policy", NO_RETRY)
    return client.QontoApi(base_url=BASE, token=lambda rejected: SECRET, **options)


@responses.activate
def test_errors_carry_qontos_code_detail_and_trace_id_but_never_the_token():
    responses.get(
        f"{BASE}/v2/supplier_invoices/x",
        status=404,
        json={
            "errors": [{"code": "not_found", "detail": "Supplier invoice not found."}],
            "trace_id": "trace-42",
        },
    )
    with pytest.raises(PermanentError) as caught:
        client.supplier_invoice(api(), "x")
    text = str(caught.value)
    assert "not_found: Supplier invoice not found." in text
    assert "trace-42" in text
    assert SECRET not in text


@responses.activate
def test_a_text_plain_gateway_error_is_still_a_named_error():
    responses.get(
        f"{BASE}/v2/organization",
        status=404,
        body="Not Found",
        content_type="text/plain",
        headers={"X-Tyk-Trace-Id": "tyk-1"},
    )
    with pytest.raises(PermanentError) as caught:
        client.organization(api())
    assert caught.value.provider_request_id == "tyk-1"


@responses.activate
def test_an_html_page_in_a_200_is_refused_as_a_missing_staging_token():
    responses.get(f"{BASE}/v2/organization", body="<html>OneLogin</html>", content_type="text/html")
    with pytest.raises(PermanentError, match="Staging-Token"):
        client.organization(api())


@responses.activate
def test_the_staging_token_header_is_sent_when_configured():
    responses.get(f"{BASE}/v2/organization", json={"organization": {"id": "o1"}})
    client.organization(api(staging_token="stage-1"))
    assert responses.calls[0].request.headers["X-Qonto-Staging-Token"] == "stage-1"
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {SECRET}"


@responses.activate
def test_paging_stops_when_next_page_is_missing_or_null():
    responses.get(
        f"{BASE}/v2/supplier_invoices",
        json={"supplier_invoices": [{"id": "a"}], "meta": {"next_page": 2}},
    )
    responses.get(
        f"{BASE}/v2/supplier_invoices",
        json={"supplier_invoices": [{"id": "b"}], "meta": {"current_page": 2}},
    )
    pages = list(
        client.supplier_invoices_pages(api(), updated_at_from=datetime(2026, 1, 1, tzinfo=UTC))
    )
    assert [p.items[0]["id"] for p in pages] == ["a", "b"]
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["filter[updated_at_from]"] == ["2026-01-01T00:00:00.000000Z"]


@responses.activate
def test_transactions_ask_for_completed_and_pending_with_attachments():
    responses.get(f"{BASE}/v2/transactions", json={"transactions": [], "meta": {}})
    list(client.transactions_pages(api(), bank_account_id="acc-1"))
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["status[]"] == ["completed", "pending", "declined"]
    assert query["includes[]"] == ["attachments"]
    assert query["bank_account_id"] == ["acc-1"]


@responses.activate
def test_a_bulk_upload_sends_each_items_parts_in_order_and_reads_item_errors():
    responses.post(
        f"{BASE}/v2/supplier_invoices/bulk",
        json={
            "supplier_invoices": [{"id": "i1", "file_name": "a.pdf"}],
            "errors": [
                {
                    "code": "invalid",
                    "detail": "file is larger than 10 MB.",
                    "source": {"pointer": "/supplier_invoices/1/file"},
                }
            ],
        },
    )
    items = [
        client.UploadItem(idempotency_key="k1", file_name="a.pdf", content=b"%PDF-1.4 a"),
        client.UploadItem(idempotency_key="k2", file_name="b.pdf", content=b"%PDF-1.4 b"),
    ]
    result = client.supplier_invoices_bulk(api(), items)
    body = responses.calls[0].request.body
    assert body.index(b"a.pdf") < body.index(b"k1") < body.index(b"b.pdf") < body.index(b"k2")
    assert b'name="source"\r\n\r\nintegration' in body
    assert result.invoices[0]["id"] == "i1"
    assert result.errors[0].pointer == "/supplier_invoices/1/file"


def test_a_bulk_upload_refuses_more_than_twenty_items():
    items = [client.UploadItem(idempotency_key="k", file_name="a.pdf", content=b"x")] * 21
    with pytest.raises(ValueError):
        client.supplier_invoices_bulk(api(), items)


@responses.activate
def test_two_401s_stop_the_calls_and_ask_for_reconnection():
    responses.get(
        f"{BASE}/v2/organization", status=401, json={"errors": [{"code": "unauthorized"}]}
    )
    refused: list = []
    qonto = client.QontoApi(
        base_url=BASE, token=lambda rejected: refused.append(rejected) or SECRET, policy=NO_RETRY
    )
    with pytest.raises(AuthRevoked):
        client.organization(qonto)
    with pytest.raises(AuthRevoked):
        client.organization(qonto)
    assert len(responses.calls) == 2
    assert refused == [None, SECRET]  # the refused token was handed back for a refresh


@responses.activate
def test_429_is_a_rate_limit_with_its_retry_after():
    responses.get(
        f"{BASE}/v2/organization",
        status=429,
        headers={"Retry-After": "7"},
        json={"errors": [{"code": "too_many_requests"}]},
    )
    with pytest.raises(RateLimited) as caught:
        client.organization(api())
    assert caught.value.retry_after == 7


@responses.activate
def test_mark_as_paid_accepts_the_unwrapped_invoice_and_sends_the_date():
    responses.post(
        f"{BASE}/v2/supplier_invoices/i1/mark_as_paid", json={"id": "i1", "status": "paid"}
    )
    invoice = client.supplier_invoice_mark_paid(api(), "i1", payment_date=date(2026, 3, 14))
    assert invoice["status"] == "paid"
    assert b'"payment_date": "2026-03-14"' in responses.calls[0].request.body


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [{"id": "i1", "status": "to_pay"}, {"supplier_invoice": {"id": "i1", "status": "to_pay"}}],
)
def test_unmark_as_paid_posts_no_body_and_accepts_both_shapes(answer):
    responses.post(f"{BASE}/v2/supplier_invoices/i1/unmark_as_paid", json=answer)
    invoice = client.supplier_invoice_unmark_paid(api(), "i1")
    assert invoice == {"id": "i1", "status": "to_pay"}
    assert not responses.calls[0].request.body


@responses.activate
def test_unmark_as_paid_is_not_retried_after_a_server_error():
    responses.post(f"{BASE}/v2/supplier_invoices/i1/unmark_as_paid", status=503, json={})
    retrying = api(policy=client.http.DEFAULT_POLICY, sleep=lambda seconds: None)
    with pytest.raises(ProviderError) as caught:
        client.supplier_invoice_unmark_paid(retrying, "i1")
    assert not caught.value.permanent
    assert len(responses.calls) == 1


@responses.activate
def test_an_unmark_answer_without_an_invoice_is_a_permanent_error():
    responses.post(f"{BASE}/v2/supplier_invoices/i1/unmark_as_paid", json={"errors": []})
    with pytest.raises(PermanentError, match="unmark_as_paid"):
        client.supplier_invoice_unmark_paid(api(), "i1")


@pytest.mark.parametrize(
    ("invoice", "expected"),
    [
        ({"matched_transactions": ["t-1", "t-2"]}, ["t-1", "t-2"]),
        ({"matched_transactions": [{"transaction_id": "t-3", "subject_type": "x"}]}, ["t-3"]),
        ({"matched_transactions_ids": ["t-4"], "matched_transactions": []}, ["t-4"]),
        ({}, []),
    ],
)
def test_both_shapes_of_matched_transactions_are_read(invoice, expected):
    assert matched_transaction_ids(invoice) == expected


def test_a_credit_note_amount_is_negative_and_a_debit_transaction_too():
    fields = invoice_fields(
        {"total_amount": {"value": "35.00", "currency": "EUR"}, "is_credit_note": True}
    )
    assert str(fields["amount"]) == "-35.00" and fields["currency"] == "EUR"
    debit = transaction_fields(
        {
            "amount_cents": 1234,
            "side": "debit",
            "currency": "EUR",
            "settled_at": "2026-02-01T10:00:00Z",
        }
    )
    assert str(debit["amount"]) == "-12.34" and debit["date"] == date(2026, 2, 1)


def test_malformed_amounts_become_empty_not_errors():
    fields = invoice_fields({"total_amount": {"value": "lots", "currency": "€€"}})
    assert fields["amount"] is None and fields["currency"] == ""
