"""The QuickBooks side of the world: the company, its accounts, suppliers and customers, and
the bills, purchases, credits, orders and sales its bookkeeper enters (as QBO returns them).

A part of the one builder (sandbox/world/__init__.py): a paid bill also debits the Qonto account
(sandbox/world/qonto.py), in the same order of random draws, so a seed gives the same world.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from stdnum import luhn
from stdnum.fr import tva
from stdnum.gb import vat as gb_vat
from stdnum.ie import vat as ie_vat

from sandbox.qbo_query import format_qbo_datetime
from sandbox.world.catalogue import (
    CATALOG,
    CITIES,
    CURRENCY_NAMES,
    CUSTOMERS,
    EXPENSE_ACCOUNTS,
    FORMS,
    HOME,
    QONTO_BIC,
    STREETS,
    SURNAMES,
    TRADES,
    VAT_RATES,
    VendorProfile,
    as_cents,
    as_money,
)


class QuickBooksBooks:
    """The QuickBooks records of the world (shares the builder's random draws and state)."""

    # ---- small helpers -------------------------------------------------------------------
    def new_id(self) -> str:
        """QBO ids are per-company integers shared across entity types."""
        value = str(self.next_id)
        self.next_id += 1
        return value

    def add(self, entity: str, record: dict) -> dict:
        self.entities.setdefault(entity, []).append(record)
        return record

    def meta(self, created: datetime, updated: datetime | None = None) -> dict:
        """MetaData in Pacific time with offset (§3.3), never in the future."""
        created = min(created, self.now - timedelta(minutes=5))
        updated = min(max(updated or created, created), self.now - timedelta(minutes=1))
        return {
            "CreateTime": format_qbo_datetime(created),
            "LastUpdatedTime": format_qbo_datetime(updated),
        }

    def entered(self, day: date) -> datetime:
        """When the bookkeeper typed a document dated `day`: a working hour in Paris."""
        hour = self.rng.randint(7, 16)  # UTC ≈ 8h-18h in Paris
        return datetime(day.year, day.month, day.day, hour, self.rng.randint(0, 59), tzinfo=UTC)

    def base(self, entity_id: str, created: datetime, updated: datetime | None = None) -> dict:
        return {
            "Id": entity_id,
            "SyncToken": "0" if updated is None else str(self.rng.randint(1, 3)),
            "domain": "QBO",
            "sparse": False,
            "MetaData": self.meta(created, updated),
        }

    def currency_ref(self, code: str) -> dict:
        return {"value": code, "name": CURRENCY_NAMES[code]}

    def fx_rate(self, code: str) -> float:
        """Home-currency units per unit of `code` (§4.13)."""
        if code == "USD":
            return round(self.rng.uniform(0.89, 0.95), 6)
        if code == "GBP":
            return round(self.rng.uniform(1.14, 1.20), 6)
        return 1.0

    # ---- identifiers -------------------------------------------------------------------
    def siren(self) -> str:
        stem = str(self.rng.randint(30_000_000, 99_999_999))
        return stem + luhn.calc_check_digit(stem)

    def fr_vat(self, siren: str) -> str:
        key = (12 + 3 * (int(siren) % 97)) % 97
        number = f"FR{key:02d}{siren}"
        assert tva.is_valid(number)
        return number

    def foreign_vat(self, country: str) -> str:
        if country == "IE":
            stem = str(self.rng.randint(1_000_000, 9_999_999))
            return "IE" + stem + ie_vat.calc_check_digit(stem)
        if country == "GB":
            while True:
                candidate = str(self.rng.randint(100_000_000, 999_999_999))
                if gb_vat.is_valid(candidate):
                    return "GB" + candidate
        if country == "LU":
            stem = self.rng.randint(100_000, 999_999)
            return f"LU{stem:06d}{stem % 89:02d}"
        # Non-EU sellers charge EU VAT under the OSS scheme with an "EU" number.
        return f"EU372{self.rng.randint(100_000, 999_999):06d}"

    def company(self) -> None:
        self.company_siren = self.siren()
        self.company_vat = self.fr_vat(self.company_siren)
        self.company_name = "Atelier Lumière SAS"
        self.company_address = ["18 rue Auguste Comte", "69002 Lyon", "France"]
        started = self.now - timedelta(days=3 * 365)
        address = {
            "Id": "1",
            "Line1": "18 rue Auguste Comte",
            "City": "Lyon",
            "Country": "FR",
            "PostalCode": "69002",
        }
        self.add(
            "CompanyInfo",
            {
                **self.base(self.realm_id, started, self.now - timedelta(days=40)),
                "CompanyName": "Atelier Lumière",
                "LegalName": self.company_name,
                "CompanyAddr": address,
                "LegalAddr": address,
                "CustomerCommunicationAddr": address,
                "Email": {"Address": "compta@atelier-lumiere.fr"},
                "WebAddr": {"URI": "https://atelier-lumiere.fr"},
                "PrimaryPhone": {"FreeFormNumber": "+33 4 78 00 00 00"},
                "Country": "FR",
                "FiscalYearStartMonth": "January",
                "CompanyStartDate": started.date().isoformat(),
                "SupportedLanguages": "fr",
                "DefaultTimeZone": "Europe/Paris",
                "NameValue": [
                    {"Name": "NeoEnabled", "Value": "true"},
                    {"Name": "IndustryType", "Value": "Design Services"},
                    {"Name": "SubscriptionStatus", "Value": "PAID"},
                    {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
                    {"Name": "CompanyType", "Value": "SAS"},
                    {"Name": "SIREN", "Value": self.company_siren},
                ],
            },
        )
        self.add(
            "Preferences",
            {
                **self.base("1", started, self.now - timedelta(days=40)),
                "CurrencyPrefs": {
                    "MultiCurrencyEnabled": True,
                    "HomeCurrency": {"value": HOME},
                },
                "AccountingInfoPrefs": {
                    "UseAccountNumbers": True,
                    "TrackDepartments": False,
                    "ClassTrackingPerTxn": False,
                    "ClassTrackingPerTxnLine": False,
                    "FirstMonthOfFiscalYear": "January",
                    "TaxYearMonth": "January",
                    "CustomerTerminology": "Clients",
                },
                "VendorAndPurchasesPrefs": {
                    "TrackingByCustomer": False,
                    "BillableExpenseTracking": False,
                    "DefaultTerms": {"value": "3"},
                    "DefaultMarkup": 0,
                    "POCustomField": [],
                },
                "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": True},
                "SalesFormsPrefs": {"AllowDeposit": False, "AllowDiscount": True},
                "TimeTrackingPrefs": {"UseServices": False},
            },
        )

    def tax(self) -> None:
        self.tax_codes: dict[float, dict] = {}
        agency = {"value": "1", "name": "Direction générale des Finances publiques"}
        created = self.now - timedelta(days=3 * 365)
        for rate in VAT_RATES:
            label = f"{rate:g}".replace(".", ",")
            rate_record = self.add(
                "TaxRate",
                {
                    **self.base(self.new_id(), created),
                    "Name": f"TVA {label} %",
                    "Description": f"TVA déductible {label} %",
                    "Active": True,
                    "RateValue": rate,
                    "AgencyRef": agency,
                    "SpecialTaxType": "ZERO_RATE" if rate == 0 else "NONE",
                    "DisplayType": "ReadOnly",
                },
            )
            code = self.add(
                "TaxCode",
                {
                    **self.base(self.new_id(), created),
                    "Name": f"TVA {label} %" if rate else "Exonéré",
                    "Description": f"TVA {label} %" if rate else "Exonéré ou hors champ",
                    "Active": True,
                    "Hidden": False,
                    "Taxable": rate > 0,
                    "TaxGroup": False,
                    "SalesTaxRateList": {"TaxRateDetail": []},
                    "PurchaseTaxRateList": {
                        "TaxRateDetail": [
                            {
                                "TaxRateRef": _ref(rate_record),
                                "TaxTypeApplicable": "TaxOnAmount",
                                "TaxOrder": 0,
                            }
                        ]
                    },
                },
            )
            self.tax_codes[rate] = {"code": code, "rate": rate_record}
        # A retired rate, to exercise the Active filter on TaxRate (§3.5).
        self.add(
            "TaxRate",
            {
                **self.base(self.new_id(), created, created + timedelta(days=30)),
                "Name": "TVA 19,6 % (ancien taux)",
                "Active": False,
                "RateValue": 19.6,
                "AgencyRef": agency,
                "SpecialTaxType": "NONE",
                "DisplayType": "ReadOnly",
            },
        )

    def account(
        self,
        name: str,
        account_type: str,
        sub_type: str,
        classification: str,
        number: str | None = None,
        **extra: object,
    ) -> dict:
        record = {
            **self.base(self.new_id(), self.now - timedelta(days=3 * 365)),
            "Name": name,
            "FullyQualifiedName": name,
            "SubAccount": False,
            "Active": True,
            "Classification": classification,
            "AccountType": account_type,
            "AccountSubType": sub_type,
            "CurrentBalance": 0.0,
            "CurrentBalanceWithSubAccounts": 0.0,
            "CurrencyRef": self.currency_ref(HOME),
        }
        if number:
            record["AcctNum"] = number
        record.update(extra)
        return self.add("Account", record)

    def accounts(self) -> None:
        self.bank_accounts = []
        for name, sub_type, main in (
            ("Qonto Compte principal", "Checking", True),
            ("Qonto Réserve", "Savings", False),
        ):
            iban, account_number = self.french_iban()
            record = self.account(
                name,
                "Bank",
                sub_type,
                "Asset",
                account_number,
                Description=f"IBAN {iban}",
                BankNum=QONTO_BIC,
                CurrentBalance=as_money(self.rng.randint(2_000_000, 9_000_000)),
            )
            self.bank_accounts.append(
                {"record": record, "iban": iban, "number": account_number, "main": main}
            )
        self.main_bank = self.bank_accounts[0]["record"]
        self.card_account = self.account(
            "Carte Qonto Mastercard", "Credit Card", "CreditCard", "Liability"
        )
        self.ap_account = self.account(
            "Fournisseurs", "Accounts Payable", "AccountsPayable", "Liability", "401000"
        )
        self.ar_account = self.account(
            "Clients", "Accounts Receivable", "AccountsReceivable", "Asset", "411000"
        )
        self.income_account = self.account(
            "Prestations de services", "Income", "ServiceFeeIncome", "Revenue", "706000"
        )
        self.account(
            "TVA à décaisser", "Other Current Liability", "GlobalTaxPayable", "Liability", "445510"
        )
        self.account("Capital social", "Equity", "OwnersEquity", "Equity", "101000")
        self.expense_accounts = {
            code: self.account(name, "Expense", "OtherMiscellaneousServiceCost", "Expense", code)
            for code, name in EXPENSE_ACCOUNTS.items()
        }
        retired = self.account("Téléphone fixe (ancien)", "Expense", "Utilities", "Expense", "6263")
        retired["Active"] = False
        retired["Name"] = retired["FullyQualifiedName"] = "Téléphone fixe (ancien) (deleted)"

    def items(self) -> None:
        self.item_list = []
        for name, code, price in (
            ("Ramette papier A4", "6064", 5.9),
            ("Cartouche d'encre", "6064", 34.0),
            ("Écran 27 pouces", "6063", 289.0),
            ("Heure de conseil", "6226", 120.0),
        ):
            expense = self.expense_accounts[code]
            self.item_list.append(
                self.add(
                    "Item",
                    {
                        **self.base(self.new_id(), self.now - timedelta(days=700)),
                        "Name": name,
                        "FullyQualifiedName": name,
                        "Active": True,
                        "Type": "NonInventory",
                        "PurchaseCost": price,
                        "ExpenseAccountRef": _ref(expense),
                        "IncomeAccountRef": _ref(self.income_account),
                        "Taxable": True,
                    },
                )
            )
        self.add(
            "Item",
            {
                **self.base(self.new_id(), self.now - timedelta(days=700)),
                "Name": "Prestation de design",
                "FullyQualifiedName": "Prestation de design",
                "Active": True,
                "Type": "Service",
                "UnitPrice": 650.0,
                "IncomeAccountRef": _ref(self.income_account),
                "Taxable": True,
            },
        )
        self.sales_item = self.entities["Item"][-1]

    def extra_vendor(self, index: int) -> VendorProfile:
        trade, account, rate, low, high, style = self.rng.choice(TRADES)
        surname = self.rng.choice(SURNAMES)
        form = self.rng.choice(FORMS)
        city, postal = self.rng.choice(CITIES)
        slug = f"{trade}-{surname}".lower().replace("é", "e").replace("è", "e")
        legal = f"{trade} {surname} {form}"
        label = legal.upper().replace("É", "E").replace("È", "E")
        if style == "card":
            label = "CB " + label[:17]
        elif style == "sepa_dd":
            label = "PRLV SEPA " + label
        return VendorProfile(
            legal,
            f"{trade} {surname}" + (f" ({index})" if index % 7 == 0 else ""),
            f"https://www.{slug}.fr",
            "FR",
            "EUR",
            account,
            style,
            label,
            low,
            high,
            rate,
            False,
            city,
            postal,
            f"{self.rng.randint(1, 120)} {self.rng.choice(STREETS)}",
            self.rng.choice(("F", "FA-", "FAC", "")),
        )

    def vendors(self) -> None:
        wanted = min(400, max(len(CATALOG), self.bills_wanted // 8))
        profiles = list(CATALOG)
        seen = {profile.legal_name for profile in profiles}
        attempts = 0
        while len(profiles) < wanted and attempts < wanted * 20:
            attempts += 1
            profile = self.extra_vendor(len(profiles))
            if profile.legal_name not in seen:
                seen.add(profile.legal_name)
                profiles.append(profile)
        self.vendor_list: list[tuple[VendorProfile, dict]] = []
        for profile in profiles:
            self.vendor_list.append((profile, self.vendor(profile)))
        # One supplier the company stopped using: inactive, hidden from plain queries (§3.5).
        retired = self.vendor(self.extra_vendor(1))
        retired["Active"] = False
        retired["DisplayName"] += " (deleted)"

    def vendor(self, profile: VendorProfile) -> dict:
        siren = self.siren() if profile.country == "FR" else ""
        vat = self.fr_vat(siren) if siren else self.foreign_vat(profile.country)
        created = self.now - timedelta(days=self.rng.randint(400, 1000))
        domain = profile.website.split("//")[-1].removeprefix("www.")
        record = {
            **self.base(self.new_id(), created),
            "Active": True,
            "DisplayName": profile.display_name,
            "CompanyName": profile.legal_name,
            "PrintOnCheckName": profile.legal_name,
            "PrimaryEmailAddr": {"Address": f"billing@{domain}"},
            "WebAddr": {"URI": profile.website},
            "BillAddr": {
                "Id": self.new_id(),
                "Line1": profile.street,
                "City": profile.city,
                "PostalCode": profile.postal_code,
                "Country": profile.country,
            },
            # Only the last four characters are ever shown (§4.3).
            "TaxIdentifier": "X" * (len(vat) - 4) + vat[-4:],
            "Balance": 0.0,
            "Vendor1099": False,
            "CurrencyRef": self.currency_ref(profile.currency),
            "APAccountRef": _ref(self.ap_account),
        }
        iban = self.vendor_iban(profile.country) if profile.style == "transfer" else ""
        if siren:
            record["BusinessNumber"] = siren
        self.vendor_truth[record["Id"]] = {
            "legal_name": profile.legal_name,
            "vat_number": vat,
            "siren": siren or None,
            "iban": iban or None,
            "website": profile.website,
            "bank_label": profile.label,
        }
        self.vendor_profiles = getattr(self, "vendor_profiles", {})
        self.vendor_profiles[record["Id"]] = {"profile": profile, "vat": vat, "iban": iban}
        self.profiles_by_name = getattr(self, "profiles_by_name", {})
        self.profiles_by_name[profile.legal_name] = self.vendor_profiles[record["Id"]]
        return self.add("Vendor", record)

    def customers(self) -> None:
        self.customer_list = []
        for index, name in enumerate(CUSTOMERS):
            city, postal = CITIES[index % len(CITIES)]
            display = name.rsplit(" ", 1)[0] if name.endswith((*FORMS, "SCOP")) else name
            record = self.add(
                "Customer",
                {
                    **self.base(
                        self.new_id(), self.now - timedelta(days=self.rng.randint(200, 900))
                    ),
                    "DisplayName": display,
                    "CompanyName": name,
                    "FullyQualifiedName": display,
                    "Active": index != len(CUSTOMERS) - 1,
                    "Job": False,
                    "BillWithParent": False,
                    "Balance": 0.0,
                    "BalanceWithJobs": 0.0,
                    "Taxable": True,
                    "CurrencyRef": self.currency_ref(HOME),
                    "PrimaryEmailAddr": {"Address": f"compta@client{index + 1}.fr"},
                    "BillAddr": {
                        "Id": self.new_id(),
                        "Line1": f"{self.rng.randint(1, 90)} {self.rng.choice(STREETS)}",
                        "City": city,
                        "PostalCode": postal,
                        "Country": "FR",
                    },
                    "PreferredDeliveryMethod": "Email",
                },
            )
            if record["Active"]:
                self.customer_list.append(record)

    # ---- supplier side -----------------------------------------------------------------
    def bill_plan(self) -> list[tuple[VendorProfile, dict, date]]:
        """(vendor, record, date) per bill: monthly subscriptions first, then ad-hoc bills."""
        months = max(12, min(36, self.bills_wanted // 150))
        today = self.now.date()
        plan: list[tuple[VendorProfile, dict, date]] = []
        subscriptions = [(p, v) for p, v in self.vendor_list if p.subscription]
        for profile, vendor in subscriptions:
            day = self.rng.randint(1, 27)
            for back in range(months):
                year, month = today.year, today.month - back
                while month <= 0:
                    month += 12
                    year -= 1
                when = date(year, month, day)
                if when < today:
                    plan.append((profile, vendor, when))
        self.rng.shuffle(plan)
        plan = plan[: self.bills_wanted // 2 if self.bills_wanted < 2 * len(plan) else len(plan)]
        adhoc = [(p, v) for p, v in self.vendor_list if not p.subscription]
        span = months * 30
        while len(plan) < self.bills_wanted:
            profile, vendor = self.rng.choice(adhoc)
            plan.append((profile, vendor, today - timedelta(days=self.rng.randint(1, span))))
        plan.sort(key=lambda entry: entry[2])
        return plan

    def doc_number(self, profile: VendorProfile, when: date, serial: int) -> str:
        if profile.doc_prefix in ("", "F", "FA-", "FAC"):
            return f"{profile.doc_prefix}{when.year}{serial:05d}"
        return f"{profile.doc_prefix}{when.year}-{serial:06d}"

    def amount_lines(self, profile: VendorProfile, currency_cents: int) -> list[tuple[str, int]]:
        """Split a net amount into 1-3 described lines (subscriptions stay one line)."""
        if profile.subscription or currency_cents < 5000:
            return [(self.describe(profile), currency_cents)]
        count = self.rng.choice((1, 1, 2, 3))
        cuts = sorted(self.rng.randint(1, currency_cents - 1) for _ in range(count - 1))
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, currency_cents], strict=True)]
        return [(self.describe(profile), part) for part in parts if part > 0]

    def describe(self, profile: VendorProfile) -> str:
        names = {
            "6156": "Abonnement {name} - {month}",
            "6132": "Loyer bureaux - {month}",
            "6161": "Cotisation mutuelle - {month}",
            "6226": "Honoraires - {month}",
            "6251": "Déplacement professionnel",
            "6257": "Repas d'affaires",
            "6064": "Fournitures de bureau",
            "6262": "Forfait téléphonie et internet - {month}",
            "6061": "Consommation électricité - {month}",
            "6181": "Abonnement {name}",
        }
        template = names.get(profile.account, "Prestation {name}")
        month = self.current_month
        return template.format(name=profile.display_name, month=month)

    def bills(self) -> None:
        self.bill_records: list[dict] = []
        serials: dict[str, int] = {}
        for profile, vendor, when in self.bill_plan():
            serial = serials.get(vendor["Id"], self.rng.randint(100, 9000)) + self.rng.randint(
                1, 40
            )
            serials[vendor["Id"]] = serial
            self.current_month = when.strftime("%m/%Y")
            self.bill(profile, vendor, when, self.doc_number(profile, when, serial))

    def tax_lines(self, rate: float, net_cents: int) -> dict:
        tax_cents = round(net_cents * rate / 100)
        code = self.tax_codes[rate]
        detail = {"TxnTaxCodeRef": _ref(code["code"]), "TotalTax": as_money(tax_cents)}
        detail["TaxLine"] = [
            {
                "Amount": as_money(tax_cents),
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": _ref(code["rate"]),
                    "PercentBased": True,
                    "TaxPercent": rate,
                    "NetAmountTaxable": as_money(net_cents),
                },
            }
        ]
        return detail

    def expense_lines(
        self, profile: VendorProfile, parts: list[tuple[str, int]], item_based: bool
    ) -> list[dict]:
        lines = []
        tax_ref = _ref(self.tax_codes[profile.vat_rate]["code"])
        for number, (description, cents) in enumerate(parts, start=1):
            line: dict = {
                "Id": str(number),
                "LineNum": number,
                "Amount": as_money(cents),
                "Description": description,
            }
            if item_based:
                item = self.rng.choice(self.item_list[:3])
                quantity = max(1, round(cents / max(1, as_cents(item["PurchaseCost"]))))
                line["DetailType"] = "ItemBasedExpenseLineDetail"
                line["ItemBasedExpenseLineDetail"] = {
                    "ItemRef": _ref(item),
                    "Qty": quantity,
                    "UnitPrice": round(cents / 100 / quantity, 4),
                    "BillableStatus": "NotBillable",
                    "TaxCodeRef": tax_ref,
                }
            else:
                account = (
                    self.expense_accounts.get(profile.account) or self.expense_accounts["6156"]
                )
                line["DetailType"] = "AccountBasedExpenseLineDetail"
                line["AccountBasedExpenseLineDetail"] = {
                    "AccountRef": _ref(account),
                    "BillableStatus": "NotBillable",
                    "TaxCodeRef": tax_ref,
                }
            lines.append(line)
        return lines

    def net_cents(self, profile: VendorProfile) -> int:
        if profile.low == profile.high:
            return as_cents(profile.low)  # subscriptions: identical every month
        return self.rng.randint(as_cents(profile.low), as_cents(profile.high))

    def bill(self, profile: VendorProfile, vendor: dict, when: date, number: str) -> dict:
        net = self.net_cents(profile)
        parts = self.amount_lines(profile, net)
        item_based = profile.account in ("6064", "6063") and self.rng.random() < 0.5
        tax = self.tax_lines(profile.vat_rate, net)
        total = net + as_cents(tax["TotalTax"])
        rate = self.fx_rate(profile.currency)
        terms = 0 if profile.style in ("card", "paypal") else self.rng.choice((0, 15, 30, 30, 45))
        due = when + timedelta(days=terms)
        created = self.entered(when + timedelta(days=self.rng.randint(0, 4)))
        bill_id = self.new_id()
        record = {
            **self.base(bill_id, created),
            "VendorRef": _ref(vendor, "DisplayName"),
            "APAccountRef": _ref(self.ap_account),
            "TxnDate": when.isoformat(),
            "DueDate": due.isoformat(),
            "DocNumber": number,
            "SalesTermRef": {"value": "3"},
            "CurrencyRef": self.currency_ref(profile.currency),
            "ExchangeRate": rate,
            "GlobalTaxCalculation": "TaxExcluded",
            "TotalAmt": as_money(total),
            "Balance": as_money(total),
            "TxnTaxDetail": tax,
            "Line": self.expense_lines(profile, parts, item_based),
        }
        if profile.currency != HOME:
            record["HomeBalance"] = as_money(round(total * rate))
        if self.rng.random() < 0.15:
            record["PrivateNote"] = self.rng.choice(
                ("Validé par Claire", "À refacturer au client", "Voir contrat cadre", "Urgent")
            )
        self.add("Bill", record)
        self.bill_records.append(record)
        spec = self.document_spec(profile, vendor, record, parts, "invoice")
        attachable_id = None
        if self.rng.random() < 0.92:
            attachable_id = self.attach(record, "Bill", spec, created)
        truth = {
            "qbo_entity": "Bill",
            "qbo_id": bill_id,
            "vendor_id": vendor["Id"],
            "doc_number": number,
            "total": record["TotalAmt"],
            "currency": profile.currency,
            "attachable_id": attachable_id,
            "qonto_transaction_ids": [],
            "qonto_supplier_invoice_id": None,
        }
        self.truth.append(truth)
        paid_on = self.payment_date(profile, when, due)
        if paid_on is not None:
            self.pay_bill(profile, vendor, record, paid_on, truth)
        if self.rng.random() < 0.3:
            self.forward_to_qonto(profile, vendor, record, spec, truth, created)
        return record

    def payment_date(self, profile: VendorProfile, when: date, due: date) -> date | None:
        """Card and debit bills are paid at once, transfers around the due date; None: open."""
        today = self.now.date()
        if profile.style in ("card", "paypal", "sepa_dd"):
            paid = when + timedelta(days=self.rng.randint(0, 2))
        else:
            paid = due + timedelta(days=self.rng.randint(-5, 10))
            if self.rng.random() < 0.08:
                return None  # forgotten bill, still open
        return paid if paid < today else None

    def document_spec(
        self,
        profile: VendorProfile,
        vendor: dict,
        record: dict,
        parts: list[tuple[str, int]],
        kind: str,
    ) -> dict:
        truth = self.vendor_profiles[vendor["Id"]]
        currency = record["CurrencyRef"]["value"]
        lines = [
            {
                "description": description,
                "quantity": 1,
                "unit_price": as_money(cents),
                "vat_rate": profile.vat_rate,
                "amount": as_money(cents),
            }
            for description, cents in parts
        ]
        subtotal = sum(as_cents(line["amount"]) for line in lines)
        vat_total = as_cents(record["TxnTaxDetail"]["TotalTax"])
        return {
            "kind": kind,
            "vendor_name": profile.legal_name,
            "vendor_address": [
                profile.street,
                f"{profile.postal_code} {profile.city}",
                {
                    "FR": "France",
                    "US": "United States",
                    "IE": "Ireland",
                    "GB": "United Kingdom",
                    "LU": "Luxembourg",
                }.get(profile.country, profile.country),
            ],
            "vendor_vat": truth["vat"],
            "vendor_website": profile.website,
            "customer_name": self.company_name,
            "customer_address": self.company_address,
            "customer_vat": self.company_vat,
            "number": record.get("DocNumber") or f"R-{record['Id']}",
            "issue_date": record["TxnDate"],
            "due_date": record.get("DueDate") if kind == "invoice" else None,
            "currency": currency,
            "lines": lines,
            "subtotal": as_money(subtotal),
            "vat_total": as_money(vat_total),
            "total": as_money(subtotal + vat_total),
            "iban": truth["iban"] or None,
            "file_name": self.file_name(profile, record, kind),
        }

    def file_name(self, profile: VendorProfile, record: dict, kind: str) -> str:
        stem = profile.display_name.replace(" ", "_").replace("'", "")
        number = (record.get("DocNumber") or record["Id"]).replace("/", "-")
        return f"{'Recu' if kind == 'receipt' else 'Facture'}_{stem}_{number}.pdf"

    def attach(self, record: dict, entity: str, spec: dict, created: datetime) -> str:
        attachable_id = self.new_id()
        self.add(
            "Attachable",
            {
                **self.base(attachable_id, created + timedelta(minutes=1)),
                "FileName": spec["file_name"],
                "ContentType": "application/pdf",
                "Category": "Receipt" if spec["kind"] == "receipt" else "Document",
                "FileAccessUri": f"/v3/company/{self.realm_id}/download/{attachable_id}",
                "AttachableRef": [
                    {
                        "EntityRef": {"type": entity, "value": record["Id"]},
                        "IncludeOnSend": False,
                    }
                ],
            },
        )
        self.documents[attachable_id] = spec
        return attachable_id

    def pay_bill(
        self, profile: VendorProfile, vendor: dict, bill: dict, paid_on: date, truth: dict
    ) -> None:
        by_card = profile.style in ("card", "paypal")
        payment_id = self.new_id()
        created = self.entered(paid_on + timedelta(days=self.rng.randint(0, 3)))
        payment = {
            **self.base(payment_id, created),
            "VendorRef": bill["VendorRef"],
            "PayType": "CreditCard" if by_card else "Check",
            "TotalAmt": bill["TotalAmt"],
            "TxnDate": paid_on.isoformat(),
            "APAccountRef": _ref(self.ap_account),
            "CurrencyRef": bill["CurrencyRef"],
            "ExchangeRate": bill["ExchangeRate"],
            "Line": [
                {
                    "Amount": bill["TotalAmt"],
                    "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}],
                }
            ],
        }
        if by_card:
            payment["CreditCardPayment"] = {"CCAccountRef": _ref(self.card_account)}
        else:
            payment["CheckPayment"] = {
                "BankAccountRef": _ref(self.main_bank),
                "PrintStatus": "NotSet",
            }
            payment["DocNumber"] = f"VIR{paid_on.strftime('%y%m%d')}"
        self.add("BillPayment", payment)
        bill["Balance"] = 0.0
        if "HomeBalance" in bill:
            bill["HomeBalance"] = 0.0
        bill["LinkedTxn"] = [
            {
                "TxnId": payment_id,
                "TxnType": "BillPaymentCreditCard" if by_card else "BillPaymentCheck",
            }
        ]
        bill["SyncToken"] = "1"
        bill["MetaData"] = self.meta(
            datetime.fromisoformat(_utc_of(bill["MetaData"]["CreateTime"])), created
        )
        transaction = self.debit(profile, bill, paid_on, reference=bill.get("DocNumber"))
        truth["bill_payment_id"] = payment_id
        truth["qonto_transaction_ids"].append(transaction["id"])

    def vendor_credits(self) -> None:
        for bill in self.bill_records[::40][: max(1, len(self.bill_records) // 40)]:
            amount = round(bill["TotalAmt"] * self.rng.choice((0.1, 0.25, 0.5)), 2)
            when = date.fromisoformat(bill["TxnDate"]) + timedelta(days=self.rng.randint(3, 20))
            if when >= self.now.date():
                continue
            line = dict(bill["Line"][0])
            line["Amount"] = amount
            self.add(
                "VendorCredit",
                {
                    **self.base(self.new_id(), self.entered(when)),
                    "VendorRef": bill["VendorRef"],
                    "APAccountRef": _ref(self.ap_account),
                    "TxnDate": when.isoformat(),
                    "DocNumber": f"AV-{bill.get('DocNumber', bill['Id'])}",
                    "TotalAmt": amount,
                    "Balance": amount,
                    "CurrencyRef": bill["CurrencyRef"],
                    "ExchangeRate": bill["ExchangeRate"],
                    "PrivateNote": "Avoir commercial",
                    "Line": [line],
                },
            )

    def purchase_orders(self) -> None:
        candidates = [
            bill
            for bill in self.bill_records
            if bill["Line"][0]["DetailType"] == "ItemBasedExpenseLineDetail"
        ]
        for bill in candidates[: max(2, self.bills_wanted // 20)]:
            when = date.fromisoformat(bill["TxnDate"]) - timedelta(days=self.rng.randint(2, 10))
            po_id = self.new_id()
            self.add(
                "PurchaseOrder",
                {
                    **self.base(
                        po_id, self.entered(when), self.entered(date.fromisoformat(bill["TxnDate"]))
                    ),
                    "VendorRef": bill["VendorRef"],
                    "APAccountRef": _ref(self.ap_account),
                    "TxnDate": when.isoformat(),
                    "DocNumber": f"BC-{po_id}",
                    "POStatus": "Closed",
                    "TotalAmt": bill["TotalAmt"],
                    "CurrencyRef": bill["CurrencyRef"],
                    "Line": bill["Line"],
                    "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}],
                },
            )
            bill.setdefault("LinkedTxn", []).append({"TxnId": po_id, "TxnType": "PurchaseOrder"})
        if self.vendor_list:
            profile, vendor = self.vendor_list[min(19, len(self.vendor_list) - 1)]
            when = self.now.date() - timedelta(days=3)
            self.add(
                "PurchaseOrder",
                {
                    **self.base(self.new_id(), self.entered(when)),
                    "VendorRef": _ref(vendor, "DisplayName"),
                    "APAccountRef": _ref(self.ap_account),
                    "TxnDate": when.isoformat(),
                    "POStatus": "Open",
                    "TotalAmt": 240.0,
                    "CurrencyRef": self.currency_ref(profile.currency),
                    "Line": self.expense_lines(profile, [("Commande fournitures", 24000)], True),
                },
            )

    def purchases(self) -> None:
        """Card expenses booked directly (no bill), some with a photographed receipt."""
        card_vendors = [
            (p, v)
            for p, v in self.vendor_list
            if p.style in ("card", "paypal") and not p.subscription
        ]
        if not card_vendors:
            return
        span = max(12, min(36, self.bills_wanted // 150)) * 30
        for _ in range(max(3, int(self.bills_wanted * 0.4))):
            profile, vendor = self.rng.choice(card_vendors)
            when = self.now.date() - timedelta(days=self.rng.randint(0, span))
            net = self.net_cents(profile)
            tax = self.tax_lines(profile.vat_rate, net)
            total = net + as_cents(tax["TotalTax"])
            self.current_month = when.strftime("%m/%Y")
            parts = [(self.describe(profile), net)]
            created = self.entered(when + timedelta(days=self.rng.randint(0, 6)))
            record = {
                **self.base(self.new_id(), created),
                "PaymentType": "CreditCard",
                "Credit": False,
                "AccountRef": _ref(self.card_account),
                "EntityRef": {**_ref(vendor, "DisplayName"), "type": "Vendor"},
                "TotalAmt": as_money(total),
                "TxnDate": when.isoformat(),
                "CurrencyRef": self.currency_ref(profile.currency),
                "ExchangeRate": self.fx_rate(profile.currency),
                "GlobalTaxCalculation": "TaxExcluded",
                "TxnTaxDetail": tax,
                "Line": self.expense_lines(profile, parts, False),
                "PurchaseEx": {
                    "any": [
                        {
                            "name": "{http://schema.intuit.com/finance/v3}NameValue",
                            "declaredType": "com.intuit.schema.finance.v3.NameValue",
                            "scope": "javax.xml.bind.JAXBElement$GlobalScope",
                            "value": {"Name": "TxnType", "Value": "54"},
                            "nil": False,
                            "globalScope": True,
                            "typeSubstituted": False,
                        }
                    ]
                },
            }
            if self.rng.random() < 0.3:
                record["PrivateNote"] = self.rng.choice(
                    ("Déjeuner client", "Salon Maison&Objet", "Mission Paris", "Équipe")
                )
            self.add("Purchase", record)
            attachable_id = None
            if self.rng.random() < 0.6:
                spec = self.document_spec(profile, vendor, record, parts, "receipt")
                attachable_id = self.attach(record, "Purchase", spec, created)
            transaction = self.debit(profile, record, when)
            self.truth.append(
                {
                    "qbo_entity": "Purchase",
                    "qbo_id": record["Id"],
                    "vendor_id": vendor["Id"],
                    "doc_number": None,
                    "total": record["TotalAmt"],
                    "currency": profile.currency,
                    "attachable_id": attachable_id,
                    "qonto_transaction_ids": [transaction["id"]],
                    "qonto_supplier_invoice_id": None,
                }
            )

    # ---- customer side -----------------------------------------------------------------
    def sales(self) -> None:
        span = max(12, min(36, self.bills_wanted // 150)) * 30
        invoices = []
        for index in range(max(5, self.bills_wanted // 4)):
            customer = self.rng.choice(self.customer_list)
            when = self.now.date() - timedelta(days=self.rng.randint(0, span))
            hours = self.rng.randint(2, 30)
            net = hours * 65000 // 10
            tax = self.tax_lines(20.0, net)
            total = net + as_cents(tax["TotalTax"])
            record = {
                **self.base(self.new_id(), self.entered(when)),
                "DocNumber": f"{when.year}-{index + 1:04d}",
                "TxnDate": when.isoformat(),
                "DueDate": (when + timedelta(days=30)).isoformat(),
                "CustomerRef": _ref(customer, "DisplayName"),
                "CurrencyRef": self.currency_ref(HOME),
                "ExchangeRate": 1,
                "ARAccountRef": _ref(self.ar_account),
                "GlobalTaxCalculation": "TaxExcluded",
                "Line": [
                    {
                        "Id": "1",
                        "LineNum": 1,
                        "Amount": as_money(net),
                        "Description": "Direction artistique et design",
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {
                            "ItemRef": _ref(self.sales_item),
                            "Qty": hours,
                            "UnitPrice": 65.0,
                            "TaxCodeRef": _ref(self.tax_codes[20.0]["code"]),
                        },
                    },
                    {
                        "Amount": as_money(net),
                        "DetailType": "SubTotalLineDetail",
                        "SubTotalLineDetail": {},
                    },
                ],
                "TxnTaxDetail": tax,
                "TotalAmt": as_money(total),
                "HomeTotalAmt": as_money(total),
                "Balance": as_money(total),
                "HomeBalance": as_money(total),
                "EmailStatus": "EmailSent",
                "PrintStatus": "NotSet",
                "BillEmail": customer["PrimaryEmailAddr"],
            }
            self.add("Invoice", record)
            invoices.append((record, customer, when))
        for record, customer, when in invoices:
            paid_on = when + timedelta(days=self.rng.randint(5, 45))
            if paid_on < self.now.date() and self.rng.random() < 0.85:
                self.customer_payment(record, customer, paid_on)
        for record, _customer, when in invoices[::15]:
            credit = round(record["TotalAmt"] * 0.1, 2)
            self.add(
                "CreditMemo",
                {
                    **self.base(self.new_id(), self.entered(when + timedelta(days=2))),
                    "DocNumber": f"AV-{record['DocNumber']}",
                    "TxnDate": (when + timedelta(days=2)).isoformat(),
                    "CustomerRef": record["CustomerRef"],
                    "CurrencyRef": record["CurrencyRef"],
                    "Line": [
                        {
                            "Id": "1",
                            "LineNum": 1,
                            "Amount": credit,
                            "Description": "Geste commercial",
                            "DetailType": "SalesItemLineDetail",
                            "SalesItemLineDetail": {
                                "ItemRef": _ref(self.sales_item),
                                "Qty": 1,
                                "UnitPrice": credit,
                            },
                        }
                    ],
                    "TotalAmt": credit,
                    "HomeTotalAmt": credit,
                    "Balance": credit,
                    "RemainingCredit": credit,
                },
            )

    def customer_payment(self, invoice: dict, customer: dict, paid_on: date) -> None:
        payment = {
            **self.base(self.new_id(), self.entered(paid_on + timedelta(days=1))),
            "TxnDate": paid_on.isoformat(),
            "CustomerRef": invoice["CustomerRef"],
            "TotalAmt": invoice["TotalAmt"],
            "UnappliedAmt": 0,
            "DepositToAccountRef": _ref(self.main_bank),
            "ARAccountRef": _ref(self.ar_account),
            "CurrencyRef": invoice["CurrencyRef"],
            "ExchangeRate": 1,
            "PaymentRefNum": f"VIR {invoice['DocNumber']}",
            "Line": [
                {
                    "Amount": invoice["TotalAmt"],
                    "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                }
            ],
        }
        self.add("Payment", payment)
        invoice["Balance"] = invoice["HomeBalance"] = 0.0
        invoice["LinkedTxn"] = [{"TxnId": payment["Id"], "TxnType": "Payment"}]
        total = as_cents(invoice["TotalAmt"])
        transaction = self.qonto_transaction(
            side="credit",
            amount_cents=total,
            local_cents=total,
            local_currency=HOME,
            label=customer["CompanyName"].upper(),
            counterparty=customer["DisplayName"],
            operation_type="income",
            when=paid_on,
            reference=f"Facture {invoice['DocNumber']}",
            card=False,
            vat_rate=0.0,
        )
        self.truth.append(
            {
                "qbo_entity": "Payment",
                "qbo_id": payment["Id"],
                "customer_id": customer["Id"],
                "doc_number": invoice["DocNumber"],
                "total": invoice["TotalAmt"],
                "currency": HOME,
                "attachable_id": None,
                "qonto_transaction_ids": [transaction["id"]],
                "qonto_supplier_invoice_id": None,
            }
        )


def _ref(record: dict, name_key: str = "Name") -> dict:
    return {"value": record["Id"], "name": record[name_key]}


def _utc_of(text: str) -> str:
    """A QBO timestamp (with offset) as a UTC ISO string."""
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()
