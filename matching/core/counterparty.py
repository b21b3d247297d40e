"""Resolve counterparties: what the workspace's history teaches about each QuickBooks vendor."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from .types import SUPPLIER_INVOICE, Entry, HistoryLink, Vendor


@dataclass(slots=True)
class Profile:
    """One vendor's counterparty as learnt from the records already linked to Qonto."""

    vendor: Vendor | None = None
    records: int = 0
    tax_ids: Counter[str] = field(default_factory=Counter)
    entry_keys: Counter[str] = field(default_factory=Counter)
    entry_names: Counter[str] = field(default_factory=Counter)
    legal_names: Counter[str] = field(default_factory=Counter)
    accounts: Counter[str] = field(default_factory=Counter)
    amounts: Counter[int] = field(default_factory=Counter)
    # Amounts this vendor billed twice within a week (identical seats, retried card payments).
    repeats: set[int] = field(default_factory=set)
    # Answers derived from the counts above, computed once: a book is read-only once built.
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def tax_id(self) -> str:
        """The tax ID most linked invoices carry, if it agrees with the masked QuickBooks one."""
        if "tax_id" not in self.memo:
            tail = self.vendor.tax_tail if self.vendor else ""
            found = (c for c, _ in self.tax_ids.most_common() if not tail or c.endswith(tail))
            self.memo["tax_id"] = next(found, "")
        return self.memo["tax_id"]

    def top_keys(self) -> list[str]:
        """The three name keys Qonto most often used for this vendor."""
        if "top_keys" not in self.memo:
            self.memo["top_keys"] = [key for key, _ in self.entry_keys.most_common(3)]
        return self.memo["top_keys"]

    def names(self) -> list[str]:
        """Every cleaned name this counterparty is known under, most frequent first."""
        if "names" not in self.memo:
            known = [name for name, _ in self.entry_names.most_common(4)]
            if self.vendor and self.vendor.name:
                known.insert(0, self.vendor.name)
            self.memo["names"] = tuple(dict.fromkeys(n for n in known if n))
        return list(self.memo["names"])


@dataclass(slots=True)
class Directory:
    """Every vendor's profile plus who owns each name key and tax ID seen in Qonto."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    key_owners: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    tax_owners: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    used: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, id) -> record
    # Tax IDs printed on any Qonto supplier invoice, by the issuer's name key.
    key_tax_ids: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    owners: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)  # memo
    # Supplier documents of the history by (vendor, amount): (day, "Bill 603"), to tell when a
    # bank transaction may be a bill's payment rather than an expense of its own.
    bills: dict[tuple[str, int], list[tuple[int, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def tax_id_by_name(self, key: str, tail: str = "") -> tuple[str, int]:
        """The tax ID Qonto invoices under this name carry, when they agree; and how many."""
        counts = self.key_tax_ids.get(key)
        if not counts:
            return "", 0
        (tax_id, top), total = counts.most_common(1)[0], sum(counts.values())
        if top < 2 or top < 0.8 * total or (tail and not tax_id.endswith(tail)):
            return "", 0
        return tax_id, top

    def profile(self, vendor_id: str) -> Profile:
        """The vendor's profile (an empty one for an unknown vendor)."""
        found = self.profiles.get(vendor_id)
        if found is None:
            found = self.profiles.get("") or self.profiles.setdefault("", Profile())
        return found

    def key_owner(self, key: str) -> str:
        """The vendor a Qonto name key belongs to, when history is unambiguous."""
        found = self.owners.get(("key", key))
        if found is None:
            found = self.owners[("key", key)] = _owner(self.key_owners.get(key))
        return found

    def tax_owner(self, tax_id: str) -> str:
        """The vendor a tax ID belongs to, when history is unambiguous."""
        found = self.owners.get(("tax", tax_id))
        if found is None:
            found = self.owners[("tax", tax_id)] = _owner(self.tax_owners.get(tax_id))
        return found


def _owner(counts: Counter[str] | None) -> str:
    if not counts:
        return ""
    (vendor_id, top), total = counts.most_common(1)[0], sum(counts.values())
    # A key shared by several vendors (e.g. "amazon") resolves to no one.
    return vendor_id if top >= 2 and top >= 0.8 * total else ""


def build_directory(
    vendors: dict[str, Vendor], history: list[HistoryLink], entries: dict[tuple[str, str], Entry]
) -> Directory:
    """Learn each vendor's Qonto names, tax IDs, ledger accounts and amounts from history."""
    directory = Directory()
    for vendor in vendors.values():
        directory.profiles[vendor.id] = Profile(vendor=vendor)
        if vendor.name_key:
            directory.key_owners[vendor.name_key][vendor.id] += 1
    for entry in entries.values():
        if entry.kind == SUPPLIER_INVOICE and entry.tax_id and entry.name_key:
            directory.key_tax_ids[entry.name_key][entry.tax_id] += 1
    seen: dict[tuple[str, int], list[int]] = defaultdict(list)
    for link in history:
        record = link.record
        directory.used[(link.target_kind, link.target_id)] = f"{record.type} {record.id}"
        if not record.vendor_id:
            continue
        if record.amount_cents is not None and record.txn_date is not None:
            seen[(record.vendor_id, record.amount_cents)].append(record.txn_date.toordinal())
            if record.type != "Purchase":
                directory.bills[(record.vendor_id, abs(record.amount_cents))].append(
                    (record.txn_date.toordinal(), f"{record.type} {record.id}")
                )
        profile = directory.profiles.get(record.vendor_id)
        if profile is None:
            profile = directory.profiles[record.vendor_id] = Profile(
                vendor=vendors.get(record.vendor_id)
            )
        profile.records += 1
        if record.account_ids:
            profile.accounts[record.account_ids[0]] += 1
        if record.amount_cents is not None:
            profile.amounts[record.amount_cents] += 1
        entry = entries.get((link.target_kind, link.target_id))
        if entry is None:
            continue
        if entry.name_key:
            profile.entry_keys[entry.name_key] += 1
            profile.entry_names[entry.name] += 1
            directory.key_owners[entry.name_key][record.vendor_id] += 1
        if entry.tax_id:
            profile.tax_ids[entry.tax_id] += 1
            directory.tax_owners[entry.tax_id][record.vendor_id] += 1
        if entry.kind == SUPPLIER_INVOICE and entry.raw_name:
            profile.legal_names[entry.raw_name] += 1
    for (vendor_id, amount), days in seen.items():
        days.sort()
        if any(b - a <= 7 for a, b in pairwise(days)):
            directory.profiles[vendor_id].repeats.add(amount)
    return directory
