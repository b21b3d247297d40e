"""Counterparty enrichment with provenance: legal entity, tax ID, domain, usual ledger account."""

from __future__ import annotations

from .counterparty import Directory, Profile
from .normalise import clean_name
from .types import SUPPLIER_INVOICE, Account, Counterparty, Entry, Record

# Accounts that say "not coded yet": the vendor's usual account is a better guess.
_VAGUE = ("uncategori", "ask my accountant", "suspense", "attente", "a classer", "divers")
USUAL_MIN_SHARE = 0.5


def _is_vague(account: Account | None) -> bool:
    if account is None:
        return True
    name = account.name.lower()
    return any(word in name for word in _VAGUE)


def usual_account(profile: Profile) -> tuple[str, int, int]:
    """The vendor's most frequent ledger account, its count and the number of prior bills."""
    if not profile.accounts:
        return "", 0, profile.records
    if "usual_account" not in profile.memo:
        account_id, count = profile.accounts.most_common(1)[0]
        profile.memo["usual_account"] = (account_id, count, sum(profile.accounts.values()))
    return profile.memo["usual_account"]


def ledger(
    record: Record, profile: Profile, accounts: dict[str, Account]
) -> tuple[str | None, str]:
    """The ledger account to book the record on, and where that comes from."""
    own = accounts.get(record.account_ids[0]) if record.account_ids else None
    if record.account_ids and not _is_vague(own):
        label = own.label if own else record.account_ids[0]
        return label, "booked on this record in QuickBooks"
    account_id, count, total = usual_account(profile)
    if account_id and count >= 2 and count >= USUAL_MIN_SHARE * total:
        usual = accounts.get(account_id)
        label = usual.label if usual else account_id
        return label, f"{count} of {total} prior bills from this vendor"
    if own is not None:
        return own.label, "booked on this record in QuickBooks (no usual account yet)"
    return None, "no ledger account on the record and no history"


def _linked_legal_name(profile: Profile) -> tuple[str, int] | None:
    """Of the vendor's three commonest names on linked Qonto invoices, the first with a legal
    form, and on how many invoices (computed once per vendor)."""
    if "linked_legal_name" not in profile.memo:
        profile.memo["linked_legal_name"] = next(
            (
                (name, count)
                for name, count in profile.legal_names.most_common(3)
                if clean_name(name)[2]
            ),
            None,
        )
    return profile.memo["linked_legal_name"]


def _legal_entity(record: Record, profile: Profile, entry: Entry | None) -> tuple[str | None, str]:
    vendor = profile.vendor
    if vendor and vendor.company_name and clean_name(vendor.company_name)[2]:
        return vendor.company_name, "QuickBooks vendor company name"
    linked = _linked_legal_name(profile)
    if linked:
        name, count = linked
        return name, f"supplier name on {count} linked Qonto invoices"
    if entry is not None and entry.kind == SUPPLIER_INVOICE and clean_name(entry.raw_name)[2]:
        return entry.raw_name, "supplier name on the matched Qonto invoice"
    if vendor and (vendor.company_name or vendor.display_name):
        return vendor.company_name or vendor.display_name, "QuickBooks vendor name"
    return record.vendor_name or None, "name on the record"


def _tax_id(
    record: Record, profile: Profile, entry: Entry | None, directory: Directory | None
) -> tuple[str | None, str]:
    learnt = profile.tax_id
    if learnt:
        count = profile.tax_ids[learnt]
        return learnt, f"VAT number on {count} linked Qonto invoices, checksum valid"
    tail = profile.vendor.tax_tail if profile.vendor else ""
    if entry is not None and entry.tax_id and (not tail or entry.tax_id.endswith(tail)):
        return entry.tax_id, "VAT number on the matched Qonto invoice, checksum valid"
    key = profile.vendor.name_key if profile.vendor else record.name_key
    if directory is not None and key:
        found, count = directory.tax_id_by_name(key, tail)
        if found:
            return found, f"VAT number on {count} Qonto invoices under this name, checksum valid"
    return None, "no valid tax ID seen for this vendor"


def enrich(
    record: Record,
    profile: Profile,
    accounts: dict[str, Account],
    entry: Entry | None,
    directory: Directory | None = None,
) -> Counterparty:
    """Everything known about the record's counterparty, each with its provenance."""
    legal, legal_from = _legal_entity(record, profile, entry)
    tax, tax_from = _tax_id(record, profile, entry, directory)
    account, account_from = ledger(record, profile, accounts)
    domain = profile.vendor.domain if profile.vendor and profile.vendor.domain else None
    return Counterparty(
        legal_entity=legal,
        tax_id=tax,
        domain=domain,
        ledger_account=account,
        provenance={
            "legal_entity": legal_from,
            "tax_id": tax_from,
            "domain": "QuickBooks vendor web address or e-mail" if domain else "none known",
            "ledger_account": account_from,
        },
    )
