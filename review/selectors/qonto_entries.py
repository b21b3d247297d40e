"""The Qonto entry picker of the record page (pin and override): the workspace's Qonto entries,
searched by amount or reference, each with the record that already holds it, if any.

Two queries per page of results whatever its length: the entries, then the postings holding
them (with their records). Tenant-scoped: another workspace's entry is never listed, and
looking one up by ID answers with an error that says so.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db.models import Q
from django.utils.translation import gettext as _

from connectors.qonto.models import PAYMENT_ACTIONS, Posting, PostingState, QontoEntry
from connectors.quickbooks.models import SourceRecord
from well.models import Workspace

PAGE_SIZE = 20
_SPACES = re.compile(r"[\s\u00a0\u202f']")
_AMOUNT = re.compile(r"^[+-]?\d+(?:[.,]\d{1,4})?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:([.,])\d{3})+(?:(?!\1)[.,]\d{1,4})?$")


class EntryNotFound(LookupError):
    """The ID names no Qonto entry of this workspace (another tenant's, or none at all)."""


def amount_parse(text: str) -> Decimal | None:
    """An amount as people type it: "65,99", "65.99", "1 234,56", "1,234.56", "€65.99";
    None when the text is not an amount (it is then searched as a reference)."""
    value = _SPACES.sub("", (text or "").strip()).strip("€$£").upper()
    value = value.removesuffix("EUR").removeprefix("EUR")
    if not value:
        return None
    if _GROUPED.match(value):
        separator = _GROUPED.match(value).group(1)
        value = value.replace(separator, "")
    elif not _AMOUNT.match(value):
        return None
    try:
        return Decimal(value.replace(",", ".")).copy_abs()
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class EntryChoice:
    """One Qonto entry as the picker shows it; `held_by` is the record already linked to it."""

    entry: QontoEntry
    held_by: SourceRecord | None = None

    @property
    def selectable(self) -> bool:
        return self.held_by is None


@dataclass
class EntryPicker:
    query: str
    amount: Decimal | None
    page: int
    has_next: bool
    choices: list[EntryChoice] = field(default_factory=list)

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def entries_holders(*, workspace: Workspace | int, qonto_ids: list[str]) -> dict[str, SourceRecord]:
    """The record holding each of these Qonto entries: a live (not failed) link or upload.

    Payment postings (mark or unmark paid) act on an invoice another record holds; they
    never hold it themselves.
    """
    if not qonto_ids:
        return {}
    postings = (
        Posting.objects.for_workspace(workspace)
        .filter(qonto_id__in=qonto_ids)
        .exclude(action__in=PAYMENT_ACTIONS)
        .exclude(state=PostingState.FAILED)
        .select_related("record")
        .order_by("created_at")
        .only("qonto_id", "record__id", "record__entity_type", "record__qbo_id")
    )
    holders: dict[str, SourceRecord] = {}
    for posting in postings:
        holders.setdefault(posting.qonto_id, posting.record)
    return holders


def qonto_entries_pick(
    *, workspace: Workspace | int, query: str = "", page: int = 1, page_size: int = PAGE_SIZE
) -> EntryPicker:
    """One page of the workspace's Qonto entries matching `query`: an amount (either sign,
    the entry's or its local amount) or a piece of its invoice number, reference, label,
    vendor or Qonto ID; newest first."""
    query = (query or "").strip()[:100]
    page = max(1, page)
    amount = amount_parse(query)
    entries = QontoEntry.objects.for_workspace(workspace)
    if query:
        condition = (
            Q(invoice_number__icontains=query)
            | Q(reference__icontains=query)
            | Q(label__icontains=query)
            | Q(counterparty__icontains=query)
            | Q(qonto_id=query)
        )
        if amount is not None:
            condition |= Q(amount__in=(amount, -amount)) | Q(local_amount__in=(amount, -amount))
        entries = entries.filter(condition)
    start = (page - 1) * page_size
    rows = list(entries.order_by("-date", "-pulled_at", "id")[start : start + page_size + 1])
    holders = entries_holders(workspace=workspace, qonto_ids=[e.qonto_id for e in rows])
    return EntryPicker(
        query=query,
        amount=amount,
        page=page,
        has_next=len(rows) > page_size,
        choices=[EntryChoice(entry=e, held_by=holders.get(e.qonto_id)) for e in rows[:page_size]],
    )


def qonto_entry_choice_get(*, workspace: Workspace | int, key: str) -> EntryChoice:
    """The entry picked (our ID, or Qonto's), with its holder; EntryNotFound otherwise."""
    key = (key or "").strip()
    entries = QontoEntry.objects.for_workspace(workspace)
    found = None
    if key:
        try:
            found = entries.filter(pk=uuid.UUID(key)).first()
        except ValueError:
            found = None
        found = found or entries.filter(qonto_id=key).order_by("kind").first()
    if found is None:
        raise EntryNotFound(
            _("This Qonto entry is not one of this workspace's: choose one from the list.")
        )
    holders = entries_holders(workspace=workspace, qonto_ids=[found.qonto_id])
    return EntryChoice(entry=found, held_by=holders.get(found.qonto_id))
