"""Ordered multipart parsing for the Qonto sandbox (Rails array-of-hashes needs the part order)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

CHUNK_SIZE = 64 * 1024
_ITEM_FIELD = re.compile(r"^supplier_invoices\[\]\[([A-Za-z_]+)\]$")


class MalformedMultipart(ValueError):
    """The body is not well-formed multipart/form-data."""


class BodyTooLarge(Exception):
    """The body, a form field or the number of parts is over its limit."""


@dataclass
class Part:
    """One multipart part, in the order it was sent."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytearray = field(default_factory=bytearray)

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    def text(self) -> str:
        """The part as text (invalid UTF-8 replaced rather than refused)."""
        return bytes(self.data).decode("utf-8", "replace")


def parse_parts(
    stream, boundary: bytes, *, max_form_memory_size: int, max_parts: int
) -> list[Part]:
    """Decode every part in order with Werkzeug's multipart decoder."""
    # Werkzeug applies this limit to its whole undecoded buffer, which may already hold most of
    # a chunk; fields are held to `max_form_memory_size` one by one in _drain_events.
    decoder = MultipartDecoder(
        boundary, max_form_memory_size=max_form_memory_size + CHUNK_SIZE, max_parts=max_parts
    )
    parts: list[Part] = []
    finished = False
    try:
        while True:
            chunk = stream.read(CHUNK_SIZE)
            decoder.receive_data(chunk or None)
            finished = _drain_events(decoder, parts, max_form_memory_size) or finished
            if not chunk:
                break
    except RequestEntityTooLarge as exc:
        raise BodyTooLarge(str(exc)) from exc
    except ValueError as exc:
        raise MalformedMultipart(str(exc)) from exc
    if not finished:
        raise MalformedMultipart("multipart body ends before its closing boundary")
    return parts


def _drain_events(decoder: MultipartDecoder, parts: list[Part], field_limit: int) -> bool:
    """Consume the decoder's ready events; True once the closing boundary was seen."""
    while True:
        event = decoder.next_event()
        if isinstance(event, NeedData):
            return False
        if isinstance(event, Epilogue):
            return True
        if isinstance(event, File):
            parts.append(Part(event.name, event.filename, event.headers.get("content-type")))
        elif isinstance(event, Field):
            parts.append(Part(event.name, None, event.headers.get("content-type")))
        elif isinstance(event, Data) and parts:
            current = parts[-1]
            current.data.extend(event.data)
            if not current.is_file and len(current.data) > field_limit:
                raise BodyTooLarge("form field too large")


@dataclass
class BulkForm:
    """The bulk upload form: items in order plus the request-wide scalars."""

    items: list[dict[str, Part]]
    scalars: dict[str, str]


def group_bulk_items(parts: list[Part]) -> BulkForm:
    """Group `supplier_invoices[][x]` parts the way Rack builds an array of hashes."""
    items: list[dict[str, Part]] = []
    scalars: dict[str, str] = {}
    for part in parts:
        match = _ITEM_FIELD.match(part.name)
        if match:
            key = match.group(1)
            # Rack starts a new hash when the current one already has this key.
            if not items or key in items[-1]:
                items.append({})
            items[-1][key] = part
        elif part.name in ("source", "meta", "skip_attachment_matcher"):
            scalars[part.name] = part.text()
    return BulkForm(items=items, scalars=scalars)
