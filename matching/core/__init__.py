"""Pure-Python matching core: no Django, no database; plain dataclasses in and out."""

from __future__ import annotations

from .engine import Book, build_book, decide
from .feedback import update_from_feedback
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
from .weights import Model, load_default

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
    "LabelledDecision",
    "Model",
    "Policy",
    "Reason",
    "Record",
    "Target",
    "Vendor",
    "build_book",
    "decide",
    "load_default",
    "update_from_feedback",
]
