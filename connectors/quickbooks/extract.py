"""The mapping table's 14 fields, extracted into typed values (Decimal, ISO currency, dates).

| QuickBooks | Well |
| Bill.TotalAmt, CurrencyRef, TxnDate, DueDate, DocNumber, TxnTaxDetail.TotalTax |
|   total_amount, currency, issue_date, due_date, invoice_number, tax_amount |
| Purchase.TotalAmt, CurrencyRef, TxnDate, PrivateNote, Id |
|   total_amount (amount), currency, issue_date (emitted_at), label, qbo_id (transaction_id) |
| VendorCredit: as Bill (no DueDate) |
| Vendor.DisplayName, WebAddr, TaxIdentifier | supplier_name, supplier_website, supplier_tax_id |

The supplier block printed on every PDF Well draws also keeps, typed on the Vendor and copied onto
each Bill, VendorCredit and Purchase of that vendor (connectors/quickbooks/suppliers.py):
Vendor.CompanyName -> supplier_legal_name, BillAddr -> supplier_address (one line per printed
line), PrimaryEmailAddr.Address -> supplier_email. Until the Vendor row is read, a bill's
supplier_name is its VendorRef.name (QuickBooks fills it with the vendor's DisplayName).

A value QuickBooks should never send (wrong type, unknown currency, negative or huge amount,
impossible date) raises `Malformed` with a reason an accountant can read.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

# ISO 4217 codes in use (plus XAU/XAG-style funds excluded: QuickBooks does not bill in them).
ISO_CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905 - a table reads better than 170 quoted strings
)

# QuickBooks amounts have at most 10 integer digits (§4.2 "10.5 digits"); anything past this is
# a corrupt payload, not money.
MAX_AMOUNT = Decimal("9999999999.99")

# QuickBooks Online started in 2000; a record dated outside this range is a corrupt payload.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)

MAPPED_ENTITIES = frozenset({"Bill", "Purchase", "Vendor"})


class Malformed(ValueError):
    """A field QuickBooks sent cannot be read; the message says which and why."""


def _amount(value: Any, field: str, *, required: bool) -> Decimal | None:
    if value is None:
        if required:
            raise Malformed(f"{field} is missing.")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, float, str)):
        raise Malformed(f"{field} is not a number ({type(value).__name__}).")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise Malformed(f"{field} is not a number ({str(value)[:40]!r}).") from None
    if not amount.is_finite():
        raise Malformed(f"{field} is not a finite number.")
    if amount < 0:
        raise Malformed(f"{field} is negative ({amount}).")
    if amount > MAX_AMOUNT:
        raise Malformed(f"{field} is implausibly large ({amount}).")
    if amount.as_tuple().exponent < -4:  # type: ignore[operator]
        raise Malformed(f"{field} has more than 4 decimals ({amount}).")
    return amount


def _currency(payload: dict, home_currency: str) -> str:
    ref = payload.get("CurrencyRef")
    if ref is None:
        code = home_currency
        if not code:
            raise Malformed("CurrencyRef is missing and the company's home currency is unknown.")
    else:
        code = ref.get("value") if isinstance(ref, dict) else None
        if not isinstance(code, str):
            raise Malformed("CurrencyRef has no currency code.")
    code = code.strip().upper()
    if code not in ISO_CURRENCIES:
        raise Malformed(f"CurrencyRef {code[:10]!r} is not an ISO 4217 currency.")
    return code


def _date(value: Any, field: str, *, required: bool) -> date | None:
    if value is None or value == "":
        if required:
            raise Malformed(f"{field} is missing.")
        return None
    if not isinstance(value, str):
        raise Malformed(f"{field} is not a date ({type(value).__name__}).")
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise Malformed(f"{field} is not a date ({value[:30]!r}).") from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        # Year 9999 is a valid date but no bill's: date arithmetic on it overflows downstream.
        raise Malformed(f"{field} is not a plausible date ({day.isoformat()}).")
    return day


def _text(value: Any, field: str, *, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        raise Malformed(f"{field} is not text ({type(value).__name__}).")
    return str(value).strip()[:limit]


def _ref_value(payload: dict, key: str) -> str:
    ref = payload.get(key)
    if isinstance(ref, dict) and ref.get("value") is not None:
        return str(ref["value"])[:64]
    return ""


def _ref_name(payload: dict, key: str) -> str:
    """The display name a reference carries (`{"value": "56", "name": "Bob's Burgers"}`)."""
    ref = payload.get(key)
    if isinstance(ref, dict) and isinstance(ref.get("name"), str):
        return " ".join(ref["name"].split())[:500]
    return ""


# BillAddr's street lines then the city line, as a French address prints (§4.3 of the
# QuickBooks reference: Line1..Line5, City, CountrySubDivisionCode, PostalCode, Country).
_ADDRESS_LINES = ("Line1", "Line2", "Line3", "Line4", "Line5")


def address_text(value: Any, field: str) -> str:
    """A QuickBooks PhysicalAddress as printed lines joined by newlines ("" when absent)."""
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise Malformed(f"{field} is not an object.")
    lines = [_text(value.get(key), f"{field}.{key}", limit=500) for key in _ADDRESS_LINES]
    postal = _text(value.get("PostalCode"), f"{field}.PostalCode", limit=30)
    city = _text(value.get("City"), f"{field}.City", limit=255)
    region = _text(value.get("CountrySubDivisionCode"), f"{field}.CountrySubDivisionCode", limit=60)
    lines.append(" ".join(part for part in (postal, city) if part))
    lines.append(region)
    lines.append(_text(value.get("Country"), f"{field}.Country", limit=255))
    return "\n".join(" ".join(line.split()) for line in lines if line.strip())[:2000]


def _bill(payload: dict, home_currency: str) -> dict:
    tax = payload.get("TxnTaxDetail")
    if tax is not None and not isinstance(tax, dict):
        raise Malformed("TxnTaxDetail is not an object.")
    issue = _date(payload.get("TxnDate"), "TxnDate", required=True)
    due = _date(payload.get("DueDate"), "DueDate", required=False)
    return {
        "total_amount": _amount(payload.get("TotalAmt"), "TotalAmt", required=True),
        "currency": _currency(payload, home_currency),
        "issue_date": issue,
        "due_date": due,
        "invoice_number": _text(payload.get("DocNumber"), "DocNumber", limit=100),
        "tax_amount": _amount((tax or {}).get("TotalTax"), "TxnTaxDetail.TotalTax", required=False),
        "vendor_qbo_id": _ref_value(payload, "VendorRef"),
        "supplier_name": _ref_name(payload, "VendorRef"),
    }


def _purchase(payload: dict, home_currency: str) -> dict:
    entity = payload.get("EntityRef")
    vendor = name = ""
    if isinstance(entity, dict) and entity.get("type", "Vendor") == "Vendor":
        vendor = _ref_value(payload, "EntityRef")
        name = _ref_name(payload, "EntityRef")
    return {
        "total_amount": _amount(payload.get("TotalAmt"), "TotalAmt", required=True),
        "currency": _currency(payload, home_currency),
        "issue_date": _date(payload.get("TxnDate"), "TxnDate", required=True),
        "label": _text(payload.get("PrivateNote"), "PrivateNote", limit=4000),
        "vendor_qbo_id": vendor,
        "supplier_name": name,
    }


def _vendor(payload: dict, home_currency: str) -> dict:
    name = _text(payload.get("DisplayName"), "DisplayName", limit=500)
    if not name:
        raise Malformed("DisplayName is missing.")
    web = payload.get("WebAddr")
    if web is not None and not isinstance(web, dict):
        raise Malformed("WebAddr is not an object.")
    email = payload.get("PrimaryEmailAddr")
    if email is not None and not isinstance(email, dict):
        raise Malformed("PrimaryEmailAddr is not an object.")
    return {
        "supplier_name": name,
        "supplier_legal_name": _text(payload.get("CompanyName"), "CompanyName", limit=500),
        "supplier_address": address_text(payload.get("BillAddr"), "BillAddr"),
        "supplier_website": _text((web or {}).get("URI"), "WebAddr.URI", limit=1000),
        "supplier_tax_id": _text(payload.get("TaxIdentifier"), "TaxIdentifier", limit=100),
        "supplier_email": _text((email or {}).get("Address"), "PrimaryEmailAddr", limit=254),
    }


# A vendor credit has a bill's shape (no due date): its amount is what Qonto's credit note shows.
_EXTRACTORS = {"Bill": _bill, "VendorCredit": _bill, "Purchase": _purchase, "Vendor": _vendor}

# Every typed column, so a record that becomes malformed (or changes kind) loses stale values.
EMPTY = {
    "total_amount": None,
    "tax_amount": None,
    "currency": "",
    "issue_date": None,
    "due_date": None,
    "invoice_number": "",
    "label": "",
    "supplier_name": "",
    "supplier_legal_name": "",
    "supplier_address": "",
    "supplier_website": "",
    "supplier_tax_id": "",
    "supplier_email": "",
    "vendor_qbo_id": "",
}

# The supplier block: kept on the Vendor, copied onto the records of that vendor.
SUPPLIER_FIELDS = (
    "supplier_name",
    "supplier_legal_name",
    "supplier_address",
    "supplier_tax_id",
    "supplier_website",
    "supplier_email",
)


def extract(entity_type: str, payload: dict, *, home_currency: str = "") -> dict:
    """The typed columns of one object (every column, empty where not mapped)."""
    extractor = _EXTRACTORS.get(entity_type)
    if extractor is None:
        return dict(EMPTY)
    return {**EMPTY, **extractor(payload, home_currency)}
