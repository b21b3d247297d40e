"""The partner API's plumbing: the base views every endpoint derives from, cursor pages, the
per-key throttle, idempotent writes, and the 404 of unknown paths.

Every API view derives from `WorkspaceAPIView` (or `WorkspaceViewSet`): the workspace comes from
the API key (or, for the browsable API, from the signed-in person's membership), never from the
URL, and every object is looked up inside it.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from api.authentication import ApiCaller, ApiKeyAuthentication, HasScope, caller_for
from api.errors import IdempotencyMismatch, api_exception_handler
from well import api_auth
from well.models import ApiKey, Role, Workspace


def enum_field(choices, **kwargs) -> serializers.ChoiceField:
    """A choice field whose enum is inlined in the schema (no clash of component names
    between, say, a record's state and a posting's state)."""

    # Wrapped in anyOf: drf-spectacular's enum hook only lifts top-level enums into components.
    @extend_schema_field({"anyOf": [{"type": "string", "enum": [v for v, _ in choices]}]})
    class InlineEnum(serializers.ChoiceField):
        pass

    return InlineEnum(choices, **kwargs)


class Cursor(CursorPagination):
    """Opaque `next`/`previous` cursors: stable under inserts, no COUNT(*) per page.

    A cursor is decoded and its position checked against the ordering column's type before any
    query: a forged or damaged one is a 400 in the API's error shape, never a database error.
    """

    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = "-pk"
    invalid_cursor_message = "The cursor is not one this API gave out; start from the first page."

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except (exceptions.NotFound, UnicodeError):
            cursor = None
            valid = False
        else:
            valid = cursor is None or self._position_valid(cursor.position)
        if not valid:
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            )
        return cursor

    def _position_valid(self, position: str | None) -> bool:
        """Whether a cursor's position is a value of the first ordering column."""
        if position is None:
            return True
        if "\x00" in position or len(position) > 100:
            return False
        name = self.ordering[0].lstrip("-")
        opts = self._model._meta
        field = opts.pk if name == "pk" else opts.get_field(name)
        try:
            value = field.to_python(position)
        except DjangoValidationError:
            return False
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            return False  # past PostgreSQL's bigint
        return value is not None


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
