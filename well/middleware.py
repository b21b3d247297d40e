"""Request middleware: a request ID bound for logs and audit events."""

from __future__ import annotations

import re

from django.utils import timezone

from well.context import current_request_id, new_request_id
from well.i18n import zone_get

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else new_request_id()
        request.request_id = request_id
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class TimeZoneMiddleware:
    """Every request starts in Well's default zone and ends with no zone left active.

    workspace_view then activates the workspace's own zone; without the reset here a thread
    would carry the last workspace's zone into the next request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The partner API speaks UTC (ISO 8601 with Z), whatever a person's pages show.
        if not request.path.startswith("/api/"):
            timezone.activate(zone_get(None))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
