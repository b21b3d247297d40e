"""Reasons in accountant words, one per signal, with the points each one adds."""

from __future__ import annotations

from .compare import MISSING, weight_key
from .types import Entry, Reason, Record


def money(amount: int | None, code: str = "") -> str:
    """Cents as "1,284.00 EUR"."""
    if amount is None:
        return "no amount"
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{part:02d} {code}".strip()


def _gap_words(record: Record, entry: Entry) -> str:
    if not record.txn_date or not entry.entry_date:
        return "no date to compare"
    days = (entry.entry_date - record.txn_date).days
    if days == 0:
        return "same day"
    unit = "day" if abs(days) == 1 else "days"
    return f"{abs(days)} {unit} {'later' if days > 0 else 'earlier'}"


def _detail(signal: str, level: str, record: Record, entry: Entry, party: str) -> str:
    if signal == "date" and level != MISSING:
        if level == "near_due_date":
            return f"paid near the due date ({record.due_date})"
        if level == "day_month_swapped":
            return "day and month swapped on the scanned invoice"
        return _gap_words(record, entry)
    if signal == "kind":
        what = "supplier invoice" if "invoice" in level else "bank transaction"
        return f"a {record.type} matched to a {what}"
    if signal in ("amount", "currency"):
        return _money_detail(signal, level, record, entry)
    template = _TEXTS.get((signal, level))
    if template is None:
        return f"{signal} missing"
    return template.format(
        name=entry.raw_name, ref=record.raw_reference, party=party, tax=entry.tax_id
    )


_TEXTS = {
    ("counterparty", "same_tax_id"): "same tax ID {tax}",
    ("counterparty", "same_counterparty"): "'{name}' is {party} in past links",
    ("counterparty", "name_same"): "same name: '{name}'",
    ("counterparty", "name_close"): "name close to {party}: '{name}'",
    ("counterparty", "name_similar"): "name similar to {party}: '{name}'",
    ("counterparty", "other_counterparty"): "'{name}' belongs to another vendor",
    ("counterparty", "tax_id_conflict"): "tax ID {tax} is not {party}'s",
    ("counterparty", "different"): "different name: '{name}'",
    ("reference", "exact"): "same reference {ref}",
    ("reference", "in_label"): "reference {ref} appears in the bank label",
    ("reference", "close"): "reference {ref} differs by one or two characters",
    ("reference", "different"): "different reference ({ref})",
    ("usage", "unused"): "not linked to any other record yet",
    ("usage", "paired_payment"): "this payment already settles a supplier invoice in Qonto",
    ("usage", "already_linked"): "already linked to another record",
}


def _money_detail(signal: str, level: str, record: Record, entry: Entry) -> str:
    """Amount and currency reasons; money is only formatted for these signals."""
    if level == MISSING:
        return f"{signal} missing"
    ours = money(record.amount_cents, record.currency)
    theirs = money(entry.amount_cents, entry.currency)
    texts = {
        ("amount", "exact"): f"same amount: {ours}",
        ("amount", "close"): f"amount within 0.5%: {ours} vs {theirs}",
        ("amount", "within_3pct"): f"amount within 3% (fees or exchange rate): {ours} vs {theirs}",
        ("amount", "sign_flip"): f"same amount, opposite sign (credit note): {ours} vs {theirs}",
        ("amount", "different"): f"different amount: {ours} vs {theirs}",
        ("currency", "same"): f"same currency {record.currency}",
        ("currency", "different"): f"different currency: {record.currency} vs {entry.currency}",
    }
    if level == "converted":
        return "Qonto converted it from " + money(entry.local_amount_cents, entry.local_currency)
    return texts.get((signal, level), f"{signal} missing")


def signal_reasons(
    record: Record,
    entry: Entry,
    vector: dict[str, str],
    weights: dict[tuple[str, str], float],
    party: str,
) -> list[Reason]:
    """One reason per signal for a candidate."""
    return [
        Reason(
            signal,
            round(weights.get(weight_key(signal, level, vector), 0.0), 2),
            _detail(signal, level, record, entry, party),
        )
        for signal, level in vector.items()
    ]
