"""One error shape everywhere: {"error": {"code", "detail", "fields"}}, and its schema."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import set_rollback

from well.request_limits import RequestTooLarge
from well.services import ThresholdError

logger = logging.getLogger("well.api")


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


class ErrorSerializer(serializers.Serializer):
    class _Error(serializers.Serializer):
        code = serializers.CharField()
        detail = serializers.CharField()
        fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

    error = _Error()


ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 405, 406, 409, 415, 422, 429)}
