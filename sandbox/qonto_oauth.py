"""OAuth 2.0 of the Qonto sandbox: consent, tokens, rotation with grace, revocation (§2)."""

from __future__ import annotations

import base64
import hmac
import html
import json
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from werkzeug.wrappers import Request, Response

from sandbox.qonto_store import QontoStore

CODE_TTL = 600  # §2.2: authorization codes live 10 minutes
REFRESH_TTL = 90 * 24 * 3600  # §2.4: refresh tokens live 90 days
REFRESH_GRACE = 60  # §2.4: a rotated refresh token stays usable 60 s after its first use
CHALLENGE_TTL = 1800
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# Message from n8n-io/n8n issue #9178, seen when client credentials come via HTTP Basic (§2.3).
CLIENT_AUTH_FAILED = (
    "Client authentication failed (e.g., unknown client, no client authentication included, "
    "or unsupported authentication method)"
)

KNOWN_SCOPES = frozenset(
    [
        "offline_access",
        "openid",
        "organization.read",
        "supplier_invoice.read",
        "supplier_invoice.write",
        "attachment.read",
        "attachment.write",
        "membership.read",
        "membership.write",
        "payment.write",
        "internal_transfer.write",
        "international_transfer.write",
        "client.read",
        "client.write",
        "client_invoices.read",
        "client_invoice.write",
        "product.read",
        "product.write",
        "team.read",
        "team.write",
        "card.read",
        "card.write",
        "bank_account.write",
        "request_transfers.write",
        "request_cards.write",
        "request_review.write",
        "insurance_contract.read",
        "insurance_contract.write",
        "payment_link.read",
        "payment_link.write",
        "sepa_direct_debit.read",
        "sepa_direct_debit.write",
        "terminal.read",
        "terminal.write",
        "einvoicing.read",
        "embed_auth_link.write",
        "subscription.read",
        "webhook",
    ]
)
# §2.5: listed in OpenAPI or guessed by clients, but refused by the OAuth server.
REFUSED_SCOPES = frozenset(
    {"client_invoice.read", "client_invoices.write", "request_review.read", "beneficiary.trust"}
)
ALL_SCOPES = KNOWN_SCOPES


@dataclass(frozen=True)
class Principal:
    """Who is calling the business API, with which scopes."""

    kind: str  # "oauth" or "api_key"
    scopes: frozenset[str]
    grant_id: str | None = None


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    """An OAuth-style JSON error (§2.3; Hydra shape)."""
    body = {"error": error, "error_description": description}
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _token(prefix: str) -> str:
    """An Ory-style opaque token (§2.2: ory_ac_, ory_at_, ory_rt_)."""
    return f"{prefix}{secrets.token_urlsafe(32)}.{secrets.token_urlsafe(32)}"


def _with_query(uri: str, params: dict) -> str:
    """Append params to a redirect URI, keeping any query it already has."""
    parts = urlsplit(uri)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class OAuthServer:
    """The Hydra-like authorization server of the sandbox."""

    def __init__(
        self, store: QontoStore, *, client_id: str, client_secret: str, access_token_ttl: int
    ) -> None:
        self.store = store
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_token_ttl = access_token_ttl

    # --- consent -----------------------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        """GET shows the consent form; POST records the user's Allow or Deny."""
        if request.method == "POST":
            return self._decide(request)
        args = request.args
        if args.get("client_id") != self.client_id:
            return _html_error("Unknown client_id.")
        redirect_uri = args.get("redirect_uri", "")
        if not _is_local_redirect(redirect_uri):
            return _html_error("redirect_uri must be an http(s) URL on 127.0.0.1 or localhost.")
        state = args.get("state", "")
        problem = self._authorize_problem(args.get("response_type"), state, args.get("scope", ""))
        if problem:
            error, description = problem
            params = {"error": error, "error_description": description, "state": state}
            return _redirect(_with_query(redirect_uri, params))
        challenge = uuid.uuid4().hex
        with self.store.lock:
            self.store.state["challenges"][challenge] = {
                "redirect_uri": redirect_uri,
                "scope": args.get("scope", "").split(),
                "state": state,
                "expires_at": self.store.now() + CHALLENGE_TTL,
            }
            self.store.save()
        return _consent_page(challenge, args.get("scope", "").split(), self._org_name())

    def _authorize_problem(
        self, response_type: str | None, state: str, scope: str
    ) -> tuple[str, str] | None:
        """Why an authorization request must be bounced back to the client, if it must."""
        if response_type != "code":
            return "unsupported_response_type", "Only response_type=code is supported."
        if len(state) < 8:
            # Hydra refuses states shorter than 8 characters.
            return "invalid_state", "The state is missing or has less than 8 characters."
        for name in scope.split():
            if name in REFUSED_SCOPES or name not in KNOWN_SCOPES:
                return (
                    "invalid_scope",
                    f"The OAuth 2.0 Client is not allowed to request scope '{name}'.",
                )
        return None

    def _decide(self, request: Request) -> Response:
        """Turn an Allow into a code, a Deny into access_denied, both redirected to the client."""
        with self.store.lock:
            challenge = self.store.state["challenges"].pop(request.form.get("challenge", ""), None)
            self.store.save()
        if challenge is None or challenge["expires_at"] < self.store.now():
            return _html_error("This consent request is unknown or has expired.")
        redirect_uri, state = challenge["redirect_uri"], challenge["state"]
        if request.form.get("decision") != "allow":
            params = {
                "error": "access_denied",
                "error_description": "The resource owner denied the request.",
                "state": state,
            }
            return _redirect(_with_query(redirect_uri, params))
        code = self._grant_code(redirect_uri, challenge["scope"])
        params = {"code": code, "scope": " ".join(challenge["scope"]), "state": state}
        return _redirect(_with_query(redirect_uri, params))

    def _grant_code(self, redirect_uri: str, scope: list[str]) -> str:
        """Create a grant and its single-use authorization code."""
        code = _token("ory_ac_")
        grant_id = str(uuid.uuid4())
        with self.store.lock:
            now = self.store.now()
            self.store.state["grants"][grant_id] = {
                "id": grant_id,
                "client_id": self.client_id,
                "scope": scope,
                "created_at": now,
                "revoked_at": None,
            }
            self.store.state["codes"][code] = {
                "grant_id": grant_id,
                "redirect_uri": redirect_uri,
                "expires_at": now + CODE_TTL,
                "used_at": None,
            }
            self.store.save()
        return code

    def _org_name(self) -> str:
        """The organisation shown on the consent page."""
        return str(self.store.state["organization"].get("legal_name") or "Sandbox organisation")

    # --- token endpoint ----------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        """POST /oauth2/token: authorization_code and refresh_token grants (§2.3)."""
        refused = self._client_auth_problem(request)
        if refused:
            return refused
        grant_type = request.form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(request.form)
        if grant_type == "refresh_token":
            return self._refresh(request.form.get("refresh_token", ""))
        return oauth_error(
            "unsupported_grant_type", "The authorization grant type is not supported."
        )

    def _client_auth_problem(self, request: Request) -> Response | None:
        """Client credentials must come in the form body only (client_secret_post, §2.3)."""
        if request.headers.get("Authorization", "").lower().startswith("basic"):
            return oauth_error("invalid_client", CLIENT_AUTH_FAILED, 401)
        if request.mimetype != "application/x-www-form-urlencoded":
            return oauth_error(
                "invalid_request", "Content-Type must be application/x-www-form-urlencoded."
            )
        client_id = request.form.get("client_id", "")
        secret = request.form.get("client_secret", "")
        good_id = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        good_secret = hmac.compare_digest(secret.encode(), self.client_secret.encode())
        if not (good_id and good_secret):
            return oauth_error("invalid_client", CLIENT_AUTH_FAILED, 401)
        return None

    def _exchange_code(self, form) -> Response:
        """Swap a fresh, unused code for tokens."""
        with self.store.lock:
            record = self.store.state["codes"].get(form.get("code", ""))
            now = self.store.now()
            if record is None or record["used_at"] is not None or record["expires_at"] <= now:
                return _invalid_grant("The authorization code is invalid, expired or used.")
            if record["redirect_uri"] != form.get("redirect_uri"):
                return _invalid_grant("The redirect_uri does not match the authorization request.")
            grant = self._active_grant(record["grant_id"])
            if grant is None:
                return _invalid_grant("The grant was revoked.")
            record["used_at"] = now
            body = self._issue(grant)
            self.store.save()
        return _json(body)

    def _refresh(self, refresh_token: str) -> Response:
        """Rotate: new pair each time; the old refresh token lives 60 s after first use (§2.4)."""
        with self.store.lock:
            record = self.store.state["refresh_tokens"].get(refresh_token)
            now = self.store.now()
            if record is None or record["revoked"] or record["expires_at"] <= now:
                return _invalid_grant("The refresh token is invalid, expired or revoked.")
            first_used = record["first_used_at"]
            if first_used is not None and now - first_used > REFRESH_GRACE:
                return _invalid_grant("The refresh token was already used.")
            grant = self._active_grant(record["grant_id"])
            if grant is None:
                return _invalid_grant("The grant was revoked.")
            if first_used is None:
                record["first_used_at"] = now
            body = self._issue(grant)
            self.store.save()
        return _json(body)

    def _active_grant(self, grant_id: str) -> dict | None:
        """The grant, unless revoked."""
        grant = self.store.state["grants"].get(grant_id)
        if grant is None or grant["revoked_at"] is not None:
            return None
        return grant

    def _issue(self, grant: dict) -> dict:
        """Mint an access token (and a refresh token with offline_access); caller holds the lock."""
        now = self.store.now()
        access = _token("ory_at_")
        self.store.state["access_tokens"][access] = {
            "grant_id": grant["id"],
            "expires_at": now + self.access_token_ttl,
            "revoked": False,
        }
        body: dict = {
            "access_token": access,
            "expires_in": self.access_token_ttl,
            "scope": " ".join(grant["scope"]),
            "token_type": "bearer",
        }
        if "offline_access" in grant["scope"]:
            refresh = _token("ory_rt_")
            self.store.state["refresh_tokens"][refresh] = {
                "grant_id": grant["id"],
                "expires_at": now + REFRESH_TTL,
                "first_used_at": None,
                "revoked": False,
            }
            body["refresh_token"] = refresh
        if "openid" in grant["scope"]:
            body["id_token"] = self._id_token(grant, now)
        return body

    def _id_token(self, grant: dict, now: float) -> str:
        """A JWT-shaped ID token; the signature is not verifiable (sandbox)."""
        header = {"alg": "RS256", "kid": "sandbox", "typ": "JWT"}
        claims = {
            "iss": "qonto-sandbox",
            "aud": [self.client_id],
            "sub": grant["id"],
            "iat": int(now),
            "exp": int(now + self.access_token_ttl),
        }
        pieces = [_b64(json.dumps(header)), _b64(json.dumps(claims)), _b64(secrets.token_hex(32))]
        return ".".join(pieces)

    # --- revocation --------------------------------------------------------------------------

    def revoke(self, request: Request) -> Response:
        """POST /oauth2/revoke: an access token alone, or a refresh token with its grant."""
        refused = self._client_auth_problem(request)
        if refused:
            return refused
        token = request.form.get("token", "")
        with self.store.lock:
            access = self.store.state["access_tokens"].get(token)
            refresh = self.store.state["refresh_tokens"].get(token)
            if access is not None:
                access["revoked"] = True
            if refresh is not None:
                self.revoke_grant(refresh["grant_id"])
            self.store.save()
        # RFC 7009 §2.2: unknown tokens also answer 200.
        return Response("", status=200)

    def revoke_grant(self, grant_id: str) -> bool:
        """Revoke a grant and so every token issued under it."""
        with self.store.lock:
            grant = self.store.state["grants"].get(grant_id)
            if grant is None:
                return False
            grant["revoked_at"] = grant["revoked_at"] or self.store.now()
            self.store.save()
            return True

    def grant_of(self, token: str) -> str | None:
        """The grant an access or refresh token belongs to."""
        state = self.store.state
        record = state["access_tokens"].get(token) or state["refresh_tokens"].get(token)
        return record["grant_id"] if record else None

    def force_rotation(self, refresh_token: str, *, expire_grace: bool) -> Response:
        """Refresh as another worker would; optionally end the old token's grace at once."""
        response = self._refresh(refresh_token)
        if expire_grace and response.status_code == 200:
            with self.store.lock:
                record = self.store.state["refresh_tokens"][refresh_token]
                record["first_used_at"] = self.store.now() - REFRESH_GRACE - 1
                self.store.save()
        return response

    # --- resource-server side ----------------------------------------------------------------

    def principal_for(self, authorization: str) -> Principal | None:
        """Resolve an Authorization header (Bearer token or API key `login:secret`, §2.1)."""
        if authorization.startswith("Bearer "):
            return self._bearer(authorization[len("Bearer ") :].strip())
        if ":" in authorization and " " not in authorization.strip():
            return self._api_key(authorization.strip())
        return None

    def expire_access(self) -> int:
        """Expire every live access token now (a soak's forced refresh); how many expired."""
        with self.store.lock:
            now = self.store.now()
            live = [
                record
                for record in self.store.state["access_tokens"].values()
                if record["expires_at"] > now
            ]
            for record in live:
                record["expires_at"] = now
            self.store.save()
        return len(live)

    def _bearer(self, token: str) -> Principal | None:
        """A live access token of a live grant."""
        with self.store.lock:
            record = self.store.state["access_tokens"].get(token)
            if record is None or record["revoked"] or record["expires_at"] <= self.store.now():
                return None
            grant = self._active_grant(record["grant_id"])
            if grant is None:
                return None
            return Principal("oauth", frozenset(grant["scope"]), grant["id"])

    def _api_key(self, header: str) -> Principal | None:
        """`login:secret-key`, no Basic, no base64 (§2.1); an API key reaches its own org."""
        login, _, secret = header.partition(":")
        with self.store.lock:
            expected = self.store.state["api_keys"].get(login)
        if expected and hmac.compare_digest(expected.encode(), secret.encode()):
            return Principal("api_key", ALL_SCOPES)
        return None

    def new_api_key(self) -> dict:
        """(Re)generate the organisation's API key; regenerating revokes the old one (§2.1)."""
        with self.store.lock:
            login = str(self.store.state["organization"].get("slug") or "sandbox-org")
            secret = secrets.token_hex(16)
            self.store.state["api_keys"] = {login: secret}
            self.store.save()
        return {"login": login, "secret_key": secret}


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _json(body: dict) -> Response:
    response = Response(json.dumps(body), status=200, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _invalid_grant(description: str) -> Response:
    return oauth_error("invalid_grant", description)


def _redirect(location: str) -> Response:
    return Response("", status=302, headers={"Location": location})


def _is_local_redirect(uri: str) -> bool:
    """Sandbox consent only sends codes back to this machine."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS


def _html_error(message: str) -> Response:
    body = f"<!doctype html><title>OAuth error</title><h1>Error</h1><p>{html.escape(message)}</p>"
    return Response(body, status=400, mimetype="text/html")


def _consent_page(challenge: str, scopes: list[str], org_name: str) -> Response:
    """A minimal consent screen with Allow and Deny buttons."""
    items = "".join(f"<li>{html.escape(scope)}</li>" for scope in scopes)
    body = (
        "<!doctype html><title>Qonto sandbox consent</title>"
        f"<h1>Connect {html.escape(org_name)}?</h1><ul>{items}</ul>"
        '<form method="post" action="/oauth2/auth">'
        f'<input type="hidden" name="challenge" value="{challenge}">'
        '<button name="decision" value="allow">Allow</button>'
        '<button name="decision" value="deny">Deny</button></form>'
    )
    return Response(body, status=200, mimetype="text/html")
