"""Requests too large or malformed for Well: a clear 400 or 413, never a 500.

The limits are settings (DATA_UPLOAD_MAX_MEMORY_SIZE, DATA_UPLOAD_MAX_NUMBER_FIELDS); this module
says so to the person or partner who sent the request.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponse
from django.utils.html import format_html
from rest_framework import exceptions, parsers


def bad_request(request, exception=None):
    """The 400 page (`handler400`): says what was wrong, and a body too large gets a 413."""
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
        status, title = 413, "Request too large"
        message = f"The form sent is too large (over {limit:.1f} MB). Nothing was changed."
    elif isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        status, title = 400, "Bad request"
        message = "The form sent has too many fields. Nothing was changed."
    else:
        status, title = 400, "Bad request"
        message = "The request could not be understood. Nothing was changed."
    page = format_html(
        '<!doctype html><html lang="en"><head><title>{}</title></head>'
        "<body><h1>{}</h1><p>{}</p></body></html>",
        title,
        title,
        message,
    )
    return HttpResponse(page, status=status)


class RequestTooLarge(exceptions.APIException):
    """The partner API's answer to a body over DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = 413
    default_code = "too_large"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested past Python's recursion limit is malformed, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                "JSON parse error - the body is nested too deeply."
            ) from None
