"""The audit trail as a spreadsheet an accountant opens: CSV (Excel-ready) and XLSX.

One row per event with readable columns: when, the record as the pages name it, its vendor,
amount, currency and invoice number, what happened, the confidence, who did it, and the note.
Every text cell that a spreadsheet would read as a formula (= + - @ tab CR, OWASP's list) is
neutralised with a leading apostrophe in the CSV and stored as text in the XLSX.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from connectors.qonto.models import Posting
from connectors.quickbooks.models import SourceRecord
from review.reasons import event_reason_words
from review.words import actor_type_words, record_name, verb_words

# https://owasp.org/www-community/attacks/CSV_Injection
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 1000


@dataclass(frozen=True)
class AuditRow:
    at: dt.datetime
    record: str
    vendor: str
    amount: Decimal | None
    currency: str
    invoice_number: str
    what: str
    confidence: float | None
    actor: str
    note: str


def columns() -> list[str]:
    """The header, in the reader's language."""
    return [
        _("Date"),
        _("Record"),
        _("Vendor"),
        _("Amount"),
        _("Currency"),
        _("Invoice number"),
        _("Decision or event"),
        _("Confidence"),
        _("By"),
        _("Note"),
    ]


def neutralised(text: str) -> str:
    """Text a spreadsheet shows as typed, never as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _record_ids(events) -> tuple[dict[int, int], set[int]]:
    """Which record each event is about: its own ID, or its posting's record."""
    posting_ids = {
        e.object_id for e in events if e.object_type == "connectors.posting" and e.object_id
    }
    posting_record = dict(Posting.objects.filter(pk__in=posting_ids).values_list("pk", "record_id"))
    by_event: dict[int, int] = {}
    for e in events:
        if e.object_type.startswith("quickbooks.") and e.object_id.isdigit():
            by_event[e.pk] = int(e.object_id)
        elif e.object_type == "connectors.posting" and e.object_id:
            found = posting_record.get(_uuid_or_none(e.object_id))
            if found:
                by_event[e.pk] = found
    return by_event, set(by_event.values())


def _uuid_or_none(text: str):
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def event_record_names(events: list) -> dict[int, str]:
    """The record each event is about, named as the pages name it ("Purchase 1072")."""
    by_event, record_ids = _record_ids(events)
    records = SourceRecord.objects.in_bulk(record_ids) if record_ids else {}
    return {pk: record_name(records[rid]) for pk, rid in by_event.items() if rid in records}


def _confidence(event) -> float | None:
    after = event.after or {}
    for value in (after.get("confidence"), (after.get("proposed") or {}).get("confidence")):
        if isinstance(value, (int, float)):
            return float(value)
    return None


def audit_rows(events: Iterable) -> Iterator[AuditRow]:
    """The export's rows for these audit events, read in chunks (bounded queries)."""
    chunk: list = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= CHUNK:
            yield from _rows_of_chunk(chunk)
            chunk = []
    if chunk:
        yield from _rows_of_chunk(chunk)


def _rows_of_chunk(events: list) -> Iterator[AuditRow]:
    by_event, record_ids = _record_ids(events)
    records = SourceRecord.objects.in_bulk(record_ids) if record_ids else {}
    for e in events:
        record = records.get(by_event.get(e.pk))
        yield AuditRow(
            at=timezone.localtime(e.created_at),
            record=record_name(record) if record else "",
            vendor=(record.supplier_name if record else "") or "",
            amount=record.total_amount if record else None,
            currency=(record.currency if record else "") or "",
            invoice_number=(record.invoice_number if record else "") or "",
            what=verb_words(e.verb),
            confidence=_confidence(e),
            actor=f"{e.actor_label} ({actor_type_words(e.actor_type)})",
            note=event_reason_words(e.reason or "", actor_type=e.actor_type),
        )


def _is_french() -> bool:
    return (translation.get_language() or "en").startswith("fr")


def _csv_cells(row: AuditRow) -> list[str]:
    french = _is_french()
    decimal_mark = "," if french else "."
    at = row.at.strftime("%d/%m/%Y %H:%M:%S" if french else "%Y-%m-%d %H:%M:%S")
    amount = "" if row.amount is None else f"{row.amount:.2f}".replace(".", decimal_mark)
    confidence = (
        "" if row.confidence is None else f"{row.confidence * 100:.0f}".replace(".", decimal_mark)
    )
    texts = [row.record, row.vendor, row.currency, row.invoice_number, row.what, row.actor]
    record, vendor, currency, invoice, what, actor = (neutralised(t) for t in texts)
    note = neutralised(row.note)
    # Numbers we wrote ourselves (a negative amount) are numbers, not formulas.
    return [at, record, vendor, amount, currency, invoice, what, confidence, actor, note]


class _Echo:
    def write(self, value):
        return value


def audit_csv_lines(events: Iterable) -> Iterator[str]:
    """The CSV, line by line: a UTF-8 BOM first (Excel's cue), ";" in French, "," in English."""
    writer = csv.writer(_Echo(), delimiter=";" if _is_french() else ",")
    yield "\ufeff"
    header = columns()
    header[7] = header[7] + " (%)"
    yield writer.writerow(header)
    for row in audit_rows(events):
        yield writer.writerow(_csv_cells(row))


def audit_xlsx(events: Iterable) -> bytes:
    """The same rows as an Excel workbook: dates and amounts typed, every text stored as text."""
    # Imported here: openpyxl takes 0.31 s to import (python -X importtime), paid by every
    # process that loads the review pages while only this export needs it.
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=False)
    sheet = book.active
    sheet.title = _("Audit trail")[:31]
    header = columns()
    sheet.append(header)
    for row in audit_rows(events):
        sheet.append(
            [
                row.at.replace(tzinfo=None),
                row.record,
                row.vendor,
                row.amount,
                row.currency,
                row.invoice_number,
                row.what,
                row.confidence,
                row.actor,
                row.note,
            ]
        )
    for cells in sheet.iter_rows(min_row=1):
        for cell in cells:
            if isinstance(cell.value, str):
                # openpyxl would store "=..." as a formula: force a text cell, and Excel's
                # quote prefix so an edit does not turn it into one either.
                cell.data_type = "s"
                cell.quotePrefix = cell.value.startswith(FORMULA_STARTS)
    for cell in sheet["A"][1:]:
        cell.number_format = "dd/mm/yyyy hh:mm:ss" if _is_french() else "yyyy-mm-dd hh:mm:ss"
    for cell in sheet["D"][1:]:
        cell.number_format = "#,##0.00"
    for cell in sheet["H"][1:]:
        cell.number_format = "0%"
    for index, width in enumerate((20, 22, 28, 12, 8, 16, 30, 10, 30, 40), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
