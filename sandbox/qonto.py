"""A Qonto Business API sandbox (WSGI), built from shared/reference/qonto-api.md.

Serve it with `sandbox.server.serve_in_thread(QontoSandbox(...))`.

Choices where the reference leaves room (each also noted at its code):
- a request body over 15 MB is a 413 envelope (`request_entity_too_large`); more than 20 items
  is a 400 `limit_reached` that creates nothing; other item problems come in a 200's `errors`;
- a page past the last one is a 422 (the reported quirk, §7.2); `per_page` > 100 is a 422;
- `/v2/transactions` without `bank_account_id`/`iban` is a 422 `required`; without `status[]`
  every status is listed;
- `bulk` partial-failure faults fail the 2nd, 4th... item (a lone item fails);
- mark/unmark/reject answer the invoice without a wrapper, like the doc example (§4.1);
- an API key (`Authorization: login:secret`, §2.1) is minted with `POST /_sandbox/api_key`.

Control API (JSON, no auth, not rate limited):
- `GET|POST /_sandbox/faults`: Faults fields (latency_ms, rate_429, retry_after_seconds,
  rate_5xx, rate_timeout, timeout_seconds, rate_partial_bulk, seed, queue) plus
  `timeout_phase` ("after": apply then stall, the default; "before": stall only), `clear` and
  `expire_access` (every access token expires now: the client must refresh and rotate);
- `GET /_sandbox/stats` → {"calls": {"POST /v2/supplier_invoices/bulk": n, ...}};
- `GET /_sandbox/state` → counts (supplier_invoices, created_by_upload, duplicates, ...);
- `POST /_sandbox/reset` {"auth": false} → back to the seed; grants kept unless auth is true;
- `GET|POST /_sandbox/clock` {"advance_seconds": n} → {"now", "offset_seconds"};
- `GET /_sandbox/invoices` → uploads with sha256 and idempotency_key;
- `POST /_sandbox/revoke` {"grant_id"} or {"token"}; `GET /_sandbox/grants`;
- `POST /_sandbox/rotate` {"refresh_token", "expire_grace": bool} → a token response;
- `POST /_sandbox/api_key` → {"login", "secret_key"};
- `GET|POST /_sandbox/limits` {"per_10s", "per_10min", "max_401_per_hour"};
- `GET|POST /_sandbox/plan` {"plan": "essential"|"solo_basic"}: on Solo Basic the supplier
  invoice list answers 403 (the plan does not include it); the start value is `plan=`;
- `GET|POST /_sandbox/pointers` {"style": "index"|"idempotency_key"}: how per-item bulk errors
  name their item; the start value is `error_pointers=`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import math
import threading
import time
import uuid
from collections import Counter, deque
from pathlib import Path

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.faults import Faults
from sandbox.qonto_analysis import render_invoice_pdf, sniff_content_type
from sandbox.qonto_http import (
    ApiError,
    bool_param,
    choice_params,
    envelope_response,
    error_item,
    in_range,
    json_response,
    list_param,
    page_params,
    paginate,
    parse_sort,
    read_json_body,
    sort_records,
    sort_value,
    time_param,
)
from sandbox.qonto_invoices import (
    ERROR_POINTER_STYLES,
    MAX_FILE_BYTES,
    SupplierInvoices,
    _file_name,
    _file_problem,
)
from sandbox.qonto_multipart import BodyTooLarge, MalformedMultipart, parse_parts
from sandbox.qonto_oauth import OAuthServer, Principal
from sandbox.qonto_seed import default_organization, default_seed
from sandbox.qonto_store import QontoStore, empty_state, iso_from_epoch

__all__ = ["QontoSandbox", "default_organization", "default_seed"]

logger = logging.getLogger(__name__)

URL_TTL = 30 * 60  # §6: pre-signed attachment URLs last 30 minutes
DEFAULT_LIMITS = {"per_10s": 1000, "per_10min": 10000, "max_401_per_hour": 200}  # §7.3
CONTROL_WRITES = ("reset", "revoke", "rotate", "api_key")
# Qonto price plans that matter to the API: `GET /v2/supplier_invoices` is "available for all
# Qonto price plans except Solo basic" (list supplier invoices, Qonto API reference).
PLANS = ("essential", "solo_basic")
TRANSACTION_STATUSES = ("pending", "declined", "completed", "reversed")
TRANSACTION_SORTS = ("settled_at", "emitted_at", "updated_at", "created_at")
TRANSACTION_INCLUDES = ("attachments", "labels", "vat_details")

# §1 sandbox specifics: without the staging token the sandbox shows its OneLogin page.
ONELOGIN_PAGE = (
    "<!doctype html><html><head><title>OneLogin</title></head><body>"
    '<form action="https://qonto.onelogin.com/login">Sign in to continue</form></body></html>'
)

# endpoint -> scopes, any one of which is enough (§2.5, §4.1, §6)
SCOPES: dict[str, tuple[str, ...]] = {
    "consents": ("organization.read",),
    "organization": ("organization.read",),
    "bank_accounts": ("organization.read",),
    "bank_account": ("organization.read",),
    "transactions": ("organization.read",),
    "transaction": ("organization.read",),
    "transaction_attachments": ("organization.read",),
    "attachment": ("organization.read", "attachment.read"),
    "attachment_create": ("attachment.write",),
    "invoices": ("supplier_invoice.read",),
    "invoice": ("supplier_invoice.read",),
    "bulk": ("supplier_invoice.write",),
    "mark_as_paid": ("supplier_invoice.write",),
    "unmark_as_paid": ("supplier_invoice.write",),
    "reject": ("supplier_invoice.write",),
}


def _url_map() -> Map:
    """Provider routes, the signed file route and the control API."""
    rules = [
        Rule("/oauth2/auth", endpoint="oauth_auth", methods=["GET", "POST"]),
        Rule("/oauth2/token", endpoint="oauth_token", methods=["POST"]),
        Rule("/oauth2/revoke", endpoint="oauth_revoke", methods=["POST"]),
        Rule("/v2/oauth2/consents", endpoint="consents", methods=["DELETE"]),
        Rule("/v2/organization", endpoint="organization", methods=["GET"]),
        Rule("/v2/bank_accounts", endpoint="bank_accounts", methods=["GET"]),
        Rule("/v2/bank_accounts/<account_id>", endpoint="bank_account", methods=["GET"]),
        Rule("/v2/supplier_invoices", endpoint="invoices", methods=["GET"]),
        Rule("/v2/supplier_invoices/bulk", endpoint="bulk", methods=["POST"]),
        Rule("/v2/supplier_invoices/<invoice_id>", endpoint="invoice", methods=["GET"]),
        Rule(
            "/v2/supplier_invoices/<invoice_id>/mark_as_paid",
            endpoint="mark_as_paid",
            methods=["POST"],
        ),
        Rule(
            "/v2/supplier_invoices/<invoice_id>/unmark_as_paid",
            endpoint="unmark_as_paid",
            methods=["POST"],
        ),
        Rule("/v2/supplier_invoices/<invoice_id>/reject", endpoint="reject", methods=["POST"]),
        Rule("/v2/transactions", endpoint="transactions", methods=["GET"]),
        Rule("/v2/transactions/<transaction_id>", endpoint="transaction", methods=["GET"]),
        Rule(
            "/v2/transactions/<transaction_id>/attachments",
            endpoint="transaction_attachments",
            methods=["GET"],
        ),
        Rule("/v2/attachments", endpoint="attachment_create", methods=["POST"]),
        Rule("/v2/attachments/<attachment_id>", endpoint="attachment", methods=["GET"]),
        Rule("/_files/<attachment_id>", endpoint="file", methods=["GET"]),
    ]
    control = ("faults", "stats", "state", "reset", "clock", "invoices", "revoke", "rotate")
    control += ("api_key", "limits", "grants", "plan", "pointers")
    for name in control:
        rules.append(Rule(f"/_sandbox/{name}", endpoint=f"control_{name}", methods=["GET", "POST"]))
    return Map(rules, strict_slashes=False, merge_slashes=False)


class QontoSandbox:
    """A WSGI app that behaves like Qonto's Business API and OAuth server."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        data_dir: Path | None = None,
        staging_token: str | None = None,
        analysis_delay_seconds: float = 2.0,
        access_token_ttl: int = 3600,
        error_pointers: str = "index",
        plan: str = "essential",
    ) -> None:
        self.store = QontoStore(data_dir)
        self.staging_token = staging_token
        self.oauth = OAuthServer(
            self.store,
            client_id=client_id,
            client_secret=client_secret,
            access_token_ttl=access_token_ttl,
        )
        self.invoices = SupplierInvoices(
            self.store,
            analysis_delay_seconds=analysis_delay_seconds,
            error_pointers=error_pointers,
        )
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {PLANS}")
        self.plan = plan
        self._start = {"plan": plan, "error_pointers": error_pointers}  # what reset goes back to
        self.faults = Faults()
        self.timeout_phase = "after"
        self.limits = dict(DEFAULT_LIMITS)
        self._windows: dict[str, dict[str, deque]] = {}
        self._windows_lock = threading.Lock()
        self.stats: Counter = Counter()
        self.url_map = _url_map()
        if not self.store.loaded_from_disk:
            self.seed(**default_seed())

    # --- seeding -----------------------------------------------------------------------------

    def seed(
        self,
        *,
        organization: dict,
        supplier_invoices: list[dict],
        transactions: list[dict],
        force: bool = False,
    ) -> None:
        """Load objects shaped as Qonto returns them; a restart on saved state keeps that state."""
        if self.store.loaded_from_disk and not force:
            return
        with self.store.lock:
            self.store.state["seed"] = copy.deepcopy(
                {
                    "organization": organization,
                    "supplier_invoices": supplier_invoices,
                    "transactions": transactions,
                }
            )
            self._apply_seed()
            self.store.save()

    def _apply_seed(self) -> None:
        """Replace resources with the remembered seed. Caller holds the lock."""
        state = self.store.state
        seed = copy.deepcopy(state["seed"])
        organization = seed["organization"]
        organization.setdefault("id", str(uuid.uuid4()))
        accounts = organization.setdefault("bank_accounts", [])
        main = next((a for a in accounts if a.get("main")), accounts[0] if accounts else {})
        state["organization"] = organization
        state["supplier_invoices"] = {}
        state["invoice_private"] = {}
        state["attachments"] = {}
        state["idempotency"] = {}
        for invoice in seed["supplier_invoices"]:
            self._seed_invoice(invoice, organization["id"])
        state["transactions"] = []
        for transaction in seed["transactions"]:
            transaction.setdefault("id", str(uuid.uuid4()))
            transaction.setdefault("bank_account_id", main.get("id"))
            state["transactions"].append(transaction)

    def _seed_invoice(self, invoice: dict, organization_id: str) -> None:
        """Store a seeded invoice; its attachment is a PDF drawn from its fields on demand."""
        state = self.store.state
        now = self.store.now_iso()
        invoice.setdefault("id", str(uuid.uuid4()))
        invoice.setdefault("organization_id", organization_id)
        invoice.setdefault("status", "to_review")
        invoice.setdefault("created_at", now)
        invoice.setdefault("updated_at", invoice["created_at"])
        invoice.setdefault("attachment_id", str(uuid.uuid4()))
        invoice.setdefault("file_name", f"{invoice.get('invoice_number') or invoice['id']}.pdf")
        state["supplier_invoices"][invoice["id"]] = invoice
        state["invoice_private"][invoice["id"]] = {"by_upload": False, "analysed": True}
        state["attachments"].setdefault(
            invoice["attachment_id"],
            {
                "id": invoice["attachment_id"],
                "created_at": invoice["created_at"],
                "file_name": invoice["file_name"],
                "file_content_type": "application/pdf",
                "generated_for": invoice["id"],
                "probative_attachment": {"status": "unavailable"},
            },
        )

    # --- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        trace_id = uuid.uuid4().hex
        try:
            response = self._dispatch(request, trace_id)
        except Exception:  # hostile input must never produce a traceback page
            logger.exception("qonto sandbox failed on %s %s", request.method, request.path)
            detail = "An unexpected error occurred."
            response = envelope_response(
                500, [error_item("internal_server_error", detail)], trace_id
            )
        response.headers["X-Tyk-Trace-Id"] = trace_id
        return response(environ, start_response)

    def _dispatch(self, request: Request, trace_id: str) -> Response:
        """Route, then apply the gateway's checks (staging token, limits, faults) in order."""
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed:
            return envelope_response(
                405, [error_item("method_not_allowed", "Method not allowed.")], trace_id
            )
        except (NotFound, HTTPException):
            # §7.1: unknown routes are answered by the Tyk gateway in text/plain.
            return Response("Not Found", status=404, mimetype="text/plain")
        if endpoint.startswith("control_"):
            return self._guarded(lambda: self._control(endpoint[8:], request), trace_id)
        if self.staging_token and endpoint != "oauth_auth":
            token = request.headers.get("X-Qonto-Staging-Token")
            if not token or not hmac.compare_digest(token.encode(), self.staging_token.encode()):
                return Response(ONELOGIN_PAGE, status=200, mimetype="text/html")
        if endpoint in ("file", "oauth_auth"):
            return self._guarded(lambda: self._route(endpoint, request, args, None), trace_id)
        response = self._gatekeep(request, endpoint, args, trace_id)
        response.headers.setdefault("X-Request-Id", trace_id)
        return response

    def _gatekeep(self, request: Request, endpoint: str, args: dict, trace_id: str) -> Response:
        """Rate limits, 401 throttling, faults, authentication, then the handler."""
        ip = request.remote_addr or "unknown"
        limited = self._limit_problem(ip)
        if limited is not None:
            return self._too_many(trace_id, limited)
        rule = self._rule_of(endpoint)
        with self._windows_lock:
            self.stats[f"{request.method} {rule}"] += 1
        self.faults.sleep_latency()
        fault = self.faults.decide(bulk=endpoint == "bulk")
        if fault == "429":
            return self._too_many(trace_id, self.faults.retry_after_seconds)
        if fault == "5xx":
            detail = "The server encountered an internal error."
            return envelope_response(503, [error_item("service_unavailable", detail)], trace_id)
        if fault == "timeout" and self.timeout_phase == "before":
            time.sleep(self.faults.timeout_seconds)
        response = self._guarded(
            lambda: self._authorized(endpoint, request, args, fault == "partial_bulk"), trace_id
        )
        if response.status_code == 401:
            self._record(ip, "401")
        if fault == "timeout" and self.timeout_phase == "after":
            time.sleep(self.faults.timeout_seconds)
        return response

    def _rule_of(self, endpoint: str) -> str:
        """The route template of an endpoint, for the call statistics."""
        return next(rule.rule for rule in self.url_map.iter_rules(endpoint))

    def _guarded(self, handler, trace_id: str) -> Response:
        """Turn ApiError and Werkzeug HTTP errors into the envelope."""
        try:
            return handler()
        except ApiError as exc:
            response = envelope_response(exc.status, [exc.error], trace_id)
            response.headers.extend(exc.headers)
            return response
        except HTTPException as exc:
            code = (exc.name or "error").lower().replace(" ", "_")
            status = exc.code or 400
            return envelope_response(status, [error_item(code, exc.description or "")], trace_id)

    def _authorized(self, endpoint: str, request: Request, args: dict, partial: bool) -> Response:
        """OAuth endpoints authenticate the client; API endpoints a token or an API key."""
        if endpoint in ("oauth_token", "oauth_revoke"):
            return self._route(endpoint, request, args, None)
        principal = self.oauth.principal_for(request.headers.get("Authorization", ""))
        if principal is None:
            raise ApiError(401, "unauthorized", "The access token is missing, invalid or expired.")
        needed = SCOPES[endpoint]
        if not principal.scopes.intersection(needed):
            raise ApiError(
                403,
                "forbidden",
                f"missing required OAuth scope: {' or '.join(needed)}",
            )
        request.environ["qonto.partial_bulk"] = partial
        return self._route(endpoint, request, args, principal)

    # --- limits ------------------------------------------------------------------------------

    def _limit_problem(self, ip: str) -> int | None:
        """Seconds to wait when this IP is over a §7.3 limit, else None (and count the call)."""
        now = self.store.now()
        with self._windows_lock:
            windows = self._windows.setdefault(
                ip, {"10s": deque(), "10min": deque(), "401": deque()}
            )
            for name, span in (("10s", 10), ("10min", 600), ("401", 3600)):
                while windows[name] and windows[name][0] <= now - span:
                    windows[name].popleft()
            if len(windows["401"]) > self.limits["max_401_per_hour"]:
                return math.ceil(windows["401"][0] + 3600 - now)
            for name, span, limit in (
                ("10s", 10, self.limits["per_10s"]),
                ("10min", 600, self.limits["per_10min"]),
            ):
                if len(windows[name]) >= limit:
                    return max(1, math.ceil(windows[name][0] + span - now))
            windows["10s"].append(now)
            windows["10min"].append(now)
        return None

    def _record(self, ip: str, window: str) -> None:
        """Note a 401 for the per-IP throttle."""
        with self._windows_lock:
            self._windows.setdefault(ip, {"10s": deque(), "10min": deque(), "401": deque()})
            self._windows[ip][window].append(self.store.now())

    def _too_many(self, trace_id: str, retry_after: int) -> Response:
        """429 with Retry-After (header names beyond it are unconfirmed, §7.3)."""
        detail = "Too many requests, please retry later."
        response = envelope_response(429, [error_item("too_many_requests", detail)], trace_id)
        response.headers["Retry-After"] = str(max(1, int(retry_after)))
        return response

    # --- routing -----------------------------------------------------------------------------

    def _route(
        self, endpoint: str, request: Request, args: dict, principal: Principal | None
    ) -> Response:
        """Call the handler for an endpoint."""
        invoices = self.invoices
        handlers = {
            "oauth_auth": lambda: self.oauth.authorize(request),
            "oauth_token": lambda: self.oauth.token(request),
            "oauth_revoke": lambda: self.oauth.revoke(request),
            "consents": lambda: self._delete_consents(principal),
            "organization": lambda: self._organization(request),
            "bank_accounts": lambda: self._bank_accounts(request),
            "bank_account": lambda: self._bank_account(args["account_id"]),
            "invoices": lambda: self._plan_refusal() or invoices.list(request),
            "invoice": lambda: invoices.get(args["invoice_id"]),
            "bulk": lambda: invoices.bulk(
                request, partial_failure=request.environ.get("qonto.partial_bulk", False)
            ),
            "mark_as_paid": lambda: invoices.mark_as_paid(request, args["invoice_id"]),
            "unmark_as_paid": lambda: invoices.unmark_as_paid(args["invoice_id"]),
            "reject": lambda: invoices.reject(request, args["invoice_id"]),
            "transactions": lambda: self._transactions(request),
            "transaction": lambda: self._transaction(request, args["transaction_id"]),
            "transaction_attachments": lambda: self._transaction_attachments(
                request, args["transaction_id"]
            ),
            "attachment_create": lambda: self._attachment_create(request),
            "attachment": lambda: self._attachment(request, args["attachment_id"]),
            "file": lambda: self._file(request, args["attachment_id"]),
        }
        return handlers[endpoint]()

    # --- organisation ------------------------------------------------------------------------

    def _organization(self, request: Request) -> Response:
        """GET /v2/organization; external accounts only on request (§5.1)."""
        include_external = bool_param(request.args, "include_external_accounts") or False
        with self.store.lock:
            organization = copy.deepcopy(self.store.state["organization"])
        organization["bank_accounts"] = [
            account
            for account in organization.get("bank_accounts", [])
            if include_external or not account.get("is_external_account")
        ]
        return json_response({"organization": organization})

    def _bank_accounts(self, request: Request) -> Response:
        """GET /v2/bank_accounts, paged."""
        page, per_page = page_params(request.args)
        with self.store.lock:
            accounts = copy.deepcopy(self.store.state["organization"].get("bank_accounts", []))
        items, meta = paginate(accounts, page, per_page)
        return json_response({"bank_accounts": items, "meta": meta})

    def _bank_account(self, account_id: str) -> Response:
        """GET /v2/bank_accounts/{id}."""
        return json_response({"bank_account": copy.deepcopy(self._find_account(account_id))})

    def _find_account(self, account_id: str) -> dict:
        for account in self.store.state["organization"].get("bank_accounts", []):
            if account.get("id") == account_id:
                return account
        raise ApiError(404, "not_found", "Bank account not found.")

    def _delete_consents(self, principal: Principal | None) -> Response:
        """DELETE /v2/oauth2/consents revokes the caller's grant (§2.6)."""
        if principal is not None and principal.grant_id:
            self.oauth.revoke_grant(principal.grant_id)
        return Response(status=204)

    # --- transactions ------------------------------------------------------------------------

    def _transactions(self, request: Request) -> Response:
        """GET /v2/transactions for one account (§5.2); no account selector is a 422."""
        args = request.args
        account = self._selected_account(args)
        page, per_page = page_params(args)
        prop, descending = parse_sort(args, TRANSACTION_SORTS, "settled_at:desc")
        includes = choice_params(args, ("includes[]", "includes"), TRANSACTION_INCLUDES)
        tests = self._transaction_filters(args)
        with self.store.lock:
            rows = [
                t
                for t in self.store.state["transactions"]
                if t.get("bank_account_id") == account["id"] and all(test(t) for test in tests)
            ]
            ordered = sort_records(rows, lambda t: sort_value(t, prop), descending)
            page_rows, meta = paginate(ordered, page, per_page)
            rendered = [self._render_transaction(request, t, includes) for t in page_rows]
        return json_response({"transactions": rendered, "meta": meta})

    def _selected_account(self, args) -> dict:
        """`bank_account_id` wins over `iban` (§5.2); one of them is required."""
        account_id, iban = args.get("bank_account_id"), args.get("iban")
        if not account_id and not iban:
            raise ApiError(
                422,
                "required",
                "bank_account_id or iban is required.",
                parameter="bank_account_id",
            )
        with self.store.lock:
            if account_id:
                return self._find_account(account_id)
            compact = iban.replace(" ", "").upper()
            for account in self.store.state["organization"].get("bank_accounts", []):
                if (account.get("iban") or "").replace(" ", "").upper() == compact:
                    return account
        raise ApiError(404, "not_found", "Bank account not found.")

    def _transaction_filters(self, args) -> list:
        """Predicates for the transaction list params."""
        statuses = choice_params(args, ("status[]", "status"), TRANSACTION_STATUSES)
        side = args.get("side")
        if side not in (None, "", "credit", "debit"):
            raise ApiError(422, "not_in_list", "side must be credit or debit.", parameter="side")
        operations = list_param(args, "operation_type[]", "operation_type")
        with_attachments = bool_param(args, "with_attachments")
        ranges = {
            name: (time_param(args, f"{name}_from"), time_param(args, f"{name}_to"))
            for name in TRANSACTION_SORTS
        }
        tests = [
            lambda t: not statuses or t.get("status") in statuses,
            lambda t: not side or t.get("side") == side,
            lambda t: not operations or t.get("operation_type") in operations,
            lambda t: with_attachments is None or bool(t.get("attachment_ids")) == with_attachments,
        ]
        for name, bounds in ranges.items():
            tests.append(lambda t, name=name, bounds=bounds: in_range(t.get(name), *bounds))
        return tests

    def _transaction(self, request: Request, transaction_id: str) -> Response:
        """GET /v2/transactions/{id} (+ includes[])."""
        includes = choice_params(request.args, ("includes[]", "includes"), TRANSACTION_INCLUDES)
        with self.store.lock:
            transaction = self._find_transaction(transaction_id)
            return json_response(
                {"transaction": self._render_transaction(request, transaction, includes)}
            )

    def _find_transaction(self, transaction_id: str) -> dict:
        for transaction in self.store.state["transactions"]:
            if transaction.get("id") == transaction_id:
                return transaction
        raise ApiError(404, "not_found", "Transaction not found.")

    def _render_transaction(self, request: Request, transaction: dict, includes: list) -> dict:
        """A copy with only the embedded objects that were asked for (§5.3)."""
        rendered = copy.deepcopy(transaction)
        seeded_attachments = rendered.pop("attachments", None)
        labels = rendered.pop("labels", None)
        vat_details = rendered.pop("vat_details", None)
        if "attachments" in includes:
            rendered["attachments"] = seeded_attachments or [
                self._attachment_object(request, aid)
                for aid in rendered.get("attachment_ids") or []
                if aid in self.store.state["attachments"]
            ]
        if "labels" in includes:
            rendered["labels"] = labels or []
        if "vat_details" in includes:
            rendered["vat_details"] = vat_details or {"items": []}
        return rendered

    def _transaction_attachments(self, request: Request, transaction_id: str) -> Response:
        """GET /v2/transactions/{id}/attachments."""
        with self.store.lock:
            transaction = self._render_transaction(
                request, self._find_transaction(transaction_id), ["attachments"]
            )
        return json_response({"attachments": transaction["attachments"]})

    # --- attachments -------------------------------------------------------------------------

    def _attachment(self, request: Request, attachment_id: str) -> Response:
        """GET /v2/attachments/{id} with a fresh 30-minute URL (§6)."""
        with self.store.lock:
            if attachment_id not in self.store.state["attachments"]:
                raise ApiError(404, "not_found", "Attachment not found.")
            return json_response({"attachment": self._attachment_object(request, attachment_id)})

    def _attachment_object(self, request: Request, attachment_id: str) -> dict:
        """The public attachment object. Caller holds the lock."""
        record = self.store.state["attachments"][attachment_id]
        expires = int(self.store.now()) + URL_TTL
        query = f"expires={expires}&signature={self._sign(attachment_id, expires)}"
        size = record.get("file_size")
        if size is None:
            size = str(len(self._file_bytes(attachment_id) or b""))
        return {
            "id": attachment_id,
            "created_at": record.get("created_at"),
            "file_name": record.get("file_name"),
            "file_size": size,
            "file_content_type": record.get("file_content_type"),
            "url": f"{request.host_url}_files/{attachment_id}?{query}",
            "probative_attachment": record.get("probative_attachment", {"status": "unavailable"}),
        }

    def _sign(self, attachment_id: str, expires: int) -> str:
        secret = self.store.state["url_secret"].encode()
        return hmac.new(secret, f"{attachment_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _file_bytes(self, attachment_id: str) -> bytes | None:
        """Uploaded bytes, or a PDF drawn for a seeded invoice."""
        data = self.store.get_file(attachment_id)
        if data is not None:
            return data
        record = self.store.state["attachments"].get(attachment_id, {})
        invoice = self.store.state["supplier_invoices"].get(record.get("generated_for", ""))
        return render_invoice_pdf(invoice) if invoice else None

    def _file(self, request: Request, attachment_id: str) -> Response:
        """The pre-signed download; like S3, an expired or forged URL is a 403 XML body."""
        try:
            expires = int(request.args.get("expires", "0"))
        except ValueError:
            expires = 0
        signature = request.args.get("signature", "")
        valid = hmac.compare_digest(signature, self._sign(attachment_id, expires))
        if not valid or expires < self.store.now():
            body = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            return Response(body, status=403, mimetype="application/xml")
        with self.store.lock:
            record = self.store.state["attachments"].get(attachment_id)
            data = self._file_bytes(attachment_id) if record else None
        if data is None:
            return Response("Not Found", status=404, mimetype="text/plain")
        return Response(data, status=200, mimetype=record.get("file_content_type"))

    def _attachment_create(self, request: Request) -> Response:
        """POST /v2/attachments: multipart `file`, X-Qonto-Idempotency-Key required (§6)."""
        key = (request.headers.get("X-Qonto-Idempotency-Key") or "").strip()
        if not key:
            raise ApiError(400, "required", "X-Qonto-Idempotency-Key header is required.")
        with self.store.lock:
            entry = self.store.state["idempotency"].get(f"attachment:{key}")
            if entry and self.store.now() - entry["at"] < 30 * 60:
                return json_response(entry["response"])
        part = self._single_file_part(request)
        problem = _file_problem(part)
        if problem:
            raise ApiError(400, "invalid", problem, pointer="/file")
        data = bytes(part.data)
        content_type = sniff_content_type(data) or "application/octet-stream"
        attachment = self.invoices.create_attachment(
            _file_name(part, content_type), content_type, data
        )
        body = {"attachment": {"id": attachment["id"]}}
        with self.store.lock:
            self.store.state["idempotency"][f"attachment:{key}"] = {
                "at": self.store.now(),
                "response": body,
            }
            self.store.save()
        return json_response(body)

    def _single_file_part(self, request: Request):
        """The `file` part of a small multipart upload."""
        boundary = request.mimetype_params.get("boundary", "")
        if request.mimetype != "multipart/form-data" or not boundary:
            raise ApiError(400, "invalid", "Content-Type must be multipart/form-data.")
        if (request.content_length or 0) > MAX_FILE_BYTES + 64 * 1024:
            raise ApiError(413, "request_entity_too_large", "The file exceeds 10 MB.")
        try:
            parts = parse_parts(
                request.stream,
                boundary.encode("latin-1", "replace"),
                max_form_memory_size=65536,
                max_parts=20,
            )
        except (MalformedMultipart, BodyTooLarge) as exc:
            raise ApiError(400, "invalid", f"Malformed multipart body: {exc}") from exc
        for part in parts:
            if part.name == "file":
                return part
        raise ApiError(400, "required", "file is required.", pointer="/file")

    # --- control API -------------------------------------------------------------------------

    def _control(self, name: str, request: Request) -> Response:
        """`/_sandbox/<name>`: JSON knobs and views for tests and demos."""
        if request.method != "POST" and name in CONTROL_WRITES:
            raise ApiError(405, "method_not_allowed", f"Use POST for /_sandbox/{name}.")
        body = read_json_body(request) if request.method == "POST" else {}
        views = {
            "faults": lambda: self._control_faults(request.method, body),
            "stats": lambda: json_response({"calls": dict(self.stats)}),
            "state": lambda: json_response(self.counts()),
            "reset": lambda: self._control_reset(body),
            "clock": lambda: self._control_clock(body),
            "invoices": lambda: json_response({"invoices": self.invoices.uploads()}),
            "revoke": lambda: self._control_revoke(body),
            "rotate": lambda: self.oauth.force_rotation(
                str(body.get("refresh_token", "")), expire_grace=bool(body.get("expire_grace"))
            ),
            "api_key": lambda: json_response(self.oauth.new_api_key()),
            "limits": lambda: self._control_limits(body),
            "grants": lambda: json_response({"grants": list(self.store.state["grants"].values())}),
            "plan": lambda: self._control_plan(request.method, body),
            "pointers": lambda: self._control_pointers(request.method, body),
        }
        return views[name]()

    def _control_plan(self, method: str, body: dict) -> Response:
        """GET the organization's price plan; POST {"plan": "solo_basic"|"essential"}."""
        if method == "POST":
            if body.get("plan") not in PLANS:
                raise ApiError(400, "invalid", f"plan must be one of {', '.join(PLANS)}.")
            self.plan = body["plan"]
        return json_response({"plan": self.plan})

    def _control_pointers(self, method: str, body: dict) -> Response:
        """GET the per-item error pointer style; POST {"style": "index"|"idempotency_key"}."""
        if method == "POST":
            if body.get("style") not in ERROR_POINTER_STYLES:
                styles = ", ".join(ERROR_POINTER_STYLES)
                raise ApiError(400, "invalid", f"style must be one of {styles}.")
            self.invoices.error_pointers = body["style"]
        return json_response({"style": self.invoices.error_pointers})

    def _plan_refusal(self) -> Response | None:
        """Solo Basic: the list of supplier invoices is not in the plan.

        "This endpoint is available for all Qonto price plans except Solo basic" (list supplier
        invoices, https://docs.qonto.com/api-reference/business-api/expense-management/supplier-invoices/list-supplier-invoices).
        The refusal's exact body is not documented; a 403 in the error envelope, like other
        permission refusals (§7.1), is the most plausible shape.
        """
        if self.plan != "solo_basic":
            return None
        raise ApiError(
            403,
            "forbidden",
            "This feature is not available on your current price plan (Solo Basic).",
        )

    def _control_faults(self, method: str, body: dict) -> Response:
        """GET the fault settings; POST changes (Faults fields, plus `timeout_phase`, `clear`)."""
        if method == "POST":
            changes = dict(body)
            phase = changes.pop("timeout_phase", None)
            if phase not in (None, "before", "after"):
                raise ApiError(400, "invalid", "timeout_phase must be before or after.")
            try:
                if changes.pop("clear", False):
                    self.faults.clear()
                if changes.pop("expire_access", False):
                    self.oauth.expire_access()
                self.faults.update(changes)
            except (TypeError, ValueError) as exc:
                raise ApiError(400, "invalid", str(exc)) from exc
            self.timeout_phase = phase or self.timeout_phase
        return json_response({**self.faults.as_dict(), "timeout_phase": self.timeout_phase})

    def _control_reset(self, body: dict) -> Response:
        """Back to the seed: uploads, keys, stats, faults, limits and clock cleared."""
        with self.store.lock:
            keep = {} if body.get("auth") else self._auth_state()
            fresh = empty_state()
            fresh["seed"] = self.store.state["seed"]
            fresh["url_secret"] = self.store.state["url_secret"]
            fresh.update(keep)
            self.store.state = fresh
            self.store.clear_files()
            self._apply_seed()
            self.store.save()
        with self._windows_lock:
            self._windows.clear()
            self.stats.clear()
        self.faults.clear()
        self.timeout_phase = "after"
        self.limits = dict(DEFAULT_LIMITS)
        self.plan = self._start["plan"]
        self.invoices.error_pointers = self._start["error_pointers"]
        return json_response(self.counts())

    def _auth_state(self) -> dict:
        names = ("grants", "challenges", "codes", "access_tokens", "refresh_tokens", "api_keys")
        return {name: self.store.state[name] for name in names}

    def _control_clock(self, body: dict) -> Response:
        """GET the sandbox time; POST `{"advance_seconds": N}` moves it forward."""
        if "advance_seconds" in body:
            try:
                seconds = float(body["advance_seconds"])
            except (TypeError, ValueError) as exc:
                raise ApiError(400, "invalid", "advance_seconds must be a number.") from exc
            if not math.isfinite(seconds) or seconds < 0:
                raise ApiError(400, "invalid", "advance_seconds must be zero or more.")
            self.store.advance(seconds)
        return json_response(
            {"now": self.store.now_iso(), "offset_seconds": self.store.state["clock_offset"]}
        )

    def _control_revoke(self, body: dict) -> Response:
        """Revoke a grant by `grant_id`, or by any `token` issued under it."""
        grant_id = body.get("grant_id") or self.oauth.grant_of(str(body.get("token", "")))
        if not grant_id or not self.oauth.revoke_grant(str(grant_id)):
            raise ApiError(404, "not_found", "No such grant or token.")
        return json_response({"revoked": grant_id})

    def _control_limits(self, body: dict) -> Response:
        """GET or POST the §7.3 limits (lower them to test throttling quickly)."""
        for name, value in body.items():
            if name not in DEFAULT_LIMITS or not isinstance(value, int) or value < 1:
                raise ApiError(400, "invalid", f"bad limit {name!r}")
            self.limits[name] = value
        return json_response(dict(self.limits))

    def counts(self) -> dict:
        """Resource counts for `/_sandbox/state`."""
        counts = self.invoices.counts()
        with self.store.lock:
            counts["transactions"] = len(self.store.state["transactions"])
            counts["attachments"] = len(self.store.state["attachments"])
            counts["grants"] = len(self.store.state["grants"])
            counts["now"] = iso_from_epoch(self.store.now())
        return counts
