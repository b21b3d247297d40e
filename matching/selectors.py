"""Reads that feed the matching core from the database: one bounded set of queries per batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.db.models import Count, Q

from connectors.qonto.models import Posting, PostingAction, PostingState, QontoEntry
from connectors.quickbooks.models import DOCUMENT_KINDS, SourceRecord
from matching.core import CREATE, LINK, Label, Model, Policy, load_prior, normalise
from matching.core.types import (
    SUPPLIER_INVOICE,
    TRANSACTION,
    Account,
    Entry,
    HistoryLink,
    Record,
    Vendor,
)
from matching.models import Proposal, VendorRule, WorkspaceModel
from well.models import Workspace

# The QuickBooks kinds the engine matches against Qonto entries: those that become a document.
MATCHED_KINDS = DOCUMENT_KINDS
OPEN_STATES = ("pulled", "proposed", "in_review", "refused", "waiting_payment")
# Entry date minus record date the blocking rules can reach (matching.core.blocking windows).
WINDOW_BEFORE = timedelta(days=65)
WINDOW_AFTER = timedelta(days=95)
PARTY_WINDOW = timedelta(days=45)
REFRESH_ENTRIES_LIMIT = 200
# History of the batch's own vendors: the most recent links are enough to learn a profile.
VENDOR_HISTORY_LIMIT = 3000
# What a fit reads at most: the most recent past links, reviewer answers and open records.
FIT_HISTORY_LIMIT = 20_000
FIT_OPEN_LIMIT = 10_000
POSTED_ACTIONS = (PostingAction.LINK, PostingAction.UPLOAD, PostingAction.CREDIT_NOTE)
# Matching reads the columns the syncs typed (each provider's payload is parsed once, at sync);
# of a QuickBooks payload only what no column holds (normalise.record_extras).
ENTRY_FIELDS = (
    "id",
    "kind",
    "qonto_id",
    "amount",
    "currency",
    "local_amount",
    "local_currency",
    "net_amount",
    "date",
    "counterparty",
    "label",
    "reference",
    "invoice_number",
    "vat_number",
    "status",
    "is_credit_note",
    "matched_ids",
    "file_name",
)
RECORD_FIELDS = (
    "id",
    "entity_type",
    "qbo_id",
    "payload",
    "total_amount",
    "currency",
    "issue_date",
    "due_date",
    "invoice_number",
    "vendor_qbo_id",
    "supplier_name",
)
# Qonto entries that are no candidate: refused or undone payments, rejected invoices.
UNUSABLE_STATUSES = frozenset({"declined", "reversed", "rejected", "discarded"})


def workspace_models_stale(*, now) -> list[int]:
    """Workspaces whose model is a week old, or whose history grew a tenth since it was fitted."""
    week_ago = now - timedelta(days=7)
    links = dict(
        Posting.objects.filter(action__in=POSTED_ACTIONS)
        .exclude(state=PostingState.FAILED)
        .exclude(qonto_id="")
        .values_list("workspace_id")
        .annotate(count=Count("id"))
    )
    return [
        workspace_id
        for workspace_id, fitted_at, fitted_links in WorkspaceModel.objects.values_list(
            "workspace_id", "fitted_at", "history_links"
        )
        if fitted_at is None
        or fitted_at < week_ago
        or links.get(workspace_id, 0) > fitted_links * 1.1 + 20
    ]


def workspace_model_get(*, workspace: Workspace | int) -> Model | None:
    """The model fitted on the workspace's own books, None before its first fit."""
    row = WorkspaceModel.objects.for_workspace(workspace).only("data").first()
    if row is None or not (row.data or {}).get("groups"):
        return None
    return Model.from_dict(row.data)


def _preferences(workspace_id: int) -> dict:
    payload = (
        SourceRecord.objects.for_workspace(workspace_id)
        .filter(entity_type="Preferences")
        .values_list("payload", flat=True)
        .first()
    )
    return payload if isinstance(payload, dict) else {}


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def workspace_policy(*, workspace: Workspace) -> Policy:
    """The workspace's thresholds, home currency and book close date (QuickBooks Preferences)."""
    prefs = _preferences(workspace.pk)
    home = str(_dig(prefs, "CurrencyPrefs", "HomeCurrency", "value") or "").upper()
    closed = normalise.day(_dig(prefs, "AccountingInfoPrefs", "BookCloseDate"))
    return Policy(
        auto_threshold=workspace.auto_threshold,
        review_threshold=workspace.review_threshold,
        home_currency=home if len(home) == 3 else "EUR",
        closed_until=closed,
    )


def vendor_rules_for(*, workspace: Workspace | int, vendor_ids) -> dict[str, VendorRule]:
    ids = [v for v in set(vendor_ids) if v]
    if not ids:
        return {}
    rows = VendorRule.objects.for_workspace(workspace).filter(vendor_qbo_id__in=ids)
    return {rule.vendor_qbo_id: rule for rule in rows}


def _cents(value: Decimal | None) -> int | None:
    return normalise.cents(value) if value is not None else None


def _money_out(value: Decimal | None) -> int | None:
    """A transaction column (a debit negative) as matching signs money: money out positive."""
    cents = _cents(value)
    return -cents if cents is not None else None


def entry_from_row(row: QontoEntry) -> Entry | None:
    """The core's view of a stored Qonto entry, from the columns the Qonto sync typed."""
    if row.status in UNUSABLE_STATUSES:
        return None
    if row.kind == SUPPLIER_INVOICE:
        return normalise.entry_from_fields(
            SUPPLIER_INVOICE,
            row.qonto_id,
            raw_name=row.counterparty,
            amount_cents=_cents(row.amount),
            currency_code=row.currency,
            entry_date=row.date,
            reference_text=row.invoice_number,
            label=row.label,
            texts=(row.invoice_number, row.label, row.file_name),
            tax_id_text=row.vat_number,
            net_amount_cents=_cents(row.net_amount),
            linked_ids=tuple(str(i) for i in row.matched_ids or ()),
            is_credit_note=row.is_credit_note,
        )
    return normalise.entry_from_fields(
        TRANSACTION,
        row.qonto_id,
        raw_name=row.counterparty,
        amount_cents=_money_out(row.amount),
        currency_code=row.currency,
        entry_date=row.date,
        reference_text=row.reference,
        label=row.label,
        texts=(row.label, row.reference),
        local_amount_cents=_money_out(row.local_amount),
        local_currency=row.local_currency,
    )


def record_from_row(row: SourceRecord, home_currency: str) -> Record:
    """The core's view of a stored QuickBooks record, from the columns the sync typed (and,
    of its payload, only what matching reads beyond the mapped fields)."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    extras = normalise.record_extras(row.entity_type, payload)
    return normalise.record_from_fields(
        row.entity_type,
        row.qbo_id,
        vendor_id=row.vendor_qbo_id,
        vendor_name=row.supplier_name,
        amount_cents=_cents(row.total_amount),
        currency_code=row.currency,
        txn_date=row.issue_date,
        due_date=row.due_date,
        doc_number=row.invoice_number or extras.purchase_number,
        extras=extras,
        home_currency=home_currency,
    )


def _posted_kind(posting_target_kind: str) -> str:
    return TRANSACTION if posting_target_kind == "transaction" else SUPPLIER_INVOICE


@dataclass
class Inputs:
    """Everything the core needs for one batch of records of one workspace."""

    policy: Policy
    model: Model
    vendors: list[Vendor] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    history: list[HistoryLink] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    incoming: list[Record] = field(default_factory=list)
    rows: dict[tuple[str, str], QontoEntry] = field(default_factory=dict)
    rules: dict[str, VendorRule] = field(default_factory=dict)


def matching_inputs(*, workspace: Workspace, records: list[SourceRecord]) -> Inputs:
    """Load vendors, accounts, the history graph and the candidate entries for one batch.

    A fixed number of queries whatever the batch size; candidates are bounded by the blocking
    windows around the batch's dates, its amounts and its invoice numbers.
    """
    policy = workspace_policy(workspace=workspace)
    model = workspace_model_get(workspace=workspace) or load_prior()
    inputs = Inputs(policy=policy, model=model)
    wid = workspace.pk
    inputs.incoming = [record_from_row(r, policy.home_currency) for r in records]
    base = SourceRecord.objects.for_workspace(wid)
    inputs.vendors, inputs.accounts = _vendors_and_accounts(base)

    vendor_ids = {r.vendor_id for r in inputs.incoming if r.vendor_id}
    inputs.rules = vendor_rules_for(workspace=wid, vendor_ids=vendor_ids)
    if vendor_ids:
        orders = base.filter(
            entity_type="PurchaseOrder", deleted=False, vendor_qbo_id__in=vendor_ids
        ).values_list("vendor_qbo_id", "total_amount", "payload")
        inputs.policy.purchase_orders = tuple(
            (vendor_id, normalise.cents(total))
            for vendor_id, total, payload in orders
            if total is not None and (payload or {}).get("POStatus", "Open") == "Open"
        )

    # Candidate entries: the blocking windows around the batch, plus amount and number twins.
    days = [r.txn_date for r in inputs.incoming if r.txn_date]
    condition = Q(date__isnull=True)
    if days:
        condition |= Q(date__gte=min(days) - WINDOW_BEFORE, date__lte=max(days) + WINDOW_AFTER)
    amounts = {r.total_amount for r in records if r.total_amount is not None}
    amounts |= {-a for a in amounts}
    if amounts:
        condition |= Q(amount__in=amounts) | Q(local_amount__in=amounts)
    numbers = {r.invoice_number for r in records if r.invoice_number}
    if numbers:
        condition |= Q(invoice_number__in=numbers)
    entry_rows = list(QontoEntry.objects.for_workspace(wid).filter(condition).only(*ENTRY_FIELDS))

    # The history graph: records already linked or posted to a Qonto object, except this batch.
    batch_ids = [r.pk for r in records]
    postings = (
        Posting.objects.for_workspace(wid)
        .filter(action__in=POSTED_ACTIONS)
        .exclude(state=PostingState.FAILED)
        .exclude(qonto_id="")
        .exclude(record_id__in=batch_ids)
    )
    window_ids = [row.qonto_id for row in entry_rows]
    links = list(
        postings.filter(record__vendor_qbo_id__in=vendor_ids)
        .order_by("-created_at")
        .values_list("record_id", "target_kind", "qonto_id")[:VENDOR_HISTORY_LIMIT]
    )
    links += list(
        postings.filter(qonto_id__in=window_ids)
        .exclude(record__vendor_qbo_id__in=vendor_ids)
        .values_list("record_id", "target_kind", "qonto_id")
    )
    history_records = {
        row.pk: row for row in base.filter(pk__in={link[0] for link in links}).only(*RECORD_FIELDS)
    }
    known = {(row.kind, row.qonto_id) for row in entry_rows}
    missing = Q()
    for _, target_kind, qonto_id in links:
        if (_posted_kind(target_kind), qonto_id) not in known:
            missing |= Q(kind=_posted_kind(target_kind), qonto_id=qonto_id)
    if missing:
        entry_rows += list(
            QontoEntry.objects.for_workspace(wid).filter(missing).only(*ENTRY_FIELDS)
        )
    seen: set[tuple[str, str]] = set()
    for row in entry_rows:
        entry = entry_from_row(row)
        if entry is None or (entry.kind, entry.id) in seen:
            continue
        seen.add((entry.kind, entry.id))
        inputs.entries.append(entry)
        inputs.rows[(entry.kind, entry.id)] = row
    linked: set[tuple[int, str, str]] = set()
    for record_id, target_kind, qonto_id in links:
        key = (record_id, _posted_kind(target_kind), qonto_id)
        source = history_records.get(record_id)
        if source is None or key in linked:
            continue
        linked.add(key)
        inputs.history.append(
            HistoryLink(record_from_row(source, policy.home_currency), key[1], qonto_id)
        )
    return inputs


def _vendors_and_accounts(base) -> tuple[list[Vendor], list[Account]]:
    # The vendor's typed columns (its currency is no mapped field: read from the payload).
    vendors = [
        normalise.vendor_from_fields(
            qbo_id,
            display_name=name,
            company_name=legal_name,
            website=website,
            email=email,
            tax_identifier=tax_id,
            currency_code=normalise.currency((payload or {}).get("CurrencyRef")),
        )
        for qbo_id, name, legal_name, website, email, tax_id, payload in base.filter(
            entity_type="Vendor", deleted=False
        ).values_list(
            "qbo_id",
            "supplier_name",
            "supplier_legal_name",
            "supplier_website",
            "supplier_email",
            "supplier_tax_id",
            "payload",
        )
    ]
    accounts = [
        account
        for payload in base.filter(entity_type="Account", deleted=False).values_list(
            "payload", flat=True
        )
        if (account := normalise.account(payload)) is not None
    ]
    return vendors, accounts


class ReviewerAnswer(NamedTuple):
    """What a reviewer said a record is: a link to this Qonto entry, or a create.

    Plain data, given to the fit by review (which holds the decisions; matching sits below it).
    """

    record_id: int
    right_action: str  # LINK or CREATE
    target_kind: str | None  # the linked entry's kind and Qonto ID; None for a create
    qonto_id: str | None


@dataclass
class FittingInputs:
    """Everything a workspace's model is fitted on: its books, history and reviewers' answers."""

    vendors: list[Vendor]
    accounts: list[Account]
    history: list[HistoryLink]
    entries: list[Entry]
    open_records: list[Record]
    labels: list[Label]


def fitting_inputs(*, workspace: Workspace, answers: Sequence[ReviewerAnswer]) -> FittingInputs:
    """The workspace's whole books as the core reads them (a fixed number of queries).

    `answers` are its reviewers' answers, newest first: each about one of its records becomes a
    label, the newest about a record the one that counts.
    """
    policy = workspace_policy(workspace=workspace)
    wid = workspace.pk
    base = SourceRecord.objects.for_workspace(wid)
    vendors, accounts = _vendors_and_accounts(base)
    entries: list[Entry] = []
    for row in QontoEntry.objects.for_workspace(wid).only(*ENTRY_FIELDS).iterator(chunk_size=2000):
        entry = entry_from_row(row)
        if entry is not None:
            entries.append(entry)
    links = list(
        Posting.objects.for_workspace(wid)
        .filter(action__in=POSTED_ACTIONS)
        .exclude(state=PostingState.FAILED)
        .exclude(qonto_id="")
        .order_by("-created_at")
        .values_list("record_id", "target_kind", "qonto_id")[:FIT_HISTORY_LIMIT]
    )
    answers = list(answers[:FIT_HISTORY_LIMIT])
    wanted = {link[0] for link in links} | {answer.record_id for answer in answers}
    records = {
        row.pk: record_from_row(row, policy.home_currency)
        for row in base.filter(pk__in=wanted).only(*RECORD_FIELDS)
    }
    labels: dict[int, Label] = {}
    for answer in answers:
        # Records are read from this workspace only: an answer about another's is no label.
        record = records.get(answer.record_id)
        if record is None or answer.record_id in labels:
            continue  # the newest answer about a record is the one that counts
        if answer.right_action == CREATE:
            labels[answer.record_id] = Label(record, None)
        elif answer.right_action == LINK and answer.target_kind and answer.qonto_id:
            labels[answer.record_id] = Label(record, (answer.target_kind, answer.qonto_id))
    history: list[HistoryLink] = []
    seen: set[tuple[int, str, str]] = set()
    for record_id, target_kind, qonto_id in links:
        key = (record_id, _posted_kind(target_kind), qonto_id)
        if key in seen or record_id not in records:
            continue
        seen.add(key)
        history.append(HistoryLink(records[record_id], key[1], qonto_id))
    open_rows = (
        base.filter(entity_type__in=MATCHED_KINDS, state__in=OPEN_STATES, deleted=False)
        .order_by("-pk")
        .only(*RECORD_FIELDS)[:FIT_OPEN_LIMIT]
    )
    open_records = [record_from_row(row, policy.home_currency) for row in open_rows]
    return FittingInputs(vendors, accounts, history, entries, open_records, list(labels.values()))


def current_proposals_for(*, records: list[SourceRecord]) -> dict[int, Proposal]:
    """The current proposal of each record (one query)."""
    rows = Proposal.objects.filter(record__in=records, is_current=True).select_related("target")
    return {p.record_id: p for p in rows}


def records_for_entries(*, workspace: Workspace, entries: list[QontoEntry]) -> list[SourceRecord]:
    """Open records that the blocking rules could pair with one of these entries.

    Same amount (or within 3%) in the entry's window, same invoice number, or the entry's
    counterparty in the supplier name within 45 days: a few rows, not every open record.
    """
    if not entries:
        return []
    condition = Q()
    for entry in entries[:REFRESH_ENTRIES_LIMIT]:
        amounts = [abs(a) for a in (entry.amount, entry.local_amount) if a is not None]
        window = Q()
        if entry.date:
            window = Q(
                issue_date__gte=entry.date - WINDOW_AFTER,
                issue_date__lte=entry.date + WINDOW_BEFORE,
            )
        for amount in amounts:
            condition |= window & Q(
                total_amount__gte=amount * Decimal("0.97"),
                total_amount__lte=amount * Decimal("1.03"),
            )
        if entry.invoice_number:
            condition |= Q(invoice_number__iexact=entry.invoice_number)
        key = normalise.clean_name(entry.counterparty)[1] if entry.counterparty else ""
        if len(key) >= 3 and entry.date:
            condition |= Q(
                supplier_name__icontains=key,
                issue_date__gte=entry.date - PARTY_WINDOW,
                issue_date__lte=entry.date + PARTY_WINDOW,
            )
    if len(entries) > REFRESH_ENTRIES_LIMIT:
        # A large arrival (a first Qonto sync): every open record in the dates it covers.
        days = [e.date for e in entries if e.date]
        if days:
            condition |= Q(
                issue_date__gte=min(days) - WINDOW_AFTER, issue_date__lte=max(days) + WINDOW_BEFORE
            )
    if not condition:
        return []
    return list(
        SourceRecord.objects.for_workspace(workspace)
        .filter(entity_type__in=MATCHED_KINDS, state__in=OPEN_STATES, deleted=False)
        .filter(condition)
        .order_by("pk")
    )
