"""The partner API's plumbing: key auth, scopes, one error shape, cursor pages, per-key throttle.

Every API view derives from `WorkspaceAPIView` (or `WorkspaceViewSet`): the workspace comes from
the API key (or, for the browsable API, from the signed-in person's membership), never from the
URL, and every object is looked up inside it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import django_filters
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import Http404
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, extend_schema_field
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView, set_rollback
from rest_framework.viewsets import GenericViewSet

from well import api_auth, webhooks
from well.audit import Actor
from well.models import (
    ApiKey,
    ApiScope,
    AuditEvent,
    DeliveryState,
    Membership,
    Role,
    WebhookEndpoint,
    WebhookEvent,
    Workspace,
)
from well.request_limits import RequestTooLarge
from well.selectors import membership_get
from well.services import ThresholdError, workspace_thresholds_update

logger = logging.getLogger("well.api")

WORKSPACE_HEADER = "HTTP_X_WELL_WORKSPACE"


# --- authentication -------------------------------------------------------------------------


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
        key = api_auth.api_key_authenticate(secret=secret.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("This API key is unknown or revoked.")
        return ApiKeyUser(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "well.api.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "well_…"}


# --- the workspace and what the caller may do in it ----------------------------------------


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


# --- errors: one shape everywhere ----------------------------------------------------------

CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "idempotency_mismatch",
    429: "throttled",
}


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The request conflicts with the object's current state."
    default_code = "conflict"


class IdempotencyMismatch(exceptions.APIException):
    status_code = 422
    default_detail = "This Idempotency-Key was used with another request."
    default_code = "idempotency_mismatch"


def _flatten(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            ("non_field_errors" if k == "__all__" else str(k)): [str(x) for x in _as_list(v)]
            for k, v in detail.items()
        }
    return {"non_field_errors": [str(x) for x in _as_list(detail)]}


def _as_list(value) -> list:
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(_as_list(item) if isinstance(item, list | dict) else [item])
        return out
    if isinstance(value, dict):
        return [f"{k}: {', '.join(map(str, _as_list(v)))}" for k, v in value.items()]
    return [value]


def error_body(*, code: str, detail: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "detail": detail, "fields": fields or {}}}


def api_exception_handler(exc, context):
    """Every error as {"error": {"code", "detail", "fields"}}; unknown ones as a logged 500."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, ThresholdError):
        exc = exceptions.ValidationError({"__all__": [str(exc)]})
    elif isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
        exc = RequestTooLarge(f"The request body is over {limit:.1f} MB; nothing was changed.")
    if not isinstance(exc, exceptions.APIException):
        logger.exception("API error", exc_info=exc)
        set_rollback()
        return Response(
            error_body(code="server_error", detail="Something went wrong on our side."),
            status=500,
        )
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    if isinstance(exc, exceptions.ValidationError):
        body = error_body(
            code="invalid", detail="Some fields are not valid.", fields=_flatten(exc.detail)
        )
    else:
        code = CODES.get(exc.status_code) or getattr(exc, "default_code", "error")
        body = error_body(code=code, detail=str(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def enum_field(choices, **kwargs) -> serializers.ChoiceField:
    """A choice field whose enum is inlined in the schema (no clash of component names
    between, say, a record's state and a posting's state)."""

    # Wrapped in anyOf: drf-spectacular's enum hook only lifts top-level enums into components.
    @extend_schema_field({"anyOf": [{"type": "string", "enum": [v for v, _ in choices]}]})
    class InlineEnum(serializers.ChoiceField):
        pass

    return InlineEnum(choices, **kwargs)


class ErrorSerializer(serializers.Serializer):
    class _Error(serializers.Serializer):
        code = serializers.CharField()
        detail = serializers.CharField()
        fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

    error = _Error()


ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 405, 406, 409, 415, 422, 429)}


# --- pages and throttles -------------------------------------------------------------------


class Cursor(CursorPagination):
    """Opaque `next`/`previous` cursors: stable under inserts, no COUNT(*) per page."""

    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = "-pk"


class CursorByCreated(Cursor):
    """For UUID-keyed rows: newest first by creation time."""

    ordering = "-created_at"


class PerKeyThrottle(SimpleRateThrottle):
    """Requests per API key (or per person on the browsable API), from the settings' rate."""

    scope = "api_key"

    def get_rate(self):
        rates = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_THROTTLE_RATES", {})
        return rates.get(self.scope) or "600/min"

    def allow_request(self, request, view):
        # Re-read the rate on every call: tests and operators may change it at run time.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle_api_{ident}"


# --- base views ----------------------------------------------------------------------------


class WorkspaceAPIMixin:
    """Auth, scope, throttle, errors and pages for every partner endpoint."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [PerKeyThrottle]
    pagination_class = Cursor
    # Role needed per HTTP method; views override for their actions.
    roles = {"GET": Role.VIEWER, "HEAD": Role.VIEWER, "OPTIONS": Role.VIEWER}
    write_role = Role.ACCOUNTANT

    def required_role(self, request) -> str:
        action_roles = getattr(self, "action_roles", {})
        action = getattr(self, "action", None)
        if action in action_roles:
            return action_roles[action]
        return self.roles.get(request.method, self.write_role)

    def get_exception_handler(self):
        return api_exception_handler

    def filter_queryset(self, queryset):
        # No filter asked for: skip building django-filter's form (a third of a list's time).
        filterset = getattr(self, "filterset_class", None)
        if filterset is not None and not set(self.request.query_params) & set(
            filterset.base_filters
        ):
            return queryset
        return super().filter_queryset(queryset)

    def http_method_not_allowed(self, request, *args, **kwargs):
        # Another workspace's object is a 404 whatever the method: a 405 would confirm it exists.
        if getattr(self, "lookup_url_kwarg", None) in kwargs:
            self.get_object()
        return super().http_method_not_allowed(request, *args, **kwargs)

    @property
    def caller(self) -> ApiCaller:
        return caller_for(self.request)

    @property
    def workspace(self) -> Workspace:
        return self.caller.workspace

    def check_idempotent(self, run):
        """Run a write once per Idempotency-Key of this key: a retry gets the first answer."""
        request = self.request
        idem = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()
        key = self.caller.key
        if not idem or key is None:
            return run()
        if len(idem) > 200:
            raise exceptions.ValidationError({"Idempotency-Key": ["At most 200 characters."]})
        fingerprint = api_auth.request_fingerprint(
            method=request.method, path=request.path, body=_canonical(request.data)
        )
        stored = api_auth.idempotency_get(key=key, idempotency_key=idem)
        if stored is None:
            with transaction.atomic():
                if api_auth.idempotency_claim(
                    key=key, idempotency_key=idem, fingerprint=fingerprint
                ):
                    response = run()
                    if 200 <= response.status_code < 300:
                        api_auth.idempotency_store(
                            key=key,
                            idempotency_key=idem,
                            status_code=response.status_code,
                            body=response.data,
                        )
                        return response
                    # Not a success: nothing was done, so nothing is kept; a retry runs again.
                    transaction.set_rollback(True)
                    return response
            stored = api_auth.idempotency_get(key=key, idempotency_key=idem)
            if stored is None:  # the other request failed and rolled back: run it here
                return run()
        if stored.fingerprint != fingerprint:
            raise IdempotencyMismatch()
        response = Response(stored.body, status=stored.status_code)
        response["Idempotent-Replayed"] = "true"
        return response


def _canonical(data) -> bytes:
    try:
        return json.dumps(data, sort_keys=True, default=str).encode()
    except TypeError:
        return repr(data).encode()


class WorkspaceAPIView(WorkspaceAPIMixin, APIView):
    pass


class WorkspaceViewSet(WorkspaceAPIMixin, GenericViewSet):
    pass


@csrf_exempt
def not_found_view(request, *args, **kwargs):
    """Unknown paths under /api/v1/ answer in the API's error shape, not as an HTML page."""
    return _NotFound.as_view()(request, *args, **kwargs)


class _NotFound(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get_exception_handler(self):
        return api_exception_handler

    def initial(self, request, *args, **kwargs):
        raise exceptions.NotFound("No such endpoint.")


# --- workspace and API keys ----------------------------------------------------------------


class WorkspaceOut(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.CharField()
    storage_region = serializers.CharField()
    auto_threshold = serializers.FloatField()
    review_threshold = serializers.FloatField()


class ThresholdsIn(serializers.Serializer):
    auto_threshold = serializers.FloatField(min_value=0, max_value=1)
    review_threshold = serializers.FloatField(min_value=0, max_value=1)


class WorkspaceView(WorkspaceAPIView):
    """The key's workspace: its thresholds (PATCH needs the admin scope)."""

    roles = {**WorkspaceAPIView.roles, "PATCH": Role.OWNER}
    write_role = Role.OWNER

    @extend_schema(responses={200: WorkspaceOut, **ERRORS})
    def get(self, request):
        return Response(WorkspaceOut(self.workspace).data)

    @extend_schema(request=ThresholdsIn, responses={200: WorkspaceOut, **ERRORS})
    def patch(self, request):
        data = ThresholdsIn(data=request.data)
        data.is_valid(raise_exception=True)
        workspace = workspace_thresholds_update(
            workspace=self.workspace, actor=self.caller.actor, **data.validated_data
        )
        return Response(WorkspaceOut(workspace).data)


class ApiKeyOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.ChoiceField(ApiScope.choices))
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeyCreated(ApiKeyOut):
    key = serializers.CharField(help_text="the secret: shown once, never again")


class ApiKeyIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(ApiScope.choices), min_length=1)


class ApiKeyViewSet(WorkspaceViewSet):
    """The workspace's API keys (the admin scope): list, create (secret shown once), revoke."""

    queryset = ApiKey.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "api_key_id"
    lookup_value_converter = "int"
    roles = {"GET": Role.OWNER, "HEAD": Role.OWNER, "OPTIONS": Role.VIEWER}
    write_role = Role.OWNER

    def get_queryset(self):
        return api_auth.api_keys_for_workspace(workspace=self.workspace).order_by("-pk")

    @extend_schema(responses={200: ApiKeyOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ApiKeyOut(page, many=True).data)

    @extend_schema(request=ApiKeyIn, responses={201: ApiKeyCreated, **ERRORS})
    def create(self, request):
        data = ApiKeyIn(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = api_auth.api_key_create(
            workspace=self.workspace,
            actor=self.caller.actor,
            created_by=self.caller.membership.user if self.caller.membership else None,
            **data.validated_data,
        )
        return Response({**ApiKeyOut(key).data, "key": secret}, status=201)

    @extend_schema(responses={200: ApiKeyOut, **ERRORS})
    def retrieve(self, request, api_key_id: int):
        return Response(ApiKeyOut(self.get_object()).data)

    @extend_schema(responses={204: None, **ERRORS})
    def destroy(self, request, api_key_id: int):
        api_auth.api_key_revoke(key=self.get_object(), actor=self.caller.actor)
        return Response(status=204)


# --- interactive docs, served from our own static files (CSP: no CDN) ---------------------


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI from drf-spectacular-sidecar's files under /static/, its script split out."""

    url_name = "api-schema"

    @staticmethod
    def _swagger_ui_resource(filename):
        from django.templatetags.static import static

        return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon():
        from django.templatetags.static import static

        return static("drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")


SCHEMA_SETTINGS = {
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SECURITY": [{"apiKey": []}],
    "DESCRIPTION": (
        "Partner API of Well: everything an accountant does in the review pages. "
        "Send `Authorization: Bearer <key>`. Errors are always "
        '`{"error": {"code", "detail", "fields"}}`. See docs/api.md.'
    ),
}


# --- audit trail ---------------------------------------------------------------------------


class AuditEventOut(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor_type = serializers.CharField()
    actor_label = serializers.CharField()
    verb = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField()


class AuditEventFilter(django_filters.FilterSet):
    verb = django_filters.CharFilter()
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = AuditEvent
        fields: list[str] = []


class AuditEventViewSet(WorkspaceViewSet):
    """The workspace's audit trail, newest first (append-only: read only here too)."""

    queryset = AuditEvent.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "audit_event_id"
    lookup_value_converter = "int"
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter

    def get_queryset(self):
        return AuditEvent.objects.for_workspace(self.workspace).order_by("-pk")

    @extend_schema(responses={200: AuditEventOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEventOut(page, many=True).data)

    @extend_schema(responses={200: AuditEventOut, **ERRORS})
    def retrieve(self, request, audit_event_id: int):
        return Response(AuditEventOut(self.get_object()).data)


# --- outgoing webhooks ---------------------------------------------------------------------


class WebhookOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.ChoiceField(WebhookEvent.choices))
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class WebhookCreated(WebhookOut):
    secret = serializers.CharField(help_text="the signing secret: shown once, never again")


class WebhookIn(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(WebhookEvent.choices), required=False, allow_empty=True
    )


class WebhookPatchIn(serializers.Serializer):
    url = serializers.URLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(WebhookEvent.choices), required=False
    )
    active = serializers.BooleanField(required=False)


class DeliveryOut(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField()
    event_id = serializers.UUIDField()
    state = enum_field(DeliveryState.choices)
    attempts = serializers.IntegerField()
    response_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)


class WebhookViewSet(WorkspaceViewSet):
    """Endpoints that receive the workspace's events (the admin scope), and their delivery log."""

    queryset = WebhookEndpoint.objects.none()  # the schema reads parameter types from it

    lookup_url_kwarg = "webhook_id"
    lookup_value_converter = "int"
    roles = {"GET": Role.OWNER, "HEAD": Role.OWNER, "OPTIONS": Role.VIEWER}
    write_role = Role.OWNER

    def get_queryset(self):
        return webhooks.webhook_endpoints_for_workspace(workspace=self.workspace).order_by("-pk")

    @extend_schema(responses={200: WebhookOut(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookOut(page, many=True).data)

    @extend_schema(request=WebhookIn, responses={201: WebhookCreated, **ERRORS})
    def create(self, request):
        data = WebhookIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = webhooks.webhook_endpoint_create(
            workspace=self.workspace,
            url=data.validated_data["url"],
            events=data.validated_data.get("events") or [],
            actor=self.caller.actor,
        )
        return Response({**WebhookOut(endpoint).data, "secret": secret}, status=201)

    @extend_schema(responses={200: WebhookOut, **ERRORS})
    def retrieve(self, request, webhook_id: int):
        return Response(WebhookOut(self.get_object()).data)

    @extend_schema(request=WebhookPatchIn, responses={200: WebhookOut, **ERRORS})
    def partial_update(self, request, webhook_id: int):
        endpoint = self.get_object()
        data = WebhookPatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhooks.webhook_endpoint_update(
            endpoint=endpoint, actor=self.caller.actor, **data.validated_data
        )
        return Response(WebhookOut(endpoint).data)

    @extend_schema(responses={204: None, **ERRORS})
    def destroy(self, request, webhook_id: int):
        webhooks.webhook_endpoint_delete(endpoint=self.get_object(), actor=self.caller.actor)
        return Response(status=204)

    @extend_schema(responses={200: DeliveryOut(many=True), **ERRORS})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, webhook_id: int):
        endpoint = self.get_object()
        page = self.paginate_queryset(webhooks.webhook_deliveries_for_endpoint(endpoint=endpoint))
        return self.get_paginated_response(DeliveryOut(page, many=True).data)
