"""Who calls: a partner's API key (`Authorization: Bearer well_…`) or, on the browsable API,
a signed-in member; the workspace comes from the key or the membership, never from the URL."""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from well import api_auth
from well.audit import Actor
from well.models import ApiKey, Membership, Workspace
from well.selectors import membership_get

WORKSPACE_HEADER = "HTTP_X_WELL_WORKSPACE"


class ApiKeyUser:
    """request.user for a key: authenticated, but nobody (the key is in request.auth)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def __str__(self) -> str:
        return str(self.key)

    def get_username(self) -> str:
        return str(self.key)


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer well_…`: a live key of one workspace."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        address = api_auth.client_address(request.META)
        wait = api_auth.auth_failures_wait(address=address)
        if wait is not None:
            raise exceptions.Throttled(
                wait, detail="Too many wrong API keys from this address; try again later."
            )
        try:
            key = api_auth.api_key_authenticate(secret=secret.strip())
        except api_auth.KeyExpired as exc:
            api_auth.auth_failure_record(address=address)
            raise exceptions.AuthenticationFailed(
                f"{exc} Create a new key in the workspace settings."
            ) from None
        if key is None:
            api_auth.auth_failure_record(address=address)
            raise exceptions.AuthenticationFailed("This API key is unknown or revoked.")
        return ApiKeyUser(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "well_…"}


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling, for which workspace, with what role (a key's scopes map to a role)."""

    workspace: Workspace
    actor: Actor
    role: str
    membership: Membership | None
    key: ApiKey | None

    def allows(self, role: str) -> bool:
        if self.key is not None:
            return self.key.allows(role)
        return self.membership is not None and self.membership.allows(role)


def caller_for(request) -> ApiCaller:
    """Resolve the caller once per request; a non-member's workspace is a 404."""
    cached = getattr(request, "_well_caller", None)
    if cached is not None:
        return cached
    if isinstance(request.auth, ApiKey):
        key = request.auth
        caller = ApiCaller(key.workspace, api_auth.api_key_actor(key), key.role, None, key)
    else:
        user = request.user
        slug = request.META.get(WORKSPACE_HEADER) or request.session.get("workspace_slug", "")
        if not slug:
            raise exceptions.NotFound(
                "Say which workspace: open it in Well first, or send X-Well-Workspace."
            )
        membership = membership_get(user=user, workspace_slug=slug)
        caller = ApiCaller(
            membership.workspace, Actor.user(user), membership.role, membership, None
        )
    request._well_caller = caller
    return caller


class HasScope(BasePermission):
    """Reads need the read scope (viewer); writes the role the view names for the action."""

    message = "This API key's scopes (or your role) do not allow this."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        caller = caller_for(request)
        return caller.allows(view.required_role(request))
