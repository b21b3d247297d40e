from __future__ import annotations

import io
import struct
import time
import zlib
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfWriter

from connectors import pdf
from connectors.pdf import (
    DocumentRejected,
    Limits,
    RenderFields,
    RenderLine,
    read_back,
    render_record_pdf,
    validate_document,
)

# Every hostile file must be refused within this many seconds (worker start included).
BOUNDED = 20.0


def assemble_pdf(objects: list[bytes]) -> bytes:
    """A PDF with a correct cross-reference table from numbered object bodies (1 = Catalog)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def one_page_pdf(*, contents: bytes, stream_dict: bytes = b"", page_extra: bytes = b"") -> bytes:
    """A one-page PDF whose content stream is `contents`."""
    return assemble_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> " + page_extra + b">>",
            b"<< /Length %d " % len(contents)
            + stream_dict
            + b">>\nstream\n"
            + contents
            + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def zeros_bomb(total: int) -> bytes:
    """A zlib stream that inflates to `total` zero bytes, built fast by repeating one block."""
    chunk = bytes(1 << 24)
    count = total // len(chunk)
    compressor = zlib.compressobj(9)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(count):
        adler = zlib.adler32(chunk, adler)
    # b"\x03\x00" is an empty final block; the zlib trailer is the Adler-32 of all the data.
    return first + repeat * (count - 1) + b"\x03\x00" + struct.pack(">I", adler)


@pytest.fixture(scope="module")
def bomb_pdf() -> bytes:
    stream = zeros_bomb(80 << 24)  # 1.34 GB of zeros
    assert len(zlib.decompressobj().decompress(stream, 1 << 20)) == 1 << 20
    return one_page_pdf(contents=stream, stream_dict=b"/Filter /FlateDecode ")


def simple_pdf(text: str = "Hello invoice", pages: int = 1) -> bytes:
    from fpdf import FPDF

    document = FPDF()
    for number in range(pages):
        document.add_page()
        document.set_font("helvetica", size=12)
        document.cell(text=f"{text} {number + 1}")
    return bytes(document.output())


def image_bytes(fmt: str, size=(40, 30), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=0).save(buffer, format=fmt)
    return buffer.getvalue()


def refused(content: bytes, filename: str = "invoice.pdf", **kwargs) -> DocumentRejected:
    started = time.monotonic()
    with pytest.raises(DocumentRejected) as caught:
        validate_document(content, filename=filename, **kwargs)
    assert time.monotonic() - started < BOUNDED
    assert caught.value.reason == str(caught.value)
    assert caught.value.permanent is True
    return caught.value


# --- Accepted files ---------------------------------------------------------------------------


def test_a_real_pdf_is_accepted_with_its_pages_and_text():
    document = validate_document(simple_pdf("Acme invoice", pages=3), filename="bill.pdf")
    assert document.content_type == "application/pdf"
    assert document.page_count == 3
    assert "Acme invoice 1" in document.text
    assert len(document.sha256) == 64


@pytest.mark.parametrize(
    ("fmt", "filename", "content_type"),
    [
        ("JPEG", "scan.jpg", "image/jpeg"),
        ("PNG", "scan.png", "image/png"),
        ("PNG", "scan", "image/png"),
    ],
)
def test_jpeg_and_png_are_accepted_with_their_dimensions(fmt, filename, content_type):
    document = validate_document(image_bytes(fmt), filename=filename)
    assert document.content_type == content_type
    assert (document.width, document.height) == (40, 30)
    assert document.page_count == 1


# --- Refused files ----------------------------------------------------------------------------


def test_zero_bytes_are_refused():
    assert refused(b"").code == "empty"


def test_an_oversized_file_is_refused_before_parsing():
    error = refused(b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024) + b"%%EOF")
    assert error.code == "too_large"
    assert "10.0 MB" in error.reason


def test_an_encrypted_pdf_is_refused():
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    error = refused(buffer.getvalue())
    assert error.code == "encrypted"
    assert "password" in error.reason


def test_a_pdf_encrypted_with_an_empty_password_is_still_refused():
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert refused(buffer.getvalue()).code == "encrypted"


def test_a_truncated_pdf_is_refused():
    content = simple_pdf(pages=2)
    error = refused(content[: len(content) // 2])
    assert error.code == "truncated"
    assert "cut off" in error.reason


def test_a_damaged_pdf_with_an_end_marker_is_refused_as_unreadable():
    content = simple_pdf(pages=2)
    damaged = content[:200] + b"garbage" * 50 + b"\n%%EOF\n"
    assert refused(damaged).code == "unreadable"


def test_a_jpeg_named_pdf_is_refused_as_mislabelled():
    error = refused(image_bytes("JPEG"))
    assert error.code == "type_mismatch"
    assert "JPEG" in error.reason


def test_an_html_page_named_pdf_is_refused():
    error = refused(b"<!DOCTYPE html><html><body>Session expired</body></html>")
    assert error.code == "unsupported_type"
    assert "web page" in error.reason


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (b"PK\x03\x04rest-of-zip", "ZIP"),
        (b"GIF89a....", "GIF"),
        (b"plain text invoice", "unknown"),
    ],
)
def test_unsupported_types_say_what_they_look_like(content, hint):
    error = refused(content, filename="upload.bin")
    assert error.code == "unsupported_type"
    assert hint in error.reason


def test_a_decompression_bomb_is_refused_in_bounded_time(bomb_pdf):
    started = time.monotonic()
    error = refused(bomb_pdf)
    assert error.code == "too_complex"
    assert "decompression bomb" in error.reason
    assert time.monotonic() - started < BOUNDED


def test_a_bomb_under_a_tight_memory_cap_is_refused_not_crashing(bomb_pdf):
    error = refused(bomb_pdf, limits=Limits(memory_bytes=96 * 1024 * 1024))
    assert error.code == "too_complex"
    assert error.detail == "memory cap"


def test_a_pdf_with_too_many_pages_is_refused():
    writer = PdfWriter()
    for _ in range(250):
        writer.add_blank_page(width=100, height=100)
    buffer = io.BytesIO()
    writer.write(buffer)
    error = refused(buffer.getvalue())
    assert error.code == "too_many_pages"
    assert "250 pages" in error.reason


def test_a_page_tree_lying_about_its_count_is_judged_by_its_real_pages():
    content = assemble_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1000000000 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )
    started = time.monotonic()
    assert validate_document(content, filename="x.pdf").page_count == 1
    assert time.monotonic() - started < BOUNDED


def test_a_huge_page_tree_is_refused():
    kids = b" ".join([b"3 0 R"] * 100_000)
    content = assemble_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count 100000 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )
    assert refused(content).code in ("too_many_pages", "too_complex")


def test_a_page_tree_that_contains_itself_is_refused():
    content = assemble_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )
    started = time.monotonic()
    try:
        document = validate_document(content, filename="x.pdf")
    except DocumentRejected:
        pass
    else:
        assert document.page_count == 1  # pypdf skips the loop: harmless
    assert time.monotonic() - started < BOUNDED


def test_deeply_nested_objects_are_refused():
    nested = b"[" * 200_000 + b"]" * 200_000
    content = one_page_pdf(contents=b"BT ET", page_extra=b"/Deep " + nested + b" ")
    assert refused(content).code in ("unreadable", "too_complex")


def test_a_pdf_that_takes_too_long_is_refused():
    error = refused(simple_pdf(), limits=Limits(wall_seconds=0.001))
    assert error.code == "timeout"


def test_a_damaged_image_is_refused():
    assert refused(b"\xff\xd8\xff\xe0" + b"\x00" * 100, filename="scan.jpg").code == "unreadable"


def test_an_image_with_too_many_pixels_is_refused():
    huge = image_bytes("PNG", size=(10_000, 6_000), mode="1")
    assert len(huge) < 1024 * 1024
    error = refused(huge, filename="scan.png")
    assert error.code == "too_many_pixels"


def test_a_png_named_jpeg_is_refused():
    assert refused(image_bytes("PNG"), filename="scan.jpeg").code == "type_mismatch"


# --- Rendering --------------------------------------------------------------------------------


def invoice(**overrides) -> RenderFields:
    values = {
        "record_type": "Bill",
        "record_id": "146",
        "vendor_name": "Acme Supplies Ltd",
        "invoice_number": "INV-2025/001",
        "issue_date": date(2025, 1, 31),
        "due_date": date(2025, 3, 2),
        "currency": "EUR",
        "lines": [
            RenderLine("Consulting, January", Decimal("1000.00"), Decimal("20")),
            RenderLine("Hosting", Decimal("34.50"), Decimal("20")),
        ],
        "tax": Decimal("206.90"),
        "total": Decimal("1241.40"),
        "vat_number": "FR12345678901",
    }
    values.update(overrides)
    return RenderFields(**values)


def assert_round_trip(fields: RenderFields) -> dict:
    content = render_record_pdf(fields)
    found = read_back(content)
    assert found["language"] == fields.language
    assert found["vendor_name"] == " ".join(fields.vendor_name.split())
    assert found["invoice_number"] == fields.invoice_number
    assert found["issue_date"] == fields.issue_date
    assert found["due_date"] == fields.due_date
    assert found["total"] == fields.total
    assert found["currency"] == fields.currency
    assert found["tax"] == fields.tax
    if fields.tax is not None:
        assert found["subtotal"] == fields.total - fields.tax
    assert found["vat_number"] == fields.vat_number
    assert found["record_type"] == fields.record_type
    assert found["record_id"] == fields.record_id
    assert found["lines"] == [
        (" ".join(i.description.split()), i.vat_rate, i.amount) for i in fields.lines
    ]
    record = f"{fields.record_type} {fields.record_id}"
    assert found["note"] == pdf.LABELS[fields.language]["note"].format(record=record)
    return found


def test_a_rendered_invoice_round_trips_every_field():
    found = assert_round_trip(invoice())
    assert found["title"] == "Invoice"
    assert found["vat_lines"] == [(None, Decimal("206.90"))]


def test_a_french_invoice_prints_supplier_customer_vat_by_rate_and_totals():
    fields = invoice(
        language="fr",
        supplier=pdf.Party(
            name="Acme Supplies Ltd",
            legal_name="Acme Supplies Limited SAS",
            address=("12 rue de la Paix", "75002 Paris", "FR"),
            website="https://acme.example",
            email="billing@acme.example",
        ),
        customer=pdf.Party(name="Atelier Lumière", address=("18 rue Auguste Comte", "69002 Lyon")),
        lines=[
            RenderLine("Conseil", Decimal("1000.00"), Decimal("20")),
            RenderLine("Livres", Decimal("100.00"), Decimal("5.5")),
        ],
        vat_lines=[
            pdf.VatLine(Decimal("20"), Decimal("200.00"), Decimal("1000.00")),
            pdf.VatLine(Decimal("5.5"), Decimal("5.50"), Decimal("100.00")),
        ],
        tax=Decimal("205.50"),
        total=Decimal("1305.50"),
    )
    found = assert_round_trip(fields)
    assert found["title"] == "Facture"
    assert found["supplier_lines"] == [
        "Acme Supplies Limited SAS",
        "12 rue de la Paix",
        "75002 Paris",
        "FR",
    ]
    assert found["website"] == "https://acme.example"
    assert found["email"] == "billing@acme.example"
    assert found["customer_lines"] == ["Atelier Lumière", "18 rue Auguste Comte", "69002 Lyon"]
    assert found["vat_lines"] == [
        (Decimal("20"), Decimal("200.00")),
        (Decimal("5.5"), Decimal("5.50")),
    ]
    text = found["text"]
    for printed in (
        "N° TVA intracommunautaire : FR12345678901",
        "Date de facture : 31/01/2025",
        "Date d'échéance : 02/03/2025",
        "Total HT : 1 100,00 EUR",
        "TVA 20 % : 200,00 EUR",
        "TVA 5,5 % : 5,50 EUR",
        "Total TTC : 1 305,50 EUR",
        "Référence QuickBooks : Bill 146",
    ):
        assert printed in text


def test_a_negative_total_renders_a_credit_note():
    found = assert_round_trip(
        invoice(
            record_type="VendorCredit",
            total=Decimal("-150.00"),
            tax=Decimal("-25.00"),
            lines=[RenderLine("Refund for damaged goods", Decimal("-125.00"))],
        )
    )
    assert found["title"] == "Credit note"


def test_unicode_names_and_symbols_round_trip():
    assert_round_trip(
        invoice(
            vendor_name="Société Générale d'Équipement — Zürich",
            lines=[RenderLine("Café & croissants € prix spécial", Decimal("12.30"))],
        )
    )


def test_cjk_names_round_trip():
    # .ci/run installs Debian's fonts-droid-fallback; without it this fails rather than skips.
    assert pdf._font_files()[2], "no CJK fallback font: apt-get install fonts-droid-fallback"
    assert_round_trip(invoice(vendor_name="東京商事株式会社 Tokyo Shoji"))


def test_long_descriptions_wrap_and_many_lines_spill_onto_more_pages():
    lines = [
        RenderLine(f"Line {n}: " + "maintenance of the ventilation system " * 6, Decimal(n))
        for n in range(1, 41)
    ]
    found = assert_round_trip(invoice(lines=lines, total=Decimal("820.00"), tax=None))
    assert found["page_count"] > 1


def test_optional_fields_may_be_missing():
    found = assert_round_trip(
        invoice(
            invoice_number=None,
            issue_date=None,
            due_date=None,
            vat_number=None,
            tax=None,
            lines=[],
        )
    )
    assert found["lines"] == []


def test_the_rendered_pdf_passes_validation_with_the_vendor_first():
    document = validate_document(render_record_pdf(invoice()), filename="Bill-146.pdf")
    first_line = document.text.strip().splitlines()[0]
    assert first_line == "Acme Supplies Ltd"
    for label in ("Invoice number: INV-2025/001", "Invoice date: 2025-01-31", "Due date:"):
        assert label in document.text
    assert "Total incl. VAT: 1,241.40 EUR" in document.text
    assert "VAT number: FR12345678901" in document.text


def test_rendering_is_deterministic():
    assert render_record_pdf(invoice()) == render_record_pdf(invoice())


def test_without_dejavu_rendering_falls_back_to_latin1(monkeypatch):
    monkeypatch.setattr(pdf, "_font_files", lambda: (None, None, []))
    content = render_record_pdf(invoice(vendor_name="Café Zürich 東京", total=Decimal("9.99")))
    found = read_back(content)
    assert found["vendor_name"] == "Café Zürich ??"
    assert found["total"] == Decimal("9.99")


def test_control_characters_and_newlines_are_flattened():
    found = read_back(render_record_pdf(invoice(vendor_name="Acme\nSupplies\x00 Ltd\t")))
    assert found["vendor_name"] == "Acme Supplies Ltd"


@pytest.mark.parametrize(
    "overrides",
    [
        {"vendor_name": "  "},
        {"currency": "euro"},
        {"total": Decimal("NaN")},
        {"tax": Decimal("Infinity")},
    ],
)
def test_fields_that_would_print_a_misleading_invoice_are_refused(overrides):
    with pytest.raises(ValueError):
        render_record_pdf(invoice(**overrides))


words = st.text(
    alphabet=st.characters(
        whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=0x24F, blacklist_characters="ǅǈǋǲ"
    ),
    min_size=1,
    max_size=12,
)
phrases = st.lists(words, min_size=1, max_size=12).map(" ".join)
amounts = st.decimals(
    min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=2, allow_nan=False
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    vendor=phrases.filter(lambda v: v not in ("Invoice", "Credit note", "Facture", "Avoir")),
    descriptions=st.lists(phrases, max_size=4),
    total=amounts,
    number=st.from_regex(r"[A-Z0-9][A-Z0-9/-]{0,15}", fullmatch=True),
)
def test_round_trip_holds_for_generated_invoices(vendor, descriptions, total, number):
    fields = invoice(
        vendor_name=vendor,
        invoice_number=number,
        total=total,
        lines=[RenderLine(text, Decimal("1.00")) for text in descriptions],
    )
    assert_round_trip(fields)


# --- The security sweep (issue #9): object streams, polyglots, encryption variants -----------


def assemble_pdf_with_object_streams(
    loose: dict[int, bytes], packed: dict[int, tuple[int, int]], streams: dict[int, bytes]
) -> bytes:
    """A PDF 1.5 whose objects may sit in object streams, found through an xref stream.

    `loose`: object number -> body written as is; `packed`: object number -> (object stream
    number, index in it); `streams`: object stream number -> its full body (dict and stream).
    """
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number, body in sorted({**loose, **streams}.items()):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    size = max([*offsets, *packed]) + 2
    xref_number = size - 1
    offsets[xref_number] = len(out)
    rows = bytearray()
    for number in range(size):
        if number in packed:
            stream, index = packed[number]
            rows += struct.pack(">BIH", 2, stream, index)
        elif number in offsets:
            rows += struct.pack(">BIH", 1, offsets[number], 0)
        else:
            rows += struct.pack(">BIH", 0, 0, 65535)
    out += (
        f"{xref_number} 0 obj\n<< /Type /XRef /Size {size} /W [1 4 2] /Root 1 0 R "
        f"/Length {len(rows)} >>\nstream\n"
    ).encode()
    out += bytes(rows) + b"\nendstream\nendobj\n"
    out += f"startxref\n{offsets[xref_number]}\n%%EOF\n".encode()
    return bytes(out)


def object_stream(objects: list[tuple[int, bytes]], *, extra: bytes = b"", data=None) -> bytes:
    header, body = b"", b""
    for number, text in objects:
        header += b"%d %d " % (number, len(body))
        body += text + b" "
    data = data if data is not None else header + body
    return (
        b"<< /Type /ObjStm /N %d /First %d /Length %d " % (len(objects), len(header), len(data))
        + extra
        + b">>\nstream\n"
        + data
        + b"\nendstream"
    )


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"


def test_a_pdf_with_an_object_stream_is_read():
    content = assemble_pdf_with_object_streams(
        loose={3: PAGE},
        packed={1: (5, 0), 2: (5, 1)},
        streams={5: object_stream([(1, CATALOG), (2, PAGES)])},
    )
    assert validate_document(content, filename="x.pdf").page_count == 1


def test_object_streams_that_extend_each_other_in_a_loop_are_harmless():
    content = assemble_pdf_with_object_streams(
        loose={},
        packed={1: (5, 0), 2: (5, 1), 3: (6, 0)},
        streams={
            5: object_stream([(1, CATALOG), (2, PAGES)], extra=b"/Extends 6 0 R "),
            6: object_stream([(3, PAGE)], extra=b"/Extends 5 0 R "),
        },
    )
    started = time.monotonic()
    try:
        assert validate_document(content, filename="x.pdf").page_count == 1
    except DocumentRejected as error:
        assert error.code in ("unreadable", "too_complex", "no_pages")
    assert time.monotonic() - started < BOUNDED


def test_an_object_stream_inside_an_object_stream_is_harmless():
    # An object stream may not hold another stream (PDF 1.7 §7.5.7): the inner one is junk.
    inner = object_stream([(3, PAGE)])
    content = assemble_pdf_with_object_streams(
        loose={},
        packed={1: (5, 0), 2: (5, 1), 3: (6, 0), 6: (5, 2)},
        streams={5: object_stream([(1, CATALOG), (2, PAGES), (6, inner)])},
    )
    started = time.monotonic()
    try:
        assert validate_document(content, filename="x.pdf").page_count == 1
    except DocumentRejected as error:
        assert error.code in ("unreadable", "too_complex", "no_pages")
    assert time.monotonic() - started < BOUNDED


def test_an_object_stream_that_claims_millions_of_objects_is_refused_in_bounded_time():
    stream = object_stream([(1, CATALOG), (2, PAGES)]).replace(b"/N 2 ", b"/N 50000000 ")
    content = assemble_pdf_with_object_streams(
        loose={3: PAGE}, packed={1: (5, 0), 2: (5, 1)}, streams={5: stream}
    )
    started = time.monotonic()
    try:
        validate_document(content, filename="x.pdf")
    except DocumentRejected as error:
        assert error.code in ("unreadable", "too_complex", "no_pages")
    assert time.monotonic() - started < BOUNDED


def test_a_decompression_bomb_inside_an_object_stream_is_refused():
    header = b"1 0 2 %d " % len(CATALOG + b" ")
    prefix = header + CATALOG + b" " + PAGES + b" "
    compressor = zlib.compressobj(9)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    chunk = bytes(1 << 24)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = 80
    adler = zlib.adler32(prefix)
    for _ in range(count):
        adler = zlib.adler32(chunk, adler)
    data = head + block * count + b"\x03\x00" + struct.pack(">I", adler)
    stream = (
        b"<< /Type /ObjStm /N 2 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (len(header), len(data))
        + data
        + b"\nendstream"
    )
    content = assemble_pdf_with_object_streams(
        loose={3: PAGE}, packed={1: (5, 0), 2: (5, 1)}, streams={5: stream}
    )
    assert refused(content).code in ("too_complex", "unreadable")


@pytest.mark.parametrize("algorithm", ["RC4-40", "RC4-128", "AES-128", "AES-256"])
def test_every_encryption_algorithm_is_refused_even_without_a_user_password(algorithm):
    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)
    writer.encrypt(user_password="", owner_password="owner", algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    assert refused(buffer.getvalue()).code == "encrypted"


@pytest.mark.parametrize(("fmt", "named"), [("JPEG", "scan.jpg"), ("PNG", "scan.png")])
def test_an_image_with_a_pdf_hidden_inside_is_refused_as_a_polyglot(fmt, named):
    polyglot = image_bytes(fmt) + simple_pdf("hidden")
    for filename in (named, "invoice.pdf"):
        assert refused(polyglot, filename=filename).code in ("polyglot", "type_mismatch")


@pytest.mark.parametrize(
    "prefix",
    [
        b"<html><script>alert(1)</script>",
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a;",
    ],
)
def test_a_pdf_behind_other_content_is_refused_as_a_polyglot(prefix):
    error = refused(prefix + simple_pdf("hidden"))
    assert error.code in ("polyglot", "type_mismatch")


def test_a_pdf_behind_a_few_blank_bytes_is_still_accepted():
    assert validate_document(b"\r\n " + simple_pdf(), filename="x.pdf").page_count == 1
