"""Normalise provider objects once: names, tax IDs, domains, money in cents, dates, references."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cleanco import prepare_default_terms
from cleanco.clean import custom_basename
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren

from .types import SUPPLIER_INVOICE, TRANSACTION, Account, Entry, Record, Vendor

_TERMS = prepare_default_terms()
# The last word of every legal form cleanco knows ("sas", "gmbh", "ltd"...): a name that does
# not end with one has none to remove.
_LEGAL_LAST_WORDS = frozenset(parts[-1] for _, parts in _TERMS)

# Prefixes French and European banks put before the merchant in a statement label.
_BANK_PREFIXES = re.compile(
    r"^(?:(?:prlv|prelevement|prel|vir|virement|sepa|inst|instantane|recu|emis|dd|sdd|"
    r"cb|carte|card|paiement|payment|pmt|achat|facture|fact|ach|pos|"
    r"frais|commission|cotisation|paypal|sumup|sq|stripe|zettle|izettle|amzn|mktp|gocardless|mollie|"
    r"europe|eu|uk|de|fr|nl|www)\b[\s*:/.-]*)+"
)
# Noise inside labels: card dates (12/03), card numbers (x1234), long digit runs.
_LABEL_NOISE = re.compile(r"\b\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?\b|\bx+\d+\b|\b\d{5,}\b")
_DIGIT = re.compile(r"\d")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_STOPWORDS = frozenset(
    {"the", "la", "le", "les", "de", "des", "du", "et", "and", "of", "ste", "sa"}
)
_FREE_MAIL = frozenset(
    {
        "gmail.com",
        "yahoo.com",
        "yahoo.fr",
        "hotmail.com",
        "hotmail.fr",
        "outlook.com",
        "orange.fr",
        "free.fr",
        "icloud.com",
        "live.com",
        "laposte.net",
        "wanadoo.fr",
        "gmx.de",
    }
)
_CENT = Decimal("0.01")
_MAX_CENTS = 10**15  # beyond any real invoice; larger values are treated as malformed
# An amount with at most two decimals is its cents with the point removed: what Decimal would
# make of it without the cost of building one (nearly every amount; anything else is rounded).
_PLAIN_AMOUNT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,2})?")
_FIRST_DAY = date(1900, 1, 1)
_LAST_DAY = date(2199, 12, 31)


def fold(text: Any) -> str:
    """Lower-case ASCII fold of any text (accents dropped)."""
    if not isinstance(text, str):
        return ""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@lru_cache(maxsize=200_000)
def clean_name(raw: str) -> tuple[str, str, str]:
    """Cleaned name, name key and legal form of a counterparty name or bank label."""
    # Bank labels are nearly all distinct (card numbers, dates) until their noise is gone:
    # the costly legal-form removal is cached on what remains.
    return _clean_spaced(_spaced(raw))


@lru_cache(maxsize=200_000)
def _spaced(raw: str) -> str:
    # A bank transaction's label is both its name and its text: its words are found once.
    folded = fold(raw).replace("*", " ")
    if _DIGIT.search(folded):  # every kind of noise has a digit: most memos have none
        folded = _LABEL_NOISE.sub(" ", folded)
    return " ".join(_NON_ALNUM.sub(" ", folded).split())


def _unprefixed(spaced: str) -> str:
    # The pattern is anchored at the start: removing it is matching it there, no scan.
    prefix = _BANK_PREFIXES.match(spaced)
    return (spaced[prefix.end() :] if prefix else spaced).strip() or spaced


@lru_cache(maxsize=200_000)
def _clean_spaced(spaced: str) -> tuple[str, str, str]:
    stripped = _unprefixed(spaced)
    if stripped.rpartition(" ")[2] not in _LEGAL_LAST_WORDS:
        return stripped, name_key(stripped), ""  # no legal form to remove: skip cleanco
    try:
        base = custom_basename(stripped, _TERMS, prefix=False, middle=False, suffix=True)
    except Exception:  # cleanco chokes on odd input; the stripped name is still usable
        base = stripped
    base = " ".join(_NON_ALNUM.sub(" ", base).split()) or stripped
    legal_form = stripped[len(base) :].strip() if stripped.startswith(base) else ""
    return base, name_key(base), legal_form


def clean_text(raw: str) -> str:
    """A memo or a bank label folded, its noise and bank prefixes gone (legal forms kept)."""
    return _unprefixed(_spaced(raw))


# Digits a scanner reads for letters inside a word ("REPR0GRAPHIE"): keys read them as letters.
_OCR_LETTERS = str.maketrans("0158", "oisb")


def name_key(cleaned: str) -> str:
    """Blocking key of a cleaned name: its first significant word (OCR digits read as letters)."""
    for token in cleaned.split():
        if len(token) >= 3 and token not in _STOPWORDS and not token.isdigit():
            if not token.isalpha() and sum(c.isalpha() for c in token) > len(token) // 2:
                token = token.translate(_OCR_LETTERS)
            return token[:10]
    return cleaned.replace(" ", "")[:10]


# Letters a scanner reads for digits and back (O/0, I/l/1, S/5, B/8, Z/2): references are
# compared with both read as the digit, so "INV-2O24-0O57" and "INV-2024-0057" agree.
_OCR_DIGITS = str.maketrans("oilsbz", "011582")
# The same for an ASCII text in one pass: letters lower-cased (then read as digits where a
# scanner would), everything but letters and digits deleted.
_ASCII_SQUASHED = {
    code: chr(code).lower().translate(_OCR_DIGITS) if chr(code).isalnum() else None
    for code in range(128)
}


def _squashed(text: str) -> str:
    if text.isascii():
        return text.translate(_ASCII_SQUASHED)
    return _NON_ALNUM.sub("", fold(text)).translate(_OCR_DIGITS)


def reference(raw: Any) -> str:
    """Normalised reference: alphanumerics, lower case, OCR look-alikes as digits, no leading 0."""
    if raw is None or isinstance(raw, dict | list):
        return ""
    return _squashed(str(raw)).lstrip("0")


def squash(*texts: Any) -> str:
    """Every text folded like a reference (alphanumerics only), for reference containment."""
    folded = (_squashed(t) for t in texts if isinstance(t, str))
    return " ".join(word for word in folded if word)


def tax_id(raw: Any) -> str:
    """A validated, compact VAT number or SIREN; empty when absent or invalid."""
    if not isinstance(raw, str) or not raw.strip():
        return ""
    return _tax_id(raw)


@lru_cache(maxsize=100_000)
def _tax_id(raw: str) -> str:
    # A vendor's VAT number repeats on every invoice: validate each spelling once.
    if eu_vat.is_valid(raw):
        return eu_vat.compact(raw)
    if fr_siren.is_valid(raw):  # a bare SIREN: its VAT number follows from it
        return "FR" + fr_siren.to_tva(fr_siren.compact(raw))
    return ""


def domain(url_or_email: Any) -> str:
    """The web domain of a URL or a business e-mail address (free mail ignored)."""
    if not isinstance(url_or_email, str) or not url_or_email.strip():
        return ""
    text = url_or_email.strip().lower()
    if "@" in text and "/" not in text:
        host = text.rsplit("@", 1)[1]
        return "" if host in _FREE_MAIL else host.removeprefix("www.")
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def cents(raw: Any) -> int | None:
    """Money as integer cents from a number or a string ("10,00"); None when unreadable."""
    if raw is None or isinstance(raw, bool | dict | list):
        return None
    text = str(raw).strip().replace("\u00a0", "").replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    if _PLAIN_AMOUNT.fullmatch(text):
        whole, _, fraction = text.partition(".")
        result = int(whole + fraction.ljust(2, "0"))
    else:
        try:
            value = Decimal(text).quantize(_CENT, rounding=ROUND_HALF_UP)
        except (InvalidOperation, ValueError):
            return None
        if not value.is_finite():
            return None
        result = int(value * 100)
    return result if abs(result) < _MAX_CENTS else None


def int_cents(raw: Any) -> int | None:
    """An integer-cents field, tolerating strings; None when unreadable."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if abs(raw) < _MAX_CENTS else None
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int_cents(int(raw))
    return None


def day(raw: Any) -> date | None:
    """A date from "YYYY-MM-DD" or an ISO timestamp; None when unreadable."""
    if not isinstance(raw, str) or len(raw) < 10:
        return None
    return _day(raw[:10])


@lru_cache(maxsize=100_000)
def _day(text: str) -> date | None:
    # Books span a few hundred days: each is parsed once, and what is dated that day shares
    # one date (which a forked reader's entries then carry back pickled once).
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        return None
    # Year 9999 parses but is no bill's date, and blocking windows around it overflow.
    return parsed if _FIRST_DAY <= parsed <= _LAST_DAY else None


def currency(raw: Any) -> str:
    """An ISO-4217 code from a string or a QuickBooks CurrencyRef."""
    if isinstance(raw, dict):
        raw = raw.get("value")
    if not isinstance(raw, str):
        return ""
    return _currency_code(raw)


@lru_cache(maxsize=1_000)
def _currency_code(raw: str) -> str:
    # A handful of spellings: each is read once, and its code shared like a day's date.
    code = raw.strip().upper()
    return code if len(code) == 3 and code.isalpha() else ""


def _ref(obj: dict, key: str) -> dict:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def vendor_from_fields(
    vendor_id: str,
    *,
    display_name: str,
    company_name: str = "",
    print_name: str = "",
    website: str = "",
    email: str = "",
    tax_identifier: str = "",
    currency_code: str = "",
) -> Vendor:
    """A vendor from its fields, however they were read (the sync's typed columns, or a
    QuickBooks object in an evaluation file)."""
    cleaned, key, form = clean_name(company_name or display_name or print_name)
    return Vendor(
        id=vendor_id,
        display_name=display_name,
        company_name=company_name,
        name=cleaned,
        name_key=key,
        legal_form=form,
        domain=domain(website) or domain(email),
        # QuickBooks masks TaxIdentifier ("XXXXXX1234"): only its tail can be compared.
        tax_tail=_NON_ALNUM.sub("", tax_identifier.lower().replace("x", ""))[-4:].upper(),
        currency=currency_code,
    )


def vendor(obj: Any) -> Vendor | None:
    """A QuickBooks Vendor read from its object; None when the object is not one."""
    if not isinstance(obj, dict) or obj.get("Id") is None:
        return None
    return vendor_from_fields(
        str(obj["Id"]),
        display_name=_text(obj.get("DisplayName")),
        company_name=_text(obj.get("CompanyName")),
        print_name=_text(obj.get("PrintOnCheckName")),
        website=_text(_ref(obj, "WebAddr").get("URI")),
        email=_text(_ref(obj, "PrimaryEmailAddr").get("Address")),
        tax_identifier=_text(obj.get("TaxIdentifier")),
        currency_code=currency(obj.get("CurrencyRef")),
    )


def account(obj: Any) -> Account | None:
    """A QuickBooks Account; None when the object is not one."""
    if not isinstance(obj, dict) or obj.get("Id") is None:
        return None
    return Account(
        id=str(obj["Id"]),
        name=_text(obj.get("Name")),
        number=_text(obj.get("AcctNum")),
        type=_text(obj.get("AccountType")),
    )


def _line_accounts(lines: Any) -> tuple[str, ...]:
    """Expense account ids of a transaction's lines, largest line first."""
    if not isinstance(lines, list):
        return ()
    found: list[tuple[Any, str]] = []
    for line in lines:
        if not isinstance(line, dict):
            continue
        detail = _ref(line, "AccountBasedExpenseLineDetail")
        account_id = _ref(detail, "AccountRef").get("value")
        if account_id is not None:
            found.append((line.get("Amount"), str(account_id)))
    if len(found) == 1:  # most records have one line: no amount to read for an order
        return (found[0][1],)
    by_size = sorted((-(cents(amount) or 0), account_id) for amount, account_id in found)
    return tuple(account_id for _, account_id in by_size)


def _lines_total(lines: Any) -> int | None:
    if not isinstance(lines, list):
        return None
    amounts = [cents(line.get("Amount")) for line in lines if isinstance(line, dict)]
    amounts = [a for a in amounts if a is not None]
    return sum(amounts) if amounts else None


def _is_credit(record_type: str, obj: dict) -> bool:
    # A VendorCredit, and a card refund (Purchase with Credit=true), bring money back.
    return record_type == "VendorCredit" or (
        record_type == "Purchase" and obj.get("Credit") is True
    )


@dataclass(frozen=True, slots=True)
class RecordExtras:
    """What matching reads of a QuickBooks payload beyond the mapped fields the sync types."""

    memo: str = ""  # PrivateNote, else Memo, else the first line's description
    account_ids: tuple[str, ...] = ()
    linked_po: bool = False
    exchange_rate: Any = None
    credit: bool = False
    # A Purchase's DocNumber is no mapped field (a bill's is its invoice number, typed).
    purchase_number: Any = None


def record_extras(record_type: str, obj: dict) -> RecordExtras:
    note = _text(obj.get("PrivateNote")) or _text(obj.get("Memo"))
    if not note and isinstance(obj.get("Line"), list):
        note = next(
            (_text(line.get("Description")) for line in obj["Line"] if isinstance(line, dict)),
            "",
        )
    linked = obj.get("LinkedTxn")
    return RecordExtras(
        memo=note,
        account_ids=_line_accounts(obj.get("Line")),
        linked_po=isinstance(linked, list)
        and any(isinstance(t, dict) and t.get("TxnType") == "PurchaseOrder" for t in linked),
        exchange_rate=obj.get("ExchangeRate"),
        credit=_is_credit(record_type, obj),
        purchase_number=obj.get("DocNumber") if record_type == "Purchase" else None,
    )


def record_from_fields(
    record_type: str,
    record_id: str,
    *,
    vendor_id: str,
    vendor_name: str,
    amount_cents: int | None,
    currency_code: str,
    txn_date: date | None,
    due_date: date | None,
    doc_number: Any,
    extras: RecordExtras,
    home_currency: str = "EUR",
) -> Record:
    """A record from its mapped fields, however they were read (typed columns written by the
    sync, or a QuickBooks object in an evaluation file): what matching makes of them is here."""
    problems: list[str] = []
    vendor_name = " ".join(vendor_name.split())
    cleaned, key, _ = clean_name(vendor_name) if vendor_name else ("", "", "")
    amount = amount_cents
    if amount == 0:
        # A zero total is an export that lost its lines, never a bill worth posting.
        amount = None
        problems.append("the total is zero")
    if amount is None:
        problems.append("no readable total amount")
    elif extras.credit:
        amount = -abs(amount)
    code = currency_code or home_currency
    home_amount = amount
    rate = extras.exchange_rate
    if amount is not None and code != home_currency and rate not in (None, 0, 1):
        try:
            home_amount = int((Decimal(str(rate)) * amount).quantize(Decimal(1), ROUND_HALF_UP))
        except (InvalidOperation, ValueError):
            home_amount = None
    if txn_date is None:
        problems.append("no readable date")
    return Record(
        type=record_type,
        id=record_id,
        vendor_id=vendor_id[:64],  # the column's width; QBO ids are short
        vendor_name=vendor_name,
        name=cleaned,
        name_key=key,
        amount_cents=amount,
        currency=code,
        home_amount_cents=home_amount,
        txn_date=txn_date,
        due_date=due_date,
        reference=reference(doc_number),
        raw_reference=str(doc_number).strip() if isinstance(doc_number, str | int) else "",
        memo=clean_text(extras.memo[:200]) if extras.memo else "",
        account_ids=extras.account_ids,
        linked_po=extras.linked_po,
        problems=tuple(problems) if record_id else ("no Id", *problems),
    )


def record(record_type: Any, obj: Any, home_currency: str = "EUR") -> Record:
    """A QuickBooks record read from its object (evaluation files); a malformed one comes back
    with its problems listed. The product reads the sync's typed columns instead
    (matching.selectors.record_from_row); both end in `record_from_fields`."""
    record_type = record_type if isinstance(record_type, str) and record_type else "Unknown"
    if not isinstance(obj, dict):
        return Record(type=record_type, id="", problems=("the record is not an object",))
    party = _ref(obj, "VendorRef") or _ref(obj, "EntityRef")
    amount = cents(obj.get("TotalAmt"))
    if amount is None:
        amount = _lines_total(obj.get("Line"))
    return record_from_fields(
        record_type,
        str(obj["Id"]) if obj.get("Id") is not None else "",
        vendor_id=str(party.get("value") or ""),
        vendor_name=_text(party.get("name")),
        amount_cents=amount,
        currency_code=currency(obj.get("CurrencyRef")),
        txn_date=day(obj.get("TxnDate")),
        due_date=day(obj.get("DueDate")),
        doc_number=obj.get("DocNumber"),
        extras=record_extras(record_type, obj),
        home_currency=home_currency,
    )


def _matched_ids(obj: dict) -> tuple[str, ...]:
    """Transaction ids a supplier invoice is matched to (Qonto has two shapes)."""
    ids: list[str] = []
    for key in ("matched_transactions_ids", "matched_transactions"):
        value = obj.get(key)
        if not isinstance(value, list):
            continue
        for item in value:
            if isinstance(item, str):
                ids.append(item)
            elif isinstance(item, dict) and item.get("transaction_id"):
                ids.append(str(item["transaction_id"]))
    return tuple(dict.fromkeys(ids))


def _money(obj: dict, key: str) -> tuple[int | None, str]:
    value = obj.get(key)
    if isinstance(value, dict):
        return cents(value.get("value")), currency(value.get("currency"))
    return cents(value), ""


def entry_from_fields(
    kind: str,
    entry_id: str,
    *,
    raw_name: str,
    amount_cents: int | None,
    currency_code: str,
    entry_date: date | None,
    reference_text: Any = None,
    label: str = "",
    texts: tuple[Any, ...] = (),
    tax_id_text: Any = None,
    net_amount_cents: int | None = None,
    local_amount_cents: int | None = None,
    local_currency: str = "",
    linked_ids: tuple[str, ...] = (),
    is_credit_note: bool = False,
) -> Entry:
    """A Qonto entry from its fields, however they were read (the sync's typed columns, or a
    Qonto object in an evaluation file). Amounts are signed as matching reads them: money out
    positive, credits and money in negative."""
    raw_name = " ".join(raw_name.split())
    cleaned, key, _ = clean_name(raw_name) if raw_name else ("", "", "")
    return Entry(
        kind=kind,
        id=entry_id,
        name=cleaned,
        name_key=key,
        raw_name=raw_name,
        tax_id=tax_id(tax_id_text),
        amount_cents=amount_cents,
        currency=currency_code,
        local_amount_cents=local_amount_cents,
        local_currency=local_currency,
        net_amount_cents=net_amount_cents,
        entry_date=entry_date,
        reference=reference(reference_text),
        label=clean_text(label[:200]) if label else "",
        text=squash(*texts),
        linked_ids=linked_ids,
        is_credit_note=is_credit_note,
    )


def supplier_invoice(obj: Any) -> Entry | None:
    """A Qonto supplier invoice; None when unusable (no id, or rejected/discarded)."""
    if not isinstance(obj, dict) or not obj.get("id"):
        return None
    if obj.get("status") in ("rejected", "discarded") or obj.get("deleted_at"):
        return None
    amount, code = _money(obj, "total_amount")
    if amount is None:
        amount, code = _money(obj, "payable_amount")
    net, net_code = _money(obj, "total_amount_excluding_taxes")
    if amount is None and net is not None:
        tax, _ = _money(obj, "total_tax_amount")
        amount, code = net + (tax or 0), net_code
    credit_note = obj.get("is_credit_note") is True
    if amount is not None and credit_note:
        amount = -abs(amount)
    if net is not None and credit_note:
        net = -abs(net)
    number = obj.get("invoice_number")
    return entry_from_fields(
        SUPPLIER_INVOICE,
        str(obj["id"]),
        raw_name=_text(obj.get("supplier_name")) or _text(obj.get("issuer_name")),
        amount_cents=amount,
        currency_code=code,
        entry_date=day(obj.get("issue_date")) or day(obj.get("created_at")),
        reference_text=number,
        label=_text(obj.get("description")),
        texts=(number, obj.get("description"), obj.get("file_name")),
        tax_id_text=obj.get("vat_number") if tax_id(obj.get("vat_number")) else obj.get("tin"),
        net_amount_cents=net,
        linked_ids=_matched_ids(obj),
        is_credit_note=credit_note,
    )


# A pending card payment later declined or reversed paid nothing (connectors/qonto/sync.py).
WITHDRAWN = ("declined", "reversed")


def transaction(obj: Any) -> Entry | None:
    """A Qonto transaction; None when unusable (no id, or declined or reversed: no payment)."""
    if not isinstance(obj, dict) or not obj.get("id") or obj.get("status") in WITHDRAWN:
        return None
    amount = int_cents(obj.get("amount_cents"))
    if amount is None:
        amount = cents(obj.get("amount"))
    if amount is not None:
        # amount_cents is always positive; the direction is in `side`.
        amount = -abs(amount) if obj.get("side") == "credit" else abs(amount)
    local = int_cents(obj.get("local_amount_cents"))
    if local is None:
        local = cents(obj.get("local_amount"))
    if local is not None:
        local = -abs(local) if obj.get("side") == "credit" else abs(local)
    label = _text(obj.get("label"))
    return entry_from_fields(
        TRANSACTION,
        str(obj["id"]),
        raw_name=_text(obj.get("clean_counterparty_name")) or label,
        amount_cents=amount,
        currency_code=currency(obj.get("currency")),
        entry_date=day(obj.get("settled_at")) or day(obj.get("emitted_at")),
        reference_text=obj.get("reference"),
        label=label,
        texts=(label, obj.get("reference"), obj.get("note")),
        local_amount_cents=local,
        local_currency=currency(obj.get("local_currency")),
    )
