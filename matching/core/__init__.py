"""Pure-Python matching core: no Django, no database; plain dataclasses in and out."""

from __future__ import annotations

from .engine import Book, build_book, decide
from .fitting import Label, fit
from .model import Model, load_prior
from .types import (
    CREATE,
    LINK,
    SUPPLIER_INVOICE,
    TRANSACTION,
    Account,
    Alternative,
    Counterparty,
    Decision,
    Entry,
    HistoryLink,
    LabelledDecision,
    Policy,
    Reason,
    Record,
    Target,
    Vendor,
)

__all__ = [
    "CREATE",
    "LINK",
    "SUPPLIER_INVOICE",
    "TRANSACTION",
    "Account",
    "Alternative",
    "Book",
    "Counterparty",
    "Decision",
    "Entry",
    "HistoryLink",
    "Label",
    "LabelledDecision",
    "Model",
    "Policy",
    "Reason",
    "Record",
    "Target",
    "Vendor",
    "build_book",
    "decide",
    "fit",
    "load_prior",
]
