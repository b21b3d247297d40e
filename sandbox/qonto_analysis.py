"""Stand-in for Qonto's invoice analysis: file-type sniffing and reading fields from PDFs."""

from __future__ import annotations

import io
import logging
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from fpdf import FPDF
from pypdf import PdfReader

logger = logging.getLogger(__name__)

MAX_PAGES_READ = 5

# Magic numbers of the three accepted types (reference §4.2: PDF, JPEG, PNG only).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)

_LABELS: dict[str, tuple[str, ...]] = {
    "invoice_number": (
        "invoice number",
        "invoice no",
        "invoice",
        "invoice id",
        "invoice num",
        "bill number",
        "bill no",
        "number",
        "no",
        "numero de facture",
        "numéro de facture",
        "n facture",
        "facture n°",
        "rechnungsnummer",
    ),
    "issue_date": (
        "invoice date",
        "issue date",
        "date of issue",
        "issued",
        "bill date",
        "date",
        "date de facture",
        "rechnungsdatum",
    ),
    "due_date": (
        "due date",
        "payment due",
        "due",
        "date d'échéance",
        "echeance",
        "fälligkeitsdatum",
        "payment due date",
    ),
    "total": (
        "total",
        "total amount",
        "amount due",
        "total due",
        "grand total",
        "balance due",
        "total ttc",
        "total incl vat",
        "total (incl vat)",
        "total incl vat",
        "net à payer",
        "gesamtbetrag",
    ),
    "subtotal": ("total ht", "total excl vat", "subtotal", "sous-total ht", "montant ht"),
    "description": ("subject", "objet", "description"),
    "vat_number": (
        "vat number",
        "vat no",
        "vat id",
        "vat",
        "tva",
        "ust-idnr",
        "vat reg no",
        "n tva intracommunautaire",
        "n tva",
        "numéro de tva",
        "tva intracommunautaire",
    ),
    "iban": ("iban",),
}

_CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP"}
_HEADER_WORDS = {"invoice", "tax invoice", "facture", "rechnung", "bill"}
_CREDIT_WORDS = {"credit note", "avoir", "facture d'avoir", "gutschrift"}
# An EU VAT number: two letters then 2 to 13 letters or digits. A bare "VAT: 12.00 EUR" line
# is an amount of VAT, never the supplier's number.
_VAT_ID = re.compile(r"^[A-Z]{2}[0-9A-Z+*.]{2,13}$")
# "TVA 20 % : 206,90 EUR", "VAT 5.5%: 1.10 EUR": the VAT at one rate.
_VAT_AT_RATE = re.compile(r"^(?:vat|tva)\s+(\d+(?:[.,]\d+)?)\s*%\s*[:\uff1a]\s*(.+)$", re.I)


def sniff_content_type(data: bytes) -> str | None:
    """Return the real media type of an upload from its magic bytes, or None."""
    for magic, content_type in _SIGNATURES:
        if data.startswith(magic):
            return content_type
    # A PDF header may sit anywhere in the first 1024 bytes (PDF 1.7 §7.5.2 implementation note).
    if b"%PDF-" in data[:1024]:
        return "application/pdf"
    return None


def extract_invoice_fields(data: bytes, content_type: str) -> dict:
    """Read the fields Qonto would extract; empty for images and unreadable PDFs."""
    if content_type != "application/pdf":
        return {}
    try:
        return parse_invoice_text(_pdf_text(data))
    except Exception:  # a hostile PDF must never break the sandbox
        logger.info("sandbox analysis could not read a PDF", exc_info=True)
        return {}


def _pdf_text(data: bytes) -> str:
    """Concatenate the text of the first pages of a PDF."""
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        return ""
    return "\n".join(page.extract_text() or "" for page in reader.pages[:MAX_PAGES_READ])


def parse_invoice_text(text: str) -> dict:
    """Pick labelled values out of invoice text, leniently."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    labelled = _labelled_values(lines)
    fields: dict = {"supplier_name": _supplier_name(lines)}
    fields["invoice_number"] = _first_token(labelled.get("invoice_number"))
    fields["issue_date"] = parse_date(labelled.get("issue_date"))
    fields["due_date"] = parse_date(labelled.get("due_date"))
    fields["total_amount"] = parse_amount(labelled.get("total"))
    vat_number = _compact(labelled.get("vat_number"))
    fields["vat_number"] = vat_number if vat_number and _VAT_ID.match(vat_number) else None
    fields["iban"] = _compact(labelled.get("iban"))
    fields["description"] = (labelled.get("description") or "")[:500] or None
    subtotal = parse_amount(labelled.get("subtotal"))
    taxes = _taxes(lines)
    if taxes:
        fields["taxes"] = taxes
        currency = (fields.get("total_amount") or {}).get("currency") or taxes[0]["tax_amount"][
            "currency"
        ]
        total_tax = sum(Decimal(t["tax_amount"]["value"]) for t in taxes)
        fields["total_tax_amount"] = {"value": str(total_tax), "currency": currency}
    if subtotal:
        fields["total_amount_excluding_taxes"] = subtotal
    credit = any(line.lower() in _CREDIT_WORDS for line in lines[:12])
    total = fields.get("total_amount")
    if credit or (total and total["value"].startswith("-")):
        fields["is_credit_note"] = True
    return {key: value for key, value in fields.items() if value}


def _taxes(lines: list[str]) -> list[dict]:
    """Each "VAT <rate>%: <amount>" line as Qonto's `taxes` item (§4.5)."""
    taxes = []
    for line in lines:
        match = _VAT_AT_RATE.match(line)
        if not match:
            continue
        amount = parse_amount(match.group(2))
        if amount is None:
            continue
        rate = Decimal(match.group(1).replace(",", ".")) / 100
        taxes.append({"tax_rate": f"{rate.normalize():f}", "tax_amount": amount})
    return taxes


def _labelled_values(lines: list[str]) -> dict[str, str]:
    """Map each known field to the value of its first labelled line."""
    found: dict[str, str] = {}
    for line in lines:
        label, value = _split_label(line)
        if label is None or not value:
            continue
        for field, names in _LABELS.items():
            if label in names and field not in found:
                found[field] = value
    return found


def _split_label(line: str) -> tuple[str | None, str]:
    """Split "Label: value" (or "Invoice #123") into a normalised label and the value."""
    match = re.match(r"^([^:]{1,40}?)\s*[:\uff1a]\s*(.*)$", line)
    if not match:
        match = re.match(r"^(invoice\s*(?:no\.?|number|#))\s*#?\s*(\S.*)$", line, re.IGNORECASE)
    if not match:
        return None, ""
    label = re.sub(r"[.#°]", " ", match.group(1).lower())
    label = re.sub(r"\s+", " ", label).strip()
    return label, match.group(2).strip()


def _supplier_name(lines: list[str]) -> str | None:
    """The first line that is not a bare "Invoice" heading or a labelled value."""
    for line in lines[:5]:
        if line.lower().strip(" :") in _HEADER_WORDS | _CREDIT_WORDS:
            continue
        label, _ = _split_label(line)
        if label is None:
            return line[:200]
    return None


def _first_token(value: str | None) -> str | None:
    """Invoice numbers are one token; drop trailing words."""
    if not value:
        return None
    return value.split()[0].strip("#")[:100] or None


def _compact(value: str | None) -> str | None:
    """Identifiers are printed with spaces; Qonto returns them compact."""
    if not value:
        return None
    return re.sub(r"\s+", "", value)[:64] or None


_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%b %d %Y",
)


def parse_date(value: str | None) -> str | None:
    """Return an ISO date from common printed forms (EU day-first when ambiguous)."""
    if not value:
        return None
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", value.strip().rstrip("."))
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).date().isoformat()
        except ValueError:
            continue
    match = re.search(r"\d{4}-\d{2}-\d{2}", cleaned)
    if match:
        try:
            return date.fromisoformat(match.group(0)).isoformat()
        except ValueError:
            return None
    return None


def parse_amount(value: str | None) -> dict | None:
    """Return {"value": "1234.50", "currency": "EUR"} from "EUR 1,234.50", "1.234,50 €"..."""
    if not value:
        return None
    currency = _currency(value)
    match = re.search(r"-?\d[\d.,' \u00a0]*\d|\d", value)
    if not match:
        return None
    number = _normalise_number(match.group(0))
    try:
        amount = Decimal(number).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    return {"value": str(amount), "currency": currency}


def _currency(value: str) -> str:
    """Currency from a symbol or an ISO code; EUR when none is printed (Qonto is EUR-first)."""
    for symbol, code in _CURRENCY_SYMBOLS.items():
        if symbol in value:
            return code
    match = re.search(r"\b([A-Z]{3})\b", value)
    return match.group(1) if match else "EUR"


def _normalise_number(raw: str) -> str:
    """Turn 1,234.50 / 1.234,50 / 1 234,50 into 1234.50."""
    digits = re.sub(r"[ '\u00a0]", "", raw)
    if "," in digits and "." in digits:
        decimal_sep = "," if digits.rfind(",") > digits.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
        return digits.replace(thousands, "").replace(decimal_sep, ".")
    if "," in digits:
        if re.fullmatch(r"-?\d{1,3}(,\d{3})+", digits):
            return digits.replace(",", "")
        return digits.replace(",", ".")
    if digits.count(".") > 1:
        return digits.replace(".", "")
    return digits


def render_invoice_pdf(invoice: dict) -> bytes:
    """Draw a simple PDF for a seeded invoice, in the layout the analysis reads back."""
    amount = invoice.get("total_amount") or {}
    lines = [
        invoice.get("supplier_name") or "Unknown supplier",
        f"Invoice number: {invoice.get('invoice_number') or ''}",
        f"Invoice date: {invoice.get('issue_date') or ''}",
        f"Due date: {invoice.get('due_date') or ''}",
        f"Total: {amount.get('value', '')} {amount.get('currency', '')}",
        f"VAT number: {invoice.get('vat_number') or ''}",
    ]
    pdf = FPDF()
    # A fixed creation date keeps the bytes, and so the file hash, the same on every render.
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        safe = str(line).encode("latin-1", "replace").decode("latin-1")
        pdf.cell(0, 8, safe, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
