"""Small builders of unsaved core inputs for the matching tests."""

from __future__ import annotations

from datetime import date

from matching.core import normalise
from matching.core.types import SUPPLIER_INVOICE, TRANSACTION, Entry, Record, Vendor


def record(**overrides) -> Record:
    """A plain Bill of 120.00 EUR from vendor 1 on 2025-01-10."""
    name, key, _ = normalise.clean_name(overrides.pop("vendor_name", "Algolia SAS"))
    values = dict(
        type="Bill",
        id="b1",
        vendor_id="1",
        vendor_name="Algolia SAS",
        name=name,
        name_key=key,
        amount_cents=12000,
        currency="EUR",
        home_amount_cents=12000,
        txn_date=date(2025, 1, 10),
        due_date=date(2025, 2, 9),
        reference="inv42",
        raw_reference="INV-42",
    )
    values.update(overrides)
    return Record(**values)


def entry(kind: str = TRANSACTION, **overrides) -> Entry:
    """A Qonto entry that matches `record()` on every signal unless told otherwise."""
    raw = overrides.pop("raw_name", "PRLV SEPA ALGOLIA SAS")
    name, key, _ = normalise.clean_name(raw)
    values = dict(
        kind=kind,
        id="e1",
        name=name,
        name_key=key,
        raw_name=raw,
        amount_cents=12000,
        currency="EUR",
        entry_date=date(2025, 1, 10),
        reference="",
        label=normalise.clean_text(raw),
        text=normalise.squash(raw),
    )
    values.update(overrides)
    return Entry(**values)


def invoice(**overrides) -> Entry:
    """A Qonto supplier invoice matching `record()`."""
    overrides.setdefault("raw_name", "Algolia SAS")
    overrides.setdefault("reference", "inv42")
    return entry(SUPPLIER_INVOICE, **overrides)


def vendor(**overrides) -> Vendor:
    """Vendor 1, Algolia."""
    values = dict(
        id="1",
        display_name="Algolia",
        company_name="Algolia SAS",
        name="algolia",
        name_key="algolia",
        legal_form="sas",
        domain="algolia.com",
    )
    values.update(overrides)
    return Vendor(**values)
