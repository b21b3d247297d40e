"""A small default data set so the Qonto sandbox is useful on its own (shapes per §4.5, §5)."""

from __future__ import annotations

ORG_ID = "5f1e6c4a-0000-4000-8000-000000000001"
MAIN_ACCOUNT_ID = "5f1e6c4a-0000-4000-8000-0000000000a1"
SAVINGS_ACCOUNT_ID = "5f1e6c4a-0000-4000-8000-0000000000a2"


def default_organization() -> dict:
    """One organisation with a main EUR account and a second one."""
    return {
        "id": ORG_ID,
        "slug": "sandbox-sas-7132",
        "legal_name": "Sandbox SAS",
        "name": "Sandbox SAS",
        "legal_number": "123456789",
        "legal_sector": "6201Z",
        "legal_registration_date": "2020-01-15",
        "legal_address": "1 rue de la Paix, 75002 Paris",
        "legal_form": "SAS",
        "legal_country": "FR",
        "legal_share_capital": 10000,
        "locale": "fr",
        "contract_signed_at": "2020-02-01T09:00:00.000Z",
        "bank_accounts": [
            _account(MAIN_ACCOUNT_ID, "Main account", "FR7616958000010000000000101", True),
            _account(SAVINGS_ACCOUNT_ID, "Taxes", "FR7616958000010000000000202", False),
        ],
    }


def _account(account_id: str, name: str, iban: str, main: bool) -> dict:
    return {
        "id": account_id,
        "slug": f"sandbox-sas-7132-bank-account-{'1' if main else '2'}",
        "name": name,
        "iban": iban,
        "bic": "QNTOFRP1XXX",
        "currency": "EUR",
        "balance": 12500.5 if main else 3000.0,
        "balance_cents": 1250050 if main else 300000,
        "authorized_balance": 12400.5 if main else 3000.0,
        "authorized_balance_cents": 1240050 if main else 300000,
        "status": "active",
        "main": main,
        "updated_at": "2024-03-01T08:00:00.000Z",
        "is_external_account": False,
        "account_number": iban[-11:],
        "organization_id": ORG_ID,
    }


def default_supplier_invoices() -> list[dict]:
    """A handful of invoices in various statuses, with both `matched_transactions` shapes."""
    rows = [
        ("Papeterie Martin", "PM-2024-001", "120.00", "to_review", "2024-02-01", []),
        ("OVH SAS", "FR-OVH-88231", "59.88", "paid", "2024-02-03", ["t-2"]),
        ("Boulangerie Dupont", "BD-17", "34.50", "to_pay", "2024-02-10", []),
        ("Adobe Ireland", "IE-993-221", "71.99", "paid", "2024-02-12", ["t-4"]),
        ("Cabinet Comptable", "CC-2024-02", "450.00", "awaiting_payment", "2024-02-20", []),
        ("La Poste", "LP-55120", "12.40", "rejected", "2024-02-22", []),
    ]
    return [_invoice(index, *row) for index, row in enumerate(rows, start=1)]


def _invoice(
    index: int, supplier: str, number: str, total: str, status: str, day: str, matched: list
) -> dict:
    invoice_id = f"5f1e6c4a-0000-4000-8000-0000000001{index:02d}"
    transaction_ids = [_transaction_id(int(ref[2:])) for ref in matched]
    invoice = {
        "id": invoice_id,
        "organization_id": ORG_ID,
        "status": status,
        "created_at": f"{day}T10:00:00.000Z",
        "updated_at": f"{day}T10:05:00.000Z",
        "file_name": f"{number}.pdf",
        "attachment_id": f"5f1e6c4a-0000-4000-8000-0000000002{index:02d}",
        "display_attachment_id": f"5f1e6c4a-0000-4000-8000-0000000002{index:02d}",
        "invoice_number": number,
        "supplier_name": supplier,
        "total_amount": {"value": total, "currency": "EUR"},
        "issue_date": day,
        "due_date": day[:8] + "28",
        "payment_date": day if status == "paid" else None,
        "source_type": "email",
        "source": "email_forward",
        "analyzed_at": f"{day}T10:05:00.000Z",
        "declined_note": "Not ours" if status == "rejected" else None,
        "meta": {},
    }
    # §4.5: older invoices carry an array of ids, newer ones ids plus objects.
    if index <= 3:
        invoice["matched_transactions"] = transaction_ids
    else:
        invoice["matched_transactions_ids"] = transaction_ids
        invoice["matched_transactions"] = [
            {"subject_id": tid, "subject_type": "Transaction", "transaction_id": tid}
            for tid in transaction_ids
        ]
    return invoice


def _transaction_id(index: int) -> str:
    return f"5f1e6c4a-0000-4000-8000-0000000003{index:02d}"


def default_transactions() -> list[dict]:
    """Debits and credits over both accounts, settled and pending."""
    rows = [
        (1, MAIN_ACCOUNT_ID, "credit", "completed", 250000, "Client Alpha", "2024-02-01"),
        (2, MAIN_ACCOUNT_ID, "debit", "completed", 5988, "OVH SAS", "2024-02-04"),
        (3, MAIN_ACCOUNT_ID, "debit", "completed", 3450, "BOULANGERIE DUPONT", "2024-02-11"),
        (4, MAIN_ACCOUNT_ID, "debit", "completed", 7199, "ADOBE *CREATIVE", "2024-02-13"),
        (5, MAIN_ACCOUNT_ID, "debit", "pending", 2100, "UBER *TRIP", "2024-02-25"),
        (6, MAIN_ACCOUNT_ID, "debit", "declined", 99900, "UNKNOWN MERCHANT", "2024-02-26"),
        (7, SAVINGS_ACCOUNT_ID, "debit", "completed", 120000, "DGFIP", "2024-02-15"),
        (8, MAIN_ACCOUNT_ID, "debit", "completed", 45000, "Cabinet Comptable", "2024-02-27"),
    ]
    return [_transaction(*row) for row in rows]


def _transaction(
    index: int, account: str, side: str, status: str, cents: int, label: str, day: str
) -> dict:
    settled = None if status != "completed" else f"{day}T12:00:00.000Z"
    operation = "card" if side == "debit" and index in (4, 5, 6) else "transfer"
    return {
        "id": _transaction_id(index),
        "transaction_id": f"sandbox-sas-7132-transaction-{index}",
        "amount": cents / 100,
        "amount_cents": cents,
        "settled_balance": None,
        "settled_balance_cents": None,
        "attachment_ids": [],
        "local_amount": cents / 100,
        "local_amount_cents": cents,
        "side": side,
        "operation_type": operation,
        "currency": "EUR",
        "local_currency": "EUR",
        "label": label,
        "clean_counterparty_name": label.title(),
        "settled_at": settled,
        "emitted_at": f"{day}T11:00:00.000Z",
        "created_at": f"{day}T11:00:00.000Z",
        "updated_at": f"{day}T12:30:00.000Z",
        "status": status,
        "note": None,
        "reference": f"REF-{index:04d}" if operation == "transfer" else None,
        "vat_amount": None,
        "vat_amount_cents": None,
        "vat_rate": None,
        "initiator_id": None,
        "label_ids": [],
        "attachment_lost": False,
        "attachment_required": side == "debit",
        "card_last_digits": "4242" if operation == "card" else None,
        "category": "other_expense" if side == "debit" else "other_income",
        "subject_type": "Card" if operation == "card" else "Transfer",
        "bank_account_id": account,
        "is_external_transaction": False,
        "transfer": None,
    }


def default_seed() -> dict:
    """Keyword arguments for `QontoSandbox.seed`."""
    return {
        "organization": default_organization(),
        "supplier_invoices": default_supplier_invoices(),
        "transactions": default_transactions(),
    }
