"""Render a QBO JSON payload as the XML `IntuitResponse` QBO answers without `Accept: json`.

Reference: quickbooks-api.md §2 (XML is the default), §3.4 (IntuitResponse attributes), §7
(quickbooks-ruby XML fixtures). A generic dict→XML mapping: entity flags and paging counters
become attributes, lists become repeated elements.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

NAMESPACE = "http://schema.intuit.com/finance/v3"
_ATTRIBUTES = frozenset(
    {
        "domain",
        "sparse",
        "status",
        "startPosition",
        "maxResults",
        "totalCount",
        "type",
        "code",
        "element",
        "time",
        "requestId",
    }
)


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _element(tag: str, value: object, out: list[str]) -> None:
    """Append `<tag>` for one value (dict, scalar); lists are handled by the caller."""
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _element(tag, item, out)
        return
    if not isinstance(value, dict):
        out.append(f"<{tag}>{escape(_scalar(value))}</{tag}>")
        return
    if "value" in value and set(value) <= {"value", "name", "type"}:
        # ReferenceType: <VendorRef name="Acme">56</VendorRef> (XSD ReferenceType, §4.1).
        extra = "".join(
            f" {key}={quoteattr(_scalar(value[key]))}" for key in ("name", "type") if key in value
        )
        out.append(f"<{tag}{extra}>{escape(_scalar(value['value']))}</{tag}>")
        return
    attributes = "".join(
        f" {key}={quoteattr(_scalar(item))}"
        for key, item in value.items()
        if key in _ATTRIBUTES and item is not None and not isinstance(item, dict | list)
    )
    children: list[str] = []
    for key, item in value.items():
        if key in _ATTRIBUTES and not isinstance(item, dict | list):
            continue
        _element(key, item, children)
    out.append(f"<{tag}{attributes}>{''.join(children)}</{tag}>")


def to_xml(payload: dict) -> bytes:
    """The IntuitResponse document for a JSON-shaped payload (`time` becomes an attribute)."""
    body = dict(payload)
    time = body.pop("time", None)
    children: list[str] = []
    for key, value in body.items():
        _element(key, value, children)
    stamp = f" time={quoteattr(str(time))}" if time is not None else ""
    text = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse xmlns="{NAMESPACE}"{stamp}>{"".join(children)}</IntuitResponse>'
    )
    return text.encode("utf-8")
