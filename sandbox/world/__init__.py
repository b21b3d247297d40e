"""A deterministic, seeded "world": one small French company as QuickBooks and Qonto see it.

`build_world(seed=1, bills=200, now=None)` returns a `World` with
- `quickbooks`: {"realm_id", "entities": {EntityName: [records as QBO returns them]},
  "documents": {attachable_id: spec for `documents.render_pdf`}} → `QuickBooksSandbox.seed`;
- `qonto`: {"organization", "supplier_invoices", "transactions"} shaped as Qonto's API returns
  them (qonto-api.md §4.5, §5.1, §5.3) → `QontoSandbox.seed(**world.qonto)`;
- `qonto_documents`: {qonto attachment_id: document spec} for supplier invoices already in Qonto;
- `truth`: which Qonto transaction(s) / supplier invoice correspond to which QBO record, and
  `vendor_truth`: each vendor's unmasked VAT number and legal name (QBO masks TaxIdentifier, §4.3).

Same seed and same `now` give the same world. Dates are relative to `now` (default: the current
minute) so that recent changes fall inside QBO's 30-day CDC window (§3.6).
PDFs are not rendered here: the sandboxes render a spec when a file is downloaded.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sandbox.world.qonto import QontoBank
from sandbox.world.quickbooks import QuickBooksBooks


@dataclass
class World:
    """Everything both sandboxes serve, plus the truth the matching team scores against."""

    seed: int
    now: datetime
    quickbooks: dict
    qonto: dict
    qonto_documents: dict = field(default_factory=dict)
    truth: list[dict] = field(default_factory=list)
    vendor_truth: dict[str, dict] = field(default_factory=dict)


def build_world(*, seed: int = 1, bills: int = 200, now: datetime | None = None) -> World:
    """Generate the company's books and bank for `seed` with `bills` supplier bills."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    return _Builder(seed=seed, bills=max(0, int(bills)), now=moment).build()


class _Builder(QuickBooksBooks, QontoBank):
    """Builds one world; every random choice goes through `self.rng` in a fixed order."""

    def __init__(self, *, seed: int, bills: int, now: datetime) -> None:
        self.seed = seed
        self.bills_wanted = bills
        self.now = now
        self.rng = random.Random(f"well-world-{seed}")
        self.next_id = 1
        self.entities: dict[str, list[dict]] = {}
        self.documents: dict[str, dict] = {}
        self.qonto_documents: dict[str, dict] = {}
        self.transactions: list[dict] = []
        self.supplier_invoices: list[dict] = []
        self.truth: list[dict] = []
        self.vendor_truth: dict[str, dict] = {}
        self.tx_counter = 1000

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # ---- build ---------------------------------------------------------------------------
    def build(self) -> World:
        self.realm_id = str(9130_0000_0000_0000 + self.rng.randint(1, 10**12))
        self.company()
        self.tax()
        self.accounts()
        self.items()
        self.vendors()
        self.customers()
        self.bills()
        self.vendor_credits()
        self.purchase_orders()
        self.purchases()
        self.sales()
        self.qonto_org()
        for records in self.entities.values():
            records.sort(key=lambda record: int(record["Id"]) if record["Id"].isdigit() else 0)
        quickbooks = {
            "realm_id": self.realm_id,
            "entities": self.entities,
            "documents": self.documents,
        }
        qonto = {
            "organization": self.organization,
            "supplier_invoices": self.supplier_invoices,
            "transactions": self.transactions,
        }
        return World(
            seed=self.seed,
            now=self.now,
            quickbooks=quickbooks,
            qonto=qonto,
            qonto_documents=self.qonto_documents,
            truth=self.truth,
            vendor_truth=self.vendor_truth,
        )
