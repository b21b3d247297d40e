"""Issue 17: what Well sends Qonto is right, over real HTTP against the Qonto sandbox."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from connectors.models import Connection
from connectors.qonto.models import Posting, PostingAction, PostingState, QontoEntry
from connectors.qonto.outbox import NotPostable, posting_enqueue
from connectors.qonto.posting import Document, document_for
from connectors.qonto.selectors import qonto_transaction_for
from connectors.qonto.sync import qonto_sync
from connectors.qonto.triggers import record_post
from connectors.quickbooks.models import RecordState, SourceRecord
from matching.core import normalise
from tests.connectors.qonto.test_posting import REVIEWER, refreshed, send
from well.models import Membership

pytestmark = pytest.mark.django_db

VENDOR = {
    "Id": "56",
    "SyncToken": "3",
    "DisplayName": "SNCF Voyageurs",
    "CompanyName": "SNCF Voyageurs SA",
    "PrimaryEmailAddr": {"Address": "factures@sncf.example"},
    "WebAddr": {"URI": "https://www.sncf.example"},
    "BillAddr": {
        "Line1": "9 rue Jean-Philippe Rameau",
        "City": "Saint-Denis",
        "PostalCode": "93200",
        "Country": "FR",
    },
    "TaxIdentifier": "FR73519037584",
}


@pytest.fixture
def vendor(make_record):
    return make_record(
        "Vendor",
        qbo_id="56",
        payload=VENDOR,
        state="pulled",
        supplier_name="SNCF Voyageurs",
        supplier_legal_name="SNCF Voyageurs SA",
        supplier_address="9 rue Jean-Philippe Rameau\n93200 Saint-Denis\nFR",
        supplier_tax_id="FR73519037584",
        supplier_website="https://www.sncf.example",
        supplier_email="factures@sncf.example",
        total_amount=None,
        currency="",
        invoice_number="",
    )


def uploaded_text(qonto, upload: dict) -> str:
    content = qonto.app.store.get_file(upload["attachment_id"])
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_a_drawn_bill_prints_its_vendor_and_qonto_reads_the_supplier(
    connected, make_record, vendor, qonto
):
    # Bill 359 of the demo: stored with its VendorRef only (supplier columns empty).
    bill = make_record(
        "Bill",
        qbo_id="359",
        supplier_name="",
        vendor_qbo_id="56",
        invoice_number="SNCF2026-004215",
        total_amount=Decimal("110.93"),
        tax_amount=Decimal("10.08"),
    )
    posting = record_post(record=bill, actor=REVIEWER)

    send()

    assert refreshed(posting).state == PostingState.DONE
    [upload] = qonto.uploads()
    text = uploaded_text(qonto, upload)
    assert text.splitlines()[0] == "SNCF Voyageurs"
    for printed in (
        "SNCF Voyageurs SA",
        "9 rue Jean-Philippe Rameau",
        "93200 Saint-Denis",
        "FR73519037584",
        "https://www.sncf.example",
        "factures@sncf.example",
        "SNCF2026-004215",
        "110.93 EUR",
        "Bill 359",
    ):
        assert printed in text
    assert "Unknown supplier" not in text
    invoice = qonto.app.store.state["supplier_invoices"][upload["id"]]
    assert invoice["supplier_name"] == "SNCF Voyageurs"
    assert invoice["vat_number"] == "FR73519037584"
    assert qonto.control("state")["without_supplier"] == 0


def test_a_bill_whose_supplier_is_unknown_is_refused_not_uploaded(connected, make_record, qonto):
    bill = make_record("Bill", supplier_name="", vendor_qbo_id="", invoice_number="X-1")
    posting = record_post(record=bill, actor=REVIEWER)

    send()

    posting = refreshed(posting)
    assert posting.state == PostingState.FAILED
    assert posting.error_code == "supplier_unknown"
    assert "supplier" in posting.message
    assert qonto.calls("POST /v2/supplier_invoices/bulk") == 0
    assert SourceRecord.objects.get(pk=bill.pk).state == RecordState.FAILED


def test_a_masked_quickbooks_tax_identifier_is_not_printed_as_a_vat_number(
    connected, make_record, qonto
):
    bill = make_record("Bill", supplier_tax_id="XXXXXXXXX7584", invoice_number="M-1")
    posting = record_post(record=bill, actor=REVIEWER)

    document = document_for(Posting.objects.select_related("record").get(pk=posting.pk))

    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(document.content)).pages)
    assert "XXXXXXXXX7584" not in text
    assert "VAT number" not in text


def test_the_drawn_pdf_is_french_when_the_quickbooks_company_is(connected, make_record, qonto):
    make_record(
        "CompanyInfo",
        qbo_id="9130",
        state="pulled",
        payload={
            "Id": "9130",
            "CompanyName": "Atelier Lumière",
            "LegalName": "Atelier Lumière SAS",
            "Country": "FR",
            "SupportedLanguages": "fr",
            "LegalAddr": {"Line1": "18 rue Auguste Comte", "City": "Lyon", "PostalCode": "69002"},
        },
        total_amount=None,
        currency="",
    )
    bill = make_record(
        "Bill",
        invoice_number="F-2026-1",
        total_amount=Decimal("120.00"),
        tax_amount=Decimal("20.00"),
        payload={
            "Id": "777",
            "SyncToken": "0",
            "GlobalTaxCalculation": "TaxExcluded",
            "TxnTaxDetail": {
                "TotalTax": 20,
                "TaxLine": [
                    {
                        "Amount": 20,
                        "DetailType": "TaxLineDetail",
                        "TaxLineDetail": {"TaxPercent": 20, "NetAmountTaxable": 100},
                    }
                ],
            },
            "Line": [{"Amount": 100, "Description": "Nettoyage", "DetailType": "x"}],
        },
    )
    posting = record_post(record=bill, actor=REVIEWER)
    send()
    assert refreshed(posting).state == PostingState.DONE
    [upload] = qonto.uploads()

    text = uploaded_text(qonto, upload)

    for printed in (
        "Facture",
        "Numéro de facture : F-2026-1",
        "Client :",
        "Atelier Lumière SAS",
        "18 rue Auguste Comte",
        "Total HT : 100,00 EUR",
        "TVA 20 % : 20,00 EUR",
        "Total TTC : 120,00 EUR",
        "Référence QuickBooks : Bill",
    ):
        assert printed in text
    invoice = qonto.app.store.state["supplier_invoices"][upload["id"]]
    assert invoice["total_amount"] == {"value": "120.00", "currency": "EUR"}
    assert invoice["total_tax_amount"] == {"value": "20.00", "currency": "EUR"}
    assert invoice["taxes"] == [
        {"tax_rate": "0.2", "tax_amount": {"value": "20.00", "currency": "EUR"}}
    ]


# --- Posting follows matching: a bill is never closed by a bank-transaction link -------------


@pytest.mark.parametrize("kind", ["Bill", "VendorCredit"])
def test_a_bill_cannot_be_queued_as_a_link_to_a_bank_transaction(connected, make_record, kind):
    record = make_record(kind)
    with pytest.raises(NotPostable, match="never closed by a link to a bank transaction"):
        posting_enqueue(
            record=record,
            action=PostingAction.LINK,
            actor=REVIEWER,
            target_qonto_id="b9d2-transaction",
            target_kind="transaction",
        )
    assert not Posting.objects.exists()


def test_a_bill_transaction_link_queued_before_the_rule_fails_without_closing_it(
    connected, make_record, qonto
):
    bill = make_record("Bill")
    posting = Posting.objects.create(
        workspace_id=bill.workspace_id,
        record=bill,
        source_version="0",
        action=PostingAction.LINK,
        idempotency_key="3f1c0f5e-1111-4a7b-9c1d-000000000001",
        qonto_id="b9d2-transaction",
        target_kind="transaction",
    )

    send()

    posting = refreshed(posting)
    assert posting.state == PostingState.FAILED
    assert posting.error_code == "bill_to_transaction"
    assert qonto.calls("GET /v2/transactions/<transaction_id>") == 0


def test_a_customer_credit_memo_is_never_a_supplier_credit_note(connected, make_record):
    memo = make_record("CreditMemo", payload={"Id": "9", "CustomerRef": {"value": "3"}})
    with pytest.raises(NotPostable, match="customer"):
        record_post(record=memo, actor=REVIEWER)
    assert not Posting.objects.exists()


# --- meta only when configured ---------------------------------------------------------------


def test_meta_is_not_sent_unless_configured(connected, make_record, qonto, settings):
    record_post(record=make_record("Bill"), actor=REVIEWER)
    send()
    [upload] = qonto.uploads()
    assert upload["meta"]["integration_type"] is None

    settings.QONTO_UPLOAD_META = {"integration_type": "well"}
    record_post(record=make_record("Bill"), actor=REVIEWER)
    send()
    later = [u for u in qonto.uploads() if u["id"] != upload["id"]]
    assert later[0]["meta"]["integration_type"] == "well"


# --- per-item error pointers -----------------------------------------------------------------


@pytest.mark.parametrize("style", ["index", "idempotency_key"])
def test_two_refused_files_in_one_batch_end_refused_whatever_the_pointer_shape(
    connected, make_record, qonto, style
):
    qonto.control("pointers", {"style": style})
    good = record_post(record=make_record("Bill"), actor=REVIEWER)
    bad = [record_post(record=make_record("Bill"), actor=REVIEWER) for _ in range(2)]
    bad_ids = {p.pk for p in bad}

    def documents(posting):
        if posting.pk not in bad_ids:
            return document_for(posting)
        content = b"plain text, not a PDF"
        name = f"note--well-{posting.idempotency_key[:8]}.pdf"
        return Document(name, content, "application/pdf", hashlib.sha256(content).hexdigest())

    send(documents=documents)

    assert refreshed(good).state == PostingState.DONE
    for posting in bad:
        posting = refreshed(posting)
        assert posting.state == PostingState.FAILED, posting.message
        assert posting.error_code == "invalid"
    send(documents=documents)  # nothing is resent
    assert qonto.calls("POST /v2/supplier_invoices/bulk") == 1


# --- Solo Basic: no supplier-invoice list ----------------------------------------------------


def test_on_solo_basic_uploads_are_verified_without_the_list_and_the_plan_is_recorded(
    connected, make_record, qonto
):
    qonto.control("plan", {"plan": "solo_basic"})

    report = qonto_sync(connection_id=connected.pk)
    connection = Connection.objects.get(pk=connected.pk)
    assert connection.supplier_invoice_list_available is False
    assert "Solo" in connection.plan_detail or "plan" in connection.plan_detail
    assert report is not None

    posting = record_post(record=make_record("Bill"), actor=REVIEWER)
    send()

    posting = refreshed(posting)
    assert posting.state == PostingState.DONE, posting.message
    assert posting.qonto_id
    assert qonto.calls("GET /v2/supplier_invoices/<invoice_id>") >= 1


# --- pending transactions later declined or reversed -----------------------------------------


@pytest.mark.parametrize("later", ["declined", "reversed", "gone"])
def test_a_pending_payment_later_declined_or_reversed_leaves_the_candidates(
    connected, make_record, qonto, later
):
    qonto_sync(connection_id=connected.pk)
    store = qonto.app.store
    with store.lock:
        debit = next(
            t
            for t in store.state["transactions"]
            if t.get("side") == "debit" and t.get("settled_at")
        )
        debit["status"] = "pending"
        debit["updated_at"] = store.now_iso()
    qonto_sync(connection_id=connected.pk)
    entry = QontoEntry.objects.get(kind="transaction", qonto_id=debit["id"])
    assert entry.status == "pending"
    purchase = make_record(
        "Purchase",
        total_amount=abs(entry.amount),
        issue_date=entry.date,
        currency=entry.currency or "EUR",
        invoice_number="",
    )
    assert qonto_transaction_for(record=purchase) is not None

    with store.lock:
        if later == "gone":
            store.state["transactions"].remove(debit)
        else:
            # Qonto does not say it moves `updated_at` on a decline: the list may never show it.
            debit["status"] = later
    qonto_sync(connection_id=connected.pk)

    entry.refresh_from_db()
    assert entry.status in ("declined", "reversed")
    assert normalise.transaction(entry.payload) is None  # not a matching candidate
    assert qonto_transaction_for(record=purchase) is None
    assert qonto.calls("GET /v2/transactions/<transaction_id>") >= 1


def test_the_qonto_page_says_what_solo_basic_limits(connected, qonto, client):
    qonto.control("plan", {"plan": "solo_basic"})
    qonto_sync(connection_id=connected.pk)
    owner = Membership.objects.filter(workspace_id=connected.workspace_id).first().user
    client.force_login(owner)
    page = client.get(f"/w/{connected.workspace.slug}/connections/qonto/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "does not include the list of supplier invoices" in text
    assert "forwarded by e-mail" in text
