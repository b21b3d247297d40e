"""Read what Qonto holds (organization, bank accounts, supplier invoices, transactions).

Stored as QontoEntry candidates for matching and duplicate checks, upserted by Qonto ID. Markers:
the newest committed `updated_at` of supplier invoices (Connection.sync_marker) and of each
account's transactions (QontoBankAccount.transactions_synced_to); each moves only after its page
is committed, and a window starts OVERLAP earlier so a crash loses nothing (dedup absorbs it).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from connectors import handoff
from connectors.models import Connection, Provider, SyncRun, SyncStatus
from connectors.payloads import storable
from connectors.qonto import client, plan
from connectors.qonto.models import (
    Posting,
    PostingState,
    QontoBankAccount,
    QontoEntry,
    QontoEntryKind,
)
from connectors.qonto.outbox import SYSTEM
from connectors.qonto.services import qonto_api_for
from connectors.sync_runs import SyncKind, SyncTally, sync_run
from well.http import ProviderError

logger = logging.getLogger("well.connectors.qonto.sync")

OVERLAP = timedelta(minutes=5)
# Without the supplier-invoice list (Solo Basic), the invoices Well uploaded read one by one.
UPLOADED_READS = 200
# Pending transactions read again by id in one sync (oldest read first).
PENDING_READS = 200
# Transactions that are no candidate for matching: refused, or undone after a pending hold.
WITHDRAWN_STATUSES = ("declined", "reversed")
OUTCOMES = ("new", "updated", "unchanged", "errored")
SYNC = SyncKind(provider=Provider.QONTO, outcomes=OUTCOMES, marker_at_end=False, actor=SYSTEM)
# QontoEntry amounts are numeric(19, 4): 15 integer digits at most.
AMOUNT_LIMIT = Decimal("1e15")
CENT = Decimal("0.0001")
TYPED = (
    "amount",
    "currency",
    "local_amount",
    "net_amount",
    "local_currency",
    "date",
    "due_date",
    "counterparty",
    "label",
    "reference",
    "invoice_number",
    "vat_number",
    "iban",
    "side",
    "status",
    "is_credit_note",
    "bank_account_id",
    "attachment_ids",
    "matched_ids",
    "file_name",
    "provider_updated_at",
)


def _hash(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(text.encode()).hexdigest()


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    if isinstance(value, (bool, dict, list)):
        return None
    try:
        result = Decimal(str(value).replace(",", "."))
    except (InvalidOperation, ValueError):
        return None
    return _bounded(result)


def _bounded(amount: Decimal) -> Decimal | None:
    """The amount rounded to the column's 4 decimals, or None when it cannot be money."""
    if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
        return None
    rounded = amount.quantize(CENT)
    if abs(rounded) >= AMOUNT_LIMIT:  # 999999999999999.99999 rounds up past the column
        return None
    return amount if amount == rounded else rounded


def _cents(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return _bounded(Decimal(value) / 100)


def _ids(value: Any) -> list[str]:
    """A list of ids as text; anything else (a number, an object) holds none."""
    if not isinstance(value, list):
        return []
    return [
        str(i)[:64] for i in value if isinstance(i, (str, int)) and not isinstance(i, bool) and i
    ]


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _text(value: Any, limit: int) -> str:
    return str(value)[:limit] if value not in (None, "") else ""


def _currency(value: Any) -> str:
    text = _text(value, 3).upper()
    return text if len(text) == 3 and text.isalpha() else ""


def matched_transaction_ids(invoice: dict) -> list[str]:
    """Both shapes of §4.5: ids in `matched_transactions_ids`, or `matched_transactions` as a
    list of ids (older) or of {transaction_id, ...} objects (newer)."""
    ids = _ids(invoice.get("matched_transactions_ids"))
    if ids:
        return ids
    items = invoice.get("matched_transactions")
    if not isinstance(items, list):
        return []
    return _ids([i.get("transaction_id") if isinstance(i, dict) else i for i in items])


def invoice_fields(invoice: dict) -> dict:
    value, currency = client.amount_of(invoice.get("total_amount"))
    amount = _decimal(value)
    net = _decimal(client.amount_of(invoice.get("total_amount_excluding_taxes"))[0])
    credit = bool(invoice.get("is_credit_note"))
    if amount is not None and credit:
        amount = -abs(amount)
    if net is not None and credit:
        net = -abs(net)
    return {
        "amount": amount,
        "currency": _currency(currency),
        "local_amount": None,
        "local_currency": "",
        "net_amount": net,
        "date": _date(invoice.get("issue_date")),
        "due_date": _date(invoice.get("due_date")),
        "counterparty": _text(invoice.get("supplier_name") or invoice.get("issuer_name"), 500),
        "label": _text(invoice.get("description"), 2000),
        "reference": "",
        "invoice_number": _text(invoice.get("invoice_number"), 100),
        "vat_number": _text(invoice.get("vat_number"), 100),
        "iban": _text(invoice.get("iban"), 64),
        "side": "",
        "status": _text(invoice.get("status"), 24),
        "is_credit_note": credit,
        "bank_account_id": "",
        "attachment_ids": _ids([invoice.get("attachment_id")]),
        "matched_ids": matched_transaction_ids(invoice),
        "file_name": _text(invoice.get("file_name"), 300),
        "provider_updated_at": _moment(invoice.get("updated_at")),
    }


def transaction_fields(row: dict) -> dict:
    # §5.3: amounts are always positive, direction is in `side`; `*_cents` are the safe ones.
    amount = _cents(row.get("amount_cents"))
    if amount is None:
        amount = _decimal(row.get("amount"))
    local = _cents(row.get("local_amount_cents"))
    if local is None:
        local = _decimal(row.get("local_amount"))
    side = _text(row.get("side"), 8)
    if side == "debit":
        amount = -abs(amount) if amount is not None else None
        local = -abs(local) if local is not None else None
    moment = row.get("settled_at") or row.get("emitted_at")
    attachments = _ids(row.get("attachment_ids"))
    if not attachments and isinstance(row.get("attachments"), list):
        attachments = _ids([a.get("id") for a in row["attachments"] if isinstance(a, dict)])
    return {
        "amount": amount,
        "currency": _currency(row.get("currency")),
        "local_amount": local,
        "local_currency": _currency(row.get("local_currency")),
        "net_amount": None,
        "date": _date(moment),
        "due_date": None,
        "counterparty": _text(row.get("clean_counterparty_name") or row.get("label"), 500),
        "label": _text(row.get("label"), 2000),
        "reference": _text(row.get("reference"), 2000),
        "invoice_number": "",
        "vat_number": "",
        "iban": _text((row.get("transfer") or {}).get("counterparty_account_number"), 64)
        if isinstance(row.get("transfer"), dict)
        else "",
        "side": side,
        "status": _text(row.get("status"), 24),
        "is_credit_note": False,
        "bank_account_id": _text(row.get("bank_account_id"), 64),
        "attachment_ids": attachments,
        "matched_ids": [],
        "file_name": "",
        "provider_updated_at": _moment(row.get("updated_at")),
    }


class _Reader:
    def __init__(self, connection: Connection, tally: SyncTally, api: client.QontoApi) -> None:
        self.connection = connection
        self.tally = tally
        self.api = api
        self.started = timezone.now()

    def commit(self, kind: str, rows: list[dict]) -> None:
        """Upsert one page by Qonto ID in one transaction; an unchanged payload is a no-op."""
        invoices = kind == QontoEntryKind.SUPPLIER_INVOICE
        fields_of = invoice_fields if invoices else transaction_fields
        items: dict[str, dict] = {}
        for row in rows:
            row = storable(row)
            qonto_id = row.get("id") if isinstance(row, dict) else None
            if isinstance(qonto_id, bool) or not isinstance(qonto_id, (str, int)) or not qonto_id:
                self.tally.skip(
                    kind, f"a row without a usable id was skipped ({str(qonto_id)[:40]!r})"
                )
                continue
            items[str(qonto_id)[:64]] = row
        workspace_id = self.connection.workspace_id
        with transaction.atomic():
            existing = {
                e.qonto_id: e
                for e in QontoEntry.objects.for_workspace(workspace_id).filter(
                    kind=kind, qonto_id__in=list(items)
                )
            }
            new, changed = [], []
            now = timezone.now()
            for qonto_id, row in items.items():
                digest = _hash(row)
                entry = existing.get(qonto_id)
                if entry is not None and entry.payload_hash == digest:
                    self.tally.counts[kind]["unchanged"] += 1
                    continue
                values = {**fields_of(row), "payload": row, "payload_hash": digest}
                values["pulled_at"] = now
                if entry is None:
                    new.append(
                        QontoEntry(
                            workspace_id=workspace_id,
                            connection=self.connection,
                            kind=kind,
                            qonto_id=qonto_id,
                            **values,
                        )
                    )
                    self.tally.counts[kind]["new"] += 1
                else:
                    for name, value in values.items():
                        setattr(entry, name, value)
                    changed.append(entry)
                    self.tally.counts[kind]["updated"] += 1
            if new:
                QontoEntry.objects.bulk_create(new, batch_size=500)
            if changed:
                QontoEntry.objects.bulk_update(
                    changed, [*TYPED, "payload", "payload_hash", "pulled_at"], batch_size=500
                )

    def accounts(self) -> list[QontoBankAccount]:
        org = client.organization(self.api)
        if str(org.get("id")) != self.connection.external_id:
            raise ProviderError(
                "The token now reaches another Qonto organization; reconnect Qonto.",
                permanent=True,
            )
        workspace_id = self.connection.workspace_id
        kept = []
        with transaction.atomic():
            accounts = org.get("bank_accounts")
            for raw in storable(accounts) if isinstance(accounts, list) else []:
                if not isinstance(raw, dict) or not raw.get("id"):
                    continue
                account, _ = QontoBankAccount.objects.update_or_create(
                    workspace_id=workspace_id,
                    qonto_id=str(raw["id"])[:64],
                    defaults={
                        "connection": self.connection,
                        "name": _text(raw.get("name"), 200),
                        "iban": _text(raw.get("iban"), 64),
                        "bic": _text(raw.get("bic"), 16),
                        "account_number": _text(raw.get("account_number"), 64),
                        "currency": _currency(raw.get("currency")),
                        "main": bool(raw.get("main")),
                        "status": _text(raw.get("status"), 20),
                        "is_external": bool(raw.get("is_external_account")),
                        "payload": raw,
                        "pulled_at": timezone.now(),
                    },
                )
                kept.append(account)
        self.tally.counts["bank_account"]["unchanged"] += len(kept)
        return kept

    def invoices(self) -> None:
        """Incremental by `filter[updated_at_from]`; the marker moves after the last page, as
        `updated_at` is not a documented sort of this list (§4.6) and pages may not be ordered."""
        since = _moment(self.connection.sync_marker)
        filters: dict[str, Any] = {"sort_by": "created_at:asc"}
        if since is not None:
            filters["updated_at_from"] = since - OVERLAP
        newest = self.connection.sync_marker
        if not plan.list_worth_trying(self.connection):
            self.uploaded_invoices()
            return
        try:
            for page in client.supplier_invoices_pages(self.api, **filters):
                stamps = [str(i.get("updated_at")) for i in page.items if i.get("updated_at")]
                newest = max([newest, *stamps]) if stamps else newest
                self.commit(QontoEntryKind.SUPPLIER_INVOICE, page.items)
        except ProviderError as exc:
            if not plan.is_plan_refusal(exc):
                raise
            # Solo Basic: no list (connectors/qonto/plan.py). Recorded, then what Well can read.
            plan.plan_record(self.connection, list_available=False, detail=plan.LIMITED_DETAIL)
            self.uploaded_invoices()
            return
        if self.connection.supplier_invoice_list_available is not True:
            plan.plan_record(self.connection, list_available=True)
        Connection.objects.filter(pk=self.connection.pk).update(sync_marker=newest)
        self.connection.sync_marker = newest

    def uploaded_invoices(self) -> None:
        """Without the list: read the invoices Well put in Qonto one by one (their status, what
        Qonto extracted), newest first, at most UPLOADED_READS a sync."""
        ids = (
            Posting.objects.for_workspace(self.connection.workspace_id)
            .filter(state=PostingState.DONE, target_kind="invoice")
            .exclude(qonto_id="")
            .order_by("-done_at")
            .values_list("qonto_id", flat=True)
            .distinct()[:UPLOADED_READS]
        )
        rows = []
        for qonto_id in dict.fromkeys(ids):
            try:
                rows.append(client.supplier_invoice(self.api, qonto_id))
            except ProviderError as exc:
                if exc.status == 404:
                    continue
                raise
        if rows:
            self.commit(QontoEntryKind.SUPPLIER_INVOICE, rows)

    def transactions(self, account: QontoBankAccount) -> None:
        since = _moment(account.transactions_synced_to)
        newest = account.transactions_synced_to
        for page in client.transactions_pages(
            self.api,
            bank_account_id=account.qonto_id,
            updated_at_from=(since - OVERLAP) if since else None,
        ):
            stamps = [str(t.get("updated_at")) for t in page.items if t.get("updated_at")]
            newest = max([newest, *stamps]) if stamps else newest
            self.commit(QontoEntryKind.TRANSACTION, page.items)
        QontoBankAccount.objects.filter(pk=account.pk).update(transactions_synced_to=newest)
        self.pending_recheck(account)

    def pending_recheck(self, account: QontoBankAccount) -> None:
        """Read again, by id, the transactions still pending in Well after the list.

        A pending card payment later declined or reversed may never come back in the list
        (`reversed` is no documented filter value): read by id, its new status replaces the
        old one and a declined, reversed or vanished (404) one leaves the candidates.
        """
        pending = (
            QontoEntry.objects.for_workspace(self.connection.workspace_id)
            .filter(
                kind=QontoEntryKind.TRANSACTION,
                bank_account_id=account.qonto_id,
                status="pending",
            )
            .exclude(pulled_at__gte=self.started)
            .order_by("pulled_at")[:PENDING_READS]
        )
        rows = []
        for entry in pending:
            try:
                # As the list reads it (attachments embedded): an unchanged one stays unchanged.
                rows.append(client.transaction(self.api, entry.qonto_id, includes=["attachments"]))
            except ProviderError as exc:
                if exc.status != 404:
                    raise
                # Gone from Qonto: a pending authorisation that was withdrawn.
                rows.append({**entry.payload, "status": "reversed"})
        if rows:
            self.commit(QontoEntryKind.TRANSACTION, rows)


def qonto_sync(*, connection_id, trigger: str = "schedule", **api_options) -> SyncRun:
    """Read one Qonto connection now; the loser of a race is recorded as skipped."""

    def work(connection: Connection, tally: SyncTally) -> None:
        api = qonto_api_for(connection, on_attempt=tally.calls, **api_options)
        reader = _Reader(connection, tally, api)
        for account in reader.accounts():
            reader.transactions(account)
        reader.invoices()

    run = sync_run(connection_id=connection_id, kind=SYNC, trigger=trigger, work=work)
    changed = any(c.get("new") or c.get("updated") for c in run.counts.values())
    if run.status == SyncStatus.SUCCEEDED and changed:
        handoff.qonto_entries_changed(workspace_id=run.workspace_id, since=run.started_at)
    return run
