"""Display helpers for the review pages: words and widths, never decisions."""

from __future__ import annotations

from django import template

from connectors.qonto.models import PostingState
from connectors.quickbooks.models import RecordState
from connectors.templatetags import connectors_tags
from review import reasons, words

register = template.Library()


@register.filter
def signal_name(signal: str) -> str:
    return reasons.signal_words(signal)


@register.filter
def reason_text(reason: dict) -> str:
    """A stored reason as a sentence in the reader's language (review/reasons.py)."""
    return reasons.reason_words(reason or {})


@register.filter
def event_reason(event) -> str:
    """An audit event's (or timeline entry's) reason in the reader's language."""
    return reasons.event_reason_words(
        getattr(event, "reason", "") or "", actor_type=getattr(event, "actor_type", "")
    )


@register.filter
def gate_text(gate: str) -> str:
    return reasons.gate_words(gate)


# The record's names as every page and export gives them ("Purchase 1072"): the connectors'
# filters, registered here too so review templates need one library.
register.filter("entity_name", connectors_tags.entity_name)
register.filter("record_name", connectors_tags.record_name)


@register.filter
def verb_text(verb: str) -> str:
    return words.verb_words(verb)


@register.filter
def verb_family_text(verb: str) -> str:
    """The audit filter's choices: "record." is every record event."""
    return words.verb_family_words(verb)


@register.filter
def actor_type_text(actor_type: str) -> str:
    return words.actor_type_words(actor_type)


@register.filter
def bar_width(weight) -> float:
    """Half-bar width in percent for a log-odds weight (±4 fills it)."""
    try:
        return round(min(abs(float(weight)) / 4.0, 1.0) * 50, 1)
    except (TypeError, ValueError):
        return 0.0


@register.filter
def percent(value) -> str:
    """A CSS width ("85%"), not for reading: people read |pct (well_formats)."""
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return "0%"


@register.filter
def state_label(state: str) -> str:
    for choices in (RecordState, PostingState):
        try:
            return choices(state).label
        except ValueError:
            continue
    return str(state or "").replace("_", " ")


@register.filter
def is_weighted(reason: dict) -> bool:
    return reason.get("signal") not in ("gate", "runner_up", "ledger", "create")


@register.filter
def gate_reasons(reasons) -> list:
    return [r for r in reasons or [] if r.get("signal") == "gate"]


@register.filter
def get(mapping, key):
    return (mapping or {}).get(key)


@register.filter
def supplier(record) -> str:
    """The record's supplier: the typed column, else the name QuickBooks refers to."""
    if record.supplier_name:
        return record.supplier_name
    payload = record.payload or {}
    for key in ("VendorRef", "EntityRef"):
        ref = payload.get(key)
        if isinstance(ref, dict) and ref.get("name"):
            return ref["name"]
    return ""


@register.filter
def payload_value(record, key: str) -> str:
    value = (record.payload or {}).get(key)
    return "" if value is None else str(value)
