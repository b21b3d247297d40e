"""Check documents before upload and render a PDF for records without one (reliability #23)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import unicodedata
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont
from PIL import Image

logger = logging.getLogger("well.connectors.pdf")

WORKER = Path(__file__).with_name("pdf_worker.py")

PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
_EXTENSIONS = {".pdf": PDF, ".jpg": JPEG, ".jpeg": JPEG, ".jpe": JPEG, ".png": PNG}
_NAMES = {PDF: "a PDF", JPEG: "a JPEG image", PNG: "a PNG image"}


@dataclass(frozen=True)
class Limits:
    """What a document may cost before it is refused."""

    max_bytes: int = 10 * 1024 * 1024  # Qonto's upload limit
    max_pages: int = 200
    max_pixels: int = 50_000_000  # about 7000 x 7000; far above any scanned invoice
    max_text_chars: int = 200_000
    wall_seconds: float = 15.0
    cpu_seconds: int = 10
    memory_bytes: int = 512 * 1024 * 1024


DEFAULT_LIMITS = Limits()


class DocumentRejected(Exception):
    """The file will not be uploaded; `.reason` says why in words an accountant can act on."""

    permanent = True

    def __init__(self, reason: str, *, code: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        # Technical detail for logs (which limit tripped); never shown to the accountant.
        self.detail = detail


@dataclass(frozen=True)
class ValidatedDocument:
    """A file that passed every check, with what was learnt about it."""

    filename: str
    content_type: str
    size: int
    sha256: str
    page_count: int
    text: str = ""
    width: int | None = None
    height: int | None = None


# --- Validation ------------------------------------------------------------------------------


def sniff(content: bytes) -> str | None:
    """The media type from the magic bytes, for the three types Qonto accepts; else None."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    # A PDF header may sit anywhere in the first 1024 bytes (PDF 1.7 §7.5.2 implementation note).
    if b"%PDF-" in content[:1024]:
        return PDF
    return None


def _describe_unknown(content: bytes) -> str:
    """A guess at what an unsupported file is, for the refusal message."""
    head = content[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "a web page (HTML), often an error or login page instead of the document"
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        return "an XML or HTML text"
    if content.startswith(b"PK\x03\x04"):
        return "a ZIP archive or an Office document"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if content.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "a WebP image"
    return "a file of an unknown type"


def _polyglot(content: bytes, content_type: str) -> str | None:
    """What else the file is, when it is two formats at once (each program sees another file)."""
    if content_type == PDF:
        # Blank bytes or a byte-order mark before the header are harmless; markup or another
        # format's header is a file a browser or viewer would open as something else.
        before = content[: content.find(b"%PDF-")].removeprefix(b"\xef\xbb\xbf")
        if before.strip():
            return f"a PDF placed after other content ({_describe_unknown(before)})"
        return None
    if b"%PDF-" in content:
        return f"{_NAMES[content_type]} with a PDF hidden inside"
    return None


def _mb(size: int) -> str:
    """Bytes as megabytes with one decimal."""
    return f"{size / (1024 * 1024):.1f} MB"


def validate_document(
    content: bytes, *, filename: str, limits: Limits = DEFAULT_LIMITS
) -> ValidatedDocument:
    """Accept a PDF, JPEG or PNG that Qonto can take, or raise DocumentRejected with the reason."""
    if not content:
        raise DocumentRejected("The file is empty (0 bytes).", code="empty")
    if len(content) > limits.max_bytes:
        raise DocumentRejected(
            f"The file is {_mb(len(content))}; Qonto accepts at most {_mb(limits.max_bytes)}.",
            code="too_large",
        )
    content_type = sniff(content)
    if content_type is None:
        raise DocumentRejected(
            f"The file is not a PDF, JPEG or PNG: it looks like {_describe_unknown(content)}.",
            code="unsupported_type",
        )
    disguised = _polyglot(content, content_type)
    if disguised is not None:
        raise DocumentRejected(
            f"The file is {disguised}; Well does not upload files that different programs "
            "would read as different documents.",
            code="polyglot",
        )
    claimed = _EXTENSIONS.get(Path(filename).suffix.lower())
    if claimed is not None and claimed != content_type:
        raise DocumentRejected(
            f"The file is named {filename!r} but is really {_NAMES[content_type]}; "
            "Well does not upload mislabelled files.",
            code="type_mismatch",
        )
    sha256 = hashlib.sha256(content).hexdigest()
    if content_type == PDF:
        return _validate_pdf(content, filename=filename, sha256=sha256, limits=limits)
    return _validate_image(content, content_type, filename=filename, sha256=sha256, limits=limits)


_VERDICTS: OrderedDict[tuple[str, str], ValidatedDocument | DocumentRejected] = OrderedDict()
_VERDICTS_LOCK = threading.Lock()
_VERDICTS_KEPT = 4096


def validate_document_once(content: bytes, *, filename: str) -> ValidatedDocument:
    """`validate_document` with the default limits, remembered per content and claimed type.

    A verdict depends only on the bytes and the type the name claims, so a file synced again
    (a new version of its Attachable, another bill naming it) or previewed again is not parsed
    again by a new worker process.
    """
    key = (hashlib.sha256(content).hexdigest(), Path(filename).suffix.lower())
    with _VERDICTS_LOCK:
        verdict = _VERDICTS.get(key)
        if verdict is not None:
            _VERDICTS.move_to_end(key)
    if verdict is None:
        try:
            verdict = validate_document(content, filename=filename)
        except DocumentRejected as exc:
            verdict = exc
        with _VERDICTS_LOCK:
            _VERDICTS[key] = verdict
            while len(_VERDICTS) > _VERDICTS_KEPT:
                _VERDICTS.popitem(last=False)
    if isinstance(verdict, DocumentRejected):
        raise DocumentRejected(verdict.reason, code=verdict.code, detail=verdict.detail)
    return dataclasses.replace(verdict, filename=filename)


def _validate_image(
    content: bytes, content_type: str, *, filename: str, sha256: str, limits: Limits
) -> ValidatedDocument:
    """Check an image's header, integrity and pixel count without decoding the pixels."""
    try:
        with warnings.catch_warnings():
            # Our own pixel cap below is stricter than Pillow's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:
                width, height = image.size
                fmt = image.format
                if width * height > limits.max_pixels:
                    raise DocumentRejected(
                        f"The image is {width} x {height} pixels, too large to be a scanned "
                        "invoice (possibly a decompression bomb).",
                        code="too_many_pixels",
                    )
                image.verify()
    except DocumentRejected:
        raise
    except Image.DecompressionBombError:
        raise DocumentRejected(
            "The image has far too many pixels (possibly a decompression bomb).",
            code="too_many_pixels",
        ) from None
    except Exception:
        raise DocumentRejected(
            f"The file starts like {_NAMES[content_type]} but is damaged and cannot be read.",
            code="unreadable",
        ) from None
    if (fmt, content_type) not in (("JPEG", JPEG), ("PNG", PNG)):
        raise DocumentRejected("The image is damaged and cannot be read.", code="unreadable")
    return ValidatedDocument(
        filename=filename,
        content_type=content_type,
        size=len(content),
        sha256=sha256,
        page_count=1,
        width=width,
        height=height,
    )


def _validate_pdf(
    content: bytes, *, filename: str, sha256: str, limits: Limits
) -> ValidatedDocument:
    """Parse a PDF in the sandboxed worker and turn its verdict into a document or a refusal."""
    # A PDF ends with %%EOF (give or take trailing whitespace); a missing marker means the
    # download or the upload to QuickBooks was cut short.
    if b"%%EOF" not in content[-2048:]:
        raise DocumentRejected(
            "The PDF is incomplete: it seems to have been cut off.", code="truncated"
        )
    result = _run_worker(content, limits=limits, positions=False)
    page_count = int(result["page_count"])
    if page_count < 1:
        raise DocumentRejected("The PDF has no pages.", code="no_pages")
    return ValidatedDocument(
        filename=filename,
        content_type=PDF,
        size=len(content),
        sha256=sha256,
        page_count=page_count,
        text=str(result.get("text", "")),
    )


def _run_worker(content: bytes, *, limits: Limits, positions: bool) -> dict[str, Any]:
    """Parse a PDF in a child process with time and memory caps; raise on any refusal."""
    command = [
        sys.executable,
        "-I",  # isolated: no PYTHON* variables, no user site, no script directory games
        str(WORKER),
        str(limits.memory_bytes),
        str(limits.cpu_seconds),
        str(limits.max_pages),
        str(limits.max_text_chars),
        "1" if positions else "0",
    ]
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            input=content,
            capture_output=True,
            timeout=limits.wall_seconds,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        # subprocess.run kills the child before raising.
        raise DocumentRejected(
            f"The PDF took more than {limits.wall_seconds:.0f} seconds to read and was "
            "refused (it may be built to overload readers).",
            code="timeout",
        ) from None
    elapsed = time.monotonic() - started
    try:
        result = json.loads(completed.stdout.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        logger.info(
            "pdf worker died (rc=%s, %.2fs): %s",
            completed.returncode,
            elapsed,
            completed.stderr[-500:].decode("utf-8", "replace"),
        )
        raise DocumentRejected(
            "The PDF could not be read within Well's safety limits (memory or time); "
            "it may be damaged or built to overload readers.",
            code="too_complex",
            detail=f"worker exit code {completed.returncode}",
        ) from None
    status = result.get("status")
    if status == "ok":
        return result
    if status == "encrypted":
        raise DocumentRejected(
            "The PDF is password-protected (encrypted); Qonto cannot read it. "
            "Attach an unprotected copy in QuickBooks.",
            code="encrypted",
        )
    if status == "too_many_objects":
        raise DocumentRejected(
            "The PDF is built from far more objects than an invoice needs, too many for Well "
            "to check what it would do when opened; it was refused.",
            code="too_complex",
        )
    if status == "active":
        found = [str(what) for what in result.get("found", [])][:5] or ["active content"]
        raise DocumentRejected(
            f"The PDF contains {', '.join(found)}, which a viewer would run or act on when the "
            "file is opened; Well neither stores nor uploads such files. Ask the supplier for a "
            "plain PDF (or print this one to a new PDF) and attach it in QuickBooks.",
            code="active_content",
        )
    if status == "too_many_pages":
        raise DocumentRejected(
            f"The PDF has {result.get('page_count')} pages; Well accepts at most "
            f"{limits.max_pages} for one invoice.",
            code="too_many_pages",
        )
    if status in ("memory", "limit"):
        raise DocumentRejected(
            "The PDF expands to far more data than an invoice should (possibly a "
            "decompression bomb) and was refused.",
            code="too_complex",
            detail="memory cap" if status == "memory" else str(result.get("detail")),
        )
    raise DocumentRejected(
        f"The file is not a readable PDF ({result.get('detail', 'unknown error')}); it may be "
        "damaged or incomplete.",
        code="unreadable",
        detail=str(result.get("detail")),
    )


# --- Rendering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderLine:
    """One line of the rendered invoice (its amount as QuickBooks holds it, and its VAT rate)."""

    description: str
    amount: Decimal
    vat_rate: Decimal | None = None


@dataclass(frozen=True)
class VatLine:
    """The VAT at one rate: what it is charged on, and how much (French invoices list each)."""

    rate: Decimal | None
    amount: Decimal
    base: Decimal | None = None


@dataclass(frozen=True)
class Party:
    """A supplier or customer block: name, legal name, address lines, identifiers."""

    name: str
    legal_name: str = ""
    address: Sequence[str] = ()
    vat_number: str = ""
    website: str = ""
    email: str = ""


@dataclass(frozen=True)
class RenderFields:
    """What a generated supplier-invoice PDF shows.

    `vendor_name` and `vat_number` are the supplier's (kept at the top level: the first line and
    the first "VAT number" are what invoice readers, Qonto's included, take as the supplier's).
    `total` includes VAT, `tax` is the VAT; the total without VAT is their difference.
    """

    record_type: str
    record_id: str
    vendor_name: str
    total: Decimal
    currency: str
    invoice_number: str | None = None
    issue_date: date | None = None
    due_date: date | None = None
    lines: Sequence[RenderLine] = field(default_factory=tuple)
    tax: Decimal | None = None
    vat_number: str | None = None
    supplier: Party | None = None
    customer: Party | None = None
    vat_lines: Sequence[VatLine] = field(default_factory=tuple)
    lines_include_tax: bool = False
    subject: str = ""
    language: str = "en"


# The printed words, per language. A table, not gettext: the PDF is a legal document whose
# wording must not depend on a translation catalogue being compiled, and Qonto's reader (and
# the sandbox's, sandbox/qonto_analysis.py) look for these exact labels. French follows what a
# French accountant expects on a supplier invoice (CGI art. 242 nonies A: numéro, date, TVA
# intracommunautaire, total HT, TVA par taux, total TTC, échéance).
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "vat_number": "VAT number",
        "website": "Website",
        "email": "Email",
        "invoice_number": "Invoice number",
        "issue_date": "Invoice date",
        "due_date": "Due date",
        "reference": "QuickBooks reference",
        "subject": "Subject",
        "customer": "Bill to",
        "description": "Description",
        "rate": "VAT",
        "amount_excl": "Amount excl. VAT",
        "amount_incl": "Amount incl. VAT",
        "subtotal": "Total excl. VAT",
        "vat": "VAT",
        "total": "Total incl. VAT",
        "note": "Generated by Well from QuickBooks record {record}; no original document "
        "was attached.",
    },
    "fr": {
        "invoice": "Facture",
        "credit_note": "Avoir",
        "vat_number": "N° TVA intracommunautaire",
        "website": "Site web",
        "email": "E-mail",
        "invoice_number": "Numéro de facture",
        "issue_date": "Date de facture",
        "due_date": "Date d'échéance",
        "reference": "Référence QuickBooks",
        "subject": "Objet",
        "customer": "Client",
        "description": "Désignation",
        "rate": "TVA",
        "amount_excl": "Montant HT",
        "amount_incl": "Montant TTC",
        "subtotal": "Total HT",
        "vat": "TVA",
        "total": "Total TTC",
        "note": "Document établi par Well à partir de l'écriture QuickBooks {record} ; aucun "
        "document original n'était joint.",
    },
}
LANGUAGES = tuple(LABELS)


def language_of(code: str | None) -> str:
    """'fr-FR', 'fr' -> 'fr'; anything Well has no invoice wording for -> 'en'."""
    short = (code or "").split("-")[0].split("_")[0].lower()
    return short if short in LABELS else "en"


FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
FALLBACK_FONTS = (
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallback.ttf"),
)
_MARGIN_MM = 20.0
_AMOUNT_WIDTH_MM = 40.0
_RATE_WIDTH_MM = 22.0
_PAGE_WIDTH_MM = 210.0
_DESC_WIDTH_MM = _PAGE_WIDTH_MM - 2 * _MARGIN_MM - _AMOUNT_WIDTH_MM - _RATE_WIDTH_MM
_PT_PER_MM = 72 / 25.4
# Text starting right of these x (in PDF points) is in the rate, then the amount column.
_RATE_COLUMN_PT = (_MARGIN_MM + _DESC_WIDTH_MM + 1) * _PT_PER_MM
_AMOUNT_COLUMN_PT = (_MARGIN_MM + _DESC_WIDTH_MM + _RATE_WIDTH_MM + 1) * _PT_PER_MM
_CREATED = datetime(2000, 1, 1, tzinfo=timezone.utc)  # noqa: UP017 - fixed so output is stable


@dataclass(frozen=True)
class _Fonts:
    family: str
    unicode: bool
    coverage: frozenset[int]


@lru_cache(maxsize=1)
def _font_files() -> tuple[Path | None, Path | None, list[Path]]:
    """DejaVu Sans regular and bold if installed, and any CJK fallback fonts."""
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold, [p for p in FALLBACK_FONTS if p.is_file()]
    return None, None, []


@lru_cache(maxsize=8)
def _coverage(path: Path) -> frozenset[int]:
    """Code points a TrueType font has glyphs for."""
    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def _setup_fonts(pdf: Any, texts: Sequence[str]) -> _Fonts:
    """Embed DejaVu (plus a CJK fallback when needed) if present; else Helvetica, Latin-1 only."""
    regular, bold, fallbacks = _font_files()
    if regular is None or bold is None:
        logger.warning("DejaVu fonts not found; rendering with Helvetica (Latin-1 only)")
        return _Fonts("helvetica", False, frozenset(range(256)))
    pdf.add_font("dejavu", "", str(regular))
    pdf.add_font("dejavu", "B", str(bold))
    coverage = set(_coverage(regular))
    missing = {ord(ch) for text in texts for ch in _flatten(text)} - coverage
    names = []
    for number, path in enumerate(fallbacks):
        # Fallback fonts are large (CJK): load one only when the text needs it.
        extra = _coverage(path)
        if not missing & extra:
            continue
        name = f"fallback{number}"
        pdf.add_font(name, "", str(path))
        names.append(name)
        coverage |= extra
        missing -= extra
    if names:
        pdf.set_fallback_fonts(names, exact_match=False)
    return _Fonts("dejavu", True, frozenset(coverage))


def _flatten(text: str) -> str:
    """One line: whitespace runs become one space, other control characters are dropped."""
    text = " ".join(str(text).split())
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))


def _clean(text: str, fonts: _Fonts) -> str:
    """One printable line; characters no embedded font can draw become '?'."""
    text = _flatten(text)
    if not fonts.unicode:
        text = text.replace("€", "EUR")
    return "".join(ch if ord(ch) in fonts.coverage or ch == " " else "?" for ch in text)


def format_amount(amount: Decimal, currency: str, language: str = "en") -> str:
    """1234.5 EUR -> '1,234.50 EUR' (en) or '1 234,50 EUR' (fr): forms invoice readers parse."""
    text = f"{amount:,.2f}"
    if language == "fr":
        text = text.replace(",", " ").replace(".", ",")
    return f"{text} {currency}"


def format_rate(rate: Decimal | None, language: str = "en") -> str:
    """Decimal('20') -> '20%' (en) or '20 %' (fr); 5.5 -> '5,5 %' in French."""
    if rate is None:
        return ""
    text = f"{rate.normalize():f}"
    if language == "fr":
        return text.replace(".", ",") + " %"
    return text + "%"


def format_date(day: date, language: str = "en") -> str:
    """ISO in English; DD/MM/YYYY, as French invoices print it, in French."""
    return day.strftime("%d/%m/%Y") if language == "fr" else day.isoformat()


def _labelled(label: str, value: str, language: str) -> str:
    # French typography puts a space before the colon.
    return f"{label} : {value}" if language == "fr" else f"{label}: {value}"


def _check_fields(fields: RenderFields) -> None:
    """Refuse values that would print a misleading invoice."""
    if not fields.vendor_name or not fields.vendor_name.strip():
        raise ValueError("vendor_name is required to render an invoice")
    if not re.fullmatch(r"[A-Z]{3}", fields.currency or ""):
        raise ValueError(f"currency must be an ISO 4217 code, got {fields.currency!r}")
    amounts = [fields.total, *(line.amount for line in fields.lines)]
    amounts += [vat.amount for vat in fields.vat_lines]
    if fields.tax is not None:
        amounts.append(fields.tax)
    for amount in amounts:
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise ValueError(f"amounts must be finite Decimals, got {amount!r}")
    if fields.language not in LABELS:
        raise ValueError(f"no invoice wording for language {fields.language!r}")


def render_record_pdf(fields: RenderFields) -> bytes:
    """A supplier-invoice PDF for a record that came without a document.

    Laid out as a French supplier invoice: the supplier block first (name, legal name, address,
    VAT number, website, e-mail), the title, number, dates and QuickBooks reference, the
    customer block, the lines with their VAT rate, the VAT by rate and the totals.
    """
    # Imported here: fpdf2 takes 0.43 s to import (python -X importtime), paid by every process
    # that imports the posting code (web, workers, commands) while only the outbox renders.
    from fpdf import FPDF

    _check_fields(fields)
    words = LABELS[fields.language]
    lang = fields.language
    supplier = fields.supplier or Party(name=fields.vendor_name)
    customer = fields.customer
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creation_date(_CREATED)
    pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN_MM)
    texts = [
        fields.vendor_name,
        fields.invoice_number or "",
        fields.vat_number or "",
        fields.record_type,
        fields.record_id,
        fields.subject,
        supplier.legal_name,
        supplier.website,
        supplier.email,
        *supplier.address,
        *((customer.name, customer.legal_name, *customer.address) if customer else ()),
        *(item.description for item in fields.lines),
    ]
    fonts = _setup_fonts(pdf, texts)
    credit = fields.total < 0
    title = words["credit_note"] if credit else words["invoice"]
    vendor = _clean(fields.vendor_name, fonts)
    number = _clean(fields.invoice_number, fonts) if fields.invoice_number else None
    pdf.set_title(f"{title} {number or ''} - {vendor}".replace("  ", " "))
    pdf.set_author("Well")
    pdf.set_creator("Well")
    pdf.set_lang("fr-FR" if lang == "fr" else "en")
    pdf.add_page()
    width = _PAGE_WIDTH_MM - 2 * _MARGIN_MM

    def line(text: str, *, size: float = 10, bold: bool = False, height: float = 5.5) -> None:
        pdf.set_font(fonts.family, "B" if bold else "", size)
        pdf.multi_cell(width, height, text, align="L", new_x="LMARGIN", new_y="NEXT")

    def labelled(key: str, value: str, **options) -> None:
        line(_labelled(words[key], value, lang), **options)

    def money(amount: Decimal) -> str:
        return format_amount(amount, fields.currency, lang)

    # The supplier is the first line: invoice readers take the first unlabelled line as supplier.
    line(vendor, size=16, bold=True, height=8)
    # A gap wider than the name's own line height: a reader tells a wrapped name from the
    # legal name below it (read_back, _VENDOR_GAP_PT).
    pdf.ln(4)
    legal = _clean(supplier.legal_name, fonts)
    if legal and legal != vendor:
        line(legal)
    for address_line in supplier.address:
        if _clean(address_line, fonts):
            line(_clean(address_line, fonts))
    if fields.vat_number:
        labelled("vat_number", _clean(fields.vat_number, fonts))
    if supplier.website:
        labelled("website", _clean(supplier.website, fonts))
    if supplier.email:
        labelled("email", _clean(supplier.email, fonts))
    pdf.ln(4)
    line(title, size=14, bold=True, height=7)
    if number:
        labelled("invoice_number", number)
    if fields.issue_date:
        labelled("issue_date", format_date(fields.issue_date, lang))
    if fields.due_date:
        labelled("due_date", format_date(fields.due_date, lang), bold=True)
    record = f"{_clean(fields.record_type, fonts)} {_clean(fields.record_id, fonts)}"
    labelled("reference", record)
    if fields.subject and _clean(fields.subject, fonts):
        labelled("subject", _clean(fields.subject, fonts))
    if customer is not None and _clean(customer.name, fonts):
        pdf.ln(3)
        line(_labelled(words["customer"], "", lang).rstrip(), bold=True)
        line(_clean(customer.name, fonts))
        customer_legal = _clean(customer.legal_name, fonts)
        if customer_legal and customer_legal != _clean(customer.name, fonts):
            line(customer_legal)
        for address_line in customer.address:
            if _clean(address_line, fonts):
                line(_clean(address_line, fonts))
    pdf.ln(4)

    pdf.set_font(fonts.family, "B", 10)
    amount_header = words["amount_incl"] if fields.lines_include_tax else words["amount_excl"]
    pdf.cell(_DESC_WIDTH_MM, 7, words["description"], border="B")
    pdf.cell(_RATE_WIDTH_MM, 7, words["rate"], border="B", align="R")
    pdf.cell(_AMOUNT_WIDTH_MM, 7, amount_header, border="B", align="R")
    pdf.ln(7)
    pdf.set_font(fonts.family, "", 10)
    for item in fields.lines:
        description = _clean(item.description, fonts) or "-"
        if pdf.will_page_break(6):
            pdf.add_page()
        top_page, top_y = pdf.page, pdf.get_y()
        pdf.multi_cell(_DESC_WIDTH_MM, 6, description, align="L", new_x="LMARGIN", new_y="NEXT")
        end_page, end_y = pdf.page, pdf.get_y()
        # Rate and amount sit on the first line of their row, even when the description wraps.
        pdf.page = top_page
        pdf.set_xy(_MARGIN_MM + _DESC_WIDTH_MM, top_y)
        pdf.cell(_RATE_WIDTH_MM, 6, format_rate(item.vat_rate, lang) or "-", align="R")
        pdf.cell(_AMOUNT_WIDTH_MM, 6, money(item.amount), align="R")
        pdf.page = end_page
        pdf.set_xy(_MARGIN_MM, end_y)
    pdf.ln(3)
    if fields.tax is not None:
        labelled("subtotal", money(fields.total - fields.tax))
        shown = [vat for vat in fields.vat_lines if vat.amount or vat.rate is not None]
        if not shown:
            shown = [VatLine(rate=None, amount=fields.tax)]
        for vat in shown:
            label = words["vat"] + (
                f" {format_rate(vat.rate, lang)}" if vat.rate is not None else ""
            )
            line(_labelled(label, money(vat.amount), lang))
    labelled("total", money(fields.total), bold=True)
    pdf.ln(6)
    pdf.set_text_color(90, 90, 90)
    line(words["note"].format(record=record), size=8, height=4.5)
    return bytes(pdf.output())


# --- Reading back ----------------------------------------------------------------------------


# The supplier's name is drawn in 8 mm lines followed by a 4 mm gap: rows closer than this
# (in points) continue the name.
_VENDOR_GAP_PT = 9 * _PT_PER_MM


def _rows(result: dict[str, Any]) -> list[tuple[str, str, str, int, float]]:
    """Text rows in reading order as (left column, rate column, amount column, page, y)."""
    grouped: dict[tuple[int, float], list[tuple[float, str]]] = {}
    for page, x, y, text in result.get("chunks", []):
        grouped.setdefault((int(page), round(float(y), 1)), []).append((float(x), str(text)))
    rows = []
    for _key, parts in sorted(grouped.items(), key=lambda item: (item[0][0], -item[0][1])):
        # Stream order, not x order: fragments of one cell (font fallback) share a stale x.
        left = "".join(text for x, text in parts if x < _RATE_COLUMN_PT).strip()
        rate = "".join(t for x, t in parts if _RATE_COLUMN_PT <= x < _AMOUNT_COLUMN_PT).strip()
        right = "".join(text for x, text in parts if x >= _AMOUNT_COLUMN_PT).strip()
        rows.append((left, rate, right, _key[0], _key[1]))
    return rows


def parse_amount_text(text: str) -> tuple[Decimal, str | None]:
    """'-1,234.50 EUR' or '-1 234,50 EUR' -> (Decimal('-1234.50'), 'EUR')."""
    match = re.fullmatch(r"\s*(-?[\d,. \u00a0\u202f]*\d)\s*([A-Z]{3})?\s*", text)
    if not match:
        raise ValueError(f"not an amount: {text!r}")
    number = re.sub(r"[ \u00a0\u202f]", "", match.group(1))
    if re.search(r",\d{2}$", number):  # French: comma decimals, space thousands
        number = number.replace(".", "").replace(",", ".")
    else:
        number = number.replace(",", "")
    try:
        return Decimal(number), match.group(2)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None


def _parse_rate(text: str) -> Decimal | None:
    text = text.replace(",", ".").replace("%", "").strip()
    if not text or text == "-":
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _parse_date(text: str) -> date:
    if re.fullmatch(r"\d{2}/\d{2}/\d{4}", text):
        return datetime.strptime(text, "%d/%m/%Y").date()
    return date.fromisoformat(text)


def _split(text: str) -> tuple[str, str]:
    """'Label: value' or 'Label : value' -> ('Label', 'value'); no label -> ('', text)."""
    match = re.fullmatch(r"(.+?) ?: ?(.*)", text)
    if not match:
        return "", text
    return match.group(1).strip(), match.group(2).strip()


def read_back(content: bytes, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Re-read a PDF rendered by `render_record_pdf` and return its fields (either language)."""
    result = _run_worker(content, limits=limits, positions=True)
    rows = _rows(result)
    found: dict[str, Any] = {
        "page_count": int(result["page_count"]),
        "text": result.get("text", ""),
        "language": None,
        "vendor_name": None,
        "supplier_lines": [],
        "title": None,
        "invoice_number": None,
        "issue_date": None,
        "due_date": None,
        "total": None,
        "currency": None,
        "vat_number": None,
        "website": None,
        "email": None,
        "record_type": None,
        "record_id": None,
        "subject": None,
        "customer_lines": [],
        "subtotal": None,
        "tax": None,
        "vat_lines": [],
        "lines": [],
        "note": None,
    }
    titles = {}
    keys: dict[str, str] = {}
    for language, words in LABELS.items():
        titles[words["invoice"]] = language
        titles[words["credit_note"]] = language
        for key in ("vat_number", "website", "email", "invoice_number", "issue_date"):
            keys[words[key]] = key
        for key in ("due_date", "reference", "subject", "subtotal", "total"):
            keys[words[key]] = key
    index = 0
    vendor: list[str] = []
    while index < len(rows) and rows[index][0] not in titles:
        left = rows[index][0]
        label, value = _split(left)
        previous = rows[index - 1] if index else None
        in_name = index == 0 or (
            len(vendor) == index
            and previous is not None
            and previous[3] == rows[index][3]
            and previous[4] - rows[index][4] < _VENDOR_GAP_PT
        )
        if in_name:
            vendor.append(left)
        elif keys.get(label) in ("vat_number", "website", "email"):
            found[keys[label]] = value
        elif left:
            found["supplier_lines"].append(left)
        index += 1
    found["vendor_name"] = " ".join(vendor) or None
    if index < len(rows):
        found["title"] = rows[index][0]
        found["language"] = titles[rows[index][0]]
    words = LABELS[found["language"] or "en"]
    headers = (words["description"], words["rate"])
    section = "header"
    note: list[str] = []
    for left, rate, right, _page, _y in rows[index + 1 :]:
        label, value = _split(left)
        key = keys.get(label)
        if section == "header":
            if left == headers[0] and rate == headers[1]:
                section = "table"
                continue
            if label == words["customer"] and not value:
                section = "customer"
                continue
            if key and found.get(key) is None:
                found[key] = value
            continue
        if section == "customer":
            if left == headers[0] and rate == headers[1]:
                section = "table"
            elif left:
                found["customer_lines"].append(left)
            continue
        if section == "table":
            if right:
                found["lines"].append([left, _parse_rate(rate), parse_amount_text(right)[0]])
                continue
            if key in ("subtotal", "total") or label.startswith(words["vat"]):
                section = "totals"
            elif found["lines"]:
                found["lines"][-1][0] = f"{found['lines'][-1][0]} {left}"
                continue
        if section == "totals":
            if key == "subtotal":
                found["subtotal"] = parse_amount_text(value)[0]
                continue
            if key == "total":
                found["total"], printed_currency = parse_amount_text(value)
                found["currency"] = printed_currency
                section = "note"
                continue
            if label == words["vat"] or label.startswith(words["vat"] + " "):
                amount = parse_amount_text(value)[0]
                found["vat_lines"].append((_parse_rate(label[len(words["vat"]) :]), amount))
                continue
        if left:
            note.append(left)
    found["note"] = " ".join(note) or None
    found["lines"] = [tuple(item) for item in found["lines"]]
    if found["vat_lines"]:
        found["tax"] = sum((amount for _rate, amount in found["vat_lines"]), Decimal(0))
    for key in ("issue_date", "due_date"):
        if found[key]:
            found[key] = _parse_date(found[key])
    record = found.pop("reference", None)
    if record:
        found["record_type"], _, found["record_id"] = record.partition(" ")
    return found
