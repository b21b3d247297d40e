"""Child process that parses one untrusted PDF under memory and CPU limits; JSON out on stdout.

Run as `python -I pdf_worker.py <memory_bytes> <cpu_seconds> <max_pages> <max_chars> <positions>`
with the PDF on stdin. It imports only the standard library and pypdf (never Django), so it
starts fast and a hostile file can only hurt this short-lived process.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import sys
from typing import Any

# Imported before `main` caps the process, so the limit measures the file's cost, not pypdf's.
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

# Entries that make a viewer run code, start a program or send data when the file is opened or
# touched. Looked for in the parsed object tree (names are decoded there, so `/J#53` is `/JS`),
# never by searching the raw bytes. Embedded files stay allowed: Factur-X and ZUGFeRD e-invoices
# carry their XML as one, and no viewer opens an attachment without a launch action.
_ACTIVE_KEYS = {
    "/JS": "JavaScript",
    "/JavaScript": "JavaScript",
    "/AA": "automatic actions (/AA)",
    "/RichMedia": "embedded media (/RichMedia)",
    "/XFA": "an XFA form",
}
_ACTIVE_ACTIONS = {
    "/JavaScript": "JavaScript",
    "/Launch": "a launch action",
    "/SubmitForm": "a form that sends data (/SubmitForm)",
    "/ImportData": "a form that imports data (/ImportData)",
    "/RichMediaExecute": "embedded media (/RichMedia)",
}
# How many objects (indirect and direct) the walk visits before refusing the file as too complex.
MAX_WALK = 200_000


def _limit(kind: int, value: int) -> None:
    """Lower one resource limit, never above what the parent already allows."""
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _apply_limits(memory_bytes: int, cpu_seconds: int) -> None:
    """Cap address space and CPU; forbid core dumps and file writes."""
    _limit(resource.RLIMIT_AS, memory_bytes)
    _limit(resource.RLIMIT_CPU, cpu_seconds)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_FSIZE, 0)


def _active_content(reader: PdfReader) -> list[str] | None:
    """What in the document can run or send something, from the catalog down; None when the
    tree is too large to walk within MAX_WALK objects."""
    found: dict[str, None] = {}
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [reader.trailer.raw_get("/Root")]
    visited = 0
    while stack:
        node = stack.pop()
        visited += 1
        if visited > MAX_WALK:
            return None
        if isinstance(node, IndirectObject):
            ref = (node.idnum, node.generation)
            if ref in seen:
                continue
            seen.add(ref)
            node = node.get_object()
        if isinstance(node, DictionaryObject):  # stream dictionaries too, not their data
            for key, value in dict.items(node):
                if key in _ACTIVE_KEYS:
                    found[_ACTIVE_KEYS[key]] = None
                if key == "/S" and isinstance(value, NameObject) and value in _ACTIVE_ACTIONS:
                    found[_ACTIVE_ACTIONS[value]] = None
                stack.append(value)
        elif isinstance(node, ArrayObject):
            stack.extend(list.__iter__(node))  # the raw items: references stay references
    return list(found)


def _inspect(data: bytes, max_pages: int, max_chars: int, positions: bool) -> dict[str, Any]:
    """Open the PDF and report encryption, active content, page count, text (and positions)."""
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        return {"status": "encrypted"}
    active = _active_content(reader)
    if active is None:
        return {"status": "too_many_objects"}
    if active:
        return {"status": "active", "found": active}
    page_count = len(reader.pages)
    if page_count > max_pages:
        return {"status": "too_many_pages", "page_count": page_count}
    texts: list[str] = []
    chunks: list[list[Any]] = []
    total = 0
    for number, page in enumerate(reader.pages):
        if total >= max_chars:
            break

        def visit(text, cm, tm, font_dict, font_size, number=number):
            if positions and text.strip() and len(chunks) < 20000:
                # Device-space position: the text matrix translated by the current matrix.
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                chunks.append([number, round(x, 2), round(y, 2), text])

        text = page.extract_text(visitor_text=visit) or ""
        texts.append(text[: max_chars - total])
        total += len(texts[-1])
    return {
        "status": "ok",
        "page_count": page_count,
        "text": "\n".join(texts),
        "chunks": chunks,
    }


def main(argv: list[str]) -> int:
    """Read the PDF from stdin, inspect it, print one JSON object."""
    memory_bytes, cpu_seconds, max_pages, max_chars, positions = (int(a) for a in argv[1:6])
    logging.disable(logging.CRITICAL)
    data = sys.stdin.buffer.read()
    _apply_limits(memory_bytes, cpu_seconds)
    try:
        result = _inspect(data, max_pages, max_chars, bool(positions))
    except MemoryError:
        result = {"status": "memory"}
    except RecursionError:
        result = {"status": "unreadable", "detail": "objects nested too deeply"}
    except Exception as exc:
        name = type(exc).__name__
        result = {"status": "limit" if "Limit" in name else "unreadable", "detail": name}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
