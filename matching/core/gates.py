"""Hard gates: conditions that send a decision to review whatever its confidence."""

from __future__ import annotations

from .types import CREATE, Policy, Record


def failed_gates(
    record: Record, action: str, vector: dict[str, str] | None, policy: Policy
) -> list[str]:
    """Why this decision may not be posted automatically (empty when it may)."""
    failed = [f"malformed record: {problem}" for problem in record.problems]
    if policy.closed_until and record.txn_date and record.txn_date <= policy.closed_until:
        failed.append(f"period closed: books are closed until {policy.closed_until.isoformat()}")
    if action == CREATE or vector is None:
        return failed
    if vector.get("currency") == "different":
        failed.append("currency differs and Qonto shows no converted amount")
    if vector.get("counterparty") == "tax_id_conflict":
        failed.append("the entry's tax ID conflicts with the vendor's")
    return failed
