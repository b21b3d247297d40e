"""Logging helpers: every record carries the request or task ID it belongs to."""

from __future__ import annotations

import logging

from well.context import current_request_id


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True
