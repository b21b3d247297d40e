"""Deterministic labelled books: QuickBooks records, Qonto entries and the truth, as real books are.

    python -m matching.datasets.generate OUT_DIR --seed 7 --incoming 2000 --entries 20000

Writes the matching-eval folder format (docs in design/matching-eval.md) plus truth.jsonl.
Hard cases: identical monthly subscriptions (some billing several identical seats a few days
apart), e-mailed invoices read by OCR (typos, O/0 swaps, day/month swaps, missing totals), bank
labels, FX card spend, bank fees, credit notes, vendors with no history, two vendors billing the
same amount the same week, a card expense and a bill of one vendor on the same day for the same
amount, and records with no entry. A bill's truth is its supplier invoice or "create", never its
payment; an expense's is its transaction (design/matching-eval.md).
"""

from __future__ import annotations

import argparse
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from random import Random
from typing import Any

from stdnum import luhn
from stdnum.fr import siren as fr_siren
from stdnum.iso7064 import mod_11_10

START = date(2024, 1, 1)
HISTORY_DAYS = 365
INCOMING_DAYS = 90
HOME = "EUR"

ACCOUNTS = [
    ("6061", "Fournitures non stockables"),
    ("6064", "Fournitures administratives"),
    ("6132", "Locations immobilieres"),
    ("6135", "Locations mobilieres"),
    ("6156", "Maintenance logiciels"),
    ("6181", "Documentation generale"),
    ("6226", "Honoraires"),
    ("6231", "Annonces et insertions"),
    ("6241", "Transports"),
    ("6251", "Voyages et deplacements"),
    ("6256", "Missions"),
    ("6257", "Receptions"),
    ("6261", "Frais postaux"),
    ("6262", "Telecommunications"),
    ("6278", "Frais bancaires"),
    ("6068", "Autres matieres et fournitures"),
    ("", "Software subscriptions"),
    ("", "Meals and entertainment"),
    ("", "Office supplies"),
]
WORDS = [
    "algo",
    "nord",
    "papy",
    "atel",
    "brio",
    "cast",
    "delta",
    "eco",
    "flux",
    "gala",
    "hexa",
    "iris",
    "jade",
    "kilo",
    "luma",
    "mira",
    "nova",
    "opal",
    "pixel",
    "quartz",
    "rive",
    "sola",
    "terra",
    "ultra",
    "vega",
    "wave",
    "xeno",
    "yuzu",
    "zen",
    "bleu",
    "cedre",
    "dune",
    "etoile",
    "forge",
    "grain",
    "havre",
    "ilot",
    "jardin",
    "lys",
    "marne",
    "noyer",
    "orme",
    "pont",
]
TAILS = [
    "lia",
    "tech",
    "print",
    "soft",
    "conseil",
    "media",
    "log",
    "data",
    "cloud",
    "studio",
    "transport",
    "services",
    "net",
    "labs",
    "design",
    "immo",
    "box",
    "pay",
    "go",
    "hub",
]
FORMS = {
    "FR": ["SAS", "SARL", "SA", "SASU", "EURL"],
    "DE": ["GmbH", "AG"],
    "NL": ["BV", "NV"],
    "US": ["Inc", "LLC", "Corp"],
    "GB": ["Ltd", "Limited"],
}
OCR = {"0": "O", "O": "0", "1": "I", "I": "1", "5": "S", "S": "5", "8": "B", "l": "1", "e": "c"}
MERCHANTS = [
    "CARREFOUR",
    "MONOPRIX",
    "TOTAL ACCESS",
    "SNCF",
    "UBER",
    "AIR FRANCE",
    "FNAC",
    "AMAZON",
    "APPLE.COM",
    "GOOGLE",
    "LEROY MERLIN",
    "BOULANGERIE",
    "PRET A MANGER",
]


@dataclass
class Vendor:
    """A generated supplier and how it bills."""

    id: str
    name: str
    form: str
    country: str
    vat: str
    domain: str
    style: str  # subscription, supplier, card, fee
    account: str
    currency: str = HOME
    amount: int = 0
    pay: str = "transfer"
    forwards: float = 0.6
    start: int = 0
    obj: dict[str, Any] = field(default_factory=dict)

    @property
    def legal(self) -> str:
        """Name with legal form."""
        return f"{self.name} {self.form}".strip()


class Books:
    """Everything generated for one workspace."""

    def __init__(self, seed: int, incoming: int, entries: int) -> None:
        self.rng = Random(seed)
        self.seed = seed
        self.target_incoming = incoming
        self.target_entries = entries
        self.next_id = 100
        self.vendors: list[Vendor] = []
        self.accounts: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.incoming: list[tuple[date, dict[str, Any], dict[str, Any]]] = []
        self.invoices: list[dict[str, Any]] = []
        self.transactions: list[dict[str, Any]] = []

    # ---- small helpers -------------------------------------------------------------------
    def qid(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def money(self, cents: int) -> float:
        return float(Decimal(cents) / 100)

    def ocr(self, text: str, rate: float = 0.08) -> str:
        """Read a printed text back with a scanner's mistakes."""
        out = []
        for ch in text:
            if ch in OCR and self.chance(rate):
                out.append(OCR[ch])
            else:
                out.append(ch)
        return "".join(out)

    # ---- the world -----------------------------------------------------------------------
    def make_accounts(self) -> None:
        for i, (number, name) in enumerate(ACCOUNTS, start=1):
            obj = {
                "Id": str(i),
                "Name": name,
                "FullyQualifiedName": name,
                "Active": True,
                "Classification": "Expense",
                "AccountType": "Expense",
                "SyncToken": "0",
            }
            if number:
                obj["AcctNum"] = number
            self.accounts.append(obj)
        self.accounts.append(
            {
                "Id": "90",
                "Name": "Uncategorized Expense",
                "Active": True,
                "AccountType": "Expense",
                "Classification": "Expense",
            }
        )
        self.accounts.append(
            {
                "Id": "91",
                "Name": "Qonto",
                "AccountType": "Bank",
                "Classification": "Asset",
                "AccountSubType": "Checking",
            }
        )
        self.accounts.append(
            {
                "Id": "92",
                "Name": "Accounts Payable (A/P)",
                "AccountType": "Accounts Payable",
                "Classification": "Liability",
            }
        )

    def make_vat(self, country: str) -> str:
        digits = "".join(str(self.rng.randint(0, 9)) for _ in range(8))
        if country == "FR":
            siren = digits + luhn.calc_check_digit(digits)
            return "FR" + fr_siren.to_tva(siren)
        if country == "DE":
            return "DE" + digits + mod_11_10.calc_check_digit(digits)
        return ""

    def make_vendors(self, count: int) -> None:
        names: set[str] = set()
        expense = [a for a in self.accounts if a["AccountType"] == "Expense" and a["Id"] != "90"]
        while len(self.vendors) < count:
            name = (self.rng.choice(WORDS) + self.rng.choice(TAILS)).capitalize()
            if self.chance(0.3):
                name += " " + self.rng.choice(TAILS).capitalize()
            if name in names:
                continue
            names.add(name)
            country = self.rng.choices(["FR", "DE", "NL", "US", "GB"], [60, 12, 8, 12, 8])[0]
            style = self.rng.choices(["subscription", "supplier", "card", "fee"], [34, 36, 26, 4])[
                0
            ]
            account = self.rng.choice(expense)
            label = account.get("AcctNum") or account["Name"]
            vendor = Vendor(
                id=self.qid(),
                name=name,
                form=self.rng.choice(FORMS[country]),
                country=country,
                vat=self.make_vat(country),
                domain=f"{name.lower().replace(' ', '')}.com",
                style=style,
                account=account["Id"],
            )
            vendor.obj = {"account_label": label}
            if style == "subscription":
                vendor.amount = self.rng.choice(
                    [900, 1200, 2900, 4900, 4999, 9900, 12000, self.rng.randint(500, 60000)]
                )
                vendor.pay = self.rng.choice(["direct_debit", "card", "paypal"])
                vendor.forwards = self.rng.choice([0.0, 0.5, 0.9])
            elif style == "card":
                vendor.pay = "card"
                vendor.forwards = self.rng.choice([0.0, 0.2])
                if country in ("US", "GB") and self.chance(0.6):
                    vendor.currency = "USD" if country == "US" else "GBP"
            elif style == "fee":
                vendor.pay = "fee"
                vendor.amount = self.rng.choice([900, 2900, 500, 150])
                vendor.forwards = 0.0
                # The bank itself bills its fees: one vendor only, as in real books.
                has_bank = any(v.name == "Qonto" for v in self.vendors)
                vendor.name, vendor.form = (name, "SA") if has_bank else ("Qonto", "SA")
            else:
                vendor.pay = "transfer"
                vendor.forwards = self.rng.choice([0.4, 0.8, 0.95])
            # A sixth of vendors are new: they only appear in the incoming period.
            vendor.start = HISTORY_DAYS + self.rng.randint(0, 60) if self.chance(0.16) else 0
            self.vendors.append(vendor)

    def vendor_object(self, v: Vendor) -> dict[str, Any]:
        display = self.rng.choice([v.name, v.legal, v.name.upper(), f"{v.name} ({v.style})"])
        obj: dict[str, Any] = {
            "Id": v.id,
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "Active": True,
            "DisplayName": display,
            "PrintOnCheckName": display,
            "CurrencyRef": {"value": v.currency, "name": v.currency},
            "Balance": 0,
            "Vendor1099": False,
            "MetaData": {
                "CreateTime": "2023-12-01T10:00:00-08:00",
                "LastUpdatedTime": "2023-12-01T10:00:00-08:00",
            },
        }
        if self.chance(0.5):
            obj["CompanyName"] = v.legal
        if self.chance(0.6):
            obj["WebAddr"] = {"URI": f"https://www.{v.domain}"}
        elif self.chance(0.5):
            obj["PrimaryEmailAddr"] = {"Address": f"billing@{v.domain}"}
        if v.vat and self.chance(0.4):
            obj["TaxIdentifier"] = "XXXXXX" + v.vat[-4:]
        return obj

    # ---- events --------------------------------------------------------------------------
    def amount_for(self, v: Vendor) -> int:
        if v.amount:
            return v.amount
        if v.style == "card":
            return self.rng.randint(300, 45000)
        return int(self.rng.lognormvariate(11.0, 1.1)) // 100 * self.rng.choice([100, 1, 1])

    def booked_account(self, v: Vendor) -> str:
        if self.chance(0.9):
            return v.account
        return self.rng.choice(
            [a["Id"] for a in self.accounts if a["AccountType"] == "Expense" and a["Id"] != "90"]
        )

    def label_of(self, account_id: str) -> str:
        account = next(a for a in self.accounts if a["Id"] == account_id)
        return account.get("AcctNum") or account["Name"]

    def simulate(self) -> None:
        days = HISTORY_DAYS + INCOMING_DAYS
        for v in self.vendors:
            if v.style in ("subscription", "fee"):
                # Some subscriptions bill several identical seats a few days apart each month.
                seats = self.rng.choice([1, 1, 1, 2, 3]) if v.style == "subscription" else 1
                day = v.start + self.rng.randint(0, 27)
                while day < days:
                    for seat in range(seats):
                        self.event(v, day + (self.rng.randint(0, 4) if seat else 0))
                    day += self.rng.choice([30, 31, 30, 31, 28])
            else:
                rate = self.rng.choice([0.03, 0.06, 0.12, 0.25])
                for day in range(v.start, days):
                    if self.chance(rate):
                        self.event(v, day)
        # Two vendors billing the same amount the same week.
        pairs = [v for v in self.vendors if v.style == "supplier"]
        for _ in range(max(2, len(self.vendors) // 20)):
            a, b = self.rng.sample(pairs, 2)
            day = self.rng.randint(HISTORY_DAYS, days - 20)
            amount = self.amount_for(a)
            self.event(a, day, amount=amount)
            self.event(b, day + self.rng.randint(0, 5), amount=amount)
        # One vendor, one day, one amount: a card expense and a bill (paid by transfer later).
        both = [v for v in self.vendors if v.style in ("supplier", "subscription")]
        for _ in range(max(2, len(self.vendors) // 15)):
            v = self.rng.choice(both)
            day = self.rng.randint(v.start, days - 20)
            amount = self.amount_for(v)
            self.event(v, day, amount=amount, kind="Purchase")
            self.event(v, day, amount=amount, kind="Bill")

    def event(
        self, v: Vendor, day: int, amount: int | None = None, kind: str | None = None
    ) -> None:
        """One purchase: the QuickBooks record, whatever reached Qonto, and the truth."""
        amount = amount if amount is not None else max(self.amount_for(v), 100)
        when = START + timedelta(days=day)
        incoming = day >= HISTORY_DAYS
        account = self.booked_account(v)
        credit = kind is None and v.style == "supplier" and self.chance(0.04)
        if kind is not None:
            pass
        elif v.style == "supplier" or (v.style == "subscription" and self.chance(0.6)):
            kind = "VendorCredit" if credit else "Bill"
        else:
            kind = "Purchase"
        number = self.invoice_number(v, when)
        record = self.qbo_record(v, kind, when, amount, number, account, incoming)
        invoice = txn = None
        end = START + timedelta(days=HISTORY_DAYS + INCOMING_DAYS)
        # Paid in cash or from another bank, never forwarded: nothing of it reaches Qonto.
        cash = self.chance(0.12)
        if not cash and self.chance(v.forwards if kind != "VendorCredit" else 0.7):
            invoice = self.qonto_invoice(v, when, amount, number, credit)
        paid = self.payment_day(v, when)
        card = kind == "Purchase" and v.pay == "transfer"
        if card:
            paid = when + timedelta(days=self.rng.choice([0, 0, 1]))  # an expense paid by card
        if paid < end and not cash and not (credit and invoice and self.chance(0.7)):
            txn = self.qonto_transaction(v, paid, amount, number, credit, card=card)
            if invoice is not None and self.chance(0.7):
                invoice["matched_transactions_ids"] = [txn["id"]]
                invoice["status"] = "paid"
        if not incoming and kind != "Purchase" and invoice is None and self.chance(0.8):
            # A past bill whose invoice never reached Qonto was uploaded by Well: it is there.
            invoice = self.uploaded_invoice(v, when, amount, number, credit)
        target = self.truth_target(kind, invoice, txn)
        if not incoming:
            if target:
                self.history.append({"type": kind, "object": record, "target": target})
            return
        truth = {
            "type": kind,
            "id": record["Id"],
            "action": "link" if target else "create",
            "target": target,
            "counterparty": {
                "legal_entity": v.legal,
                "tax_id": v.vat or None,
                "domain": v.domain,
                "ledger_account": self.label_of(account),
            },
        }
        self.incoming.append((when, {"type": kind, "object": record}, truth))

    def truth_target(self, kind: str, invoice: Any, txn: Any) -> dict[str, str] | None:
        # A bill is the supplier's invoice, never its payment (matching-eval.md): a bill whose
        # invoice is not in Qonto is uploaded. An expense is its card payment.
        name, obj = ("transaction", txn) if kind == "Purchase" else ("supplier_invoice", invoice)
        return {"type": name, "id": obj["id"]} if obj is not None else None

    def uploaded_invoice(
        self, v: Vendor, when: date, amount: int, number: str, credit: bool
    ) -> dict[str, Any]:
        """The supplier invoice Well uploaded for a bill: its own fields, no OCR errors."""
        total = {"value": f"{Decimal(amount) / 100:.2f}", "currency": v.currency}
        obj: dict[str, Any] = {
            "id": self.uuid(),
            "organization_id": "org-1",
            "status": "to_review",
            "created_at": f"{(when + timedelta(days=2)).isoformat()}T08:00:00.000Z",
            "file_name": f"quickbooks-bill-{number}.pdf",
            "source_type": "integration",
            "source": "integration",
            "invoice_number": number,
            "supplier_name": v.legal,
            "vat_number": v.vat or None,
            "total_amount": total,
            "issue_date": when.isoformat(),
            "due_date": (when + timedelta(days=30)).isoformat(),
            "is_credit_note": credit,
            "matched_transactions_ids": [],
        }
        self.invoices.append(obj)
        return obj

    def invoice_number(self, v: Vendor, when: date) -> str:
        style = self.rng.randint(0, 3)
        n = self.rng.randint(1, 99999)
        return [
            f"INV-{when.year}-{n:05d}",
            f"F{when:%y%m}{n:04d}",
            f"{n:07d}",
            f"{v.name[:3].upper()}{n}",
        ][style]

    def payment_day(self, v: Vendor, when: date) -> date:
        if v.pay in ("card", "fee", "paypal"):
            return when + timedelta(days=self.rng.choice([0, 0, 1, 1, 2, 3]))
        if v.pay == "direct_debit":
            return when + timedelta(days=self.rng.choice([0, 1, 2, 3, 5]))
        return when + timedelta(days=self.rng.choice([0, 2, 7, 14, 28, 30, 30, 31, 45]))

    def qbo_record(
        self,
        v: Vendor,
        kind: str,
        when: date,
        amount: int,
        number: str,
        account: str,
        incoming: bool,
    ) -> dict[str, Any]:
        shown = account
        if incoming and self.chance(0.35):
            shown = "90"  # not coded yet: the usual account must come from history
        rate = {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}.get(v.currency, Decimal(1))
        line = {
            "Id": "1",
            "LineNum": 1,
            "Amount": self.money(amount),
            "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {
                "AccountRef": {"value": shown, "name": self.label_of(shown)},
                "BillableStatus": "NotBillable",
                "TaxCodeRef": {"value": "NON"},
            },
        }
        obj: dict[str, Any] = {
            "Id": self.qid(),
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "TxnDate": when.isoformat(),
            "TotalAmt": self.money(amount),
            "CurrencyRef": {"value": v.currency, "name": v.currency},
            "Line": [line],
            "MetaData": {
                "CreateTime": f"{when.isoformat()}T09:00:00-08:00",
                "LastUpdatedTime": f"{when.isoformat()}T09:00:00-08:00",
            },
        }
        if v.currency != HOME:
            obj["ExchangeRate"] = float(rate)
        vendor_ref = {"value": v.id, "name": v.obj["display"]}
        if kind == "Purchase":
            obj.update(
                {
                    "PaymentType": "CreditCard" if v.pay != "transfer" else "Check",
                    "Credit": False,
                    "AccountRef": {"value": "91", "name": "Qonto"},
                    "EntityRef": {**vendor_ref, "type": "Vendor"},
                }
            )
            if self.chance(0.3):
                obj["DocNumber"] = number
        else:
            obj.update(
                {
                    "VendorRef": vendor_ref,
                    "Balance": 0.0,
                    "APAccountRef": {"value": "92", "name": "Accounts Payable (A/P)"},
                    "DueDate": (when + timedelta(days=30)).isoformat(),
                }
            )
            if self.chance(0.85 if v.style == "supplier" else 0.4):
                obj["DocNumber"] = number
        return obj

    def qonto_invoice(
        self, v: Vendor, when: date, amount: int, number: str, credit: bool
    ) -> dict[str, Any]:
        issue = when
        if when.day <= 12 and self.chance(0.08):
            issue = when.replace(day=when.month, month=when.day)  # OCR read the date US-style
        name = v.legal if self.chance(0.7) else v.name
        name = self.ocr(name.upper() if self.chance(0.3) else name, 0.05)
        tax = amount - (amount * 100 // 120)
        total: Any = {"value": f"{Decimal(amount) / 100:.2f}", "currency": HOME}
        if v.currency != HOME:
            total["currency"] = v.currency
        obj: dict[str, Any] = {
            "id": self.uuid(),
            "organization_id": "org-1",
            "status": "to_review",
            "created_at": f"{(when + timedelta(days=1)).isoformat()}T08:00:00.000Z",
            "updated_at": f"{(when + timedelta(days=1)).isoformat()}T08:00:00.000Z",
            "file_name": f"{v.name.lower().replace(' ', '_')}_{number}.pdf",
            "attachment_id": self.uuid(),
            "source_type": "email",
            "source": "email_forward",
            "invoice_number": self.ocr(number) if self.chance(0.85) else None,
            "supplier_name": name if self.chance(0.95) else None,
            "vat_number": (self.ocr(v.vat, 0.15) if self.chance(0.2) else v.vat)
            if v.vat and self.chance(0.7)
            else None,
            "total_amount": total,
            "total_amount_excluding_taxes": {
                "value": f"{Decimal(amount - tax) / 100:.2f}",
                "currency": total["currency"],
            },
            "total_tax_amount": {
                "value": f"{Decimal(tax) / 100:.2f}",
                "currency": total["currency"],
            },
            "issue_date": issue.isoformat() if self.chance(0.95) else None,
            "due_date": (when + timedelta(days=30)).isoformat(),
            "is_credit_note": credit,
            "matched_transactions_ids": [],
        }
        roll = self.rng.random()
        if roll < 0.04:
            obj["total_amount"] = None  # OCR found no total; net and tax remain
        elif roll < 0.06:
            obj["total_amount"] = obj["total_amount_excluding_taxes"] = None
        self.invoices.append(obj)
        return obj

    def bank_label(self, v: Vendor, number: str) -> str:
        name = v.name.upper()
        if v.pay == "direct_debit":
            return self.rng.choice([f"PRLV SEPA {v.legal.upper()}", f"PRLV SEPA {name} {number}"])
        if v.pay == "paypal":
            return f"PAYPAL *{name.replace(' ', '')[:14]}"
        if v.pay == "card":
            return self.rng.choice(
                [
                    f"CB {name}",
                    f"CB {name[:12]} {self.rng.randint(1, 28):02d}/{self.rng.randint(1, 12):02d}",
                    f"CARTE X{self.rng.randint(1000, 9999)} {name}",
                ]
            )
        if v.pay == "fee":
            return "Qonto fee" if v.name == "Qonto" else f"FRAIS {name}"
        return self.rng.choice([f"VIR SEPA {v.legal.upper()}", f"{v.legal}", f"VIR {name}"])

    def qonto_transaction(
        self, v: Vendor, paid: date, amount: int, number: str, credit: bool, card: bool = False
    ) -> dict[str, Any]:
        eur = amount
        local = None
        if v.currency != HOME:
            rate = {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}[v.currency]
            rate *= Decimal(1) + Decimal(self.rng.randint(-15, 15)) / 1000
            eur = int((Decimal(amount) * rate).quantize(Decimal(1), ROUND_HALF_UP))
            local = amount
        label = f"CB {v.name.upper()}" if card else self.bank_label(v, number)
        if v.pay == "transfer" and not card and self.chance(0.1):
            eur += self.rng.choice([-100, 100, -50])  # short payment or bank charge
        reference = number if v.pay == "transfer" and self.chance(0.6) else None
        stamp = f"{paid.isoformat()}T1{self.rng.randint(0, 9)}:00:00.000Z"
        obj = {
            "id": self.uuid(),
            "transaction_id": f"acme-{self.rng.randint(1, 10**6)}",
            "amount": self.money(eur),
            "amount_cents": eur,
            "currency": HOME,
            "local_amount": self.money(local if local is not None else eur),
            "local_amount_cents": local if local is not None else eur,
            "local_currency": v.currency,
            "side": "credit" if credit else "debit",
            "operation_type": {
                "direct_debit": "direct_debit",
                "card": "card",
                "fee": "qonto_fee",
                "paypal": "card",
            }.get("card" if card else v.pay, "transfer"),
            "status": "completed",
            "label": label,
            "clean_counterparty_name": v.name if self.chance(0.4) else None,
            "reference": reference,
            "note": None,
            "emitted_at": stamp,
            "settled_at": stamp,
            "created_at": stamp,
            "updated_at": stamp,
            "attachment_ids": [],
            "bank_account_id": "acct-1",
            "vat_amount_cents": None,
        }
        self.transactions.append(obj)
        return obj

    def noise(self) -> None:
        """Entries with no QuickBooks record: shops, incomes, transfers, unbooked invoices."""
        days = HISTORY_DAYS + INCOMING_DAYS
        while len(self.invoices) + len(self.transactions) < self.target_entries:
            when = START + timedelta(days=self.rng.randint(0, days - 1))
            amount = self.rng.choice([self.rng.randint(100, 30000), 2900, 4900, 9900, 12000])
            if self.chance(0.12):
                fake = Vendor(
                    id="0",
                    name=self.rng.choice(MERCHANTS).title(),
                    form="SAS",
                    country="FR",
                    vat=self.make_vat("FR"),
                    domain="",
                    style="supplier",
                    account="1",
                )
                self.qonto_invoice(fake, when, amount, self.invoice_number(fake, when), False)
                continue
            merchant = self.rng.choice(MERCHANTS)
            fake = Vendor(
                id="0",
                name=merchant,
                form="",
                country="FR",
                vat="",
                domain="",
                style="card",
                account="1",
                pay=self.rng.choice(["card", "transfer", "direct_debit"]),
            )
            txn = self.qonto_transaction(fake, when, amount, "", self.chance(0.25))
            if txn["side"] == "credit":
                txn["operation_type"] = "income"

    def malformed(self) -> None:
        """A few incoming records as real exports sometimes are: no total, no date, no vendor."""
        for _when, wrapped, _truth in self.rng.sample(
            self.incoming, max(1, len(self.incoming) // 200)
        ):
            obj = wrapped["object"]
            broken = self.rng.choice(["TotalAmt", "TxnDate", "VendorRef"])
            if broken == "VendorRef" and wrapped["type"] == "Purchase":
                broken = "EntityRef"  # an expense names its payee there, not in VendorRef
            obj.pop(broken, None)
            if broken == "TotalAmt":
                obj["Line"] = []
            # The truth stays: a field lost in an export does not change which document this
            # is. The engine must not post such a record alone (a gate), but may still find it.

    def build(self) -> None:
        self.make_accounts()
        self.make_vendors(max(30, self.target_incoming // 7))
        for v in self.vendors:
            v.obj["display"] = self.vendor_object(v)["DisplayName"]
        self.simulate()
        self.rng.shuffle(self.incoming)
        self.incoming = self.incoming[: self.target_incoming]
        self.noise()

    def write(self, out: Path) -> None:
        """Write the folder format and truth.jsonl."""
        (out / "quickbooks").mkdir(parents=True, exist_ok=True)
        (out / "qonto").mkdir(parents=True, exist_ok=True)
        vendors = []
        for v in self.vendors:
            obj = self.vendor_object(v)
            obj["DisplayName"] = obj["PrintOnCheckName"] = v.obj["display"]
            vendors.append(obj)
        _dump(out / "quickbooks" / "vendors.jsonl", vendors)
        _dump(out / "quickbooks" / "accounts.jsonl", self.accounts)
        _dump(out / "history.jsonl", self.history)
        _dump(out / "qonto" / "supplier_invoices.jsonl", self.invoices)
        _dump(out / "qonto" / "transactions.jsonl", self.transactions)
        incoming = sorted(self.incoming, key=lambda item: item[0])
        _dump(out / "incoming.jsonl", [wrapped for _, wrapped, _ in incoming])
        _dump(out / "truth.jsonl", [truth for _, _, truth in incoming])


def _dump(path: Path, rows: list[Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def generate(out: Path | str, seed: int = 7, incoming: int = 2000, entries: int = 20000) -> Path:
    """Generate one labelled dataset folder; the same seed gives the same bytes."""
    books = Books(seed, incoming, entries)
    books.build()
    books.malformed()
    books.write(Path(out))
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--incoming", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=20000)
    args = parser.parse_args(argv)
    generate(args.out, args.seed, args.incoming, args.entries)
    print(json.dumps({"out": str(args.out), "seed": args.seed}))


if __name__ == "__main__":
    main()
