"""QuickBooks Online Accounting API v3, read side only: one function per endpoint.

The client never touches the database and has no function that writes: QuickBooks has no
read-only scope (quickbooks-api.md §1.7), so read-only is a property of this module. Every call
goes through `well.http.request` (timeouts, bounded retries, Retry-After, 500/min and 10 in
flight per company). Errors come back in several shapes (§5.1, §8.8) and are raised as the named
errors of `well.http`, each saying whether it is permanent and carrying `intuit_tid`.
"""

from __future__ import annotations

import json
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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

logger = logging.getLogger("well.connectors.quickbooks")

MINOR_VERSION = "75"
PAGE_SIZE = 1000  # the most QBO returns per query page (§3.2)
CDC_MAX_OBJECTS = 1000  # the most one CDC answer holds, over every entity (§3.6)
CDC_MAX_DAYS = 30

# One limiter for the whole process, keyed by realm: 500 requests a minute, 10 in flight (§5.3).
# QuickBooks' budget per realm: 500 requests a minute, 10 in flight (quickbooks-api.md §5.3); a
# little under 500 like tap-quickbooks (495) so clock skew never trips the server's count.
LIMITER = http.RateLimiter(per_window=495, max_in_flight=10, window_seconds=60.0)

# Name-list entities are soft-deleted; a plain query hides the inactive ones (§3.5).
LIST_ENTITIES = frozenset({"Vendor", "Customer", "Account", "TaxCode", "TaxRate"})


class CdcWindowExpired(PermanentError):
    """`changedSince` is older than CDC's 30-day look-back: read the changes by query instead."""


TokenProvider = Callable[[str | None], str]
"""Returns a valid access token; given the token QuickBooks just refused, forces a refresh."""


@dataclass
class QuickBooksApi:
    """Where and how to call one company's API (no database, no secrets in repr)."""

    base_url: str
    realm_id: str
    token: TokenProvider = field(repr=False)
    session: requests.Session = field(default_factory=http.new_session, repr=False)
    on_attempt: http.AttemptHook | None = field(default=None, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    policy: http.RetryPolicy = http.DEFAULT_POLICY
    limiter: http.RateLimiter | None = field(default=LIMITER, repr=False)
    timeout: float | None = None

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/v3/company/{self.realm_id}/{path.lstrip('/')}"


@dataclass(frozen=True)
class Fault:
    """A QuickBooks error body, whatever shape it came in."""

    type: str = ""
    code: str = ""
    message: str = ""
    detail: str = ""
    element: str = ""

    def describe(self) -> str:
        text = self.message or self.type or "error"
        if self.detail and self.detail != self.message:
            text = f"{text}: {self.detail}"
        return f"{text} (code {self.code or '?'}{', ' + self.type if self.type else ''})"[:500]


@dataclass(frozen=True)
class QueryPage:
    """One page of a query answer."""

    entity: str
    records: list[dict]
    start_position: int
    time: str


@dataclass(frozen=True)
class CdcResult:
    """One change-data-capture answer: changed and deleted objects per entity."""

    time: str
    by_entity: dict[str, list[dict]]

    @property
    def total(self) -> int:
        return sum(len(records) for records in self.by_entity.values())


# --- Time and query text ---------------------------------------------------------------------


def qbo_time(moment: datetime) -> str:
    """A timestamp with an explicit offset, as QuickBooks needs in filters (§3.3, §8.5)."""
    if moment.tzinfo is None:
        raise ValueError("QuickBooks timestamps must be aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_qbo_time(text: str) -> datetime:
    """QuickBooks' `time` / `LastUpdatedTime` (always with an offset) as an aware datetime."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"QuickBooks time without an offset: {text!r}")
    return moment


def quote(value: str) -> str:
    """A query string literal; an embedded quote is escaped as \\' (§3.1)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def select_statement(
    entity: str,
    *,
    conditions: Sequence[str] = (),
    start: int = 1,
    page_size: int = PAGE_SIZE,
    order_by: str | None = "MetaData.LastUpdatedTime",
) -> str:
    """`SELECT * FROM entity WHERE ... ORDERBY ... STARTPOSITION n MAXRESULTS m`."""
    where = list(conditions)
    if entity in LIST_ENTITIES:
        where.append("Active IN (true, false)")
    text = f"SELECT * FROM {entity}"  # noqa: S608 - QuickBooks query language, not SQL
    if where:
        text += " WHERE " + " AND ".join(where)
    if order_by:
        text += f" ORDERBY {order_by}"
    return f"{text} STARTPOSITION {start} MAXRESULTS {page_size}"


# --- Error parsing ---------------------------------------------------------------------------


def _xml_local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _fault_from_xml(text: str) -> Fault | None:
    try:
        root = ET.fromstring(text)  # noqa: S314 - QuickBooks' own answers, no DTDs expanded
    except ET.ParseError:
        return None
    for node in root.iter():
        if _xml_local(node.tag) != "Fault":
            continue
        error = next((n for n in node if _xml_local(n.tag) == "Error"), None)
        values: dict[str, str] = {}
        if error is not None:
            for child in error:
                values[_xml_local(child.tag)] = (child.text or "").strip()
        return Fault(
            type=node.get("type", ""),
            code=(error.get("code", "") if error is not None else ""),
            message=values.get("Message", ""),
            detail=values.get("Detail", ""),
            element=error.get("element", "") if error is not None else "",
        )
    return None


def _fault_from_json(body: Any) -> Fault | None:
    if not isinstance(body, dict):
        return None
    fault = body.get("Fault") or body.get("fault")
    if not isinstance(fault, dict):
        # OAuth-style gateway answers: {"error": "...", "error_description": "..."}.
        if isinstance(body.get("error"), str):
            return Fault(
                type="oauth", message=body["error"], detail=str(body.get("error_description", ""))
            )
        return None
    errors = fault.get("Error") or fault.get("error") or []
    first = errors[0] if isinstance(errors, list) and errors else {}
    if not isinstance(first, dict):
        first = {}

    def pick(*names: str) -> str:
        for name in names:
            if first.get(name) not in (None, ""):
                return str(first[name])
        return ""

    return Fault(
        type=str(fault.get("type", "") or ""),
        code=pick("code", "Code"),
        message=pick("Message", "message"),
        detail=pick("Detail", "detail"),
        element=pick("element", "Element"),
    )


def parse_fault(text: str) -> Fault | None:
    """The Fault in a body, JSON (either case) or XML; None when there is none."""
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return _fault_from_xml(stripped)
    try:
        return _fault_from_json(json.loads(stripped))
    except ValueError:
        return None


def _code(fault: Fault | None) -> int | None:
    if fault is None:
        return None
    digits = fault.code.lstrip("0") or ("0" if fault.code else "")
    return int(digits) if digits.isdigit() else None


def _error_class(status: int | None, fault: Fault | None) -> type[ProviderError]:
    """Which named error a status and Fault mean (§5.2): permanent or not is in the class."""
    code = _code(fault)
    kind = (fault.type if fault else "").lower()
    text = f"{fault.message} {fault.detail}".lower() if fault else ""
    if status == 429 or code == 3001 or "throttle" in text:
        return RateLimited
    if status == 401 or code == 3200 or kind in ("authenticationfault", "authentication"):
        return AuthExpired
    if status == 403 or code in (120, 3100, 3201) or kind == "authorizationfault":
        return AuthRevoked
    if (status is not None and status >= 500) or kind in ("systemfault", "service"):
        return TransientError
    if code is not None and code >= 10000:
        return TransientError
    return PermanentError


def _intuit_tid(response: requests.Response | None) -> str | None:
    return http.provider_request_id(response) if response is not None else None


def _raise(
    what: str,
    *,
    status: int | None,
    fault: Fault | None,
    response: requests.Response | None,
    retry_after: float | None = None,
) -> None:
    cls = _error_class(status, fault)
    tid = _intuit_tid(response)
    detail = fault.describe() if fault else f"HTTP {status}"
    message = f"QuickBooks {what} failed: {detail}"
    logger.warning("quickbooks error on %s: status=%s %s intuit_tid=%s", what, status, detail, tid)
    kwargs: dict[str, Any] = {"status": status, "provider_request_id": tid, "response": response}
    if cls is RateLimited:
        error: ProviderError = RateLimited(
            message, retry_after=retry_after if retry_after is not None else 60.0, **kwargs
        )
    else:
        error = cls(message, **kwargs)
    error.fault = fault  # type: ignore[attr-defined]
    raise error


# --- The one request path --------------------------------------------------------------------


def _send(
    api: QuickBooksApi,
    method: str,
    path: str,
    *,
    what: str,
    params: dict | None = None,
    data: str | None = None,
    content_type: str | None = None,
) -> requests.Response:
    """GET, or the POST form of query; one forced token refresh on a 401, never two."""
    if not (method == "GET" or (method == "POST" and path == "query")):
        raise PermanentError(f"QuickBooks is read-only for Well: {method} {path} is not allowed")
    params = {**(params or {}), "minorversion": MINOR_VERSION}
    rejected: str | None = None
    for _ in range(2):
        token = api.token(rejected)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            response = http.request(
                api.session,
                method,
                api.url(path),
                retry_safe=True,  # every call here reads; a repeated query changes nothing
                headers=headers,
                params=params,
                data=data.encode() if data is not None else None,
                timeout=api.timeout,
                policy=api.policy,
                limiter=api.limiter,
                limiter_key=f"quickbooks:{api.realm_id}" if api.limiter else None,
                on_attempt=api.on_attempt,
                sleep=api.sleep,
            )
        except AuthExpired as exc:
            if rejected is not None:
                _raise(
                    what,
                    status=exc.status,
                    fault=parse_fault(exc.response.text) if exc.response is not None else None,
                    response=exc.response,
                )
            rejected = token
            continue
        except ProviderError as exc:
            if exc.response is None:
                raise
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
            _raise(
                what,
                status=exc.status,
                fault=parse_fault(exc.response.text),
                response=exc.response,
                retry_after=retry_after,
            )
        return response
    raise AssertionError("unreachable")  # pragma: no cover


def _json(response: requests.Response, what: str) -> dict:
    """The JSON body with exact Decimals; XML, junk or a Fault inside a 200 raise named errors."""
    text = response.text
    stripped = text.lstrip()
    if stripped.startswith("<"):
        fault = _fault_from_xml(stripped)
        if fault is not None:
            _raise(what, status=response.status_code, fault=fault, response=response)
        raise PermanentError(
            f"QuickBooks {what} answered XML where JSON was asked",
            provider_request_id=_intuit_tid(response),
        )
    try:
        body = json.loads(text, parse_float=Decimal)
    except ValueError:
        raise TransientError(
            f"QuickBooks {what} answered a body that is not JSON",
            provider_request_id=_intuit_tid(response),
        ) from None
    if not isinstance(body, dict):
        raise PermanentError(
            f"QuickBooks {what} answered JSON that is not an object",
            provider_request_id=_intuit_tid(response),
        )
    fault = _fault_from_json(body)
    if fault is not None:
        _raise(what, status=response.status_code, fault=fault, response=response)
    return body


def _time_of(body: dict) -> str:
    value = body.get("time")
    return value if isinstance(value, str) else ""


# --- Endpoints -------------------------------------------------------------------------------


def _query_page(body: dict, entity: str, start: int) -> QueryPage:
    response = body.get("QueryResponse")
    if not isinstance(response, dict):
        raise PermanentError(f"QuickBooks query of {entity} answered without a QueryResponse")
    records = response.get(entity) or []
    if not isinstance(records, list):
        raise PermanentError(f"QuickBooks query of {entity} answered a malformed list")
    return QueryPage(entity=entity, records=records, start_position=start, time=_time_of(body))


def query(api: QuickBooksApi, statement: str, *, entity: str, start: int = 1) -> QueryPage:
    """GET query (short statements).

    # Reference: https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
    """
    response = _send(api, "GET", "query", what=f"query {entity}", params={"query": statement})
    return _query_page(_json(response, f"query {entity}"), entity, start)


def query_post(api: QuickBooksApi, statement: str, *, entity: str, start: int = 1) -> QueryPage:
    """The POST form of query, statement as the body (long statements; still a read).

    # Reference: https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
    """
    response = _send(
        api,
        "POST",
        "query",
        what=f"query {entity}",
        data=statement,
        content_type="application/text",
    )
    return _query_page(_json(response, f"query {entity}"), entity, start)


def query_pages(
    api: QuickBooksApi,
    entity: str,
    *,
    conditions: Sequence[str] = (),
    page_size: int = PAGE_SIZE,
    order_by: str | None = "MetaData.LastUpdatedTime",
    post: bool = False,
) -> Iterator[QueryPage]:
    """Every page of a query, one at a time (never all in memory), until a short page."""
    start = 1
    while True:
        statement = select_statement(
            entity, conditions=conditions, start=start, page_size=page_size, order_by=order_by
        )
        page = (query_post if post else query)(api, statement, entity=entity, start=start)
        yield page
        if len(page.records) < page_size:
            return
        start += len(page.records)


def cdc(api: QuickBooksApi, *, entities: Sequence[str], changed_since: datetime) -> CdcResult:
    """Changed and deleted objects of `entities` since `changed_since` (≤ 30 days, ≤ 1000).

    # Reference: https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/change-data-capture
    """
    try:
        response = _send(
            api,
            "GET",
            "cdc",
            what="change data capture",
            params={"entities": ",".join(entities), "changedSince": qbo_time(changed_since)},
        )
        body = _json(response, "change data capture")
    except PermanentError as exc:
        if _beyond_lookback(exc, changed_since):
            raise CdcWindowExpired(
                f"{exc.message} (changedSince {qbo_time(changed_since)} is beyond CDC's "
                f"{CDC_MAX_DAYS}-day look-back)",
                status=exc.status,
                provider_request_id=exc.provider_request_id,
            ) from None
        raise
    groups = body.get("CDCResponse")
    if not isinstance(groups, list):
        raise PermanentError("QuickBooks change data capture answered without a CDCResponse")
    by_entity: dict[str, list[dict]] = {}
    for group in groups:
        responses = group.get("QueryResponse") if isinstance(group, dict) else None
        for part in responses or []:
            if not isinstance(part, dict):
                continue
            for key, value in part.items():
                if isinstance(value, list):
                    by_entity.setdefault(key, []).extend(value)
    return CdcResult(time=_time_of(body), by_entity=by_entity)


def _beyond_lookback(exc: PermanentError, changed_since: datetime) -> bool:
    """A validation fault that refuses `changedSince` for its age (§3.6: look-back ≤ 30 days).

    The wording is not documented, so a 400 on a date older than 25 days by our clock counts too:
    QuickBooks' clock, not ours, decides, and the two can disagree by more than a day.
    """
    if isinstance(exc, AuthRevoked) or exc.status not in (400, None):
        return False
    fault = getattr(exc, "fault", None)
    text = f"{fault.message} {fault.detail}".lower() if fault else ""
    if "30 days" in text or "look-back" in text or "lookback" in text:
        return True
    if "not a valid" in text:
        return False
    return exc.status == 400 and changed_since < datetime.now(UTC) - timedelta(days=25)


def read(api: QuickBooksApi, entity: str, entity_id: str) -> dict:
    """One object by ID.

    # Reference: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/bill#read-a-bill
    """
    what = f"read {entity} {entity_id}"
    body = _json(_send(api, "GET", f"{entity.lower()}/{entity_id}", what=what), what)
    record = body.get(entity)
    if not isinstance(record, dict):
        raise PermanentError(f"QuickBooks {what} answered without the object")
    return record


def company_info(api: QuickBooksApi) -> tuple[dict, str]:
    """The company's name, country and settings, and QuickBooks' time.

    # Reference: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/companyinfo
    """
    body = _json(
        _send(api, "GET", f"companyinfo/{api.realm_id}", what="company info"), "company info"
    )
    record = body.get("CompanyInfo")
    if not isinstance(record, dict):
        raise PermanentError("QuickBooks company info answered without CompanyInfo")
    return record, _time_of(body)


def preferences(api: QuickBooksApi) -> tuple[dict, str]:
    """Home currency and multicurrency (CurrencyPrefs), and QuickBooks' time.

    # Reference: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/preferences
    """
    body = _json(_send(api, "GET", "preferences", what="preferences"), "preferences")
    record = body.get("Preferences")
    if not isinstance(record, dict):
        raise PermanentError("QuickBooks preferences answered without Preferences")
    return record, _time_of(body)


def attachables_for(
    api: QuickBooksApi, *, entity_type: str, entity_ids: Sequence[str], page_size: int = PAGE_SIZE
) -> Iterator[QueryPage]:
    """Pages of the Attachables linked to some objects of one type (POST form: long IN lists).

    # Reference: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/attachable
    """
    if not entity_ids:
        return
    ids = ", ".join(quote(i) for i in entity_ids)
    yield from query_pages(
        api,
        "Attachable",
        conditions=[
            f"AttachableRef.EntityRef.Type = {quote(entity_type)}",
            f"AttachableRef.EntityRef.value IN ({ids})",
        ],
        page_size=page_size,
        order_by="Id",
        post=True,
    )


def records_by_id(
    api: QuickBooksApi, entity: str, entity_ids: Sequence[str], *, page_size: int = PAGE_SIZE
) -> Iterator[QueryPage]:
    """Pages of the objects of one kind that still exist among `entity_ids` (POST form).

    A deleted transaction is no longer returned; an inactive list entity still is (§3.5).

    # Reference: https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
    """
    if not entity_ids:
        return
    ids = ", ".join(quote(i) for i in entity_ids)
    yield from query_pages(
        api,
        entity,
        conditions=[f"Id IN ({ids})"],
        page_size=page_size,
        order_by="Id",
        post=True,
    )


def download_url(api: QuickBooksApi, attachable_id: str) -> str:
    """A fresh temporary (15 minutes) link to an Attachable's file; the body is the URL.

    # Reference: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/attachable#download-an-attachment
    """
    response = _send(api, "GET", f"download/{attachable_id}", what="attachment link")
    text = response.text.strip()
    if text.startswith("{") or text.startswith("<"):
        fault = parse_fault(text)
        if fault is not None:
            _raise("attachment link", status=response.status_code, fault=fault, response=response)
    if not text.lower().startswith(("http://", "https://")):
        raise PermanentError("QuickBooks answered an attachment link that is not a URL")
    return text
