"""Reads of Qonto candidates and postings, always scoped to one workspace."""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import connection as db_connection
from django.db.models import Count, Q, QuerySet

from connectors.models import BankAccountMapping
from connectors.qonto.models import (
    Posting,
    PostingAction,
    PostingState,
    QontoBankAccount,
    QontoEntry,
    QontoEntryKind,
)
from connectors.quickbooks.models import RecordState, SourceFile, SourceRecord

POSTED_INVOICE_ACTIONS = (PostingAction.UPLOAD, PostingAction.CREDIT_NOTE, PostingAction.LINK)
APPROVED_STATES = (
    RecordState.AUTO_APPROVED,
    RecordState.APPROVED,
    RecordState.POSTING,
    RecordState.POSTED,
)


def _number(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", (text or "").lower())


def qonto_entries_for_workspace(*, workspace, kind: str | None = None) -> QuerySet[QontoEntry]:
    query = QontoEntry.objects.for_workspace(workspace)
    return query.filter(kind=kind) if kind else query


def postings_for_workspace(*, workspace) -> QuerySet[Posting]:
    return Posting.objects.for_workspace(workspace).select_related("record")


def posting_counts(*, workspace) -> dict[str, int]:
    rows = Posting.objects.for_workspace(workspace).values("state").annotate(n=Count("id"))
    return {row["state"]: row["n"] for row in rows}


def qonto_invoice_existing(*, record: SourceRecord) -> QontoEntry | None:
    """A supplier invoice already in Qonto (forwarded by email, say) that is this bill.

    Same invoice number (ignoring punctuation and case) and, when both are known, the same
    total; an invoice another posting already claimed is not offered twice.
    """
    number = _number(record.invoice_number)
    if not number:
        return None
    taken = (
        Posting.objects.for_workspace(record.workspace_id)
        .filter(action__in=POSTED_INVOICE_ACTIONS, state=PostingState.DONE)
        .exclude(record=record)
        .values_list("qonto_id", flat=True)
    )
    candidates = (
        QontoEntry.objects.for_workspace(record.workspace_id)
        .filter(kind=QontoEntryKind.SUPPLIER_INVOICE, invoice_number__iexact=record.invoice_number)
        .exclude(qonto_id__in=taken)
        .exclude(status__in=["rejected", "discarded"])
    )
    if not candidates.exists():
        # The exact text differs (spaces, dashes): compare normalised numbers in Python.
        candidates = [
            entry
            for entry in QontoEntry.objects.for_workspace(record.workspace_id)
            .filter(kind=QontoEntryKind.SUPPLIER_INVOICE)
            .exclude(invoice_number="")
            .exclude(qonto_id__in=taken)
            .only("id", "qonto_id", "invoice_number", "amount", "counterparty", "status")
            if _number(entry.invoice_number) == number
        ]
    for entry in candidates:
        if record.total_amount is None or entry.amount is None:
            return entry
        if abs(entry.amount) == abs(record.total_amount):
            return entry
    return None


def payment_bill_ids(*, record: SourceRecord) -> list[str]:
    """QuickBooks IDs of the bills a payment pays (its Line[].LinkedTxn[] of type Bill)."""
    bill_ids: list[str] = []
    lines = record.payload.get("Line")  # lists in QuickBooks' answers; anything in a bad one
    for line in lines if isinstance(lines, list) else []:
        links = line.get("LinkedTxn") if isinstance(line, dict) else None
        for linked in links if isinstance(links, list) else []:
            if not isinstance(linked, dict) or linked.get("TxnType") != "Bill":
                continue
            bill_id = str(linked.get("TxnId") or "")
            if bill_id and bill_id not in bill_ids:
                bill_ids.append(bill_id)
    return bill_ids


def paid_bill_invoices(*, record: SourceRecord) -> dict[str, str]:
    """The Qonto supplier invoice of each bill this payment pays that is in Qonto through Well.

    By bill QuickBooks ID: the newest done upload or link of the bill (an invoice, not a
    transaction), else the link to a Qonto supplier invoice its approval queued (not sent yet).
    """
    bill_ids = payment_bill_ids(record=record)
    if not bill_ids:
        return {}
    found: dict[str, str] = {}
    postings = (
        Posting.objects.for_workspace(record.workspace_id)
        .filter(
            record__entity_type="Bill",
            record__qbo_id__in=bill_ids,
            action__in=POSTED_INVOICE_ACTIONS,
            state=PostingState.DONE,
        )
        .exclude(target_kind="transaction")
        .exclude(qonto_id="")
        .order_by("-done_at")
        .values_list("record__qbo_id", "qonto_id")
    )
    for bill_id, qonto_id in postings:
        found.setdefault(bill_id, qonto_id)
    # An approved link is queued in the approval's transaction, with its target (the outbox).
    linked = (
        Posting.objects.for_workspace(record.workspace_id)
        .filter(
            record__entity_type="Bill",
            record__qbo_id__in=[b for b in bill_ids if b not in found],
            record__state__in=APPROVED_STATES,
            action=PostingAction.LINK,
            target_kind="invoice",
            state__in=[PostingState.READY, PostingState.IN_FLIGHT, PostingState.UNKNOWN],
        )
        .exclude(qonto_id="")
        .order_by("-created_at")
        .values_list("record__qbo_id", "qonto_id")
    )
    for bill_id, qonto_id in linked:
        found.setdefault(bill_id, qonto_id)
    return {bill_id: found[bill_id] for bill_id in bill_ids if bill_id in found}


def payments_of_bill(*, bill: SourceRecord) -> QuerySet[SourceRecord]:
    """The BillPayments whose lines pay this bill (JSON containment on the payload)."""
    payments = SourceRecord.objects.for_workspace(bill.workspace_id).filter(
        entity_type="BillPayment", deleted=False
    )
    if db_connection.vendor == "postgresql":
        pays = {"Line": [{"LinkedTxn": [{"TxnId": bill.qbo_id, "TxnType": "Bill"}]}]}
        return payments.filter(payload__contains=pays).order_by("pk")
    # SQLite (the demo) has no JSON containment: look through the payments in Python.
    paying = [
        pk
        for pk, payload in payments.values_list("pk", "payload")
        if any(
            link.get("TxnId") == bill.qbo_id and link.get("TxnType") == "Bill"
            for line in (payload or {}).get("Line") or []
            if isinstance(line, dict)
            for link in line.get("LinkedTxn") or []
            if isinstance(link, dict)
        )
    ]
    return payments.filter(pk__in=paying).order_by("pk")


def record_has_file(*, record: SourceRecord) -> bool:
    return (
        SourceFile.objects.for_workspace(record.workspace_id)
        .filter(record=record, error="")
        .exclude(sha256="")
        .exists()
    )


def record_file(*, record: SourceRecord) -> SourceFile | None:
    """The newest good attachment of the record (the PDF to upload)."""
    return (
        SourceFile.objects.for_workspace(record.workspace_id)
        .filter(record=record, error="")
        .exclude(sha256="")
        .order_by("-fetched_at")
        .first()
    )


def qonto_transaction_for(*, record: SourceRecord, bank_account_id: str = "") -> QontoEntry | None:
    """The Qonto debit of this purchase: same amount, within three days of its date, and from
    `bank_account_id` (the Qonto ID of the account its QuickBooks account pairs with) if given."""
    if record.total_amount is None or record.issue_date is None:
        return None
    entries = QontoEntry.objects.for_workspace(record.workspace_id)
    if bank_account_id:
        entries = entries.filter(bank_account_id=bank_account_id)
    return (
        entries.filter(
            kind=QontoEntryKind.TRANSACTION,
            amount=-abs(record.total_amount),
            date__gte=record.issue_date - timedelta(days=3),
            date__lte=record.issue_date + timedelta(days=3),
        )
        # A declined or reversed payment never paid the purchase (connectors/qonto/sync.py).
        .exclude(status__in=("declined", "reversed"))
        .filter(Q(currency="") | Q(currency=record.currency or "EUR"))
        .order_by("date")
        .first()
    )


def _compact(text: str) -> str:
    return re.sub(r"\s", "", text or "").upper()


def qonto_bank_account_match(
    *, account_payload: dict, banks: list[QontoBankAccount]
) -> QontoBankAccount | None:
    """The automatic pairing: the Qonto account with the QuickBooks Account's IBAN or number."""
    number = _compact(str(account_payload.get("AcctNum") or account_payload.get("BankNum") or ""))
    if not number or len(number) < 4:
        return None
    for bank in banks:
        iban, acct = _compact(bank.iban), _compact(bank.account_number)
        if number in (iban, acct) or (len(number) >= 8 and iban.endswith(number)):
            return bank
    return None


def qonto_bank_account_for(*, account: SourceRecord) -> QontoBankAccount | None:
    """The Qonto account a QuickBooks bank Account is: the user's pairing (connectors/
    onboarding.py) wins over the automatic one by IBAN or account number."""
    chosen = (
        BankAccountMapping.objects.for_workspace(account.workspace_id)
        .filter(qbo_account_id=account.qbo_id)
        .select_related("qonto_bank_account")
        .first()
    )
    if chosen is not None:
        return chosen.qonto_bank_account
    banks = list(QontoBankAccount.objects.for_workspace(account.workspace_id).order_by("-main"))
    return qonto_bank_account_match(account_payload=account.payload, banks=banks)
