"""Issue 17: each of the mapping table's fourteen fields, end to end over both sandboxes.

QuickBooks record (synced over HTTP) -> the PDF Well draws (pypdf text) -> what Qonto's
sandbox extracts from it (read back by Well's Qonto sync). Where Qonto's supplier invoice has
no field for a value (qonto-api.md §4.5: no website field, no external reference), the row
says so and the value is checked as far as it goes (the PDF, or the file name Qonto keeps).
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
import requests
from pypdf import PdfReader

from connectors.models import Connection, Provider
from connectors.pdf import format_amount, format_date
from connectors.qonto.models import Posting, PostingAction, PostingState, QontoEntry
from connectors.qonto.outbox import posting_enqueue
from connectors.qonto.posting import postings_send
from connectors.qonto.selectors import qonto_invoice_existing
from connectors.qonto.sync import qonto_sync
from connectors.quickbooks.models import SourceRecord
from connectors.quickbooks.suppliers import tax_id_is_masked
from connectors.quickbooks.sync import quickbooks_sync
from sandbox.qonto_analysis import parse_amount
from well.audit import Actor

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ACTOR = Actor.system("tests")


def test_fourteen_mapped_fields_reach_qonto_end_to_end(sandboxes):
    workspace, urls = sandboxes
    connections = {c.provider: c for c in Connection.objects.for_workspace(workspace)}
    qonto_sync(connection_id=connections[Provider.QONTO].pk)
    quickbooks_sync(connection_id=connections[Provider.QUICKBOOKS].pk)
    records = SourceRecord.objects.for_workspace(workspace)
    # A bill Qonto does not hold yet (one it holds is linked, not uploaded), without a file.
    bill = next(
        record
        for record in records.filter(entity_type="Bill", deleted=False, files__isnull=True)
        .exclude(due_date=None)
        .exclude(tax_amount=None)
        if qonto_invoice_existing(record=record) is None
    )
    purchase = (
        records.filter(entity_type="Purchase", deleted=False, files__isnull=True)
        .exclude(label="")
        .exclude(supplier_name="")
        .first()
    )
    assert purchase is not None and qonto_invoice_existing(record=purchase) is None
    vendor = records.get(entity_type="Vendor", qbo_id=bill.vendor_qbo_id)
    for record in (bill, purchase):
        posting_enqueue(record=record, action=PostingAction.UPLOAD, actor=ACTOR)
    postings_send()
    ours = Posting.objects.filter(record__in=[bill, purchase], action=PostingAction.UPLOAD)
    assert set(ours.values_list("state", flat=True)) == {PostingState.DONE}
    assert set(ours.values_list("outcome", flat=True)) == {"created"}
    # Qonto analyses an upload after a while (the demo sandbox: 2 s): move its clock past it.
    requests.post(f"{urls.qonto}/_sandbox/clock", json={"advance_seconds": 60}, timeout=10)
    qonto_sync(connection_id=connections[Provider.QONTO].pk)  # Qonto's analysis, read back

    def qonto_invoice(record):
        posting = Posting.objects.get(record=record, action=PostingAction.UPLOAD)
        return QontoEntry.objects.get(kind="supplier_invoice", qonto_id=posting.qonto_id).payload

    def file_of(invoice) -> str:
        meta = requests.get(f"{urls.qonto}/_sandbox/invoices", timeout=10).json()["invoices"]
        assert any(u["id"] == invoice["id"] for u in meta)
        # The attachment through the documented read (§6): its URL, then the bytes.
        return invoice["attachment_id"]

    texts = {}
    invoices = {}
    for record in (bill, purchase):
        invoices[record.pk] = invoice = qonto_invoice(record)
        texts[record.pk] = _download_text(urls.qonto, workspace, file_of(invoice))

    lang = "fr"  # the sandbox company is French (CompanyInfo.SupportedLanguages "fr")
    b, p = bill, purchase
    bi, pi = invoices[b.pk], invoices[p.pk]
    bt, pt = texts[b.pk], texts[p.pk]

    def amount(value: Decimal, currency: str) -> str:
        return format_amount(value, currency, lang)

    def qonto_value(money) -> Decimal | None:
        return Decimal(money["value"]) if money else None

    # (field, QuickBooks value, printed in the PDF, what Qonto extracted or None: no such field)
    rows = [
        (
            "Bill.TotalAmt",
            b.total_amount,
            amount(b.total_amount, b.currency),
            qonto_value(bi["total_amount"]),
        ),
        ("Bill.CurrencyRef", b.currency, f" {b.currency}", bi["total_amount"]["currency"]),
        (
            "Bill.TxnDate",
            b.issue_date,
            format_date(b.issue_date, lang),
            date.fromisoformat(bi["issue_date"]),
        ),
        (
            "Bill.DueDate",
            b.due_date,
            format_date(b.due_date, lang),
            date.fromisoformat(bi["due_date"]),
        ),
        ("Bill.DocNumber", b.invoice_number, b.invoice_number, bi["invoice_number"]),
        (
            "Bill.TxnTaxDetail.TotalTax",
            b.tax_amount,
            amount(b.tax_amount, b.currency),
            qonto_value(bi["total_tax_amount"]),
        ),
        (
            "Purchase.TotalAmt",
            p.total_amount,
            amount(p.total_amount, p.currency),
            qonto_value(pi["total_amount"]),
        ),
        ("Purchase.CurrencyRef", p.currency, f" {p.currency}", pi["total_amount"]["currency"]),
        (
            "Purchase.TxnDate",
            p.issue_date,
            format_date(p.issue_date, lang),
            date.fromisoformat(pi["issue_date"]),
        ),
        ("Purchase.PrivateNote", p.label, " ".join(p.label.split()), pi["description"]),
        # Qonto has no reference field: it keeps the file name Well gave, which carries the Id.
        (
            "Purchase.Id",
            p.qbo_id,
            f"Purchase {p.qbo_id}",
            p.qbo_id if f"-{p.qbo_id}--" in pi["file_name"] else pi["file_name"],
        ),
        ("Vendor.DisplayName", vendor.supplier_name, vendor.supplier_name, bi["supplier_name"]),
        # Qonto's supplier invoice has no website field (§4.5): the PDF is where it goes.
        ("Vendor.WebAddr", vendor.supplier_website, vendor.supplier_website, None),
    ]
    for field, quickbooks, printed, extracted in rows:
        text = pt if field.startswith("Purchase") else bt
        assert quickbooks not in (None, ""), field
        assert printed in text, (field, printed)
        if field not in ("Vendor.WebAddr",):
            assert extracted == quickbooks, (field, quickbooks, extracted, bi, pi)
    # Vendor.TaxIdentifier: QuickBooks masks it (quickbooks-api.md §4.3), so it is kept but never
    # printed as a VAT number, and Qonto extracts none rather than a wrong one.
    assert tax_id_is_masked(vendor.supplier_tax_id)
    assert vendor.supplier_tax_id not in bt
    assert bi["vat_number"] is None
    assert len(rows) + 1 == 14
    assert parse_amount(amount(b.total_amount, b.currency))["value"] == f"{b.total_amount:.2f}"


def _download_text(qonto_url: str, workspace, attachment_id: str) -> str:
    from connectors.qonto import client
    from connectors.qonto.services import qonto_api_for

    connection = Connection.objects.get(workspace=workspace, provider=Provider.QONTO)
    api = qonto_api_for(connection)
    found = client.attachment(api, attachment_id)
    content = requests.get(found["url"], timeout=10).content
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
