"""Compare a record with a candidate entry, signal by signal, into discrete levels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from .counterparty import Directory, Profile
from .types import SUPPLIER_INVOICE, Entry, Record

MISSING = "missing"

# Every signal and its levels, strongest evidence first; "missing" always weighs 0.
LEVELS: dict[str, tuple[str, ...]] = {
    "amount": ("exact", "close", "within_3pct", "sign_flip", "different", MISSING),
    "date": (
        "same_day",
        "1_3_days",
        "4_10_days",
        "11_45_days",
        "near_due_date",
        "before_record",
        "one_period_apart",
        "day_month_swapped",
        "far",
        MISSING,
    ),
    "counterparty": (
        "same_tax_id",
        "same_counterparty",
        "name_same",
        "name_close",
        "name_similar",
        "other_counterparty",
        "tax_id_conflict",
        "different",
        MISSING,
    ),
    "reference": ("exact", "in_label", "close", "different", MISSING),
    "currency": ("same", "converted", "different", MISSING),
    "kind": (
        "bill_invoice",
        "bill_payment",
        "expense_invoice",
        "expense_payment",
        "credit_invoice",
        "credit_payment",
        "other_invoice",
        "other_payment",
    ),
    "usage": ("unused", "paired_payment", "already_linked"),
}

# Counterparty levels that say "this entry is the record's vendor".
STRONG_PARTY = ("same_tax_id", "same_counterparty", "name_same", "name_close")

# Two signals are weighed conditionally, because they are not independent of the others: an
# amount a little off is common among random candidates but rare among the vendor's own entries
# (short payments, bank charges), and a bill's payment comes weeks after it while its invoice
# carries its date. Their weights come from tables split by that condition.
WEIGHT_LEVELS: dict[str, tuple[str, ...]] = {
    **LEVELS,
    "amount|party": LEVELS["amount"],
}


def weight_key(signal: str, level: str, vector: dict[str, str]) -> tuple[str, str]:
    """The (table, level) whose weight applies to this signal of this comparison vector."""
    if signal == "amount" and vector.get("counterparty") in STRONG_PARTY:
        return ("amount|party", level)
    return (signal, level)


def weight_keys(vector: dict[str, str]) -> list[tuple[str, str]]:
    """Every (table, level) a comparison vector is weighed with."""
    return [weight_key(signal, level, vector) for signal, level in vector.items()]


@dataclass(slots=True)
class Context:
    """What a comparison needs beyond the pair: the record's counterparty and the history graph."""

    profile: Profile
    names: list[str]
    directory: Directory
    paired: set[str]  # transactions already matched to a supplier invoice in Qonto
    recurring: bool = False  # the vendor billed this same amount at least twice before


def amount_level(record: Record, entry: Entry) -> str:
    """How close the amounts are, in the record's currency when Qonto converted it."""
    theirs = entry.amount_cents
    ours = record.amount_cents
    if entry.currency and record.currency and entry.currency != record.currency:
        if entry.local_currency == record.currency and entry.local_amount_cents is not None:
            theirs = entry.local_amount_cents
        else:
            ours = record.home_amount_cents
    if ours is None or theirs is None:
        return MISSING
    if ours == theirs:
        return "exact"
    if ours == -theirs:
        return "sign_flip"
    gap = abs(ours - theirs)
    scale = max(abs(ours), abs(theirs), 1)
    if (ours > 0) != (theirs > 0):
        return "different"
    if gap <= 100 or gap * 1000 <= 5 * scale:
        return "close"
    if gap * 100 <= 3 * scale:
        return "within_3pct"
    return "different"


def _swapped(value: date) -> date | None:
    try:
        return value.replace(day=value.month, month=value.day)
    except ValueError:
        return None


def date_level(record: Record, entry: Entry, recurring: bool = False) -> str:
    """The gap from the record's date to the entry's date."""
    if record.txn_date is None or entry.entry_date is None:
        return MISSING
    gap = (entry.entry_date - record.txn_date).days
    if gap == 0:
        return "same_day"
    if -3 <= gap <= 3:
        return "1_3_days"
    if recurring and 26 <= abs(gap) <= 35:
        # A subscription billed every month: this is the next (or previous) month's payment.
        return "one_period_apart"
    due = record.due_date
    if due and entry.kind != SUPPLIER_INVOICE and abs((entry.entry_date - due).days) <= 3:
        return "near_due_date"
    if 4 <= gap <= 10:
        return "4_10_days"
    if 11 <= gap <= 45:
        return "11_45_days"
    if -45 <= gap < -3:
        return "before_record"
    # OCR often reads 03/04 as 4 March instead of 3 April (scanned invoices only; a monthly
    # subscription lands on swapped dates by coincidence).
    swappable = entry.kind == SUPPLIER_INVOICE and not recurring
    if swappable and _swapped(entry.entry_date) == record.txn_date:
        return "day_month_swapped"
    return "far"


def _name_score(names: list[str], other: str) -> float:
    best = 0.0
    for name in names:
        best = max(best, fuzz.token_set_ratio(name, other), fuzz.ratio(name, other))
        if best >= 95:
            break
    return best


def counterparty_level(record: Record, entry: Entry, ctx: Context) -> str:
    """Whether the entry's counterparty is the record's vendor: tax ID, history, then name."""
    profile = ctx.profile
    if entry.tax_id:
        known = profile.tax_ids
        tail = profile.vendor.tax_tail if profile.vendor else ""
        if entry.tax_id in known:
            return "same_tax_id"
        if known or (tail and not entry.tax_id.endswith(tail)):
            return "tax_id_conflict"
        if tail and entry.tax_id.endswith(tail):
            return "same_tax_id"
        owner = ctx.directory.tax_owner(entry.tax_id)
        if owner and record.vendor_id and owner != record.vendor_id:
            return "other_counterparty"
    if entry.name_key and entry.name_key in profile.entry_keys:
        return "same_counterparty"
    owner = ctx.directory.key_owner(entry.name_key) if entry.name_key else ""
    if owner and record.vendor_id:
        if owner == record.vendor_id:
            return "same_counterparty"
        return "other_counterparty"
    if not entry.name or not ctx.names:
        return MISSING
    score = _name_score(ctx.names, entry.name)
    if score >= 95:
        return "name_same"
    if score >= 85:
        return "name_close"
    if score >= 70:
        return "name_similar"
    return "different"


def reference_level(record: Record, entry: Entry) -> str:
    """Whether the bill's number is the entry's number, or appears in its label."""
    ours = record.reference
    if len(ours) < 3:
        return MISSING
    if entry.reference == ours:
        return "exact"
    if len(ours) >= 4 and ours in entry.text:
        return "in_label"
    if not entry.reference:
        return MISSING
    if len(ours) >= 4 and Levenshtein.distance(ours, entry.reference, score_cutoff=2) <= 2:
        return "close"
    return "different"


def currency_level(record: Record, entry: Entry) -> str:
    """Same currency, converted by Qonto from the record's currency, or different."""
    if not record.currency or not entry.currency:
        return MISSING
    if record.currency == entry.currency:
        return "same"
    if entry.local_currency == record.currency and entry.local_amount_cents is not None:
        return "converted"
    return "different"


def kind_level(record: Record, entry: Entry) -> str:
    """Which kind of Qonto entry this kind of record usually is."""
    group = {"Bill": "bill", "Purchase": "expense", "VendorCredit": "credit"}.get(
        record.type, "other"
    )
    return f"{group}_{'invoice' if entry.kind == SUPPLIER_INVOICE else 'payment'}"


def usage_level(entry: Entry, ctx: Context) -> str:
    """Whether the entry already belongs to another record or pays a known invoice."""
    if (entry.kind, entry.id) in ctx.directory.used:
        return "already_linked"
    if entry.kind != SUPPLIER_INVOICE and entry.id in ctx.paired:
        return "paired_payment"
    return "unused"


def compare(record: Record, entry: Entry, ctx: Context) -> dict[str, str]:
    """The comparison vector of one pair: signal -> level."""
    return {
        "amount": amount_level(record, entry),
        "date": date_level(record, entry, ctx.recurring),
        "counterparty": counterparty_level(record, entry, ctx),
        "reference": reference_level(record, entry),
        "currency": currency_level(record, entry),
        "kind": kind_level(record, entry),
        "usage": usage_level(entry, ctx),
    }
