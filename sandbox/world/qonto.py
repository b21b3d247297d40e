"""The Qonto side of the world: the organization, its bank accounts and statement lines, and
the supplier invoices vendors e-mailed to Qonto (as Qonto's API returns them, qonto-api.md §4-5).

A part of the one builder (sandbox/world/__init__.py), called by the QuickBooks side as bills
are paid, in the same order of random draws, so a seed gives the same world.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from stdnum import iban as iban_module

from sandbox.world.catalogue import (
    HOME,
    QONTO_BANK_CODE,
    QONTO_BIC,
    QONTO_BRANCH,
    VendorProfile,
    as_cents,
    as_money,
)


class QontoBank:
    """The Qonto records of the world (shares the builder's random draws and state)."""

    def french_iban(self) -> tuple[str, str]:
        """A valid Qonto-style French IBAN and its 11-digit account number."""
        account = f"{self.rng.randint(0, 10**11 - 1):011d}"
        rib = 97 - ((89 * int(QONTO_BANK_CODE) + 15 * int(QONTO_BRANCH) + 3 * int(account)) % 97)
        bban = f"{QONTO_BANK_CODE}{QONTO_BRANCH}{account}{rib:02d}"
        check = iban_module.calc_check_digits("FR00" + bban)
        return f"FR{check}{bban}", account

    def vendor_iban(self, country: str) -> str:
        if country != "FR":
            return ""
        bank = self.rng.choice(("30004", "30003", "10107", "20041", "17515"))
        account = f"{self.rng.randint(0, 10**11 - 1):011d}"
        branch = f"{self.rng.randint(0, 99999):05d}"
        rib = 97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97)
        bban = f"{bank}{branch}{account}{rib:02d}"
        return f"FR{iban_module.calc_check_digits('FR00' + bban)}{bban}"

    def debit(
        self, profile: VendorProfile, record: dict, paid_on: date, reference: str | None = None
    ) -> dict:
        """The Qonto statement line for a payment to `profile` (qonto-api.md §5.3)."""
        total = as_cents(record["TotalAmt"])
        currency = record["CurrencyRef"]["value"]
        eur = round(total * record.get("ExchangeRate", 1.0)) if currency != HOME else total
        if currency != HOME:
            eur += round(eur * self.rng.uniform(0.0, 0.02))  # card FX fee and rate drift
        operation = {
            "card": "card",
            "paypal": "direct_debit",
            "sepa_dd": "direct_debit",
            "transfer": "transfer",
        }[profile.style]
        return self.qonto_transaction(
            side="debit",
            amount_cents=eur,
            local_cents=total,
            local_currency=currency,
            label=profile.label if profile.style != "transfer" else profile.label.title(),
            counterparty=profile.display_name,
            operation_type=operation,
            when=paid_on,
            reference=(f"Facture {reference}" if operation == "transfer" and reference else None),
            card=profile.style == "card",
            vat_rate=profile.vat_rate,
            counterparty_iban=self.vendor_profiles_by_name(profile)["iban"],
        )

    def vendor_profiles_by_name(self, profile: VendorProfile) -> dict:
        return self.profiles_by_name.get(profile.legal_name, {"iban": ""})

    def qonto_transaction(
        self,
        *,
        side: str,
        amount_cents: int,
        local_cents: int,
        local_currency: str,
        label: str,
        counterparty: str,
        operation_type: str,
        when: date,
        reference: str | None,
        card: bool,
        vat_rate: float,
        counterparty_iban: str = "",
    ) -> dict:
        self.tx_counter += 1
        emitted = datetime(
            when.year,
            when.month,
            when.day,
            self.rng.randint(6, 20),
            self.rng.randint(0, 59),
            self.rng.randint(0, 59),
            tzinfo=UTC,
        )
        pending = card and (self.now - emitted) < timedelta(days=2)
        settled = None if pending else emitted + timedelta(hours=self.rng.randint(0, 30))
        if settled is not None and settled > self.now:
            settled = self.now - timedelta(minutes=10)
        vat_cents = round(amount_cents - amount_cents / (1 + vat_rate / 100)) if vat_rate else 0
        transaction = {
            "id": self.uuid(),
            "transaction_id": f"atelier-lumiere-transaction-{self.tx_counter}",
            "amount": as_money(amount_cents),
            "amount_cents": amount_cents,
            "settled_balance": None,
            "settled_balance_cents": None,
            "attachment_ids": [],
            "local_amount": as_money(local_cents),
            "local_amount_cents": local_cents,
            "side": side,
            "operation_type": operation_type,
            "currency": HOME,
            "local_currency": local_currency,
            "label": label,
            "clean_counterparty_name": counterparty,
            "settled_at": _qonto_time(settled),
            "emitted_at": _qonto_time(emitted),
            "created_at": _qonto_time(emitted),
            "updated_at": _qonto_time(settled or emitted),
            "status": "pending" if pending else "completed",
            "note": None,
            "reference": reference,
            "vat_amount": as_money(vat_cents),
            "vat_amount_cents": vat_cents,
            "vat_rate": vat_rate,
            "initiator_id": None,
            "label_ids": [],
            "attachment_lost": False,
            "attachment_required": side == "debit",
            "card_last_digits": "4242" if card else None,
            "category": "other_expense" if side == "debit" else "other_income",
            "subject_type": "Transaction",
            "bank_account_id": None,  # set once the organization exists
            "is_external_transaction": False,
            "logo": None,
            "cashflow_category": None,
            "cashflow_subcategory": None,
            "transfer": None,
        }
        if operation_type == "transfer" and counterparty_iban:
            transaction["transfer"] = {
                "counterparty_account_number": counterparty_iban,
                "counterparty_account_number_format": "IBAN",
                "counterparty_bank_identifier": "BNPAFRPPXXX",
                "counterparty_bank_identifier_format": "SWIFT_BIC",
            }
        self.transactions.append(transaction)
        return transaction

    def forward_to_qonto(
        self,
        profile: VendorProfile,
        vendor: dict,
        bill: dict,
        spec: dict,
        truth: dict,
        created: datetime,
    ) -> None:
        """The vendor also e-mailed this invoice to Qonto's inbox (source_type "email", §4.5)."""
        invoice_id = self.uuid()
        attachment_id = self.uuid()
        currency = spec["currency"]
        number = spec["number"]
        if self.rng.random() < 0.1:
            number = number.replace("-", "").lower()  # OCR/formatting drift for the matcher
        paid = bill["Balance"] == 0
        received = _qonto_time(created - timedelta(hours=self.rng.randint(1, 72)))
        invoice = {
            "id": invoice_id,
            "organization_id": None,  # set once the organization exists
            "status": "paid" if paid else "to_pay",
            "created_at": received,
            "updated_at": received,
            "file_name": spec["file_name"],
            "attachment_id": attachment_id,
            "display_attachment_id": attachment_id,
            "invoice_number": number,
            "supplier_name": profile.legal_name
            if self.rng.random() < 0.7
            else profile.display_name,
            "supplier_id": None,
            "issuer_name": profile.legal_name,
            "description": spec["lines"][0]["description"],
            "vat_number": spec["vendor_vat"],
            "tin": None,
            "iban": spec["iban"],
            "total_amount": {"value": f"{spec['total']:.2f}", "currency": currency},
            "total_amount_excluding_taxes": {
                "value": f"{spec['subtotal']:.2f}",
                "currency": currency,
            },
            "total_tax_amount": {"value": f"{spec['vat_total']:.2f}", "currency": currency},
            "payable_amount": {
                "value": "0.00" if paid else f"{spec['total']:.2f}",
                "currency": currency,
            },
            "taxes": [
                {
                    "tax_amount": {"value": f"{spec['vat_total']:.2f}", "currency": currency},
                    "tax_rate": f"{profile.vat_rate / 100:.3f}".rstrip("0").rstrip("."),
                }
            ],
            "issue_date": spec["issue_date"],
            "due_date": spec["due_date"],
            "payment_date": None,
            "scheduled_date": None,
            "source_type": "email",
            "source": "email_forward",
            "analyzed_at": received,
            "initiator_id": None,
            "matched_transactions_ids": [],
            "matched_transactions": [],
            "transfer_ids": [],
            "request_transfer": None,
            "is_einvoice": False,
            "e_invoice_type": None,
            "has_discrepancies": False,
            "has_duplicates": False,
            "is_attachment_invoice": True,
            "is_attachment_non_financial": False,
            "attachment_category": "INVOICE",
            "is_credit_note": False,
            "related_invoices": [],
            "meta": {
                "integration_type": None,
                "connector": None,
                "accounting_recorded_at": None,
                "accounting_recorded_source": None,
            },
        }
        if paid and truth["qonto_transaction_ids"] and self.rng.random() < 0.5:
            # Qonto sometimes matched it to the debit already.
            tx_id = truth["qonto_transaction_ids"][0]
            invoice["matched_transactions_ids"] = [tx_id]
            invoice["matched_transactions"] = [
                {
                    "subject_id": invoice_id,
                    "subject_type": "SupplierInvoice",
                    "transaction_id": tx_id,
                }
            ]
            invoice["payment_date"] = bill["TxnDate"]
        self.supplier_invoices.append(invoice)
        self.qonto_documents[attachment_id] = spec
        truth["qonto_supplier_invoice_id"] = invoice_id

    # ---- Qonto organisation ------------------------------------------------------------
    def qonto_org(self) -> None:
        organization_id = self.uuid()
        accounts = []
        for entry in self.bank_accounts:
            balance_cents = as_cents(entry["record"]["CurrentBalance"])
            name = entry["record"]["Name"].removeprefix("Qonto ")
            accounts.append(
                {
                    "id": self.uuid(),
                    "slug": f"atelier-lumiere-bank-account-{len(accounts) + 1}",
                    "name": name,
                    "iban": entry["iban"],
                    "bic": QONTO_BIC,
                    "currency": HOME,
                    "balance": as_money(balance_cents),
                    "balance_cents": balance_cents,
                    "authorized_balance": as_money(balance_cents),
                    "authorized_balance_cents": balance_cents,
                    "status": "active",
                    "main": entry["main"],
                    "updated_at": _qonto_time(self.now - timedelta(hours=1)),
                    "is_external_account": False,
                    "account_number": entry["number"],
                    "organization_id": organization_id,
                }
            )
        main_id = accounts[0]["id"]
        for transaction in self.transactions:
            transaction["bank_account_id"] = main_id
        for invoice in self.supplier_invoices:
            invoice["organization_id"] = organization_id
        self.transactions.sort(key=lambda tx: tx["emitted_at"])
        self.organization = {
            "id": organization_id,
            "slug": "atelier-lumiere",
            "name": "Atelier Lumière",
            "legal_name": self.company_name,
            "legal_number": self.company_siren,
            "legal_sector": "7410Z",
            "legal_registration_date": (self.now - timedelta(days=3 * 365)).date().isoformat(),
            "legal_address": "18 rue Auguste Comte, 69002 Lyon, France",
            "legal_form": "SAS",
            "legal_country": "FR",
            "legal_share_capital": 10000,
            "locale": "fr",
            "contract_signed_at": _qonto_time(self.now - timedelta(days=3 * 365)),
            "bank_accounts": accounts,
        }


def _qonto_time(moment: datetime | None) -> str | None:
    """Qonto timestamps: UTC, milliseconds, Z suffix."""
    if moment is None:
        return None
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
