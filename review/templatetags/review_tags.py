"""Display helpers for the review pages: words and widths, never decisions."""

from __future__ import annotations

from django import template

from connectors.quickbooks.models import RecordState

register = template.Library()

SIGNAL_NAMES = {
    "amount": "Amount",
    "date": "Date",
    "counterparty": "Supplier name",
    "reference": "Reference",
    "currency": "Currency",
    "kind": "Kind of entry",
    "usage": "Not used elsewhere",
    "runner_up": "Runner-up",
    "ledger": "Ledger account",
    "gate": "Rule",
    "create": "Upload as new",
    "tax_id": "Tax ID",
    "vendor": "Vendor history",
}


@register.filter
def signal_name(signal: str) -> str:
    return SIGNAL_NAMES.get(signal, str(signal).replace("_", " ").capitalize())


@register.filter
def bar_width(weight) -> float:
    """Half-bar width in percent for a log-odds weight (±4 fills it)."""
    try:
        return round(min(abs(float(weight)) / 4.0, 1.0) * 50, 1)
    except (TypeError, ValueError):
        return 0.0


@register.filter
def percent(value) -> str:
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return "—"


@register.filter
def state_label(state: str) -> str:
    try:
        return RecordState(state).label
    except ValueError:
        return str(state)


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
