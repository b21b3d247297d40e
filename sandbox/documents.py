"""Render vendor invoices and receipts as real PDFs (fpdf2) for sandbox attachments.

A document is described by a plain dict (the "spec", JSON-serialisable so sandboxes can persist
it) and rendered on demand; `render_pdf` caches recent renders, so a world with 10,000 bills
costs nothing until files are downloaded. Text is extractable with pypdf and uses the labels
Well's extraction looks for: "Invoice number:", "Invoice date:", "Due date:", "Total:",
"VAT number:", with the vendor's legal name as the first line.

Spec keys: kind ("invoice" | "receipt"), vendor_name, vendor_address (list of lines),
vendor_vat, vendor_website, customer_name, customer_address (list), customer_vat, number,
issue_date, due_date, currency, lines [{description, quantity, unit_price, vat_rate, amount}],
subtotal, vat_total, total, iban (optional), file_name.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache

from fpdf import FPDF

_FIXED_DATE = datetime(2024, 1, 1, tzinfo=UTC)


def render_pdf(spec: dict) -> bytes:
    """The PDF bytes for a document spec (deterministic for a given spec)."""
    return _render_cached(json.dumps(spec, sort_keys=True))


@lru_cache(maxsize=512)
def _render_cached(spec_json: str) -> bytes:
    """Render once per distinct spec; cheap repeated downloads."""
    return _render(json.loads(spec_json))


def _text(value: object) -> str:
    """Core PDF fonts are Latin-1 only; replace what they cannot draw."""
    return str(value).encode("latin-1", "replace").decode("latin-1")


def _money(amount: float, currency: str) -> str:
    """French-style amount, e.g. 1 234,50 EUR."""
    whole = f"{amount:,.2f}".replace(",", " ").replace(".", ",")
    return f"{whole} {currency}"


def _render(spec: dict) -> bytes:
    """Lay out one A4 page: vendor header, parties, dates, lines, totals."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(_FIXED_DATE)
    pdf.set_title(_text(f"{spec['vendor_name']} {spec['number']}"))
    pdf.set_author(_text(spec["vendor_name"]))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    _header(pdf, spec)
    _parties(pdf, spec)
    _dates(pdf, spec)
    _lines(pdf, spec)
    _totals(pdf, spec)
    return bytes(pdf.output())


def _header(pdf: FPDF, spec: dict) -> None:
    """Vendor legal name first (extraction relies on it), then its address and VAT number."""
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, _text(spec["vendor_name"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for line in spec.get("vendor_address", []):
        pdf.cell(0, 5, _text(line), new_x="LMARGIN", new_y="NEXT")
    if spec.get("vendor_website"):
        pdf.cell(0, 5, _text(spec["vendor_website"]), new_x="LMARGIN", new_y="NEXT")
    if spec.get("vendor_vat"):
        pdf.cell(0, 5, _text(f"VAT number: {spec['vendor_vat']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    title = "RECEIPT" if spec.get("kind") == "receipt" else "INVOICE"
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")


def _parties(pdf: FPDF, spec: dict) -> None:
    """The billed company (our seeded customer of the vendor)."""
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 5, "Bill to:", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 5, _text(spec.get("customer_name", "")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for line in spec.get("customer_address", []):
        pdf.cell(0, 5, _text(line), new_x="LMARGIN", new_y="NEXT")
    if spec.get("customer_vat"):
        pdf.cell(
            0, 5, _text(f"Customer VAT: {spec['customer_vat']}"), new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(4)


def _dates(pdf: FPDF, spec: dict) -> None:
    """Number and dates, one labelled line each."""
    label = "Receipt number:" if spec.get("kind") == "receipt" else "Invoice number:"
    rows = [(label, spec["number"]), ("Invoice date:", spec["issue_date"])]
    if spec.get("due_date"):
        rows.append(("Due date:", spec["due_date"]))
    pdf.set_font("Helvetica", "", 10)
    for name, value in rows:
        pdf.cell(0, 6, _text(f"{name} {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)


def _lines(pdf: FPDF, spec: dict) -> None:
    """A simple table of lines: description, quantity, unit price, VAT rate, amount."""
    currency = spec["currency"]
    widths = (85, 15, 30, 20, 30)
    pdf.set_font("Helvetica", "B", 10)
    for width, head in zip(
        widths, ("Description", "Qty", "Unit price", "VAT", "Amount"), strict=True
    ):
        pdf.cell(width, 7, head, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for line in spec["lines"]:
        cells = (
            _text(line["description"])[:48],
            f"{line['quantity']:g}",
            _money(line["unit_price"], currency),
            f"{line['vat_rate']:g}%",
            _money(line["amount"], currency),
        )
        for width, value in zip(widths, cells, strict=True):
            pdf.cell(width, 7, value)
        pdf.ln()
    pdf.ln(4)


def _totals(pdf: FPDF, spec: dict) -> None:
    """Totals block and payment details."""
    currency = spec["currency"]
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(
        0,
        6,
        f"Subtotal (excl. VAT): {_money(spec['subtotal'], currency)}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.cell(0, 6, f"VAT: {_money(spec['vat_total'], currency)}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, f"Total: {_money(spec['total'], currency)}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    if spec.get("kind") == "receipt":
        pdf.cell(0, 6, "Paid by card. Thank you for your purchase.", new_x="LMARGIN", new_y="NEXT")
    elif spec.get("iban"):
        pdf.cell(
            0,
            6,
            _text(f"Payment by bank transfer to IBAN {spec['iban']}"),
            new_x="LMARGIN",
            new_y="NEXT",
        )
