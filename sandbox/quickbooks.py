"""A QuickBooks Online stand-in (WSGI, Werkzeug): OAuth 2.0, query, CDC, reads, attachments.

Everything follows /work/shared/reference/quickbooks-api.md (cited as §n). One base URL serves
the paths of all Intuit hosts, so a client written for the real API only swaps base URLs:
- OAuth: `GET|POST /connect/oauth2`, `POST /oauth2/v1/tokens/bearer`,
  `POST /v2/oauth2/tokens/revoke`, discovery at `/.well-known/openid_configuration/` and
  `/.well-known/openid_sandbox_configuration/` (absolute URLs on this server).
- API: `/v3/company/{realmId}/query|cdc|{entity}/{id}|companyinfo/{id}|preferences|download/{id}`.
  Read-only: writes answer a ValidationFault "Unsupported Operation".
- Files: `/_files/{signed token}` (TempDownloadUri, valid 15 minutes, no auth, §4.12).
- Control (JSON, not counted in stats, never faulted):
  `/_sandbox/faults|stats|state|reset|clock|mutate|file`.

    app = QuickBooksSandbox(client_id="id", client_secret="secret", data_dir=None)
    app.seed(build_world(seed=1).quickbooks)
    running = serve_in_thread(app)

Control API payloads (POST, JSON body):
- faults: any `Faults` field (latency_ms, rate_429, retry_after_seconds, rate_5xx, rate_timeout,
  timeout_seconds, queue, seed), `"clear": true`, `"revoke": true` (all grants) or a token,
  `"rotate": true` (rotate every live refresh token now; the answer lists the new values),
  `"expire_access": true` (every access token expires now: the next call gets a 401 and the
  client must refresh, rotating its refresh token),
  `"access_token_ttl": seconds`, `"refresh_rotation": "always"|"daily"|"never"`.
- stats: GET → {"total", "calls": {"GET query": n, ...}, "requests": [{method, path, status}]};
  POST {"reset": true} clears them.
- state: GET → record counts per entity, deleted counts, grants, clock.
- reset: POST {} → records back to the seed, faults cleared, stats zeroed;
  {"grants": true} also forgets grants, {"clock": true} also rewinds the clock.
- clock: GET → {"now", "offset_seconds"}; POST {"advance": seconds}.
- mutate: POST {"action": "edit", "entity": "Bill", "id": "12", "set": {...}}
  | {"action": "delete", "entity": "Bill", "id": "12"} | {"action": "add", "entity": "Bill",
  "count": 3} → {"action", "entity", "ids": [...]}.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import logging
import random
import secrets
import threading
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.documents import render_pdf
from sandbox.faults import Faults
from sandbox.qbo_oauth import ACCOUNTING_SCOPES, ROTATIONS, OAuthError, OAuthState
from sandbox.qbo_query import (
    PACIFIC,
    QueryError,
    format_qbo_datetime,
    parse_qbo_datetime,
    parse_query,
    project,
    run_query,
)
from sandbox.qbo_store import RecordStore, write_json
from sandbox.qbo_xml import to_xml


@lru_cache(maxsize=262_144)
def _stamp(text: str) -> datetime:
    """A record's LastUpdatedTime, parsed once: CDC compares every stored record on each poll."""
    return parse_qbo_datetime(text)


logger = logging.getLogger(__name__)

# Entities the query endpoint knows; those without seeded records simply answer empty.
QUERYABLE = (
    "Account",
    "Attachable",
    "Bill",
    "BillPayment",
    "Class",
    "CompanyCurrency",
    "CompanyInfo",
    "CreditMemo",
    "Customer",
    "Department",
    "Deposit",
    "Employee",
    "Estimate",
    "Invoice",
    "Item",
    "JournalEntry",
    "Payment",
    "PaymentMethod",
    "Preferences",
    "Purchase",
    "PurchaseOrder",
    "RefundReceipt",
    "SalesReceipt",
    "TaxAgency",
    "TaxCode",
    "TaxRate",
    "Term",
    "Transfer",
    "Vendor",
    "VendorCredit",
)
CDC_UNSUPPORTED = ("JournalCode", "TaxAgency", "TimeActivity", "TaxCode", "TaxRate")  # §3.6
CDC_LOOKBACK = timedelta(days=30)
CDC_CAP = 1000
FILE_URL_LIFETIME = 15 * 60  # §4.12
MAX_BODY = 1024 * 1024
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class _Throttle:
    """QBO's per-realm limits: 500 requests a minute and 10 in flight (§5.3)."""

    def __init__(self, per_minute: int, in_flight: int) -> None:
        self.per_minute = per_minute
        self.max_in_flight = in_flight
        self.lock = threading.Lock()
        self.flying: Counter[str] = Counter()
        self.recent: dict[str, deque[float]] = {}

    def enter(self, realm: str, moment: float) -> bool:
        """Count a request in; False when it must be refused (it is then not counted)."""
        with self.lock:
            window = self.recent.setdefault(realm, deque())
            while window and window[0] <= moment - 60:
                window.popleft()
            if self.flying[realm] >= self.max_in_flight or len(window) >= self.per_minute:
                return False
            self.flying[realm] += 1
            window.append(moment)
            return True

    def leave(self, realm: str) -> None:
        with self.lock:
            self.flying[realm] -= 1

    def clear(self) -> None:
        with self.lock:
            self.recent.clear()


class QuickBooksSandbox:
    """The WSGI application; see the module docstring for routes and the control API."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        data_dir: Path | None = None,
        access_token_ttl: int = 3600,
        refresh_rotation: str = "always",
        rate_limit_per_minute: int = 500,
        max_in_flight: int = 10,
        faults: Faults | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self.store = RecordStore(self.data_dir)
        self.oauth = OAuthState(
            now=self.epoch, access_token_ttl=access_token_ttl, rotation=refresh_rotation
        )
        self.faults = faults or Faults()
        self.throttle = _Throttle(rate_limit_per_minute, max_in_flight)
        self.stats: Counter[str] = Counter()
        self.recent_requests: deque[dict] = deque(maxlen=1000)
        self.sizes: dict[str, int] = {}
        # Files set through the control API (`/_sandbox/file`): bytes served as given, with the
        # Content-Type given, in place of the rendered PDF (hostile-provider tests).
        self.raw_files: dict[str, tuple[bytes, str]] = {}
        self.rng = random.Random(0)
        self.file_key = hashlib.sha256(f"qbo-files:{client_secret}".encode()).digest()
        self.url_map = Map(_rules(), strict_slashes=False)
        self._load_state()

    # ---- public helpers -----------------------------------------------------------------
    def seed(self, quickbooks: dict) -> None:
        """Load a world's QuickBooks part (`World.quickbooks`), replacing all records."""
        self.store.seed(quickbooks)
        self.sizes.clear()
        self.raw_files.clear()

    def has_state(self) -> bool:
        """Whether the data directory already holds a seeded company (then do not reseed)."""
        return self.store.has_state()

    @property
    def realm_id(self) -> str | None:
        return self.store.realm_id

    def now(self) -> datetime:
        """The sandbox clock: real time plus the offset set through /_sandbox/clock."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)

    def epoch(self) -> float:
        return time.time() + self.clock_offset

    def _load_state(self) -> None:
        self.store.load()
        path = self._oauth_file()
        if path is not None and path.exists():
            data = json.loads(path.read_text("utf-8"))
            self.oauth.load(data)
            self.clock_offset = float(data.get("clock_offset", 0.0))

    def _oauth_file(self) -> Path | None:
        return self.data_dir / "oauth.json" if self.data_dir is not None else None

    def _save_oauth(self) -> None:
        path = self._oauth_file()
        if path is not None:
            write_json(path, {**self.oauth.dump(), "clock_offset": self.clock_offset})

    # ---- WSGI ---------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = MAX_BODY
        request.max_form_memory_size = MAX_BODY
        try:
            response = self.dispatch(request)
        except Exception:
            # Never a traceback on the wire: a SystemFault like QBO's own 500s.
            logger.exception("quickbooks sandbox failed on %s %s", request.method, request.path)
            response = self.fault(
                request,
                500,
                "SystemFault",
                "10000",
                "An application error has occurred while processing your request",
                "System Failure Error: unexpected sandbox error",
            )
        response.headers["intuit_tid"] = "1-" + secrets.token_hex(12)
        response.headers.setdefault("Qbo-Version", "1.4.75")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except (NotFound, MethodNotAllowed) as exc:
            return self.not_found(request, exc)
        except HTTPException as exc:  # e.g. redirects for slashes
            return exc.get_response(request.environ)  # type: ignore[return-value]
        if endpoint.startswith("control_"):
            return self.control(request, endpoint.removeprefix("control_"))
        if endpoint in ("discovery", "jwks", "file", "authorize"):
            return getattr(self, f"route_{endpoint}")(request, **args)
        return self.metered(request, endpoint, args)

    def metered(self, request: Request, endpoint: str, args: dict) -> Response:
        """Count, throttle, inject faults, then run the handler."""
        name = endpoint if endpoint != "read" else f"read:{args.get('entity', '').lower()}"
        realm = args.get("realm")
        admitted = True
        if realm is not None:
            admitted = self.throttle.enter(realm, self.epoch())
        try:
            response = self._metered(request, endpoint, args, admitted)
        except RequestEntityTooLarge:
            response = self.fault(
                request,
                413,
                "ValidationFault",
                "4000",
                "Request too large",
                f"Request body exceeds {MAX_BODY} bytes",
            )
        finally:
            if realm is not None and admitted:
                self.throttle.leave(realm)
        with self.lock:
            self.stats[f"{request.method} {name}"] += 1
            self.recent_requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "endpoint": name,
                    "status": response.status_code,
                }
            )
        return response

    def _metered(self, request: Request, endpoint: str, args: dict, admitted: bool) -> Response:
        if not admitted:
            return self.throttled(request, retry_after=None)
        self.faults.sleep_latency()
        fault = self.faults.decide()
        if fault == "429":
            return self.throttled(request, retry_after=self.faults.retry_after_seconds)
        if fault == "5xx":
            return self.fault(
                request,
                503,
                "SystemFault",
                "10000",
                "Service Unavailable",
                "The service is temporarily unavailable (injected fault)",
            )
        if fault == "timeout":
            time.sleep(self.faults.timeout_seconds)
            return self.fault(
                request,
                504,
                "SystemFault",
                "10000",
                "Gateway Timeout",
                "The request timed out (injected fault)",
            )
        if endpoint in ("token", "revoke", "userinfo"):
            return getattr(self, f"route_{endpoint}")(request, **args)
        realm = args.pop("realm")
        denied = self.authenticate(request, realm)
        if denied is not None:
            return denied
        return getattr(self, f"route_{endpoint}")(request, realm, **args)

    # ---- responses ----------------------------------------------------------------------
    def wants_json(self, request: Request) -> bool:
        """QBO answers XML unless the client asks for JSON (§2)."""
        return "json" in request.headers.get("Accept", "").lower()

    def stamp(self) -> str:
        return self.now().astimezone(PACIFIC).isoformat(timespec="milliseconds")

    def payload(self, request: Request, data: dict, status: int = 200) -> Response:
        data = {**data, "time": self.stamp()}
        if self.wants_json(request):
            return Response(
                json.dumps(data, ensure_ascii=False), status=status, mimetype="application/json"
            )
        return Response(to_xml(data), status=status, mimetype="application/xml")

    def fault(
        self,
        request: Request,
        status: int,
        kind: str,
        code: str,
        message: str,
        detail: str,
        element: str | None = None,
    ) -> Response:
        """The standard Fault envelope (§5.1)."""
        error = {"Message": message, "Detail": detail, "code": code}
        if element:
            error["element"] = element
        return self.payload(request, {"Fault": {"Error": [error], "type": kind}}, status)

    def validation(
        self, request: Request, message: str, detail: str, code: str = "4000"
    ) -> Response:
        return self.fault(request, 400, "ValidationFault", code, message, detail)

    def throttled(self, request: Request, retry_after: int | None) -> Response:
        """429 ThrottleExceeded, code 3001, type SERVICE (§5.2); Retry-After only when injected."""
        response = self.fault(
            request,
            429,
            "SERVICE",
            "3001",
            "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "The request limit was reached. Try again later",
        )
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def unauthorized(self, request: Request, code: str, detail: str) -> Response:
        """The gateway's 401: lowercase `fault` keys in JSON (§5.1, python-quickbooks #250)."""
        message = f"message=AuthenticationFailed; errorCode={int(code):06d}; statusCode=401"
        if not self.wants_json(request):
            data = {
                "Fault": {
                    "Error": [{"Message": message, "Detail": detail, "code": code}],
                    "type": "AUTHENTICATION",
                }
            }
            response = self.payload(request, data, 401)
        else:
            body = {
                "warnings": None,
                "intuitObject": None,
                "fault": {
                    "error": [
                        {"message": message, "detail": detail, "code": code, "element": None}
                    ],
                    "type": "AUTHENTICATION",
                },
                "report": None,
                "queryResponse": None,
                "batchItemResponse": [],
                "attachableResponse": [],
                "syncErrorResponse": None,
                "requestId": None,
                "time": int(self.epoch() * 1000),
                "status": None,
                "cdcresponse": [],
            }
            response = Response(json.dumps(body), status=401, mimetype="application/json")
        response.headers["WWW-Authenticate"] = 'Bearer realm="Intuit", error="invalid_token"'
        return response

    def not_found(self, request: Request, exc: Exception) -> Response:
        if request.path.startswith("/v3/"):
            # QBO's answer to an unknown resource or method (python-quickbooks maps 500-599).
            return self.validation(
                request,
                "Unsupported Operation",
                f"Operation {request.method} {request.path} is not supported.",
                "500",
            )
        if request.path.startswith("/_sandbox/"):
            return _json({"error": "unknown control endpoint"}, 404)
        status = 405 if isinstance(exc, MethodNotAllowed) else 404
        return _json(
            {
                "error": "not_found",
                "error_description": f"No route for {request.method} {request.path}",
            },
            status,
        )

    # ---- auth ---------------------------------------------------------------------------
    def authenticate(self, request: Request, realm: str) -> Response | None:
        """Bearer check (§1.6, §5.2): expired or unknown → 401 3200; wrong realm → 401 100."""
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return self.unauthorized(request, "3200", "Token invalid: missing bearer token")
        with self.lock:
            verdict, grant = self.oauth.check_access(header[7:].strip())
        if verdict == "expired":
            return self.unauthorized(request, "3200", "Token expired: the access token has expired")
        if verdict != "ok" or grant is None:
            return self.unauthorized(
                request, "3200", "Token invalid: the access token is not valid"
            )
        if grant.realm_id != realm or realm != self.store.realm_id:
            return self.unauthorized(
                request, "100", "General Authentication Error: token is not valid for this company"
            )
        return None

    def client_credentials(self, request: Request) -> tuple[str, str] | None:
        """client_secret_basic, else client_secret_post (both in the discovery doc, §1.1)."""
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            client_id, _, secret = decoded.partition(":")
            return client_id, secret
        if "client_id" in request.form:
            return request.form.get("client_id", ""), request.form.get("client_secret", "")
        return None

    def client_ok(self, credentials: tuple[str, str] | None) -> bool:
        if credentials is None:
            return False
        client_id, secret = credentials
        return hmac.compare_digest(client_id, self.client_id) and hmac.compare_digest(
            secret, self.client_secret
        )

    # ---- OAuth routes -------------------------------------------------------------------
    def route_discovery(self, request: Request, **_: str) -> Response:
        """OpenID discovery with this server's absolute URLs (§1.1)."""
        base = request.host_url.rstrip("/")
        return _json(
            {
                "issuer": "https://oauth.platform.intuit.com/op/v1",
                "authorization_endpoint": f"{base}/connect/oauth2",
                "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
                "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
                "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
                "jwks_uri": f"{base}/op/v1/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "address", "phone"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
                "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
            }
        )

    def route_jwks(self, request: Request, **_: str) -> Response:
        return _json({"keys": []})

    def authorize_error(self, message: str) -> Response:
        page = (
            "<!doctype html><title>Authorization error</title><h1>Authorization error</h1>"
            f"<p>{html.escape(message)}</p>"
        )
        return Response(page, status=400, mimetype="text/html")

    def route_authorize(self, request: Request) -> Response:
        """Consent page (GET) and its Allow/Deny submission (POST) (§1.2, §1.3)."""
        params = request.form if request.method == "POST" else request.args
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        state = params.get("state", "")
        scope = params.get("scope", "")
        if client_id != self.client_id:
            return self.authorize_error("Unknown client_id.")
        if not _local_redirect(redirect_uri):
            return self.authorize_error(
                "redirect_uri must be an http(s) URL on 127.0.0.1 or localhost."
            )
        if params.get("response_type") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", "state": state})
        if not scope.strip():
            return _redirect(redirect_uri, {"error": "invalid_scope", "state": state})
        if request.method == "GET":
            return self.consent_page(params)
        if params.get("decision") != "allow":
            return _redirect(redirect_uri, {"error": "access_denied", "state": state})
        realm = self.store.realm_id or ""
        with self.lock:
            code = self.oauth.issue_code(
                client_id=client_id, redirect_uri=redirect_uri, scope=scope, realm_id=realm
            )
            self._save_oauth()
        answer = {"code": code, "state": state}
        if any(name in scope.split() for name in ACCOUNTING_SCOPES):
            answer["realmId"] = realm  # only for accounting/payment scopes (§1.3)
        return _redirect(redirect_uri, answer)

    def consent_page(self, params) -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">'
            for name in ("client_id", "redirect_uri", "state", "scope", "response_type")
        )
        company = html.escape(self.company_name())
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<title>Intuit sandbox: connect</title></head>"
            f"<body><h1>Connect to {company}</h1>"
            f"<p>An app wants access to <strong>{company}</strong> with scopes "
            f"<code>{html.escape(params.get('scope', ''))}</code>.</p>"
            f'<form method="post" action="/connect/oauth2">{hidden}'
            '<button type="submit" name="decision" value="allow">Allow</button> '
            '<button type="submit" name="decision" value="deny">Deny</button>'
            "</form></body></html>"
        )
        return Response(page, mimetype="text/html")

    def company_name(self) -> str:
        records = self.store.records("CompanyInfo")
        return records[0].get("CompanyName", "Sandbox Company") if records else "Sandbox Company"

    def route_token(self, request: Request) -> Response:
        """Code exchange and refresh (§1.4, §1.5, §1.8)."""
        if not self.client_ok(self.client_credentials(request)):
            return _json({"error": "invalid_client"}, 401)
        grant_type = request.form.get("grant_type", "")
        try:
            with self.lock:
                if grant_type == "authorization_code":
                    code, redirect_uri = request.form.get("code"), request.form.get("redirect_uri")
                    if not code or not redirect_uri:
                        raise OAuthError("invalid_request")
                    answer = self.oauth.exchange_code(
                        client_id=self.client_id, code=code, redirect_uri=redirect_uri
                    )
                elif grant_type == "refresh_token":
                    token = request.form.get("refresh_token")
                    if not token:
                        raise OAuthError("invalid_request")
                    answer = self.oauth.refresh(client_id=self.client_id, refresh_token=token)
                else:
                    raise OAuthError("unsupported_grant_type")
                self._save_oauth()
        except OAuthError as exc:
            return _json(exc.body(), exc.status)
        hard = answer.pop("_hard_expires_in")
        if request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true":
            answer["x_refresh_token_hard_expires_in"] = hard
        return _json(answer)

    def route_revoke(self, request: Request) -> Response:
        """Revoke by refresh or access token, JSON body, Basic auth (§1.9)."""
        if not self.client_ok(self.client_credentials(request)):
            return _json({"error": "invalid_client"}, 401)
        try:
            body = json.loads(request.get_data(as_text=False) or b"{}")
            token = body.get("token") if isinstance(body, dict) else None
        except (ValueError, UnicodeDecodeError):
            token = None
        token = token or request.form.get("token")
        if not isinstance(token, str) or not token:
            return _json({"error": "invalid_request"}, 400)
        with self.lock:
            self.oauth.revoke(token)
            self._save_oauth()
        return Response("", status=200)

    def route_userinfo(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        with self.lock:
            verdict, grant = (
                self.oauth.check_access(header[7:].strip())
                if header.lower().startswith("bearer ")
                else ("unknown", None)
            )
        if verdict != "ok" or grant is None:
            return _json({"error": "invalid_token"}, 401)
        return _json(
            {
                "sub": grant.id,
                "email": "compta@atelier-lumiere.fr",
                "emailVerified": True,
                "givenName": "Claire",
                "familyName": "Sandbox",
            }
        )

    # ---- API routes ---------------------------------------------------------------------
    def route_query(self, request: Request, realm: str) -> Response:
        """`query` by GET ?query= or POST application/text (§3.1)."""
        if request.method == "POST":
            if request.mimetype == "application/x-www-form-urlencoded":
                statement = request.form.get("query", "")
            else:
                try:
                    statement = request.get_data().decode("utf-8")
                except UnicodeDecodeError:
                    return self.validation(
                        request,
                        "Error parsing query",
                        "QueryParserError: request body is not valid UTF-8",
                    )
        else:
            statement = request.args.get("query", "")
        if not statement.strip():
            return self.validation(
                request, "Error parsing query", 'QueryParserError: Encountered "<EOF>"'
            )
        try:
            return self.run_statement(request, statement)
        except QueryError as exc:
            return self.validation(request, exc.message, exc.detail, exc.code)

    def canonical_entity(self, name: str, choices) -> str | None:
        lowered = name.lower()
        return next((entity for entity in choices if entity.lower() == lowered), None)

    def run_statement(self, request: Request, statement: str) -> Response:
        query = parse_query(statement)
        entity = self.canonical_entity(query.entity, {*QUERYABLE, *self.store.entities()})
        if entity is None:
            raise QueryError(
                "Invalid query",
                f"QueryValidationError: Unsupported entity '{query.entity}'",
                "4001",
            )
        query.entity = entity
        records = self.store.records(entity)
        if records:
            known = self.store.paths(entity)
            paths = (
                [c.path for c in query.conditions]
                + [path for path, _ in query.order]
                + (query.fields or [])
            )
            for path in paths:
                if path.lower() not in known and path.lower() not in ("active", "id"):
                    raise QueryError(
                        "Invalid query",
                        f"QueryValidationError: property '{path}' is not queryable for {entity}",
                        "4001",
                    )
        page, total = run_query(query, records)
        if query.count:
            return self.payload(request, {"QueryResponse": {"totalCount": total}})
        if not page:
            return self.payload(request, {"QueryResponse": {}})
        rows = [self.present(request, entity, record) for record in page]
        if query.fields:
            rows = [project(row, query.fields) for row in rows]
        body = {entity: rows, "startPosition": query.start, "maxResults": len(rows)}
        return self.payload(request, {"QueryResponse": body})

    def present(self, request: Request, entity: str, record: dict) -> dict:
        """Add per-response fields: Attachable Size and a fresh TempDownloadUri (§4.12)."""
        if entity != "Attachable" or record["Id"] not in self.store.documents:
            return record
        shown = dict(record)
        shown["Size"] = self.file_size(record["Id"])
        shown["TempDownloadUri"] = self.temp_url(request, record["Id"])
        return shown

    def file_size(self, attachable_id: str) -> int:
        if attachable_id in self.raw_files:
            return len(self.raw_files[attachable_id][0])
        if attachable_id not in self.sizes:
            self.sizes[attachable_id] = len(render_pdf(self.store.documents[attachable_id]))
        return self.sizes[attachable_id]

    def temp_url(self, request: Request, attachable_id: str) -> str:
        expires = int(self.epoch()) + FILE_URL_LIFETIME
        signature = self.sign(f"{attachable_id}.{expires}")
        return f"{request.host_url.rstrip('/')}/_files/{attachable_id}.{expires}.{signature}"

    def sign(self, text: str) -> str:
        return hmac.new(self.file_key, text.encode(), hashlib.sha256).hexdigest()[:40]

    def route_cdc(self, request: Request, realm: str) -> Response:
        """Change data capture: 30-day look-back, 1000 objects in total, deletes (§3.6)."""
        names = [
            name.strip() for name in request.args.get("entities", "").split(",") if name.strip()
        ]
        since_text = request.args.get("changedSince", "")
        if not names or not since_text:
            return self.validation(
                request, "Invalid request", "entities and changedSince are required", "2000"
            )
        try:
            since = parse_qbo_datetime(since_text)
        except ValueError:
            return self.validation(
                request,
                "Invalid date",
                f"changedSince is not a valid date/time: {since_text[:40]}",
                "2000",
            )
        if since < self.now() - CDC_LOOKBACK:
            return self.validation(
                request, "Invalid date", "changedSince must be within the last 30 days", "2000"
            )
        entities = []
        for name in names:
            if self.canonical_entity(name, CDC_UNSUPPORTED):
                return self.validation(
                    request, "Unsupported Entity", f"CDC does not support {name}", "4001"
                )
            entity = self.canonical_entity(name, {*QUERYABLE, *self.store.entities()})
            if entity is None:
                return self.validation(
                    request, "Invalid entity", f"Unknown entity {name[:40]}", "4001"
                )
            entities.append(entity)
        return self.payload(
            request, {"CDCResponse": [{"QueryResponse": self.changes(request, entities, since)}]}
        )

    def changes(self, request: Request, entities: list[str], since: datetime) -> list[dict]:
        budget = CDC_CAP
        groups: list[dict] = []
        for entity in entities:
            stamped = (
                (_stamp(record["MetaData"]["LastUpdatedTime"]), record)
                for record in self.store.records(entity)
            )
            found = [
                (moment, self.present(request, entity, record))
                for moment, record in stamped
                if moment >= since
            ]
            for record_id, stamp in self.store.deleted_since(entity).items():
                moment = _stamp(stamp)
                if moment >= since:
                    found.append(
                        (
                            moment,
                            {
                                "domain": "QBO",
                                "status": "Deleted",
                                "Id": record_id,
                                "MetaData": {"LastUpdatedTime": stamp},
                            },
                        )
                    )
            found.sort(key=lambda pair: pair[0])
            chosen = [record for _, record in found[:budget]]
            budget -= len(chosen)
            if chosen:
                groups.append(
                    {
                        entity: chosen,
                        "startPosition": 1,
                        "maxResults": len(chosen),
                        "totalCount": len(chosen),
                    }
                )
            else:
                groups.append({})
        return groups

    def route_read(self, request: Request, realm: str, entity: str, record_id: str) -> Response:
        """GET /v3/company/{realm}/{entity lowercase}/{id} (§2)."""
        canonical = self.canonical_entity(entity, {*QUERYABLE, *self.store.entities()})
        if canonical is None or entity != entity.lower():
            return self.not_found(request, NotFound())
        record = self.store.get(canonical, record_id)
        if record is None:
            return self.validation(
                request,
                "Object Not Found",
                "Object Not Found : Something you're trying to use has been made inactive"
                f" or deleted ({canonical} {record_id[:40]}).",
                "610",
            )
        return self.payload(request, {canonical: self.present(request, canonical, record)})

    def route_companyinfo(self, request: Request, realm: str, record_id: str) -> Response:
        record = self.store.get("CompanyInfo", record_id)
        if record is None:
            return self.validation(
                request, "Object Not Found", "Object Not Found : CompanyInfo", "610"
            )
        return self.payload(request, {"CompanyInfo": record})

    def route_preferences(self, request: Request, realm: str) -> Response:
        records = self.store.records("Preferences")
        return self.payload(request, {"Preferences": records[0] if records else {}})

    def route_download(self, request: Request, realm: str, record_id: str) -> Response:
        """The temporary URL of an attachment, as text/plain (§4.12)."""
        if self.store.get("Attachable", record_id) is None or record_id not in self.store.documents:
            return self.validation(
                request,
                "Object Not Found",
                f"Object Not Found : Attachable {record_id[:40]}",
                "610",
            )
        return Response(self.temp_url(request, record_id), mimetype="text/plain")

    def route_unsupported(self, request: Request, realm: str, **_: str) -> Response:
        """Writes, batch and everything else: the sandbox is read-only, like Well."""
        return self.validation(
            request,
            "Unsupported Operation",
            f"Operation {request.method} {request.path} is not supported by the read-only sandbox.",
            "500",
        )

    def route_file(self, request: Request, token: str) -> Response:
        """The pre-signed file URL: no auth, expires (S3-style errors, §4.12)."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return _s3_error(403, "AccessDenied", "Invalid signature")
        attachable_id, expires, signature = parts
        if not hmac.compare_digest(signature, self.sign(f"{attachable_id}.{expires}")):
            return _s3_error(403, "SignatureDoesNotMatch", "The request signature does not match")
        if int(expires) < self.epoch():
            return _s3_error(403, "AccessDenied", "Request has expired")
        spec = self.store.documents.get(attachable_id)
        if spec is None or self.store.get("Attachable", attachable_id) is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        raw = self.raw_files.get(attachable_id)
        if raw is not None:
            return Response(raw[0], headers={"Content-Type": raw[1]})
        response = Response(render_pdf(spec), mimetype="application/pdf")
        response.headers["Content-Disposition"] = f'inline; filename="{spec["file_name"]}"'
        return response

    # ---- control API --------------------------------------------------------------------
    def control(self, request: Request, name: str) -> Response:
        try:
            body = json.loads(request.get_data() or b"{}") if request.method == "POST" else {}
        except (ValueError, UnicodeDecodeError):
            return _json({"error": "body must be JSON"}, 400)
        if not isinstance(body, dict):
            return _json({"error": "body must be a JSON object"}, 400)
        try:
            return _json(getattr(self, f"control_{name}")(request.method, body))
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": str(exc)}, 400)
        except LookupError as exc:
            return _json({"error": str(exc)}, 404)

    def control_faults(self, method: str, body: dict) -> dict:
        answer: dict = {}
        body = dict(body)
        if body.pop("clear", False):
            self.faults.clear()
        with self.lock:
            if "access_token_ttl" in body:
                self.oauth.access_token_ttl = int(body.pop("access_token_ttl"))
            if "refresh_rotation" in body:
                rotation = body.pop("refresh_rotation")
                if rotation not in ROTATIONS:
                    raise ValueError(f"refresh_rotation must be one of {ROTATIONS}")
                self.oauth.rotation = rotation
            revoke = body.pop("revoke", None)
            if revoke is True:
                grants = self.oauth.live_grants()
                for grant in grants:
                    grant.revoked = True
                answer["revoked"] = len(grants)
            elif isinstance(revoke, str):
                answer["revoked"] = int(self.oauth.revoke(revoke))
            if body.pop("expire_access", False):
                answer["expired"] = self.oauth.expire_access()
            if body.pop("rotate", False):
                answer["rotated"] = [
                    {"realm_id": grant.realm_id, "refresh_token": self.oauth.rotate(grant)}
                    for grant in self.oauth.live_grants()
                ]
            self._save_oauth()
        self.faults.update(body)
        return {
            **answer,
            "faults": self.faults.as_dict(),
            "access_token_ttl": self.oauth.access_token_ttl,
            "refresh_rotation": self.oauth.rotation,
        }

    def control_stats(self, method: str, body: dict) -> dict:
        with self.lock:
            if body.get("reset"):
                self.stats.clear()
                self.recent_requests.clear()
            return {
                "total": sum(self.stats.values()),
                "calls": dict(self.stats),
                "requests": list(self.recent_requests),
            }

    def control_state(self, method: str, body: dict) -> dict:
        with self.lock:
            grants = len(self.oauth.live_grants())
        return {
            "realm_id": self.store.realm_id,
            **self.store.counts(),
            "grants": grants,
            "now": self.now().isoformat(),
            "clock_offset_seconds": self.clock_offset,
        }

    def control_file(self, method: str, body: dict) -> dict:
        """Serve these bytes (base64) with this Content-Type as an attachable's file."""
        if method != "POST":
            raise ValueError("use POST")
        attachable_id = str(body["id"])
        if attachable_id not in self.store.documents:
            raise LookupError(f"attachable {attachable_id} has no file")
        data = base64.b64decode(str(body["body_base64"]), validate=True)
        with self.lock:
            self.raw_files[attachable_id] = (data, str(body.get("content_type", "")))
        return {"id": attachable_id, "size": len(data)}

    def control_reset(self, method: str, body: dict) -> dict:
        if method != "POST":
            raise ValueError("use POST")
        self.store.reset()
        self.raw_files.clear()
        self.faults.clear()
        self.throttle.clear()
        with self.lock:
            self.stats.clear()
            self.recent_requests.clear()
            if body.get("grants"):
                self.oauth.load({})
            if body.get("clock"):
                self.clock_offset = 0.0
            self._save_oauth()
        return self.control_state("GET", {})

    def control_clock(self, method: str, body: dict) -> dict:
        if method == "POST":
            seconds = float(body.get("advance", body.get("advance_seconds", 0)))
            if seconds < 0:
                raise ValueError("the clock only moves forward")
            with self.lock:
                self.clock_offset += seconds
                self._save_oauth()
        return {"now": self.now().isoformat(), "offset_seconds": self.clock_offset}

    def control_mutate(self, method: str, body: dict) -> dict:
        """Simulate bookkeeping between syncs: edit, delete or add records."""
        if method != "POST":
            raise ValueError("use POST")
        action = body.get("action")
        entity = self.canonical_entity(str(body.get("entity", "")), self.store.entities())
        if entity is None:
            raise LookupError(f"unknown entity {body.get('entity')!r}")
        moment = self.now()
        if action == "edit":
            changes = body.get("set") or {
                "PrivateNote": f"Edited in sandbox at {format_qbo_datetime(moment)}"
            }
            if not isinstance(changes, dict) or {"Id", "MetaData", "SyncToken"} & set(changes):
                raise ValueError("set must be an object without Id, MetaData or SyncToken")
            if self.store.edit(entity, str(body["id"]), changes, moment) is None:
                raise LookupError(f"{entity} {body['id']} not found")
            ids = [str(body["id"])]
        elif action == "delete":
            if not self.store.delete(entity, str(body["id"]), moment):
                raise LookupError(f"{entity} {body['id']} not found")
            ids = [str(body["id"])]
        elif action == "add":
            count = int(body.get("count", 1))
            if not 1 <= count <= 10_000:
                raise ValueError("count must be 1 to 10000")
            ids = self.store.add_like(entity, count, moment, self.rng)
        else:
            raise ValueError("action must be edit, delete or add")
        return {"action": action, "entity": entity, "ids": ids}


def _rules() -> list[Rule]:
    company = "/v3/company/<realm>"
    return [
        Rule("/connect/oauth2", methods=["GET", "POST"], endpoint="authorize"),
        Rule("/oauth2/v1/tokens/bearer", methods=["POST"], endpoint="token"),
        Rule("/v2/oauth2/tokens/revoke", methods=["POST"], endpoint="revoke"),
        Rule("/v1/openid_connect/userinfo", methods=["GET"], endpoint="userinfo"),
        Rule("/op/v1/jwks", methods=["GET"], endpoint="jwks"),
        Rule("/.well-known/openid_configuration/", methods=["GET"], endpoint="discovery"),
        Rule("/.well-known/openid_sandbox_configuration/", methods=["GET"], endpoint="discovery"),
        Rule("/.well-known/openid-sandbox-configuration", methods=["GET"], endpoint="discovery"),
        Rule("/.well-known/openid-configuration", methods=["GET"], endpoint="discovery"),
        Rule(f"{company}/query", methods=["GET", "POST"], endpoint="query"),
        Rule(f"{company}/cdc", methods=["GET"], endpoint="cdc"),
        Rule(f"{company}/companyinfo/<record_id>", methods=["GET"], endpoint="companyinfo"),
        Rule(f"{company}/preferences", methods=["GET"], endpoint="preferences"),
        Rule(f"{company}/download/<record_id>", methods=["GET"], endpoint="download"),
        Rule(f"{company}/<entity>/<record_id>", methods=["GET"], endpoint="read"),
        Rule(f"{company}/<path:rest>", endpoint="unsupported"),
        Rule(f"{company}", endpoint="unsupported"),
        Rule("/_files/<token>", methods=["GET"], endpoint="file"),
        *[
            Rule(f"/_sandbox/{name}", methods=["GET", "POST"], endpoint=f"control_{name}")
            for name in ("faults", "stats", "state", "reset", "clock", "mutate", "file")
        ],
    ]


def _json(data: object, status: int = 200) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False), status=status, mimetype="application/json"
    )


def _redirect(uri: str, params: dict) -> Response:
    separator = "&" if urlsplit(uri).query else "?"
    response = Response("", status=302)
    response.headers["Location"] = f"{uri}{separator}{urlencode(params)}"
    return response


def _local_redirect(uri: str) -> bool:
    """Any http(s) redirect URI on the loopback host is registered (sandbox rule)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and (parts.hostname or "") in LOCAL_HOSTS


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status=status, mimetype="application/xml")
