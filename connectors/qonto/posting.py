"""The outbox worker: claim, prepare PDFs, send in bulk, verify, finish each item (exactly once).

- Claims take ready and unknown postings with `select_for_update(skip_locked=True)`, commit, and
  only then call Qonto: no transaction is held open across a request.
- Every item carries its idempotency key, stored when the posting was created. An unknown outcome
  younger than KEY_WINDOW is resent with the same key (Qonto replays its first answer for 30
  minutes, qonto-api.md §7.4); an older one is reconciled first (list recent invoices, match our
  file name, then invoice number and amount) so nothing is uploaded twice after Qonto forgot it.
- Done only after verification: one result per item, the Qonto ID stored, then read back.
- Each item ends with a conditional UPDATE fenced by its attempt_id (posting_states.posting_finish).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from connectors.models import Connection, ConnectionStatus, Onboarding, Provider
from connectors.pdf import (
    DocumentRejected,
    Party,
    RenderFields,
    RenderLine,
    VatLine,
    language_of,
    render_record_pdf,
    validate_document,
)
from connectors.qonto import client, plan, selectors
from connectors.qonto.models import PAYMENT_ACTIONS, Posting, PostingAction, PostingState
from connectors.qonto.outbox import INVOICE_KINDS, SYSTEM
from connectors.qonto.posting_states import posting_claim, posting_finish, posting_mark_unknown
from connectors.qonto.services import qonto_api_for
from connectors.quickbooks.company import (
    company_party,
    document_language,
    tax_code_rates,
    vat_by_rate,
)
from connectors.quickbooks.extract import SUPPLIER_FIELDS
from connectors.quickbooks.models import SourceRecord
from connectors.quickbooks.suppliers import supplier_of, tax_id_is_masked
from connectors.services import connection_mark_needs_reconnect
from well.http import AuthRevoked, PermanentError, ProviderError, RateLimited

logger = logging.getLogger("well.connectors.qonto.posting")

LEASE = timedelta(minutes=15)  # a claim older than this belongs to a dead worker
KEY_WINDOW = timedelta(minutes=25)  # Qonto forgets keys after 30 minutes; keep a margin
RECONCILE_LOOKBACK = timedelta(hours=2)
CLAIM_SIZE = 100
UPLOADS = (PostingAction.UPLOAD, PostingAction.CREDIT_NOTE)
# Per-item bulk errors that say Qonto failed on its side, not that the document is wrong
# (qonto-api.md §4.3): the item is sent again with its key instead of failing the record.
TRANSIENT_ITEM_CODES = frozenset({"internal_server_error"})
# After this many attempts a transient item error is reported as a failure a person can retry.
MAX_TRANSIENT_ATTEMPTS = 5
# A per-item error names its item by index (`/supplier_invoices/1/file`) or, as integrators
# quoting Qonto's docs report, by the item's key (`/supplier_invoices/idempotency_key/<key>`):
# both are understood (qonto-api.md §4.3 leaves the shape unconfirmed).
_POINTER = re.compile(r"^/supplier_invoices/(\d+)(?:/|$)")
_KEY_POINTER = re.compile(r"^/supplier_invoices/idempotency_key/([^/]+)")
WAITING_FOR_EARLIER = "Waiting for the earlier mark or unmark of this invoice to settle."


@dataclass(frozen=True)
class Document:
    file_name: str
    content: bytes = field(repr=False)
    content_type: str
    sha256: str


DocumentSource = Callable[[Posting], Document]


@dataclass
class SendReport:
    claimed: int = 0
    done: int = 0
    failed: int = 0
    unknown: int = 0
    requeued: int = 0
    reconciled: int = 0
    linked: int = 0
    bulk_requests: int = 0
    requests: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def count_request(self, attempt) -> None:
        self.requests += 1
        if attempt.method == "POST" and attempt.url.endswith("/supplier_invoices/bulk"):
            self.bulk_requests += 1

    def as_dict(self) -> dict:
        return {
            "claimed": self.claimed,
            "done": self.done,
            "failed": self.failed,
            "unknown": self.unknown,
            "requeued": self.requeued,
            "reconciled": self.reconciled,
            "linked": self.linked,
            "bulk_requests": self.bulk_requests,
            "requests": self.requests,
        }


# --- Documents -------------------------------------------------------------------------------


def _safe_stem(text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80]
    return stem or "document"


def document_name(posting: Posting, record: SourceRecord, original: str = "", ext: str = ".pdf"):
    """A file name unique to this posting (its key's prefix), which reconciliation looks for."""
    default = f"{record.entity_type}-{record.invoice_number or record.qbo_id}"
    stem = Path(original).stem if original else default
    return f"{_safe_stem(stem)}--well-{posting.idempotency_key[:8]}{ext}"


class SupplierUnknown(DocumentRejected):
    """No supplier to print: Well does not send Qonto an invoice without one."""


def _line_rate(line: dict, rates: dict[str, Decimal]) -> Decimal | None:
    for detail_key in ("AccountBasedExpenseLineDetail", "ItemBasedExpenseLineDetail"):
        detail = line.get(detail_key)
        if isinstance(detail, dict) and isinstance(detail.get("TaxCodeRef"), dict):
            return rates.get(str(detail["TaxCodeRef"].get("value")))
    return None


def render_fields(record: SourceRecord, *, credit: bool, language: str | None = None):
    """What the drawn PDF shows: the record's typed columns and lines, its supplier (the
    QuickBooks Vendor), the company as customer, VAT by rate, in the workspace's language.

    Raises SupplierUnknown when QuickBooks names no supplier for the record.
    """
    stored = record.workspace_id is not None  # an unsaved record (a what-if) reads nothing
    supplier = supplier_of(record) if stored else {n: getattr(record, n) for n in SUPPLIER_FIELDS}
    name = " ".join(supplier["supplier_name"].split())
    if not name:
        raise SupplierUnknown(
            "Well cannot name the supplier of this record: it has no vendor in QuickBooks, or "
            "the vendor was not read yet. Set the vendor on the record in QuickBooks (or sync "
            "again); Well does not send Qonto an invoice without its supplier.",
            code="supplier_unknown",
        )
    total = record.total_amount if record.total_amount is not None else Decimal("0")
    vat = vat_by_rate(record.payload or {})
    single_rate = vat[0][0] if len(vat) == 1 else None
    rates = tax_code_rates(record.workspace_id) if len(vat) > 1 and stored else {}
    sign = -1 if credit else 1
    lines = []
    for line in record.payload.get("Line") or []:
        if not isinstance(line, dict) or line.get("Amount") in (None, ""):
            continue
        if line.get("DetailType") == "SubTotalLineDetail":
            continue
        try:
            amount = Decimal(str(line["Amount"]))
        except ArithmeticError:
            continue
        lines.append(
            RenderLine(
                description=str(line.get("Description") or line.get("DetailType") or "Line")[:300],
                amount=sign * amount,
                vat_rate=single_rate if single_rate is not None else _line_rate(line, rates),
            )
        )
    tax = record.tax_amount
    if tax is None and vat:
        tax = sum((amount for _rate, amount, _base in vat), Decimal(0))
    tax_id = supplier["supplier_tax_id"]
    address = tuple(part for part in supplier["supplier_address"].split("\n") if part.strip())
    return RenderFields(
        record_type=record.entity_type,
        record_id=record.qbo_id,
        vendor_name=name,
        total=sign * abs(total),
        currency=record.currency or "EUR",
        invoice_number=record.invoice_number or None,
        issue_date=record.issue_date,
        due_date=record.due_date,
        lines=tuple(lines),
        tax=(sign * abs(tax)) if tax is not None else None,
        # QuickBooks masks TaxIdentifier (quickbooks-api.md §4.3): a masked one is no VAT number.
        vat_number=(tax_id or None) if not tax_id_is_masked(tax_id) else None,
        supplier=Party(
            name=name,
            legal_name=supplier["supplier_legal_name"],
            address=address,
            website=supplier["supplier_website"],
            email=supplier["supplier_email"],
        ),
        customer=company_party(record.workspace_id) if stored else None,
        vat_lines=tuple(
            VatLine(rate=rate, amount=sign * abs(amount), base=base) for rate, amount, base in vat
        ),
        lines_include_tax=(record.payload or {}).get("GlobalTaxCalculation") == "TaxInclusive",
        subject=record.label if record.entity_type == "Purchase" else "",
        language=language
        or (document_language(record.workspace_id) if stored else language_of(None)),
    )


def document_for(posting: Posting) -> Document:
    """The QuickBooks attachment, validated; else a PDF rendered from the record.

    Raises DocumentRejected with a reason an accountant can act on.
    """
    record = posting.record
    source = selectors.record_file(record=record)
    if source is not None:
        try:
            with default_storage.open(source.file.name, "rb") as handle:
                content = handle.read(11 * 1024 * 1024)
        except OSError:
            raise DocumentRejected(
                "The QuickBooks attachment is no longer in storage; sync again.", code="missing"
            ) from None
        original = source.file_name or Path(source.file.name).name
        checked = validate_document(content, filename=original)
        ext = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}
        name = document_name(posting, record, original, ext[checked.content_type])
        return Document(name, content, checked.content_type, checked.sha256)
    fields = render_fields(record, credit=posting.action == PostingAction.CREDIT_NOTE)
    try:
        content = render_record_pdf(fields)
    except ValueError as exc:
        raise DocumentRejected(
            f"Well could not draw a PDF for this record: {exc}", code="render"
        ) from None
    sha = hashlib.sha256(content).hexdigest()
    return Document(document_name(posting, record), content, "application/pdf", sha)


def upload_meta() -> dict | None:
    """The `meta` sent with each upload: none unless configured (settings.QONTO_UPLOAD_META).

    Qonto's docs show only example values for it; see client.supplier_invoices_bulk.
    """
    meta = getattr(settings, "QONTO_UPLOAD_META", None)
    return dict(meta) if isinstance(meta, dict) and meta else None


# --- The worker ------------------------------------------------------------------------------


def _connected_workspaces() -> dict[int, Connection]:
    """Workspaces whose Qonto is connected and was read at least once, and whose owner has
    started the first sync (issue 16).

    Until Qonto's first read, Well cannot see an invoice already there (forwarded by email,
    say) and would upload it again: postings wait for that read. A workspace still in the
    setup wizard gets nothing written to its Qonto (no upload, no mark as paid) until its owner
    presses "Start the first sync": connecting Qonto only lets Well read it. Workspaces made
    before the wizard existed have no Onboarding row and are not held back.
    """
    wizard_unfinished = Onboarding.objects.filter(
        workspace_id=OuterRef("workspace_id"), first_sync_started_at__isnull=True
    )
    return {
        c.workspace_id: c
        for c in Connection.objects.filter(
            provider=Provider.QONTO,
            status=ConnectionStatus.CONNECTED,
            last_good_sync_at__isnull=False,
        ).exclude(Exists(wizard_unfinished))
    }


def postings_recover(*, lease: timedelta = LEASE, now: datetime | None = None) -> int:
    """In-flight claims older than the lease (a dead worker) become unknown: they may have
    reached Qonto, so they are resent with their key or reconciled, never just re-uploaded."""
    now = now or timezone.now()
    stale = Posting.objects.filter(state=PostingState.IN_FLIGHT, claimed_at__lt=now - lease)
    count = 0
    for posting in stale.only("id", "workspace_id", "attempt_id", "record_id", "idempotency_key"):
        count += posting_mark_unknown(
            posting=posting, reason="The worker stopped before recording Qonto's answer."
        )
    return count


def postings_send(
    *,
    api_for: Callable[..., client.QontoApi] = qonto_api_for,
    documents: DocumentSource = document_for,
    lease: timedelta = LEASE,
    key_window: timedelta = KEY_WINDOW,
    claim_size: int = CLAIM_SIZE,
    max_claims: int | None = None,
    after_send: Callable[[list[Posting]], None] | None = None,
    report: SendReport | None = None,
) -> SendReport:
    """Send every ready or unknown posting of connected workspaces; harmless when run twice."""
    report = report or SendReport()
    postings_recover(lease=lease)
    rounds = 0
    apis: dict[int, client.QontoApi] = {}
    while max_claims is None or rounds < max_claims:
        rounds += 1
        connections = _connected_workspaces()
        claimed = posting_claim(limit=claim_size, workspace_ids=list(connections))
        if not claimed:
            break
        report.claimed += len(claimed)
        settled_before = report.done + report.failed
        by_workspace: dict[int, list[Posting]] = defaultdict(list)
        records = SourceRecord.objects.in_bulk([p.record_id for p in claimed])
        for posting in claimed:
            posting.record = records[posting.record_id]
            by_workspace[posting.workspace_id].append(posting)
        for workspace_id, postings in by_workspace.items():
            connection = connections[workspace_id]
            if workspace_id not in apis:
                apis[workspace_id] = api_for(connection, on_attempt=report.count_request)
            sender = _Sender(
                connection, apis[workspace_id], documents, report, key_window, after_send
            )
            sender.run(postings)
        if report.done + report.failed == settled_before:
            # Nothing settled this round (Qonto down, 401, 429): stop instead of spinning on
            # the same postings; the next scheduled run tries again.
            break
    return report


def _earlier_payment_posting_open(posting: Posting) -> bool:
    """One invoice's marks and unmarks go in the order they were queued (claim order).

    An unmark waits for the mark it undoes, a re-dated mark for the unmark before it: sent out
    of order, Qonto would keep an invoice paid (a second mark changes nothing) or unpay it.
    """
    settled = [PostingState.DONE, PostingState.FAILED]
    return (
        Posting.objects.filter(
            record_id=posting.record_id,
            qonto_id=posting.qonto_id,
            action__in=PAYMENT_ACTIONS,
        )
        .filter(
            Q(created_at__lt=posting.created_at)
            | Q(created_at=posting.created_at, id__lt=posting.id)
        )
        .exclude(state__in=settled)
        .exists()
    )


class _Sender:
    """Sends one workspace's claimed postings."""

    def __init__(self, connection, api, documents, report, key_window, after_send) -> None:
        self.connection = connection
        self.api = api
        self.documents = documents
        self.report = report
        self.key_window = key_window
        self.after_send = after_send
        self.stopped: str | None = None

    # --- outcomes --------------------------------------------------------------------------

    def finish(self, posting: Posting, state: str, **values) -> None:
        if not posting_finish(posting=posting, state=state, **values):
            logger.warning("posting %s: attempt superseded, result dropped", posting.pk)
            return
        counter = {
            PostingState.DONE: "done",
            PostingState.FAILED: "failed",
            PostingState.UNKNOWN: "unknown",
            PostingState.READY: "requeued",
        }[state]
        setattr(self.report, counter, getattr(self.report, counter) + 1)
        if values.get("outcome"):
            self.report.outcomes[values["outcome"]] += 1

    def release(self, postings: Iterable[Posting], reason: str) -> None:
        """Back to ready: nothing reached Qonto (401, 429, not connected)."""
        for posting in postings:
            self.finish(posting, PostingState.READY, message=reason)

    def unknown(self, postings: Iterable[Posting], reason: str) -> None:
        for posting in postings:
            self.finish(posting, PostingState.UNKNOWN, message=reason)

    def auth_lost(self, exc: AuthRevoked) -> None:
        self.stopped = str(exc)
        connection_mark_needs_reconnect(connection=self.connection, reason=str(exc), actor=SYSTEM)

    # --- per action ------------------------------------------------------------------------

    def run(self, postings: list[Posting]) -> None:
        uploads = [p for p in postings if p.action in UPLOADS]
        others = [p for p in postings if p.action not in UPLOADS]
        for posting in others:
            if self.stopped:
                self.release([posting], self.stopped)
                continue
            self.one(posting)
        if uploads:
            self.uploads(uploads)

    def one(self, posting: Posting) -> None:
        """link (verify the Qonto object exists), mark_paid (idempotent in Qonto) or unmark_paid."""
        if posting.action in PAYMENT_ACTIONS and _earlier_payment_posting_open(posting):
            self.release([posting], WAITING_FOR_EARLIER)
            return
        try:
            if posting.action == PostingAction.MARK_PAID:
                self.mark_paid(posting)
                return
            if posting.action == PostingAction.UNMARK_PAID:
                self.unmark_paid(posting)
                return
            kind = posting.target_kind or "invoice"
            if kind == "transaction" and posting.record.entity_type in INVOICE_KINDS:
                # Queued before the rule (outbox.posting_enqueue): a bill never ends as a
                # transaction link; a person re-approves it to upload or link an invoice.
                self.finish(
                    posting,
                    PostingState.FAILED,
                    message="A bill is uploaded to Qonto's supplier invoices or linked to one, "
                    "never closed by a bank-transaction link; approve it again.",
                    error_code="bill_to_transaction",
                )
                return
            if kind == "transaction":
                found = client.transaction(self.api, posting.qonto_id)
            else:
                found = client.supplier_invoice(self.api, posting.qonto_id)
            self.finish(
                posting,
                PostingState.DONE,
                outcome="linked",
                qonto_id=found["id"],
                target_kind=kind,
            )
            self.report.linked += 1
        except AuthRevoked as exc:
            self.auth_lost(exc)
            self.release([posting], str(exc))
        except RateLimited as exc:
            self.release([posting], str(exc))
        except ProviderError as exc:
            if exc.permanent:
                self.finish(posting, PostingState.FAILED, message=exc.message, error_code="qonto")
            else:
                self.unknown([posting], str(exc))

    def mark_paid(self, posting: Posting) -> None:
        invoice = client.supplier_invoice_mark_paid(
            self.api, posting.qonto_id, payment_date=posting.payment_date
        )
        if invoice.get("status") != "paid":
            self.finish(
                posting,
                PostingState.UNKNOWN,
                message=f"Qonto answered status {invoice.get('status')!r}, not paid.",
            )
            return
        # §4.1: marking an invoice already paid changes nothing, its date included. Another
        # date means Qonto had it paid before Well: nothing of Well's to undo later.
        paid_on = str(invoice.get("payment_date") or "")[:10]
        ours = posting.payment_date.isoformat() if posting.payment_date else paid_on
        self.finish(
            posting,
            PostingState.DONE,
            outcome="paid" if paid_on in ("", ours) else "already_paid",
            qonto_id=invoice["id"],
            target_kind="invoice",
        )

    def unmark_paid(self, posting: Posting) -> None:
        """Undo Well's mark: read first, as unmark_as_paid fails on an invoice not paid."""
        mark = (
            Posting.objects.filter(
                record_id=posting.record_id,
                action=PostingAction.MARK_PAID,
                source_version=posting.source_version,
                qonto_id=posting.qonto_id,
            )
            .only("state", "outcome")
            .first()
        )
        if mark is None or mark.state == PostingState.FAILED or mark.outcome == "already_paid":
            self.finish(
                posting,
                PostingState.DONE,
                outcome="nothing_to_undo",
                qonto_id=posting.qonto_id,
                target_kind="invoice",
                message="Well's mark never changed this invoice in Qonto; nothing was sent.",
            )
            return
        current = client.supplier_invoice(self.api, posting.qonto_id)
        if current.get("status") != "paid":
            # Unpaid already: an earlier attempt whose answer was lost, or a person in Qonto.
            self.finish(
                posting,
                PostingState.DONE,
                outcome="already_unpaid",
                qonto_id=current["id"],
                target_kind="invoice",
                message=f"Qonto shows it {current.get('status')!r}; not unmarked again.",
            )
            return
        invoice = client.supplier_invoice_unmark_paid(self.api, posting.qonto_id)
        if invoice.get("status") == "paid":
            self.finish(
                posting,
                PostingState.UNKNOWN,
                message="Qonto answered the unmark with the invoice still paid.",
            )
            return
        self.finish(
            posting,
            PostingState.DONE,
            outcome="unpaid",
            qonto_id=invoice["id"],
            target_kind="invoice",
        )

    def uploads(self, postings: list[Posting]) -> None:
        fresh: list[Posting] = []
        old: list[Posting] = []
        limit = timezone.now() - self.key_window
        for posting in postings:
            sent_before = posting.sent_at is not None
            if sent_before and posting.sent_at < limit:
                old.append(posting)
            else:
                fresh.append(posting)
        if old:
            fresh.extend(self.reconcile(old))
        batch: list[tuple[Posting, Document]] = []
        size = 0
        for posting in fresh:
            if self.stopped:
                self.release([posting], self.stopped)
                continue
            if posting.sent_at is None:
                existing = selectors.qonto_invoice_existing(record=posting.record)
                if existing is not None:
                    self.finish(
                        posting,
                        PostingState.DONE,
                        outcome="linked",
                        qonto_id=existing.qonto_id,
                        target_kind="invoice",
                        message="Qonto already held this invoice; linked, not uploaded again.",
                    )
                    self.report.linked += 1
                    continue
            try:
                document = self.documents(posting)
            except DocumentRejected as exc:
                self.finish(posting, PostingState.FAILED, message=exc.reason, error_code=exc.code)
                continue
            except Exception as exc:  # a broken record never stops the batch
                logger.exception("posting %s: document preparation failed", posting.pk)
                self.finish(
                    posting,
                    PostingState.FAILED,
                    message=f"Well could not prepare the document ({type(exc).__name__}).",
                    error_code="document",
                )
                continue
            weight = len(document.content) + client.ITEM_OVERHEAD_BYTES
            if batch and (
                len(batch) >= client.MAX_BULK_ITEMS or size + weight > client.MAX_BULK_BYTES
            ):
                self.send(batch)
                batch, size = [], 0
            batch.append((posting, document))
            size += weight
        if batch:
            self.send(batch)

    # --- bulk ------------------------------------------------------------------------------

    def send(self, batch: list[tuple[Posting, Document]]) -> None:
        if self.stopped:
            self.release([p for p, _ in batch], self.stopped)
            return
        now = timezone.now()
        with transaction.atomic():
            for posting, document in batch:
                # First send starts the 30-minute key window; a resend keeps the first time.
                values = {
                    "file_name": document.file_name,
                    "file_sha256": document.sha256,
                    "file_size": len(document.content),
                }
                fenced = Posting.objects.filter(
                    pk=posting.pk, attempt_id=posting.attempt_id, state=PostingState.IN_FLIGHT
                )
                fenced.update(**values)
                fenced.filter(sent_at__isnull=True).update(sent_at=now)
                posting.sent_at = posting.sent_at or now
                for name, value in values.items():
                    setattr(posting, name, value)
        items = [
            client.UploadItem(
                idempotency_key=p.idempotency_key,
                file_name=d.file_name,
                content=d.content,
                content_type=d.content_type,
            )
            for p, d in batch
        ]
        postings = [p for p, _ in batch]
        try:
            result = client.supplier_invoices_bulk(self.api, items, meta=upload_meta())
        except AuthRevoked as exc:
            self.auth_lost(exc)
            self.release(postings, str(exc))
            return
        except RateLimited as exc:
            self.release(postings, str(exc))
            return
        except PermanentError as exc:
            for posting in postings:
                self.finish(posting, PostingState.FAILED, message=exc.message, error_code="qonto")
            return
        except ProviderError as exc:
            # Timeout, connection reset, 5xx: Qonto may have created them; same key next time.
            self.unknown(postings, str(exc))
            return
        if self.after_send is not None:
            self.after_send(postings)
        self.settle(batch, result)

    def settle(self, batch: list[tuple[Posting, Document]], result: client.BulkResult) -> None:
        """One result per item: created (verified by read-back), refused, or unknown."""
        by_name = {d.file_name: (p, d) for p, d in batch}
        created: dict[str, dict] = {}
        for invoice in result.invoices:
            entry = by_name.get(str(invoice.get("file_name") or ""))
            # Qonto ids are text; any other id is an answer we cannot store or verify.
            if entry is not None and isinstance(invoice.get("id"), str) and invoice["id"]:
                created[entry[0].idempotency_key] = invoice
        refused: dict[str, client.ApiErrorItem] = {}
        loose: list[client.ApiErrorItem] = []
        keys = {p.idempotency_key for p, _ in batch}
        for error in result.errors:
            by_index = _POINTER.match(error.pointer)
            by_key = _KEY_POINTER.match(error.pointer)
            if by_index and int(by_index.group(1)) < len(batch):
                refused[batch[int(by_index.group(1))][0].idempotency_key] = error
            elif by_key and unquote(by_key.group(1)) in keys:
                refused[unquote(by_key.group(1))] = error
            else:
                loose.append(error)
        pending = [p for p, _ in batch if p.idempotency_key not in created | refused]
        if len(loose) == 1 and len(pending) == 1:
            refused[pending[0].idempotency_key] = loose[0]
        verified = self.read_back(list(created.values()))
        for posting, _document in batch:
            key = posting.idempotency_key
            if key in created:
                invoice = created[key]
                if invoice["id"] not in verified:
                    self.finish(
                        posting,
                        PostingState.UNKNOWN,
                        message="Qonto created the invoice but the read-back did not find it.",
                    )
                    continue
                replayed = bool(posting.previous_state == PostingState.UNKNOWN)
                self.finish(
                    posting,
                    PostingState.DONE,
                    outcome="replayed" if replayed else "created",
                    qonto_id=invoice["id"],
                    target_kind="invoice",
                )
            elif key in refused and self.transient(posting, refused[key]):
                # Qonto's own failure: maybe created, maybe not; the same key decides next time.
                self.finish(
                    posting,
                    PostingState.UNKNOWN,
                    message=f"Qonto could not process it this time: {refused[key].detail}",
                    error_code=refused[key].code,
                )
            elif key in refused:
                error = refused[key]
                # Nothing was created for this item; a person may retry it (posting_retry).
                self.finish(
                    posting,
                    PostingState.FAILED,
                    message=f"Qonto refused it: {error.detail}",
                    error_code=error.code,
                )
            else:
                self.finish(
                    posting,
                    PostingState.UNKNOWN,
                    message="Qonto's answer held no result for this item.",
                )

    @staticmethod
    def transient(posting: Posting, error: client.ApiErrorItem) -> bool:
        """An item error worth sending again (Qonto's side failed), until attempts run out."""
        return error.code in TRANSIENT_ITEM_CODES and posting.attempts < MAX_TRANSIENT_ATTEMPTS

    def read_back(self, invoices: list[dict]) -> set[str]:
        """The ids Qonto shows again when asked for the invoices of these attachments.

        Without the list (Solo Basic, connectors/qonto/plan.py), each invoice is read by its id;
        where even that is refused, the bulk answer (an id for our file) is the verification.
        """
        attachment_ids = [str(i.get("attachment_id")) for i in invoices if i.get("attachment_id")]
        if not attachment_ids:
            return set()
        found: set[str] = set()
        if plan.list_worth_trying(self.connection):
            try:
                for page in client.supplier_invoices_pages(
                    self.api, attachment_ids=attachment_ids, sort_by="created_at:asc"
                ):
                    found.update(str(i.get("id")) for i in page.items)
                return found
            except AuthRevoked as exc:
                self.auth_lost(exc)
                return found
            except ProviderError as exc:
                if not plan.is_plan_refusal(exc):
                    logger.warning("read-back failed: %s", exc)
                    return found
                plan.plan_record(self.connection, list_available=False, detail=plan.LIMITED_DETAIL)
        for invoice in invoices:
            try:
                found.add(str(client.supplier_invoice(self.api, str(invoice["id"]))["id"]))
            except AuthRevoked as exc:
                self.auth_lost(exc)
                break
            except ProviderError as exc:
                if plan.is_plan_refusal(exc):
                    # Not even the per-invoice read: Qonto's bulk answer named our file.
                    found.add(str(invoice["id"]))
                else:
                    logger.warning("read-back of %s failed: %s", invoice.get("id"), exc)
        return found

    # --- reconciliation --------------------------------------------------------------------

    def reconcile(self, postings: list[Posting]) -> list[Posting]:
        """Unknown uploads older than Qonto's key memory: find them in Qonto before any resend.

        Returns the postings Qonto does not hold (safe to upload again).
        """
        if not plan.list_worth_trying(self.connection):
            # No list on this plan: Well cannot see whether these arrived, and resending after
            # Qonto forgot the key could create a second invoice. A person checks in Qonto.
            for posting in postings:
                self.finish(
                    posting,
                    PostingState.UNKNOWN,
                    message="Qonto's plan does not let Well list supplier invoices to check "
                    f"whether {posting.file_name or 'this file'} arrived. Look for it in Qonto's "
                    "supplier invoices: if it is there, nothing to do; if not, retry it.",
                )
            return []
        since = min(p.sent_at for p in postings) - RECONCILE_LOOKBACK
        by_name: dict[str, list[dict]] = defaultdict(list)
        by_number: dict[str, list[dict]] = defaultdict(list)
        try:
            for page in client.supplier_invoices_pages(
                self.api, created_at_from=since, sort_by="created_at:asc"
            ):
                for invoice in page.items:
                    by_name[str(invoice.get("file_name") or "")].append(invoice)
                    number = selectors._number(str(invoice.get("invoice_number") or ""))
                    if number:
                        by_number[number].append(invoice)
        except AuthRevoked as exc:
            self.auth_lost(exc)
            self.release(postings, str(exc))
            return []
        except ProviderError as exc:
            self.unknown(postings, f"Reconciliation could not list Qonto's invoices: {exc}")
            return []
        missing: list[Posting] = []
        for posting in postings:
            found = by_name.get(posting.file_name) or []
            how = "file name"
            if not found:
                record = posting.record
                number = selectors._number(record.invoice_number)
                found = [
                    invoice
                    for invoice in by_number.get(number, [])
                    if record.total_amount is None
                    or client.amount_of(invoice.get("total_amount"))[0] is None
                    or abs(Decimal(client.amount_of(invoice["total_amount"])[0]))
                    == abs(record.total_amount)
                ]
                how = "invoice number and amount"
            if found:
                invoice = sorted(found, key=lambda i: str(i.get("created_at")))[0]
                self.finish(
                    posting,
                    PostingState.DONE,
                    outcome="reconciled",
                    qonto_id=invoice["id"],
                    target_kind="invoice",
                    message=f"Found in Qonto by {how} after the key expired; not sent again.",
                )
                self.report.reconciled += 1
            else:
                missing.append(posting)
        return missing
