"""The request or task ID of the work in progress, for logs and audit events."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def request_id_bound(request_id: str):
    token = current_request_id.set(request_id)
    try:
        yield request_id
    finally:
        current_request_id.reset(token)
