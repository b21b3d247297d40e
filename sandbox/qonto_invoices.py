"""Supplier invoices in the Qonto sandbox: bulk upload, analysis, lists, status changes (§4)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from werkzeug.http import parse_options_header
from werkzeug.wrappers import Request, Response

from sandbox.qonto_analysis import extract_invoice_fields, sniff_content_type
from sandbox.qonto_http import (
    ApiError,
    bool_param,
    choice_params,
    error_item,
    in_range,
    json_response,
    list_param,
    page_params,
    paginate,
    parse_sort,
    read_json_body,
    sort_records,
    sort_value,
    time_param,
)
from sandbox.qonto_multipart import (
    BodyTooLarge,
    MalformedMultipart,
    Part,
    group_bulk_items,
    parse_parts,
)
from sandbox.qonto_store import QontoStore, iso_from_epoch

MAX_ITEMS = 20  # §4.2
# How a per-item error names its item (§4.3 leaves it unconfirmed): by index or by key.
ERROR_POINTER_STYLES = ("index", "idempotency_key")
MAX_REQUEST_BYTES = 15 * 1024 * 1024  # §4.2: whole request
MAX_FILE_BYTES = 10 * 1024 * 1024  # §4.2: one PDF
MAX_DRAIN_BYTES = 64 * 1024 * 1024
MAX_FORM_FIELD_BYTES = 64 * 1024
MAX_PARTS = 200
IDEMPOTENCY_TTL = 30 * 60  # §7.4: keys are forgotten after 30 minutes

SOURCES = ("pay_by_invoice", "supplier_invoices", "integration", "transaction_attachment")
SOURCES += ("generic_upload",)
STATUSES = (
    "to_review",
    "to_approve",
    "awaiting_payment",
    "to_pay",
    "pending",
    "scheduled",
    "paid",
    "archived",
    "rejected",
    "discarded",
)
PAYABLE_FROM = {"to_review", "to_approve", "pending", "awaiting_payment", "to_pay", "paid"}
PAYABLE_FROM |= {"archived"}  # §4.1: everything but scheduled (and the closed states)
REJECTABLE_FROM = {"to_review", "to_approve", "awaiting_payment"}  # §4.1
SORTABLE = (
    "created_at",
    "updated_at",
    "file_name",
    "supplier_name",
    "payment_date",
    "due_date",
    "scheduled_date",
    "total_amount",
)
ACCEPTED_TYPES = {
    "application/pdf": "application/pdf",
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/png": "image/png",
}
EXTRACTED_FIELDS = (
    "supplier_name",
    "invoice_number",
    "total_amount",
    "issue_date",
    "due_date",
    "vat_number",
    "iban",
    "description",
    "taxes",
    "total_tax_amount",
    "total_amount_excluding_taxes",
    "is_credit_note",
)


class SupplierInvoices:
    """The supplier-invoice endpoints over the shared store."""

    def __init__(
        self,
        store: QontoStore,
        *,
        analysis_delay_seconds: float,
        error_pointers: str = "index",
    ) -> None:
        if error_pointers not in ERROR_POINTER_STYLES:
            raise ValueError(f"error_pointers must be one of {ERROR_POINTER_STYLES}")
        self.store = store
        self.analysis_delay_seconds = analysis_delay_seconds
        self.error_pointers = error_pointers

    # --- bulk upload -------------------------------------------------------------------------

    def bulk(self, request: Request, *, partial_failure: bool) -> Response:
        """POST /v2/supplier_invoices/bulk (§4.2-§4.4); item errors come in a 200 answer."""
        form = group_bulk_items(self._read_parts(request))
        if not form.items:
            raise ApiError(
                400, "required", "supplier_invoices is required.", pointer="/supplier_invoices"
            )
        if len(form.items) > MAX_ITEMS:
            raise ApiError(
                400,
                "limit_reached",
                f"At most {MAX_ITEMS} supplier invoices can be created per request.",
                pointer="/supplier_invoices",
            )
        source, meta = _bulk_scalars(form.scalars)
        created: list[dict] = []
        errors: list[dict] = []
        with self.store.lock:
            self._forget_expired_keys()
            for index, item in enumerate(form.items):
                # Deterministic partial failure: every other item (2nd, 4th, ...) or a lone one.
                fail = partial_failure and (index % 2 == 1 or len(form.items) == 1)
                invoice, error = self._bulk_item(index, item, source, meta, fail)
                if invoice is not None:
                    created.append(invoice)
                if error is not None:
                    errors.append(error)
            self.store.save()
        return json_response({"supplier_invoices": created, "errors": errors})

    def _read_parts(self, request: Request) -> list[Part]:
        """Check the envelope of the request and decode its parts in order."""
        mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
        boundary = options.get("boundary", "")
        if mimetype != "multipart/form-data" or not boundary:
            raise ApiError(400, "invalid", "Content-Type must be multipart/form-data.")
        length = request.content_length
        if length is None:
            raise ApiError(400, "invalid", "A Content-Length header is required.")
        if length > MAX_REQUEST_BYTES:
            _drain(request, length)
            # §4.2 says 15 MB per request; like a gateway we answer 413 before parsing.
            raise ApiError(413, "request_entity_too_large", "The request exceeds 15 MB.")
        try:
            return parse_parts(
                request.stream,
                boundary.encode("latin-1", "replace"),
                max_form_memory_size=MAX_FORM_FIELD_BYTES,
                max_parts=MAX_PARTS,
            )
        except MalformedMultipart as exc:
            raise ApiError(400, "invalid", f"Malformed multipart body: {exc}") from exc
        except BodyTooLarge as exc:
            raise ApiError(413, "request_entity_too_large", "A form part is too large.") from exc

    def _bulk_item(
        self, index: int, item: dict[str, Part], source: str, meta: dict, fail: bool
    ) -> tuple[dict | None, dict | None]:
        """Create (or replay) one invoice; return it or its error. Caller holds the lock."""
        pointer = f"/supplier_invoices/{index}"
        key_part = item.get("idempotency_key")
        key = key_part.text().strip() if key_part else ""
        if not key:
            detail = "idempotency_key is required."
            return None, error_item("required", detail, pointer=f"{pointer}/idempotency_key")
        if self.error_pointers == "idempotency_key":
            # The shape integrators quoting Qonto's docs report (qonto-api.md §4.3, unconfirmed).
            pointer = f"/supplier_invoices/idempotency_key/{quote(key, safe='')}"
        cached = self._replay(key)
        if cached is not None:
            return cached, None
        upload, error = self._item_file(pointer, item)
        if error is not None:
            return None, error
        if fail:
            detail = "The supplier invoice could not be processed."
            return None, error_item("internal_server_error", detail, pointer=pointer)
        invoice = self._create_invoice(upload, key=key, source=source, meta=meta)
        self.store.state["idempotency"][f"bulk:{key}"] = {
            "at": self.store.now(),
            "response": copy.deepcopy(invoice),
        }
        return invoice, None

    def _item_file(self, pointer: str, item: dict[str, Part]) -> tuple[dict, dict | None]:
        """The item's file (uploaded, or an existing attachment), validated."""
        file_part, attachment_part = item.get("file"), item.get("attachment_id")
        if file_part is not None and attachment_part is not None:
            detail = "Provide either file or attachment_id, not both."
            return {}, error_item("invalid", detail, pointer=pointer)
        if attachment_part is not None:
            return self._existing_attachment(pointer, attachment_part.text().strip())
        if file_part is None or (not file_part.data and not file_part.filename):
            return {}, error_item("required", "file is required.", pointer=f"{pointer}/file")
        problem = _file_problem(file_part)
        if problem:
            return {}, error_item("invalid", problem, pointer=f"{pointer}/file")
        data = bytes(file_part.data)
        content_type = sniff_content_type(data) or "application/octet-stream"
        attachment = self._store_attachment(_file_name(file_part, content_type), content_type, data)
        return attachment, None

    def _existing_attachment(self, pointer: str, attachment_id: str) -> tuple[dict, dict | None]:
        """Option 2 of §4.2: build the invoice from an attachment already uploaded."""
        attachment = self.store.state["attachments"].get(attachment_id)
        if attachment is None:
            detail = "The attachment does not exist."
            return {}, error_item("invalid", detail, pointer=f"{pointer}/attachment_id")
        return attachment, None

    def _store_attachment(self, file_name: str, content_type: str, data: bytes) -> dict:
        """Keep the bytes and create the attachment record. Caller holds the lock."""
        attachment_id = str(uuid.uuid4())
        self.store.put_file(attachment_id, data)
        attachment = {
            "id": attachment_id,
            "created_at": self.store.now_iso(),
            "file_name": file_name,
            "file_size": str(len(data)),
            "file_content_type": content_type,
            "sha256": hashlib.sha256(data).hexdigest(),
            "probative_attachment": {"status": "unavailable"},
        }
        self.store.state["attachments"][attachment_id] = attachment
        return attachment

    def create_attachment(self, file_name: str, content_type: str, data: bytes) -> dict:
        """Store an attachment for `POST /v2/attachments`."""
        with self.store.lock:
            attachment = self._store_attachment(file_name, content_type, data)
            self.store.save()
            return attachment

    def _create_invoice(self, attachment: dict, *, key: str, source: str, meta: dict) -> dict:
        """A new `to_review` invoice, its fields pending analysis (§4.3). Caller holds the lock."""
        invoice_id = str(uuid.uuid4())
        now = self.store.now()
        invoice = new_invoice_object(
            invoice_id=invoice_id,
            organization_id=str(self.store.state["organization"].get("id") or ""),
            attachment=attachment,
            source=source,
            meta=meta,
            now_iso=iso_from_epoch(now),
        )
        self.store.state["supplier_invoices"][invoice_id] = invoice
        self.store.state["invoice_private"][invoice_id] = {
            "by_upload": True,
            "sha256": attachment.get("sha256"),
            "idempotency_key": key,
            "analysis_due": now + self.analysis_delay_seconds,
            "analysed": False,
            "previous_status": None,
        }
        return copy.deepcopy(invoice)

    def _replay(self, key: str) -> dict | None:
        """The remembered successful result for a key younger than 30 minutes (§7.4)."""
        entry = self.store.state["idempotency"].get(f"bulk:{key}")
        if entry is None or self.store.now() - entry["at"] >= IDEMPOTENCY_TTL:
            return None
        return copy.deepcopy(entry["response"])

    def _forget_expired_keys(self) -> None:
        """Drop idempotency entries past 30 minutes (after that a key creates anew, §4.4)."""
        now = self.store.now()
        entries = self.store.state["idempotency"]
        for name in [n for n, e in entries.items() if now - e["at"] >= IDEMPOTENCY_TTL]:
            del entries[name]

    # --- analysis ----------------------------------------------------------------------------

    def apply_due_analyses(self) -> None:
        """Fill extracted fields of uploads whose analysis time has come (lazy, on read)."""
        with self.store.lock:
            now = self.store.now()
            changed = False
            for invoice_id, private in self.store.state["invoice_private"].items():
                pending = private.get("by_upload") and not private["analysed"]
                if pending and private["analysis_due"] <= now:
                    self._analyse(invoice_id, private)
                    changed = True
            if changed:
                self.store.save()

    def _analyse(self, invoice_id: str, private: dict) -> None:
        """Read the uploaded file like Qonto's OCR would, then stamp `analyzed_at`."""
        invoice = self.store.state["supplier_invoices"].get(invoice_id)
        private["analysed"] = True
        if invoice is None:
            return
        attachment = self.store.state["attachments"].get(invoice["attachment_id"]) or {}
        data = self.store.get_file(invoice["attachment_id"]) or b""
        fields = extract_invoice_fields(data, attachment.get("file_content_type", ""))
        for name in EXTRACTED_FIELDS:
            if fields.get(name):
                invoice[name] = fields[name]
        if invoice.get("total_amount"):
            invoice["payable_amount"] = copy.deepcopy(invoice["total_amount"])
        stamp = iso_from_epoch(private["analysis_due"])
        invoice["analyzed_at"] = stamp
        invoice["updated_at"] = stamp

    # --- reads -------------------------------------------------------------------------------

    def list(self, request: Request) -> Response:
        """GET /v2/supplier_invoices with the filters of §4.6."""
        self.apply_due_analyses()
        args = request.args
        page, per_page = page_params(args)
        prop, descending = parse_sort(args, SORTABLE, "created_at:desc")
        matches = self._filters(args)
        with self.store.lock:
            # Rendered once per request and only shallow-copied: the list only serialises them.
            counts = self._sha_counts()
            invoices = [
                self._render(i, counts, deep=False)
                for i in self.store.state["supplier_invoices"].values()
            ]
        selected = [invoice for invoice in invoices if all(test(invoice) for test in matches)]
        ordered = sort_records(selected, lambda inv: sort_value(inv, prop), descending)
        page_items, meta = paginate(ordered, page, per_page)
        return json_response({"supplier_invoices": page_items, "meta": meta})

    def _filters(self, args) -> list:
        """Predicates for the `filter[...]`, `query` params; bad values are 422s."""
        statuses = choice_params(args, ("filter[status][]", "filter[status]"), STATUSES)
        created = (
            time_param(args, "filter[created_at_from]"),
            time_param(args, "filter[created_at_to]"),
        )
        updated = (
            time_param(args, "filter[updated_at_from]"),
            time_param(args, "filter[updated_at_to]"),
        )
        attachment_ids = set(list_param(args, "filter[attachment_id][]", "filter[attachment_id]"))
        due = choice_params(
            args,
            ("filter[due_date][]", "filter[due_date]"),
            ("past_and_today", "future", "missing_date"),
        )
        matched = bool_param(args, "filter[matched_transactions]")
        no_credit_notes = bool_param(args, "filter[exclude_credit_notes]")
        document_types = choice_params(
            args,
            ("filter[document_type][]", "filter[document_type]"),
            ("duplicates", "non_financial_documents"),
        )
        issue_from = time_param(args, "filter[issue_date_from]")
        today_date = datetime.fromtimestamp(self.store.now(), tz=UTC).date()
        today = today_date.isoformat()
        paid_on = _friendly_ranges(args, "filter[payment_date]", today_date)
        issued_on = _friendly_ranges(args, "filter[issue_date]", today_date)
        payable = _amount_conditions(args)
        approvers = set(list_param(args, "filter[approver_id][]", "filter[approver_id]"))
        missing_data = bool_param(args, "filter[missing_data]")
        query = (args.get("query") or "").strip().lower()
        fields = list_param(args, "query_fields[]", "query_fields") or [
            "supplier_name",
            "invoice_number",
            "file_name",
        ]
        tests = [
            lambda i: not statuses or i["status"] in statuses,
            lambda i: in_range(i.get("created_at"), *created),
            lambda i: in_range(i.get("updated_at"), *updated),
            lambda i: not attachment_ids or i.get("attachment_id") in attachment_ids,
            lambda i: not due or _due_bucket(i, today) in due,
            lambda i: matched is None or bool(_matched_ids(i)) == matched,
            lambda i: not no_credit_notes or not i.get("is_credit_note"),
            lambda i: "duplicates" not in document_types or bool(i.get("has_duplicates")),
            lambda i: issue_from is None or in_range(i.get("issue_date"), issue_from, None),
            lambda i: _on_any(i.get("payment_date"), paid_on),
            lambda i: _on_any(i.get("issue_date"), issued_on),
            lambda i: all(_amount_holds(i, condition) for condition in payable),
            lambda i: not approvers or bool(approvers & _approver_ids(i)),
            lambda i: missing_data is None or _missing_data(i) == missing_data,
            lambda i: not query or any(query in str(i.get(f) or "").lower() for f in fields),
        ]
        return tests

    def get(self, invoice_id: str) -> Response:
        """GET /v2/supplier_invoices/{id}."""
        self.apply_due_analyses()
        with self.store.lock:
            return json_response({"supplier_invoice": self._render(self._find(invoice_id))})

    def _find(self, invoice_id: str) -> dict:
        """The stored invoice, or a 404."""
        invoice = self.store.state["supplier_invoices"].get(invoice_id)
        if invoice is None:
            raise ApiError(404, "not_found", "Supplier invoice not found.")
        return invoice

    def _render(self, invoice: dict, sha_counts: Counter | None = None, *, deep=True) -> dict:
        """The public object: a copy, with duplicate flags Qonto adds after analysis (§4.4)."""
        rendered = copy.deepcopy(invoice) if deep else dict(invoice)
        private = self.store.state["invoice_private"].get(invoice["id"], {})
        if private.get("analysed") and private.get("sha256"):
            counts = sha_counts if sha_counts is not None else self._sha_counts()
            rendered["has_duplicates"] = counts[private["sha256"]] > 1
        return rendered

    def _sha_counts(self) -> Counter:
        """How many invoices each uploaded file hash has."""
        privates = self.store.state["invoice_private"].values()
        return Counter(p["sha256"] for p in privates if p.get("sha256"))

    # --- status changes ----------------------------------------------------------------------

    def mark_as_paid(self, request: Request, invoice_id: str) -> Response:
        """POST .../mark_as_paid; idempotent on paid, refused from scheduled (§4.1)."""
        body = read_json_body(request)
        payment_date = _payment_date(body, self.store.now())
        with self.store.lock:
            invoice = self._find(invoice_id)
            if invoice["status"] == "paid":
                return json_response(self._render(invoice))
            if invoice["status"] not in PAYABLE_FROM:
                raise _invalid_transition(invoice["status"], "paid")
            self._private(invoice_id)["previous_status"] = invoice["status"]
            invoice.update(status="paid", payment_date=payment_date)
            invoice["updated_at"] = self.store.now_iso()
            self.store.save()
            # §4.1: the documented example returns the object without a wrapper.
            return json_response(self._render(invoice))

    def unmark_as_paid(self, invoice_id: str) -> Response:
        """POST .../unmark_as_paid: back to the status before payment."""
        with self.store.lock:
            invoice = self._find(invoice_id)
            if invoice["status"] != "paid":
                raise _invalid_transition(invoice["status"], "unpaid")
            private = self._private(invoice_id)
            invoice["status"] = private.get("previous_status") or "to_pay"
            private["previous_status"] = None
            invoice["payment_date"] = None
            invoice["updated_at"] = self.store.now_iso()
            self.store.save()
            return json_response(self._render(invoice))

    def reject(self, request: Request, invoice_id: str) -> Response:
        """POST .../reject with a `declined_note`; a second reject is a 400 (§4.1)."""
        body = read_json_body(request)
        nested = body.get("supplier_invoice")
        note = body.get("declined_note") or (nested or {}).get("declined_note")
        if note is not None and not isinstance(note, str):
            raise ApiError(
                400, "invalid", "declined_note must be a string.", pointer="/declined_note"
            )
        with self.store.lock:
            invoice = self._find(invoice_id)
            if invoice["status"] not in REJECTABLE_FROM:
                raise _invalid_transition(invoice["status"], "rejected")
            invoice.update(status="rejected", declined_note=note)
            invoice["updated_at"] = self.store.now_iso()
            self.store.save()
            return json_response(self._render(invoice))

    def _private(self, invoice_id: str) -> dict:
        """Sandbox-only bookkeeping for an invoice (created for seeded ones on demand)."""
        privates = self.store.state["invoice_private"]
        return privates.setdefault(invoice_id, {"by_upload": False, "analysed": True})

    # --- control API views -------------------------------------------------------------------

    def uploads(self) -> list[dict]:
        """Invoices created by upload, with file hash and idempotency key (for tests)."""
        self.apply_due_analyses()
        with self.store.lock:
            rows = []
            for invoice_id, private in self.store.state["invoice_private"].items():
                invoice = self.store.state["supplier_invoices"].get(invoice_id)
                if invoice is None or not private.get("by_upload"):
                    continue
                rows.append(
                    {
                        "id": invoice_id,
                        "file_name": invoice.get("file_name"),
                        "sha256": private.get("sha256"),
                        "idempotency_key": private.get("idempotency_key"),
                        "attachment_id": invoice.get("attachment_id"),
                        "status": invoice.get("status"),
                        "source": invoice.get("source"),
                        "created_at": invoice.get("created_at"),
                        "analyzed_at": invoice.get("analyzed_at"),
                        "supplier_name": invoice.get("supplier_name"),
                        "meta": invoice.get("meta"),
                    }
                )
            return rows

    def counts(self) -> dict:
        """Totals for `/_sandbox/state`."""
        self.apply_due_analyses()
        with self.store.lock:
            counts = self._sha_counts()
            privates = self.store.state["invoice_private"].values()
            return {
                "supplier_invoices": len(self.store.state["supplier_invoices"]),
                "created_by_upload": sum(1 for p in privates if p.get("by_upload")),
                # Uploads whose analysis found no supplier, or Well's old placeholder (issue 17).
                "without_supplier": sum(
                    1
                    for invoice_id, p in self.store.state["invoice_private"].items()
                    if p.get("by_upload")
                    and p.get("analysed")
                    and _no_supplier(self.store.state["supplier_invoices"].get(invoice_id))
                ),
                "duplicates": sum(n for n in counts.values() if n > 1),
                "idempotency_keys": len(self.store.state["idempotency"]),
            }


def new_invoice_object(
    *,
    invoice_id: str,
    organization_id: str,
    attachment: dict,
    source: str,
    meta: dict,
    now_iso: str,
) -> dict:
    """A freshly uploaded invoice with every §4.5 field, extracted ones still null."""
    return {
        "id": invoice_id,
        "organization_id": organization_id,
        "status": "to_review",
        "created_at": now_iso,
        "updated_at": now_iso,
        "file_name": attachment["file_name"],
        "attachment_id": attachment["id"],
        "display_attachment_id": attachment["id"],
        "invoice_number": None,
        "supplier_name": None,
        "supplier_id": None,
        "issuer_name": None,
        "description": None,
        "vat_number": None,
        "tin": None,
        "iban": None,
        "total_amount": None,
        "total_amount_excluding_taxes": None,
        "total_tax_amount": None,
        "payable_amount": None,
        "total_amount_credit_notes": None,
        "taxes": [],
        "issue_date": None,
        "due_date": None,
        "payment_date": None,
        "scheduled_date": None,
        "source_type": "direct_upload",
        "source": source,
        "analyzed_at": None,
        "initiator_id": None,
        "declined_note": None,
        "matched_transactions_ids": [],
        "matched_transactions": [],
        "transfer_ids": [],
        "request_transfer": None,
        "is_einvoice": False,
        "e_invoice_type": None,
        "einvoicing_lifecycle_events": [],
        "has_discrepancies": False,
        "has_duplicates": False,
        "is_attachment_invoice": True,
        "is_attachment_non_financial": False,
        "attachment_category": None,
        "is_credit_note": False,
        "related_invoices": [],
        "has_suggested_credit_notes": False,
        "self_invoice_id": None,
        "meta": {
            "integration_type": None,
            "connector": None,
            "accounting_recorded_at": None,
            "accounting_recorded_source": None,
            **meta,
        },
        "available_actions": {"archive": True, "pay": True, "reject": True, "reasons": {}},
        "approval_workflow": None,
    }


def _no_supplier(invoice: dict | None) -> bool:
    name = str((invoice or {}).get("supplier_name") or "").strip()
    return not name or name.lower() == "unknown supplier"


def _bulk_scalars(scalars: dict[str, str]) -> tuple[str, dict]:
    """Validate `source`, `meta` (a JSON string) and `skip_attachment_matcher` (§4.2)."""
    source = scalars.get("source") or "pay_by_invoice"
    if source not in SOURCES:
        raise ApiError(
            400, "invalid", f"source must be one of {', '.join(SOURCES)}.", pointer="/source"
        )
    meta: dict = {}
    if scalars.get("meta"):
        try:
            meta = json.loads(scalars["meta"])
        except ValueError as exc:
            raise ApiError(
                400, "invalid", "meta must be a JSON object string.", pointer="/meta"
            ) from exc
        if not isinstance(meta, dict):
            raise ApiError(400, "invalid", "meta must be a JSON object string.", pointer="/meta")
    skip = scalars.get("skip_attachment_matcher", "false").strip().lower()
    if skip not in ("true", "false", "1", "0", ""):
        detail = "skip_attachment_matcher must be true or false."
        raise ApiError(400, "invalid", detail, pointer="/skip_attachment_matcher")
    return source, meta


def _file_problem(part: Part) -> str | None:
    """Why an uploaded file is refused: size, or bytes that are not the claimed type."""
    if not part.is_file:
        return "file must be sent as a file part with a filename."
    size = len(part.data)
    if size == 0:
        return "file is empty."
    if size > MAX_FILE_BYTES:
        return "file is larger than 10 MB."
    sniffed = sniff_content_type(bytes(part.data[:2048]))
    if sniffed is None:
        return "file must be a PDF, JPEG or PNG."
    declared = (part.content_type or "").split(";")[0].strip().lower()
    if declared in ACCEPTED_TYPES and ACCEPTED_TYPES[declared] != sniffed:
        return f"file content is {sniffed}, not the declared {declared}."
    return None


def _file_name(part: Part, content_type: str) -> str:
    """A safe base name for the stored file."""
    name = os.path.basename((part.filename or "").replace("\\", "/")).strip()
    name = "".join(ch for ch in name if ch.isprintable())[:255]
    if name:
        return name
    return "document." + {"application/pdf": "pdf", "image/png": "png"}.get(content_type, "jpg")


def _drain(request: Request, length: int) -> None:
    """Read an oversized body so the client sees our answer instead of a reset connection."""
    if length > MAX_DRAIN_BYTES:
        return
    while request.stream.read(64 * 1024):
        pass


def _payment_date(body: dict, now: float) -> str:
    """`{"supplier_invoice": {"payment_date": "YYYY-MM-DD"}}`; today when absent."""
    nested = body.get("supplier_invoice") or {}
    if not isinstance(nested, dict):
        raise ApiError(
            400, "invalid", "supplier_invoice must be an object.", pointer="/supplier_invoice"
        )
    raw = nested.get("payment_date") or body.get("payment_date")
    if raw is None:
        return datetime.fromtimestamp(now, tz=UTC).date().isoformat()
    try:
        return datetime.strptime(str(raw), "%Y-%m-%d").date().isoformat()
    except ValueError as exc:
        pointer = "/supplier_invoice/payment_date"
        raise ApiError(400, "invalid", "payment_date must be YYYY-MM-DD.", pointer=pointer) from exc


def _invalid_transition(current: str, target: str) -> ApiError:
    return ApiError(
        400, "invalid_transition", f"Cannot move a {current} supplier invoice to {target}."
    )


def _matched_ids(invoice: dict) -> list:
    """Matched transaction ids from either shape of §4.5."""
    ids = invoice.get("matched_transactions_ids")
    if ids:
        return list(ids)
    matched = invoice.get("matched_transactions") or []
    return [m.get("transaction_id") if isinstance(m, dict) else m for m in matched]


def _due_bucket(invoice: dict, today: str) -> str:
    """`filter[due_date]` bucket of an invoice, against the sandbox's today."""
    due = invoice.get("due_date")
    if not due:
        return "missing_date"
    return "past_and_today" if due <= today else "future"


_FRIENDLY_RANGES = ("today", "yesterday", "this_week", "past_week", "this_month", "past_month")
_REQUIRED_DATA = ("supplier_name", "invoice_number", "total_amount", "issue_date")


def _friendly_ranges(args, name: str, today: date) -> list[tuple[date, date]]:
    """`filter[payment_date]=this_week` and friends (§4.6) as inclusive date ranges."""
    ranges = []
    for value in choice_params(args, (name, f"{name}[]"), _FRIENDLY_RANGES):
        monday = today - timedelta(days=today.weekday())
        first = today.replace(day=1)
        last_month_end = first - timedelta(days=1)
        ranges.append(
            {
                "today": (today, today),
                "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
                "this_week": (monday, today),
                "past_week": (monday - timedelta(days=7), monday - timedelta(days=1)),
                "this_month": (first, today),
                "past_month": (last_month_end.replace(day=1), last_month_end),
            }[value]
        )
    return ranges


def _on_any(value, ranges: list[tuple[date, date]]) -> bool:
    if not ranges:
        return True
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        return False
    return any(start <= day <= end for start, end in ranges)


def _amount_conditions(args) -> list[tuple[str, Decimal, str]]:
    """`filter[payable_amount]=lte:100.00:EUR` (repeatable); anything else is a 422."""
    conditions = []
    for raw in list_param(args, "filter[payable_amount]", "filter[payable_amount][]"):
        op, _, rest = raw.partition(":")
        amount, _, currency = rest.partition(":")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            value = None
        if op not in ("lt", "lte", "gt", "gte", "eq") or value is None or len(currency) != 3:
            raise ApiError(
                422,
                "invalid",
                "filter[payable_amount] looks like lte:100.00:EUR.",
                parameter="filter[payable_amount]",
            )
        conditions.append((op, value, currency.upper()))
    return conditions


def _amount_holds(invoice: dict, condition: tuple[str, Decimal, str]) -> bool:
    op, limit, currency = condition
    money = invoice.get("payable_amount") or invoice.get("total_amount") or {}
    try:
        value = Decimal(str(money.get("value")))
    except (InvalidOperation, AttributeError):
        return False
    if money.get("currency") != currency:
        return False
    return {
        "lt": value < limit,
        "lte": value <= limit,
        "gt": value > limit,
        "gte": value >= limit,
        "eq": value == limit,
    }[op]


def _approver_ids(invoice: dict) -> set[str]:
    # The approval workflow's shape is undocumented (§4.5); approvers as a list of IDs.
    workflow = invoice.get("approval_workflow") or {}
    return (
        {str(a) for a in workflow.get("approver_ids", [])} if isinstance(workflow, dict) else set()
    )


def _missing_data(invoice: dict) -> bool:
    return any(not invoice.get(name) for name in _REQUIRED_DATA)
