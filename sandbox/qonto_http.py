"""HTTP helpers for the Qonto sandbox: error envelope, JSON bodies, query parsing, paging."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from sandbox.qonto_store import parse_iso

MAX_JSON_BODY = 1024 * 1024
MAX_PER_PAGE = 100


class ApiError(Exception):
    """An error answered in Qonto's envelope (reference §7.1)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error_item(code, detail, pointer=pointer, parameter=parameter)
        self.headers = headers or {}


def error_item(
    code: str, detail: str, *, pointer: str | None = None, parameter: str | None = None
) -> dict:
    """One JSON:API-style error object."""
    item: dict = {"code": code, "detail": detail}
    source = {k: v for k, v in (("pointer", pointer), ("parameter", parameter)) if v}
    if source:
        item["source"] = source
    return item


def json_response(body: dict, status: int = 200) -> Response:
    """A JSON answer."""
    return Response(json.dumps(body), status=status, mimetype="application/json")


def envelope_response(status: int, errors: list[dict], trace_id: str) -> Response:
    """`{"errors": [...], "trace_id": ...}`; the trace id also goes in X-Tyk-Trace-Id (§7.1)."""
    return json_response({"errors": errors, "trace_id": trace_id}, status)


def read_json_body(request: Request) -> dict:
    """The JSON object in the body ({} when empty); malformed JSON is a 400."""
    if (request.content_length or 0) > MAX_JSON_BODY:
        raise ApiError(413, "request_entity_too_large", "The request body is too large.")
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid", "The request body must be a JSON object.")
    return body


# --- query parameters ----------------------------------------------------------------------


def list_param(args: MultiDict, *names: str) -> list[str]:
    """Values of an array param sent as `key[]` or repeated `key` (also comma-separated)."""
    values: list[str] = []
    for name in names:
        for raw in args.getlist(name):
            values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def time_param(args: MultiDict, name: str) -> datetime | None:
    """An RFC 3339 timestamp (or date) param; anything else is a 422."""
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    moment = parse_iso(raw)
    if moment is None:
        raise ApiError(422, "invalid", f"{name} must be an ISO 8601 timestamp.", parameter=name)
    return moment


def bool_param(args: MultiDict, name: str) -> bool | None:
    """A true/false param; anything else is a 422."""
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise ApiError(422, "invalid", f"{name} must be true or false.", parameter=name)


def choice_params(args: MultiDict, names: tuple[str, ...], allowed: Iterable[str]) -> list[str]:
    """Array param whose values must come from a fixed list."""
    values = list_param(args, *names)
    allowed_set = set(allowed)
    for value in values:
        if value not in allowed_set:
            raise ApiError(
                422, "not_in_list", f"{value!r} is not an allowed value.", parameter=names[0]
            )
    return values


def in_range(value, start: datetime | None, end: datetime | None) -> bool:
    """Inclusive range check on a stored timestamp; a missing one fails any bound."""
    if start is None and end is None:
        return True
    moment = parse_iso(value)
    if moment is None:
        return False
    return (start is None or moment >= start) and (end is None or moment <= end)


def page_params(args: MultiDict) -> tuple[int, int]:
    """`page` (clients also send `current_page`, §7.2) and `per_page` ≤ 100."""
    page = _int_param(args, "page", args.get("current_page") or "1")
    per_page = _int_param(args, "per_page", str(MAX_PER_PAGE))
    if per_page > MAX_PER_PAGE:
        raise ApiError(422, "invalid", "per_page must be at most 100.", parameter="per_page")
    return page, per_page


def _int_param(args: MultiDict, name: str, default: str) -> int:
    raw = args.get(name) or default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ApiError(422, "invalid", f"{name} must be a positive integer.", parameter=name)
    return value


def paginate(items: list, page: int, per_page: int) -> tuple[list, dict]:
    """Slice a page and build Qonto's `meta`; past the last page is a 422 (quirk in §7.2)."""
    total = len(items)
    total_pages = math.ceil(total / per_page)
    if page > max(total_pages, 1):
        raise ApiError(
            422, "invalid", "The requested page is past the last page.", parameter="page"
        )
    start = (page - 1) * per_page
    meta = {
        "current_page": page,
        "next_page": page + 1 if page < total_pages else None,
        "prev_page": page - 1 if page > 1 else None,
        "total_pages": total_pages,
        "total_count": total,
        "per_page": per_page,
    }
    return items[start : start + per_page], meta


# --- sorting -------------------------------------------------------------------------------


def parse_sort(args: MultiDict, allowed: Iterable[str], default: str) -> tuple[str, bool]:
    """`sort_by=<prop>:<asc|desc>` → (prop, descending)."""
    raw = args.get("sort_by") or default
    prop, _, direction = raw.partition(":")
    direction = direction or "asc"
    if prop not in set(allowed) or direction not in ("asc", "desc"):
        raise ApiError(422, "invalid", f"sort_by {raw!r} is not supported.", parameter="sort_by")
    return prop, direction == "desc"


def sort_records(records: list[dict], key: Callable[[dict], object], descending: bool) -> list:
    """Sort by key with missing values last, whatever the direction."""
    present = [record for record in records if key(record) is not None]
    missing = [record for record in records if key(record) is None]
    return sorted(present, key=key, reverse=descending) + missing


def sort_value(record: dict, prop: str):
    """A comparable value for a sortable property."""
    value = record.get(prop)
    if isinstance(value, dict):  # amounts: {"value": "22.10", "currency": "EUR"}
        value = value.get("value")
        try:
            return Decimal(str(value)) if value is not None else None
        except InvalidOperation:
            return None
    if prop.endswith("_at"):
        return parse_iso(value)
    if isinstance(value, str):
        return value.lower()
    return value
