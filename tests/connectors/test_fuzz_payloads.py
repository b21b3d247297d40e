"""Hostile provider payloads (hypothesis) through the real sync upsert paths.

QuickBooks pages go through the sync engine's page commit (`_Engine.commit`, the function every
query, CDC and sweep page goes through, with extraction and the hand-over to matching); Qonto
pages through the reader's commit (`_Reader.commit`) and bulk-upload answers through the
posting outbox's settlement. Properties: nothing raises, a bad record is kept as errored with a
reason, and records synced before are left exactly as they were.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
import responses
from django.core import serializers
from django.db import transaction
from django.test import TestCase
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connectors.models import Connection, ConnectionStatus, Provider, SyncRun
from connectors.payloads import storable
from connectors.qonto.models import Posting, QontoEntry, QontoEntryKind
from connectors.qonto.sync import OUTCOMES as QONTO_OUTCOMES
from connectors.qonto.sync import _Reader
from connectors.quickbooks import client as qbo_client
from connectors.quickbooks.models import SourceFile, SourceRecord
from connectors.quickbooks.sync import OUTCOMES as QUICKBOOKS_OUTCOMES
from connectors.quickbooks.sync import _Engine
from connectors.sync_runs import SyncTally
from well.audit import Actor

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

# --- strategies ----------------------------------------------------------------------------

# Everything a JSON parser can hand us (requests' .json() also accepts NaN and Infinity).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    # A JSON parser also hands over lone surrogates ("\\ud800"), which UTF-8 cannot encode.
    | st.sampled_from(["", "\x00", "\ud800", "\u202e", "0", "-1", "1e400", "NaN", "Infinity", "€"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


# A deeply nested value: lists inside lists, far past anything QuickBooks sends.
def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


deep = st.integers(min_value=50, max_value=400).map(_nested)

amounts = (
    st.decimals(allow_nan=True, allow_infinity=True).map(str)
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats()
    | st.sampled_from(["12.30", "-5", "99999999999", "0.00001", "1,5", "", "1e9999"])
    | json_values
)
currencies = (
    st.fixed_dictionaries({"value": st.sampled_from(["EUR", "eur", "XXX", "€", "", "EURO"])})
    | st.fixed_dictionaries({"value": json_values})
    | json_values
)
dates = st.sampled_from(["2026-02-30", "2026-01-05", "26-1-5", "", "9999-12-31T99"]) | json_values
texts = (
    st.text(max_size=200) | st.sampled_from(["\x00nul", "a" * 5000, "\ud7ff\ue000"]) | json_values
)
odd = json_values | deep


def maybe(strategy):
    """A field that is sometimes absent."""
    return st.one_of(st.just(None), strategy)


def record_of(fields: dict):
    """A payload whose optional fields are each present (with a fuzzed value) or missing."""
    return st.fixed_dictionaries({}, optional=dict(fields))


QBO_FIELDS = {
    "Bill": {
        "TotalAmt": amounts,
        "CurrencyRef": currencies,
        "TxnDate": dates,
        "DueDate": dates,
        "DocNumber": texts,
        "TxnTaxDetail": st.fixed_dictionaries({"TotalTax": amounts}) | odd,
        "VendorRef": st.fixed_dictionaries({"value": json_values}) | odd,
        "Line": st.lists(st.fixed_dictionaries({"Amount": amounts}) | odd, max_size=3),
        "MetaData": st.fixed_dictionaries({"LastUpdatedTime": dates}) | odd,
        "SyncToken": json_values,
        "status": st.sampled_from(["Deleted", "deleted", ""]) | json_values,
    },
    "Purchase": {
        "TotalAmt": amounts,
        "CurrencyRef": currencies,
        "TxnDate": dates,
        "PrivateNote": texts,
        "EntityRef": st.fixed_dictionaries({"value": json_values, "type": json_values}) | odd,
        "SyncToken": json_values,
    },
    "Vendor": {
        "DisplayName": texts,
        "WebAddr": st.fixed_dictionaries({"URI": texts}) | odd,
        "TaxIdentifier": texts,
        "SyncToken": json_values,
    },
    "BillPayment": {
        "TotalAmt": amounts,
        "CurrencyRef": currencies,
        "Line": odd,
        "SyncToken": json_values,
    },
    "Attachable": {
        "AttachableRef": st.lists(
            st.fixed_dictionaries(
                {"EntityRef": st.fixed_dictionaries({"type": json_values, "value": json_values})}
            )
            # The good bill synced before: its file is fetched (and refused: private address).
            | st.just({"EntityRef": {"type": "Bill", "value": "good-bill"}})
            | odd,
            max_size=3,
        )
        | st.integers()
        | st.text(max_size=5)
        | odd,
        "FileName": texts,
        "Size": amounts,
        "TempDownloadUri": st.sampled_from(
            ["https://files.intuit.com/a.pdf", "http://127.0.0.1/", "file:///etc/passwd", ""]
        )
        | texts,
        "SyncToken": json_values,
    },
}

fuzz_ids = st.text(min_size=1, max_size=80).map(lambda s: "fz-" + s) | st.one_of(
    st.none(), st.just(""), st.integers(), st.lists(st.integers(), max_size=2)
)


@st.composite
def qbo_pages(draw):
    entity = draw(st.sampled_from(sorted(QBO_FIELDS)))
    records = draw(
        st.lists(
            st.tuples(fuzz_ids, record_of(QBO_FIELDS[entity]))
            .map(lambda pair: {**pair[1], "Id": pair[0]})
            .map(lambda r: r if r["Id"] is not None else {k: v for k, v in r.items() if k != "Id"})
            | json_values,
            min_size=1,
            max_size=4,
        )
    )
    return entity, records


QONTO_INVOICE_FIELDS = {
    "total_amount": st.fixed_dictionaries({"value": amounts, "currency": currencies}) | odd,
    "is_credit_note": json_values,
    "issue_date": dates,
    "due_date": dates,
    "supplier_name": texts,
    "description": texts,
    "invoice_number": texts,
    "iban": texts,
    "status": texts,
    "attachment_id": json_values,
    "matched_transactions_ids": odd,
    "matched_transactions": odd,
    "file_name": texts,
    "updated_at": dates,
}
QONTO_TRANSACTION_FIELDS = {
    "amount_cents": amounts,
    "amount": amounts,
    "local_amount_cents": amounts,
    "local_amount": amounts,
    "side": st.sampled_from(["debit", "credit"]) | json_values,
    "currency": currencies,
    "settled_at": dates,
    "emitted_at": dates,
    "label": texts,
    "reference": texts,
    "transfer": st.fixed_dictionaries({"counterparty_account_number": texts}) | odd,
    "attachment_ids": odd,
    "attachments": odd,
    "bank_account_id": json_values,
    "updated_at": dates,
}


@st.composite
def qonto_pages(draw):
    kind = draw(st.sampled_from([QontoEntryKind.SUPPLIER_INVOICE, QontoEntryKind.TRANSACTION]))
    invoices = kind == QontoEntryKind.SUPPLIER_INVOICE
    fields = QONTO_INVOICE_FIELDS if invoices else QONTO_TRANSACTION_FIELDS
    ids = st.text(min_size=1, max_size=80).map(lambda s: "fz-" + s) | json_values
    rows = draw(
        st.lists(
            st.tuples(ids, record_of(fields)).map(lambda pair: {**pair[1], "id": pair[0]}),
            min_size=1,
            max_size=4,
        )
    )
    return kind, rows


# --- fixtures ------------------------------------------------------------------------------


def _snapshot(queryset) -> str:
    return serializers.serialize("json", queryset.order_by("pk"))


@pytest.fixture
def qbo_engine(make_workspace, monkeypatch):
    workspace = make_workspace("Fuzz Co")
    connection = Connection.objects.create(
        workspace=workspace,
        provider=Provider.QUICKBOOKS,
        status=ConnectionStatus.CONNECTED,
        external_id="9130",
    )
    run = SyncRun.objects.create(workspace=workspace, connection=connection)
    api = qbo_client.QuickBooksApi(
        base_url="https://quickbooks.example",
        realm_id="9130",
        token=lambda rejected: "t",
        sleep=lambda seconds: None,
    )
    # Attachment links are resolved to a private address: refused before any connection.
    monkeypatch.setattr("well.safe_fetch.resolve", lambda host, port: ["10.0.0.1"])
    engine = _Engine(connection, SyncTally(run=run, outcomes=QUICKBOOKS_OUTCOMES), api)
    # The Attachables of a batch are their own fuzzed pages here, not a follow-up query.
    engine.attachments_per_batch = False
    good = [
        {
            "Id": "good-bill",
            "SyncToken": "0",
            "TotalAmt": 120.5,
            "CurrencyRef": {"value": "EUR"},
            "TxnDate": "2026-01-05",
            "DocNumber": "F-1",
            "VendorRef": {"value": "good-vendor"},
        },
        {"Id": "good-vendor", "SyncToken": "0", "DisplayName": "Acme SARL"},
        {
            "Id": "good-purchase",
            "SyncToken": "0",
            "TotalAmt": "9.99",
            "CurrencyRef": {"value": "EUR"},
            "TxnDate": "2026-01-06",
        },
    ]
    engine.commit("Bill", good[:1])
    engine.commit("Vendor", good[1:2])
    engine.commit("Purchase", good[2:])
    goods = SourceRecord.objects.filter(workspace=workspace, qbo_id__startswith="good-")
    assert goods.count() == 3 and not goods.filter(errored=True).exists()
    return engine, goods


@pytest.fixture
def qonto_reader(make_workspace):
    workspace = make_workspace("Fuzz Qonto")
    connection = Connection.objects.create(
        workspace=workspace, provider=Provider.QONTO, status=ConnectionStatus.CONNECTED
    )
    run = SyncRun.objects.create(workspace=workspace, connection=connection)
    reader = _Reader(connection, SyncTally(run=run, outcomes=QONTO_OUTCOMES), api=None)
    reader.commit(
        QontoEntryKind.SUPPLIER_INVOICE,
        [
            {
                "id": "good-invoice",
                "total_amount": {"value": "120.50", "currency": "EUR"},
                "issue_date": "2026-01-05",
                "supplier_name": "Acme SARL",
                "invoice_number": "F-1",
            }
        ],
    )
    reader.commit(
        QontoEntryKind.TRANSACTION,
        [{"id": "good-tx", "amount_cents": 12050, "side": "debit", "currency": "EUR"}],
    )
    goods = QontoEntry.objects.filter(workspace=workspace, qonto_id__startswith="good-")
    assert goods.count() == 2
    return reader, goods


class _ErrorLogs(logging.Handler):
    """Errors logged while a page is handled: a swallowed crash is still a crash."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_logs():
    handler = _ErrorLogs()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


# --- QuickBooks ----------------------------------------------------------------------------


@FUZZ
@given(page=qbo_pages())
def test_fuzzed_quickbooks_pages_never_crash_the_sync_nor_touch_other_records(
    qbo_engine, error_logs, page
):
    engine, goods = qbo_engine
    entity, records = page
    before = _snapshot(goods)
    error_logs.records.clear()
    errored_before = engine.tally.counts[entity]["errored"]

    with transaction.atomic():
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
            # Attachables without a link ask QuickBooks for one: it answers an error.
            mocked.add(responses.GET, qbo_client_url_pattern(), status=400, json={})
            with TestCase.captureOnCommitCallbacks(execute=True):
                engine.commit(entity, records)
        with_ids = [r for r in records if isinstance(r, dict) and r.get("Id") not in (None, "")]
        qbo_ids = {str(storable(r["Id"]))[:64] for r in with_ids}
        stored = SourceRecord.objects.filter(
            workspace_id=engine.connection.workspace_id, entity_type=entity, qbo_id__in=qbo_ids
        )
        assert stored.count() == len(qbo_ids)
        for row in stored:
            assert not row.errored or row.error_reason.strip(), row.qbo_id
            event(f"{entity}: {'errored' if row.errored else 'stored'}")
        if entity == "Attachable" and SourceFile.objects.filter(attachable__in=stored).exists():
            event("Attachable: file fetched or refused")
        skipped = len(records) - len(with_ids)
        assert engine.tally.counts[entity]["errored"] - errored_before >= skipped
        assert _snapshot(goods) == before
        assert not error_logs.records, [r.getMessage() for r in error_logs.records]
        transaction.set_rollback(True)


def qbo_client_url_pattern():
    import re

    return re.compile(r"https://quickbooks\.example/.*")


def test_a_bill_with_an_unreadable_amount_is_kept_as_errored_with_the_reason(qbo_engine):
    engine, goods = qbo_engine
    before = _snapshot(goods)

    engine.commit("Bill", [{"Id": "bad", "SyncToken": "0", "TotalAmt": "-5", "TxnDate": "x"}])

    bad = SourceRecord.objects.get(workspace_id=engine.connection.workspace_id, qbo_id="bad")
    assert bad.errored and "TxnDate is not a date" in bad.error_reason
    assert _snapshot(goods) == before


def test_an_attachment_link_to_a_private_address_is_refused_and_the_bill_kept(qbo_engine):
    engine, goods = qbo_engine
    before = _snapshot(goods)
    attachable = {
        "Id": "att-1",
        "SyncToken": "0",
        "FileName": "facture\x00.pdf",
        "TempDownloadUri": "https://files.intuit.com/a.pdf",
        "AttachableRef": [{"EntityRef": {"type": "Bill", "value": "good-bill"}}, 7, "x"],
    }

    engine.commit("Attachable", [attachable])

    refused = SourceFile.objects.get(attachable__qbo_id="att-1")
    assert "not a public address" in refused.error and not refused.retryable
    assert refused.record.qbo_id == "good-bill"
    assert _snapshot(goods) == before


# --- Qonto ---------------------------------------------------------------------------------


@FUZZ
@given(page=qonto_pages())
def test_fuzzed_qonto_pages_never_crash_the_read_nor_touch_other_entries(qonto_reader, page):
    reader, goods = qonto_reader
    kind, rows = page
    before = _snapshot(goods)
    errored_before = reader.tally.counts[kind]["errored"]

    with transaction.atomic():
        reader.commit(kind, rows)
        readable = [r for r in rows if isinstance(r.get("id"), (str, int)) and r.get("id")]
        stored = QontoEntry.objects.filter(
            workspace_id=reader.connection.workspace_id,
            kind=kind,
            qonto_id__in=[str(storable(r["id"]))[:64] for r in readable],
        ).count()
        errored = reader.tally.counts[kind]["errored"] - errored_before
        # Every row is either stored or counted as errored with its reason in the run notes.
        assert stored + errored >= len({str(storable(r["id"]))[:64] for r in rows if r.get("id")})
        # Each errored row says why, in the run's notes.
        assert len(reader.tally.errors) == sum(c["errored"] for c in reader.tally.counts.values())
        assert _snapshot(goods) == before
        transaction.set_rollback(True)


def test_a_qonto_amount_past_the_column_is_stored_empty_not_crashing(qonto_reader):
    reader, goods = qonto_reader
    before = _snapshot(goods)

    reader.commit(
        QontoEntryKind.SUPPLIER_INVOICE,
        [
            {"id": "huge", "total_amount": {"value": "999999999999999.99999", "currency": "EUR"}},
            {"id": "fine", "total_amount": {"value": "12.345678", "currency": "EUR"}},
        ],
    )

    assert QontoEntry.objects.get(qonto_id="huge").amount is None
    assert QontoEntry.objects.get(qonto_id="fine").amount == Decimal("12.3457")
    assert _snapshot(goods) == before


def test_an_attachable_naming_the_same_bill_twice_gets_one_file_row(qbo_engine):
    engine, _goods = qbo_engine
    ref = {"EntityRef": {"type": "Bill", "value": "good-bill"}}

    engine.commit(
        "Attachable",
        [
            {
                "Id": "att-3",
                "SyncToken": "0",
                "TempDownloadUri": "https://x.intuit.com/a.pdf",
                "AttachableRef": [ref, ref],
            }
        ],
    )

    assert SourceFile.objects.filter(attachable__qbo_id="att-3").count() == 1


@pytest.mark.parametrize("refs", [7, "Bill", {"EntityRef": {"type": "Bill"}}, None, [None, []]])
def test_an_attachable_whose_references_are_not_a_list_is_stored_without_a_file(qbo_engine, refs):
    engine, goods = qbo_engine
    before = _snapshot(goods)

    engine.commit("Attachable", [{"Id": "att-2", "SyncToken": "0", "AttachableRef": refs}])

    assert SourceRecord.objects.filter(qbo_id="att-2").exists()
    assert not SourceFile.objects.filter(attachable__qbo_id="att-2").exists()
    assert _snapshot(goods) == before


# --- Qonto bulk-upload answers through the posting outbox ------------------------------------


def _bulk_answer(file_name: str):
    """What Qonto might answer a one-item bulk upload: well-formed, half-formed or garbage."""
    invoice = st.fixed_dictionaries(
        {"file_name": st.just(file_name) | texts},
        optional={
            "id": st.just("inv-1") | json_values,
            "attachment_id": st.just("att-1") | json_values,
        },
    )
    error = st.fixed_dictionaries(
        {},
        optional={
            "code": json_values,
            "detail": texts,
            "source": st.fixed_dictionaries(
                {"pointer": st.sampled_from(["/supplier_invoices/0", "/supplier_invoices/9"])}
            )
            | json_values,
        },
    )
    envelope = st.fixed_dictionaries(
        {},
        optional={
            "supplier_invoices": st.lists(invoice | json_values, max_size=3) | json_values,
            "errors": st.lists(error | json_values, max_size=2) | json_values,
        },
    )
    # Mostly the documented shape for our file, with odd ids: the path that stores an answer.
    ours = st.fixed_dictionaries(
        {
            "file_name": st.just(file_name),
            "id": st.just("inv-1") | json_values,
            "attachment_id": st.just("att-1") | json_values,
        }
    )
    created = st.fixed_dictionaries({"supplier_invoices": st.lists(ours, min_size=1, max_size=2)})
    statuses = st.sampled_from([200, 200, 207, 400, 422, 500])
    return st.tuples(statuses, created | created | envelope | json_values)


@pytest.fixture
def outbox(qonto_connected, make_record):
    """A Qonto connection with one bill posted for good, and a factory of bills to post."""
    from connectors.qonto.posting import document_name, postings_send
    from connectors.qonto.triggers import record_post

    actor = Actor.system("tests")
    posted = make_record("Bill", total_amount=Decimal("10.00"), invoice_number="GOOD-1")
    record_post(record=posted, actor=actor)
    postings_send(api_for=_fast_api)
    good = Posting.objects.filter(record=posted)
    assert good.get().state == "done"

    def post(number: str) -> tuple[Posting, str]:
        record = make_record("Bill", total_amount=Decimal("20.00"), invoice_number=number)
        posting = record_post(record=record, actor=actor)
        return posting, document_name(posting, record)  # the name a rendered PDF gets

    return good, post


def _fast_api(connection, **options):
    from connectors.qonto.services import qonto_api_for
    from well.http import RetryPolicy

    options.update(sleep=lambda seconds: None, timeout=2.0)
    options.setdefault("policy", RetryPolicy(max_attempts=1, backoff_base=0.01))
    return qonto_api_for(connection, **options)


# Each example renders and sends a PDF: fewer examples keep the file within a minute.
@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_fuzzed_qonto_bulk_answers_settle_every_posting_without_crashing(outbox, data):
    import re

    from connectors.qonto.posting import postings_send

    good, post = outbox
    before = _snapshot(good)
    with transaction.atomic():
        posting, file_name = post("FUZZ-1")
        status, body = data.draw(_bulk_answer(file_name))
        read_back = data.draw(
            st.just({"supplier_invoices": [{"id": "inv-1"}]})
            | st.fixed_dictionaries({"supplier_invoices": st.lists(json_values, max_size=2)})
            | json_values
        )
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
            mocked.add(
                responses.POST,
                re.compile(r".*/v2/supplier_invoices/bulk"),
                status=status,
                json=body,
            )
            mocked.add(responses.GET, re.compile(r".*/v2/supplier_invoices.*"), json=read_back)
            postings_send(api_for=_fast_api, max_claims=1)
        posting.refresh_from_db()
        assert posting.state in {"ready", "done", "failed", "unknown"}, posting.state
        if posting.state == "done":
            assert isinstance(posting.qonto_id, str) and posting.qonto_id
        if posting.state == "failed":
            assert posting.message
        event(f"posting {posting.state}")
        assert _snapshot(good) == before
        transaction.set_rollback(True)


@pytest.mark.parametrize("errors", [True, "boom", {"code": "x"}, 7])
@pytest.mark.parametrize("status", [400, 500])
def test_an_error_answer_whose_errors_are_not_a_list_settles_the_posting(outbox, status, errors):
    import re

    from connectors.qonto.posting import postings_send

    good, post = outbox
    before = _snapshot(good)
    posting, _ = post("ERR-1")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        bulk = re.compile(r".*/v2/supplier_invoices/bulk")
        mocked.add(responses.POST, bulk, status=status, json={"errors": errors})
        postings_send(api_for=_fast_api, max_claims=1)

    posting.refresh_from_db()
    assert posting.state in {"unknown", "failed"} and posting.message
    assert _snapshot(good) == before


@pytest.mark.parametrize("odd_id", [[1], {"id": "inv-1"}, 12.5, True])
def test_a_bulk_answer_with_an_odd_invoice_id_leaves_the_posting_unsettled_not_crashing(
    outbox, odd_id
):
    import re

    from connectors.qonto.posting import postings_send

    good, post = outbox
    before = _snapshot(good)
    posting, file_name = post("ODD-1")
    answer = {"supplier_invoices": [{"file_name": file_name, "id": odd_id, "attachment_id": "a"}]}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add(responses.POST, re.compile(r".*/v2/supplier_invoices/bulk"), json=answer)
        mocked.add(
            responses.GET,
            re.compile(r".*/v2/supplier_invoices.*"),
            json={"supplier_invoices": [{"id": odd_id}]},
        )
        postings_send(api_for=_fast_api, max_claims=1)

    posting.refresh_from_db()
    assert posting.state in {"unknown", "failed"} and posting.message
    assert _snapshot(good) == before
