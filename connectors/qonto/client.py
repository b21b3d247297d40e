"""Qonto Business API: one function per endpoint, through well.http (no database).

Reference: shared/reference/qonto-api.md (sections cited at each function). Errors come in the
JSON:API envelope `{"errors": [{code, detail, source}], "trace_id"}` (§7.1) and are raised as the
named errors of well.http with Qonto's code, detail and trace id; never a token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import requests

from well import http
from well.http import (
    AuthExpired,
    AuthRevoked,
    PermanentError,
    ProviderError,
    RateLimited,
    TransientError,
)

logger = logging.getLogger("well.connectors.qonto")

PER_PAGE = 100  # §7.2: the most a list answers
MAX_BULK_ITEMS = 20  # §4.2
MAX_BULK_BYTES = 15 * 1024 * 1024  # §4.2: whole request
MAX_FILE_BYTES = 10 * 1024 * 1024  # §4.2: one file
# Multipart framing per item (headers, boundary, idempotency key part), counted generously.
ITEM_OVERHEAD_BYTES = 1024
MAX_401_PER_SYNC = 2  # reliability #12: Qonto throttles an IP after 200 401s an hour (§7.3)

TokenProvider = Callable[[str | None], str]
"""Returns a valid access token; given the token Qonto just refused, forces a refresh."""


@dataclass
class QontoApi:
    """Where and how to call one organization's API (no database, no secrets in repr)."""

    base_url: str
    token: TokenProvider = field(repr=False)
    staging_token: str = field(default="", repr=False)
    session: requests.Session = field(default_factory=http.new_session, repr=False)
    on_attempt: http.AttemptHook | None = field(default=None, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    policy: http.RetryPolicy = http.DEFAULT_POLICY
    timeout: float | None = None
    # Requests answered 401 through this object; one object lives for one sync or one batch.
    unauthorized: int = 0

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"


@dataclass(frozen=True)
class ApiErrorItem:
    code: str
    detail: str
    pointer: str = ""


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next_page: int | None


@dataclass(frozen=True)
class UploadItem:
    """One file of a bulk upload, with its idempotency key."""

    idempotency_key: str
    file_name: str
    content: bytes = field(repr=False)
    content_type: str = "application/pdf"


@dataclass(frozen=True)
class BulkResult:
    """A bulk answer: the invoices created (in order) and the per-item errors (§4.3)."""

    invoices: list[dict]
    errors: list[ApiErrorItem]


# --- Errors ----------------------------------------------------------------------------------


def parse_errors(response: requests.Response | None) -> tuple[list[ApiErrorItem], str]:
    """Qonto's error items and trace id from any body (JSON envelope, text, HTML)."""
    if response is None:
        return [], ""
    trace = response.headers.get("X-Tyk-Trace-Id") or response.headers.get("x-request-id") or ""
    try:
        body = response.json()
    except ValueError:
        return [], trace[:200]
    items: list[ApiErrorItem] = []
    if isinstance(body, dict):
        trace = str(body.get("trace_id") or trace)
        raw_errors = body.get("errors")  # a list per §7.1; anything else holds no item
        for raw in raw_errors if isinstance(raw_errors, list) else []:
            if isinstance(raw, dict):
                source = raw.get("source") if isinstance(raw.get("source"), dict) else {}
                items.append(
                    ApiErrorItem(
                        code=str(raw.get("code") or "")[:60],
                        detail=str(raw.get("detail") or "")[:500],
                        pointer=str(source.get("pointer") or source.get("parameter") or ""),
                    )
                )
        if not items and isinstance(body.get("error"), str):
            items.append(
                ApiErrorItem(code=body["error"][:60], detail=str(body.get("error_description", "")))
            )
    return items, trace[:200]


def describe(items: Sequence[ApiErrorItem]) -> str:
    return "; ".join(f"{i.code}: {i.detail}" if i.detail else i.code for i in items)[:1000]


def _enriched(exc: ProviderError) -> ProviderError:
    """The same kind of error, its message carrying Qonto's code, detail and trace id."""
    items, trace = parse_errors(exc.response)
    message = exc.message
    if items:
        message = f"{message}: {describe(items)}"
    common: dict[str, Any] = {
        "status": exc.status,
        "provider_request_id": trace or exc.provider_request_id,
        "response": exc.response,
    }
    if exc.status == 403 and any("scope" in i.detail for i in items):
        return PermanentError(f"{message} (reconnect Qonto to grant the scope)", **common)
    if isinstance(exc, RateLimited):
        return RateLimited(message, retry_after=exc.retry_after, **common)
    return type(exc)(message, permanent=exc.permanent, **common)


def _call(
    api: QontoApi,
    method: str,
    path: str,
    *,
    params: Any = None,
    json_body: Any = None,
    files: Any = None,
    data: Any = None,
    retry_safe: bool | None = None,
    headers: dict | None = None,
) -> requests.Response:
    """One authorized request: refresh once on a 401, and at most two 401s per QontoApi."""
    rejected: str | None = None
    while True:
        if api.unauthorized >= MAX_401_PER_SYNC:
            raise AuthRevoked(
                "Qonto refused Well's access token twice; reconnect Qonto. No further call made."
            )
        token = api.token(rejected)
        send_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if api.staging_token:
            # §1: every sandbox request, token endpoint included, carries the staging token.
            send_headers["X-Qonto-Staging-Token"] = api.staging_token
        send_headers.update(headers or {})
        try:
            response = http.request(
                api.session,
                method,
                api.url(path),
                retry_safe=retry_safe,
                headers=send_headers,
                params=params,
                json=json_body,
                files=files,
                data=data,
                policy=api.policy,
                on_attempt=api.on_attempt,
                sleep=api.sleep,
                timeout=api.timeout,
            )
        except AuthExpired as exc:
            api.unauthorized += 1
            rejected = token
            if api.unauthorized >= MAX_401_PER_SYNC:
                raise AuthRevoked(
                    "Qonto refused Well's access token twice (401); reconnect Qonto.",
                    status=401,
                    provider_request_id=parse_errors(exc.response)[1] or None,
                ) from None
            continue
        except ProviderError as exc:
            raise _enriched(exc) from None
        content_type = response.headers.get("Content-Type", "")
        if response.status_code != 204 and "json" not in content_type:
            # §1: without the staging token the sandbox answers its OneLogin page in a 200.
            raise PermanentError(
                f"{method} {http.redact_url(response.url)} answered {content_type or 'no type'}, "
                "not JSON (a missing X-Qonto-Staging-Token?)",
                status=response.status_code,
            )
        return response


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        raise TransientError("Qonto answered a body that is not JSON") from None
    if not isinstance(body, dict):
        raise PermanentError("Qonto answered JSON that is not an object")
    return body


def _page(body: dict, key: str) -> Page:
    items = body.get(key)
    if not isinstance(items, list):
        raise PermanentError(f"Qonto's answer has no {key} list")
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    # §7.2: `next_page` is null on the last page, and some endpoints omit it: missing = last.
    raw_next = meta.get("next_page")
    try:
        next_page = int(raw_next) if raw_next not in (None, "") else None
    except (TypeError, ValueError):
        next_page = None
    return Page(items=[i for i in items if isinstance(i, dict)], next_page=next_page)


def qonto_time(moment: datetime) -> str:
    """RFC 3339 in UTC, as the `*_from` filters take it."""
    if moment.tzinfo is None:
        raise ValueError("Qonto timestamps must be aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- Organization and accounts ---------------------------------------------------------------


def organization(api: QontoApi) -> dict:
    """The organization with its bank accounts.

    # Reference (§5.1): https://docs.qonto.com/api-reference/business-api/accounts-organizations/organizations/retrieve-the-authenticated-organization-and-list-bank-accounts
    """
    body = _json(_call(api, "GET", "/v2/organization"))
    org = body.get("organization")
    if not isinstance(org, dict) or not org.get("id"):
        raise PermanentError("Qonto's organization answer has no organization id")
    return org


# --- Supplier invoices -----------------------------------------------------------------------


def supplier_invoices_page(
    api: QontoApi,
    *,
    page: int = 1,
    updated_at_from: datetime | None = None,
    created_at_from: datetime | None = None,
    query: str | None = None,
    attachment_ids: Sequence[str] = (),
    sort_by: str = "updated_at:asc",
    per_page: int = PER_PAGE,
) -> Page:
    """One page of supplier invoices.

    # Reference (§4.6): https://docs.qonto.com/api-reference/business-api/expense-management/supplier-invoices/list-supplier-invoices
    """
    params: list[tuple[str, Any]] = [("page", page), ("per_page", per_page), ("sort_by", sort_by)]
    if updated_at_from is not None:
        params.append(("filter[updated_at_from]", qonto_time(updated_at_from)))
    if created_at_from is not None:
        params.append(("filter[created_at_from]", qonto_time(created_at_from)))
    if query:
        params.append(("query", query))
    # §4.6: find the invoices created from given attachments (the bulk read-back, one call).
    params.extend(("filter[attachment_id][]", attachment_id) for attachment_id in attachment_ids)
    return _page(
        _json(_call(api, "GET", "/v2/supplier_invoices", params=params)), "supplier_invoices"
    )


def supplier_invoices_pages(api: QontoApi, **filters: Any) -> Iterator[Page]:
    """Every page, following `meta.next_page` until it is null or missing (§7.2)."""
    page_number: int | None = 1
    seen: set[int] = set()
    while page_number is not None and page_number not in seen:
        seen.add(page_number)
        page = supplier_invoices_page(api, page=page_number, **filters)
        yield page
        page_number = page.next_page


def supplier_invoice(api: QontoApi, invoice_id: str) -> dict:
    """One supplier invoice (the read-back that verifies an upload).

    # Reference (§4.1): https://docs.qonto.com/api-reference/business-api/expense-management/supplier-invoices/retrieve-a-supplier-invoice
    """
    body = _json(_call(api, "GET", f"/v2/supplier_invoices/{invoice_id}"))
    invoice = body.get("supplier_invoice")
    if not isinstance(invoice, dict) or not invoice.get("id"):
        raise PermanentError("Qonto's supplier invoice answer has no id")
    return invoice


def supplier_invoices_bulk(
    api: QontoApi, items: Sequence[UploadItem], *, meta: dict | None = None
) -> BulkResult:
    """Upload up to 20 files; a 200 may still carry per-item errors.

    # Reference (§4.2-§4.4): https://docs.qonto.com/api-reference/business-api/expense-management/supplier-invoices/create-supplier-invoices

    Retry-safe: every item carries its own idempotency key, so a resend after a timeout
    replays Qonto's first answer for 30 minutes instead of creating again (§7.4).
    """
    if not items or len(items) > MAX_BULK_ITEMS:
        raise ValueError(f"a bulk upload holds 1 to {MAX_BULK_ITEMS} items")
    if sum(len(i.content) + ITEM_OVERHEAD_BYTES for i in items) > MAX_BULK_BYTES:
        raise ValueError("a bulk upload is at most 15 MB")
    # §4.2: Rails-style array of hashes; each item's parts consecutive, as a list of tuples.
    files: list[tuple[str, Any]] = []
    for item in items:
        files.append(
            ("supplier_invoices[][file]", (item.file_name, item.content, item.content_type))
        )
        files.append(("supplier_invoices[][idempotency_key]", (None, item.idempotency_key)))
    files.append(("source", (None, "integration")))
    if meta:
        # `meta` is optional and the docs only show example values ("dropbox", "grover"), with
        # nothing saying any value is accepted: sent only when configured (QONTO_UPLOAD_META).
        # https://docs.qonto.com/api-reference/business-api/expense-management/supplier-invoices/create-supplier-invoices
        files.append(("meta", (None, json.dumps(meta))))
    response = _call(api, "POST", "/v2/supplier_invoices/bulk", files=files, retry_safe=True)
    body = _json(response)
    invoices = body.get("supplier_invoices")
    errors, _ = parse_errors(response)
    if not isinstance(invoices, list):
        raise PermanentError("Qonto's bulk answer has no supplier_invoices list")
    return BulkResult(invoices=[i for i in invoices if isinstance(i, dict)], errors=errors)


def supplier_invoice_mark_paid(api: QontoApi, invoice_id: str, *, payment_date: date) -> dict:
    """Mark an invoice paid on a date; idempotent on an already paid invoice.

    # Reference (§4.1): https://docs.qonto.com/api-reference/business-api/expense-management/supplier-invoices/mark-supplier-invoice-as-paid
    """
    body = _json(
        _call(
            api,
            "POST",
            f"/v2/supplier_invoices/{invoice_id}/mark_as_paid",
            json_body={"supplier_invoice": {"payment_date": payment_date.isoformat()}},
            retry_safe=True,
        )
    )
    # §4.1: the documented example answers the invoice without a wrapper; accept both.
    invoice = body.get("supplier_invoice", body)
    if not isinstance(invoice, dict) or not invoice.get("id"):
        raise PermanentError("Qonto's mark_as_paid answer has no invoice")
    return invoice


def supplier_invoice_unmark_paid(api: QontoApi, invoice_id: str) -> dict:
    """Undo mark_as_paid: Qonto puts the invoice back to its status before payment.

    Not idempotent (a second call on an unpaid invoice is a 400), so never retried blindly: the
    caller reads the invoice first when an earlier attempt's outcome is unknown.

    # Reference (§4.1): https://docs.qonto.com/api-reference/business-api/expense-management/supplier-invoices/unmark-supplier-invoice-as-paid
    """
    body = _json(
        _call(api, "POST", f"/v2/supplier_invoices/{invoice_id}/unmark_as_paid", retry_safe=False)
    )
    # §4.1: like mark_as_paid, the documented example has no wrapper; accept both.
    invoice = body.get("supplier_invoice", body)
    if not isinstance(invoice, dict) or not invoice.get("id"):
        raise PermanentError("Qonto's unmark_as_paid answer has no invoice")
    return invoice


# --- Transactions and attachments ------------------------------------------------------------


def transactions_page(
    api: QontoApi,
    *,
    bank_account_id: str,
    page: int = 1,
    updated_at_from: datetime | None = None,
    per_page: int = PER_PAGE,
) -> Page:
    """One page of one account's transactions, attachments embedded.

    Completed and pending ones, and declined ones too: a pending card payment later declined
    must be read again to leave the candidates. `declined` is one of the three documented
    statuses (TRANSACTION_STATUSES: pending, declined, completed,
    https://docs.qonto.com/api-reference/sdk-libraries/-internal-/namespaces/src/common/constants/variables/TRANSACTION_STATUSES);
    `reversed` is not documented as a filter value, so a reversed one is found by reading the
    pending ones again by id (connectors/qonto/sync.py).

    # Reference (§5.2): https://docs.qonto.com/api-reference/business-api/transactions-statements/transactions/list-transactions
    """
    params: list[tuple[str, Any]] = [
        ("bank_account_id", bank_account_id),
        ("status[]", "completed"),
        ("status[]", "pending"),
        ("status[]", "declined"),
        ("includes[]", "attachments"),
        ("sort_by", "updated_at:asc"),
        ("page", page),
        ("per_page", per_page),
    ]
    if updated_at_from is not None:
        params.append(("updated_at_from", qonto_time(updated_at_from)))
    return _page(_json(_call(api, "GET", "/v2/transactions", params=params)), "transactions")


def transactions_pages(api: QontoApi, **filters: Any) -> Iterator[Page]:
    page_number: int | None = 1
    seen: set[int] = set()
    while page_number is not None and page_number not in seen:
        seen.add(page_number)
        page = transactions_page(api, page=page_number, **filters)
        yield page
        page_number = page.next_page


def transaction(api: QontoApi, transaction_id: str, *, includes: Sequence[str] = ()) -> dict:
    """One transaction.

    # Reference (§5.2): https://docs.qonto.com/api-reference/business-api/transactions-statements/transactions/retrieve-a-transaction
    """
    params = [("includes[]", name) for name in includes] or None
    body = _json(_call(api, "GET", f"/v2/transactions/{transaction_id}", params=params))
    found = body.get("transaction")
    if not isinstance(found, dict) or not found.get("id"):
        raise PermanentError("Qonto's transaction answer has no transaction")
    return found


def attachment(api: QontoApi, attachment_id: str) -> dict:
    """An attachment with a download URL valid 30 minutes.

    # Reference (§6): https://docs.qonto.com/api-reference/business-api/transactions-statements/attachments/retrieve-an-attachment
    """
    body = _json(_call(api, "GET", f"/v2/attachments/{attachment_id}"))
    found = body.get("attachment")
    if not isinstance(found, dict):
        raise PermanentError("Qonto's attachment answer has no attachment")
    return found


def consents_delete(api: QontoApi) -> None:
    """Revoke the consent behind the token (disconnect).

    # Reference (§2.6): https://docs.qonto.com/api-reference/business-api/authentication/oauth2/revoke-oauth-consents
    """
    _call(api, "DELETE", "/v2/oauth2/consents", retry_safe=True)


def amount_of(value: Any) -> tuple[str | None, str]:
    """`{"value": "12.30", "currency": "EUR"}` (§4.5) as (value text, currency)."""
    if isinstance(value, dict):
        raw = value.get("value")
        return (str(raw) if raw not in (None, "") else None, str(value.get("currency") or ""))
    return None, ""
