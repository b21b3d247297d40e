"""Plain dataclasses the matching core takes in and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

SUPPLIER_INVOICE = "supplier_invoice"
TRANSACTION = "transaction"
LINK = "link"
CREATE = "create"


@dataclass(slots=True)
class Record:
    """A QuickBooks record (Bill, Purchase, VendorCredit...) normalised once."""

    type: str
    id: str
    vendor_id: str = ""
    vendor_name: str = ""
    name: str = ""
    name_key: str = ""
    amount_cents: int | None = None  # signed: money out > 0, credits < 0
    currency: str = ""
    home_amount_cents: int | None = None
    txn_date: date | None = None
    due_date: date | None = None
    reference: str = ""
    raw_reference: str = ""
    memo: str = ""  # the record's own words (private note, line descriptions), cleaned
    account_ids: tuple[str, ...] = ()
    linked_po: bool = False
    problems: tuple[str, ...] = ()


@dataclass(slots=True)
class Entry:
    """A Qonto supplier invoice or transaction normalised once."""

    kind: str
    id: str
    name: str = ""
    name_key: str = ""
    raw_name: str = ""
    tax_id: str = ""
    amount_cents: int | None = None  # signed: money out > 0, credits < 0
    currency: str = ""
    local_amount_cents: int | None = None
    local_currency: str = ""
    net_amount_cents: int | None = None  # a supplier invoice's total before tax
    entry_date: date | None = None
    reference: str = ""
    label: str = ""  # the bank label or the invoice's description, cleaned like a memo
    text: str = ""  # every free text (label, reference, note), normalised, for containment
    linked_ids: tuple[str, ...] = ()
    is_credit_note: bool = False


@dataclass(slots=True)
class Vendor:
    """A QuickBooks vendor normalised once."""

    id: str
    display_name: str = ""
    company_name: str = ""
    name: str = ""
    name_key: str = ""
    legal_form: str = ""
    domain: str = ""
    tax_tail: str = ""  # QuickBooks masks TaxIdentifier: only the last characters are readable
    currency: str = ""


@dataclass(slots=True)
class Account:
    """A QuickBooks chart-of-accounts line."""

    id: str
    name: str = ""
    number: str = ""
    type: str = ""

    @property
    def label(self) -> str:
        """The account as accountants write it: its number, else its name."""
        return self.number or self.name or self.id


@dataclass(slots=True)
class HistoryLink:
    """A record linked in the past to a Qonto entry: the workspace's history graph."""

    record: Record
    target_kind: str
    target_id: str


@dataclass(slots=True)
class Policy:
    """Thresholds and bookkeeping rules of one workspace."""

    auto_threshold: float = 0.85
    review_threshold: float = 0.55
    home_currency: str = "EUR"
    closed_until: date | None = None  # books closed up to and including this day
    purchase_orders: tuple[tuple[str, int], ...] = ()  # (vendor id, amount cents) of open POs


@dataclass(slots=True)
class Target:
    """A Qonto entry a record may be linked to."""

    type: str
    id: str


@dataclass(slots=True)
class Reason:
    """One signal's contribution to a decision, in accountant words.

    `level` and `params` say the same as `detail` in data, so that pages can word it in the
    reader's language.
    """

    signal: str
    weight: float
    detail: str
    level: str = ""
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Alternative:
    """A ranked runner-up action for the review queue."""

    action: str
    target: Target | None
    confidence: float


@dataclass(slots=True)
class Counterparty:
    """Enrichment of the record's counterparty, each field with its provenance."""

    legal_entity: str | None = None
    tax_id: str | None = None
    domain: str | None = None
    ledger_account: str | None = None
    provenance: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Decision:
    """The proposed action for one record, its calibrated confidence and why."""

    type: str
    id: str
    action: str
    target: Target | None
    confidence: float
    alternatives: list[Alternative] = field(default_factory=list)
    counterparty: Counterparty = field(default_factory=Counterparty)
    reasons: list[Reason] = field(default_factory=list)
    auto: bool = False
    gates_failed: list[str] = field(default_factory=list)
    # Several options about as likely, each a real candidate: a person picks, whatever the
    # confidence (review, not refused).
    ambiguous: bool = False
    features: dict[str, float] = field(default_factory=dict)
    # Comparison vectors (signal -> level) of every candidate, for feedback.
    comparisons: dict[str, dict[str, str]] = field(default_factory=dict)
    vendor_id: str = ""
    model_version: str = ""


@dataclass(slots=True)
class LabelledDecision:
    """A past decision with the action a reviewer said was right."""

    decision: Decision
    right_action: str
    right_target: Target | None = None
