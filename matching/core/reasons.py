"""Reasons in accountant words, one per signal, with the points each one adds.

Each reason also carries its signal, level and parameters as data, so that the pages can say
the same in the reader's language; `detail` is the English wording used by `match_eval`.
"""

from __future__ import annotations

from .compare import LEVEL_INDEX, MISSING, SIGNALS
from .model import Group
from .types import Entry, Reason, Record


def money(amount: int | None, code: str = "") -> str:
    """Cents as "1,284.00 EUR"."""
    if amount is None:
        return "no amount"
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{part:02d} {code}".strip()


def _gap(record: Record, entry: Entry) -> int | None:
    if not record.txn_date or not entry.entry_date:
        return None
    return (entry.entry_date - record.txn_date).days


def _gap_words(days: int | None) -> str:
    if days is None:
        return "no date to compare"
    if days == 0:
        return "same day"
    unit = "day" if abs(days) == 1 else "days"
    return f"{abs(days)} {unit} {'later' if days > 0 else 'earlier'}"


_TEXTS = {
    ("counterparty", "same_tax_id"): "same VAT number {tax}",
    ("counterparty", "same_counterparty"): "'{name}' is {party} in past links",
    ("counterparty", "name_same"): "same name: '{name}'",
    ("counterparty", "name_close"): "name close to {party}: '{name}'",
    ("counterparty", "name_similar"): "name similar to {party}: '{name}'",
    ("counterparty", "other_counterparty"): "'{name}' belongs to another vendor",
    ("counterparty", "tax_id_conflict"): "VAT number {tax} is not {party}'s",
    ("counterparty", "different"): "different name: '{name}'",
    ("text", "same"): "same wording as the bank label: '{label}'",
    ("text", "contained"): "the note and the bank label '{label}' agree as far as both go",
    ("text", "close"): "note close to the bank label '{label}'",
    ("text", "similar"): "note similar to the bank label '{label}'",
    ("text", "different"): "note unlike the bank label '{label}'",
    ("reference", "exact"): "same invoice number {ref}",
    ("reference", "in_label"): "invoice number {ref} appears in the bank label",
    ("reference", "close"): "invoice number {ref} differs by one or two characters",
    ("reference", "different"): "different invoice number ({ref})",
    ("payment", "free"): "this payment settles no other invoice in Qonto",
    ("payment", "settles_an_invoice"): "this payment already settles a supplier invoice in Qonto",
    ("date", "day_month_swapped"): "day and month swapped on the scanned invoice",
    ("date", "one_year_apart"): "same day and month, the year misread on the scanned invoice",
    ("date", "one_period_apart"): "a month apart: the previous or next subscription period",
}

_AMOUNT_TEXTS = {
    "exact": "same amount: {ours}",
    "close": "amount within 0.5%: {ours} vs {theirs}",
    "with_or_without_vat": "the same amount with or without VAT: {ours} vs {theirs}",
    "within_3pct": "amount within 3% (fees or exchange rate): {ours} vs {theirs}",
    "within_6pct": "amount within 6%: {ours} vs {theirs}",
    "within_10pct": "amount within 10%: {ours} vs {theirs}",
    "within_15pct": "amount within 15%: {ours} vs {theirs}",
    "sign_flip": "same amount, opposite sign (credit note): {ours} vs {theirs}",
    "different": "different amount: {ours} vs {theirs}",
}


def _params(record: Record, entry: Entry, party: str) -> dict[str, str]:
    gap = _gap(record, entry)
    theirs = money(entry.amount_cents, entry.currency)
    local = (entry.local_amount_cents, entry.local_currency)
    return {
        "name": entry.raw_name,
        "party": party or "the vendor",
        "tax": entry.tax_id,
        "ref": record.raw_reference,
        "label": entry.label or entry.raw_name,
        "ours": money(record.amount_cents, record.currency),
        "theirs": theirs,
        # Most entries were not converted: their local amount is the amount, worded already.
        "converted": theirs if local == (entry.amount_cents, entry.currency) else money(*local),
        "days": "" if gap is None else str(gap),
        "currency": record.currency,
        "entry_currency": entry.currency,
    }


def detail(signal: str, level: str, params: dict[str, str]) -> str:
    """The English wording of one signal's level."""
    if level == MISSING:
        return f"{signal} not available on both sides"
    if signal == "amount":
        return _AMOUNT_TEXTS[level].format_map(params)
    if signal == "currency":
        if level == "converted":
            return f"Qonto converted it from {params['converted']}"
        if level == "same":
            return f"same currency {params['currency']}"
        return f"different currency: {params['currency']} vs {params['entry_currency']}"
    if signal == "date" and (signal, level) not in _TEXTS:
        return _gap_words(int(params["days"]) if params["days"] else None)
    return _TEXTS[(signal, level)].format_map(params)


def signal_reasons(
    record: Record,
    entry: Entry,
    vector: dict[str, str],
    group: Group,
    party: str,
    total: float | None = None,
) -> list[Reason]:
    """One reason per signal for a candidate, each with its points (log2 likelihood ratio)
    under the group's weights."""
    params = _params(record, entry, party)
    weights, rounded = group.weight_rows()
    reasons = []
    points = 0.0
    for k, signal in enumerate(SIGNALS):
        level = vector[signal]
        index = LEVEL_INDEX[signal][level]
        points += weights[k][index]
        if level == MISSING and signal in ("payment", "text"):
            continue  # nothing to say: an invoice has no payment side, a bill no memo
        reasons.append(
            Reason(signal, rounded[k][index], detail(signal, level, params), level, params)
        )
    rarity = 0.0 if total is None else total - points
    if abs(rarity) >= 0.5:
        # Term frequency: a common amount or label counts less, a rare one more.
        reasons.append(
            Reason(
                "rarity",
                round(rarity, 2),
                "the matched amount or label is "
                + ("rare among Qonto entries" if rarity > 0 else "common among Qonto entries"),
                "rare" if rarity > 0 else "common",
            )
        )
    return reasons
