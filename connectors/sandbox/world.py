"""A deterministic, seeded "world": one small French company as QuickBooks and Qonto see it.

`build_world(seed=1, bills=200, now=None)` returns a `World` with
- `quickbooks`: {"realm_id", "entities": {EntityName: [records as QBO returns them]},
  "documents": {attachable_id: spec for `documents.render_pdf`}} → `QuickBooksSandbox.seed`;
- `qonto`: {"organization", "supplier_invoices", "transactions"} shaped as Qonto's API returns
  them (qonto-api.md §4.5, §5.1, §5.3) → `QontoSandbox.seed(**world.qonto)`;
- `qonto_documents`: {qonto attachment_id: document spec} for supplier invoices already in Qonto;
- `truth`: which Qonto transaction(s) / supplier invoice correspond to which QBO record, and
  `vendor_truth`: each vendor's unmasked VAT number and legal name (QBO masks TaxIdentifier, §4.3).

Same seed and same `now` give the same world. Dates are relative to `now` (default: the current
minute) so that recent changes fall inside QBO's 30-day CDC window (§3.6).
PDFs are not rendered here: the sandboxes render a spec when a file is downloaded.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from stdnum import iban as iban_module
from stdnum import luhn
from stdnum.fr import tva
from stdnum.gb import vat as gb_vat
from stdnum.ie import vat as ie_vat

from connectors.sandbox.qbo_query import format_qbo_datetime

HOME = "EUR"
CURRENCY_NAMES = {"EUR": "Euro", "USD": "United States Dollar", "GBP": "British Pound Sterling"}
QONTO_BANK_CODE, QONTO_BRANCH, QONTO_BIC = "16958", "00001", "QNTOFRP1XXX"


@dataclass(frozen=True)
class VendorProfile:
    """How a supplier bills us and how its payments look on the Qonto statement."""

    legal_name: str
    display_name: str
    website: str
    country: str
    currency: str
    account: str  # PCG expense account code
    style: str  # "sepa_dd" | "transfer" | "card" | "paypal"
    label: str  # merchant label as the bank prints it
    low: float
    high: float
    vat_rate: float
    subscription: bool = False
    city: str = "Paris"
    postal_code: str = "75008"
    street: str = "10 rue de la Paix"
    doc_prefix: str = "INV-"


# Real-looking suppliers of a small Lyon design studio; amounts in the vendor's currency.
CATALOG: tuple[VendorProfile, ...] = (
    VendorProfile(
        "Algolia SAS",
        "Algolia",
        "https://www.algolia.com",
        "FR",
        "EUR",
        "6156",
        "sepa_dd",
        "PRLV SEPA ALGOLIA",
        290,
        290,
        20,
        True,
        "Paris",
        "75009",
        "55 rue d'Amsterdam",
        "ALG-",
    ),
    VendorProfile(
        "OVH SAS",
        "OVHcloud",
        "https://www.ovhcloud.com",
        "FR",
        "EUR",
        "6156",
        "sepa_dd",
        "PRLV SEPA OVH SAS",
        61.19,
        61.19,
        20,
        True,
        "Roubaix",
        "59100",
        "2 rue Kellermann",
        "FR",
    ),
    VendorProfile(
        "Figma, Inc.",
        "Figma",
        "https://www.figma.com",
        "US",
        "USD",
        "6156",
        "card",
        "CB FIGMA",
        75,
        75,
        0,
        True,
        "San Francisco",
        "94107",
        "760 Market Street",
        "FIG-",
    ),
    VendorProfile(
        "Notion Labs, Inc.",
        "Notion",
        "https://www.notion.so",
        "US",
        "USD",
        "6156",
        "paypal",
        "PAYPAL *NOTION",
        48,
        48,
        0,
        True,
        "San Francisco",
        "94110",
        "2300 Harrison Street",
        "NOTION-",
    ),
    VendorProfile(
        "Slack Technologies, LLC",
        "Slack",
        "https://slack.com",
        "US",
        "USD",
        "6156",
        "card",
        "CB SLACK",
        87.5,
        87.5,
        0,
        True,
        "San Francisco",
        "94105",
        "500 Howard Street",
        "SLK",
    ),
    VendorProfile(
        "GitHub, Inc.",
        "GitHub",
        "https://github.com",
        "US",
        "USD",
        "6156",
        "card",
        "CB GITHUB",
        44,
        44,
        0,
        True,
        "San Francisco",
        "94107",
        "88 Colin P Kelly Jr Street",
        "GH-",
    ),
    VendorProfile(
        "Canva Pty Ltd",
        "Canva",
        "https://www.canva.com",
        "US",
        "USD",
        "6156",
        "paypal",
        "PAYPAL *CANVA",
        119.99,
        119.99,
        0,
        True,
        "Sydney",
        "2010",
        "110 Kippax Street",
        "CNV-",
    ),
    VendorProfile(
        "Google Cloud France SARL",
        "Google Workspace",
        "https://workspace.google.com",
        "FR",
        "EUR",
        "6156",
        "sepa_dd",
        "PRLV SEPA GOOGLE CLOUD FRANCE",
        82.8,
        82.8,
        20,
        True,
        "Paris",
        "75009",
        "8 rue de Londres",
        "GCF",
    ),
    VendorProfile(
        "Microsoft Ireland Operations Ltd",
        "Microsoft 365",
        "https://www.microsoft.com",
        "IE",
        "EUR",
        "6156",
        "sepa_dd",
        "PRLV SEPA MICROSOFT IRELAND",
        37.8,
        37.8,
        0,
        True,
        "Dublin",
        "D18 P521",
        "One Microsoft Place",
        "E0",
    ),
    VendorProfile(
        "Adobe Systems Software Ireland Ltd",
        "Adobe",
        "https://www.adobe.com",
        "IE",
        "EUR",
        "6156",
        "card",
        "CB ADOBE",
        71.99,
        71.99,
        20,
        True,
        "Dublin",
        "D24",
        "4-6 Riverwalk, Citywest",
        "IEE",
    ),
    VendorProfile(
        "Orange SA",
        "Orange Business",
        "https://www.orange-business.com",
        "FR",
        "EUR",
        "6262",
        "sepa_dd",
        "PRLV SEPA ORANGE SA",
        54.99,
        54.99,
        20,
        True,
        "Issy-les-Moulineaux",
        "92130",
        "111 quai du Président Roosevelt",
        "OB",
    ),
    VendorProfile(
        "Bureaux Partagés Lyon SAS",
        "Bureaux Partagés Lyon",
        "https://bureaux-partages-lyon.fr",
        "FR",
        "EUR",
        "6132",
        "transfer",
        "BUREAUX PARTAGES LYON",
        1850,
        1850,
        20,
        True,
        "Lyon",
        "69002",
        "24 rue de la République",
        "LOY-",
    ),
    VendorProfile(
        "Alan SA",
        "Alan",
        "https://alan.com",
        "FR",
        "EUR",
        "6161",
        "sepa_dd",
        "PRLV SEPA ALAN SA",
        312.4,
        312.4,
        0,
        True,
        "Paris",
        "75010",
        "117 quai de Valmy",
        "ALAN-",
    ),
    VendorProfile(
        "EDF SA",
        "EDF Entreprises",
        "https://www.edf.fr",
        "FR",
        "EUR",
        "6061",
        "sepa_dd",
        "PRLV SEPA EDF",
        80,
        260,
        20,
        False,
        "Paris",
        "75008",
        "22-30 avenue de Wagram",
        "EDF",
    ),
    VendorProfile(
        "SNCF Voyageurs SA",
        "SNCF Connect",
        "https://www.sncf-connect.com",
        "FR",
        "EUR",
        "6251",
        "card",
        "CB SNCF CONNECT",
        45,
        240,
        10,
        False,
        "Saint-Denis",
        "93200",
        "9 rue Jean-Philippe Rameau",
        "SNCF",
    ),
    VendorProfile(
        "Air France SA",
        "Air France",
        "https://www.airfrance.fr",
        "FR",
        "EUR",
        "6251",
        "card",
        "CB AIR FRANCE",
        120,
        780,
        10,
        False,
        "Tremblay-en-France",
        "95747",
        "45 rue de Paris",
        "AF",
    ),
    VendorProfile(
        "Uber France SAS",
        "Uber",
        "https://www.uber.com",
        "FR",
        "EUR",
        "6251",
        "card",
        "CB UBER *TRIP",
        12,
        64,
        10,
        False,
        "Paris",
        "75009",
        "53 rue de Châteaudun",
        "UBR-",
    ),
    VendorProfile(
        "Cabinet Lefèvre Avocats SELARL",
        "Cabinet Lefèvre Avocats",
        "https://lefevre-avocats.fr",
        "FR",
        "EUR",
        "6226",
        "transfer",
        "CABINET LEFEVRE AVOCATS",
        600,
        4200,
        20,
        False,
        "Lyon",
        "69006",
        "40 cours Franklin Roosevelt",
        "H",
    ),
    VendorProfile(
        "Fiducial Expertise SA",
        "Fiducial",
        "https://www.fiducial.fr",
        "FR",
        "EUR",
        "6226",
        "sepa_dd",
        "PRLV SEPA FIDUCIAL EXPERTISE",
        420,
        420,
        20,
        True,
        "Lyon",
        "69009",
        "41 rue du Capitaine Guynemer",
        "FE",
    ),
    VendorProfile(
        "Manutan SA",
        "Manutan",
        "https://www.manutan.fr",
        "FR",
        "EUR",
        "6064",
        "transfer",
        "MANUTAN SA",
        45,
        640,
        20,
        False,
        "Gonesse",
        "95500",
        "143 boulevard Ballanger",
        "MAN",
    ),
    VendorProfile(
        "Lyreco France SAS",
        "Lyreco",
        "https://www.lyreco.com",
        "FR",
        "EUR",
        "6064",
        "transfer",
        "LYRECO FRANCE",
        30,
        380,
        20,
        False,
        "Marly",
        "59770",
        "rue du 19 mars 1962",
        "LY",
    ),
    VendorProfile(
        "La Poste SA",
        "La Poste",
        "https://www.laposte.fr",
        "FR",
        "EUR",
        "6261",
        "card",
        "CB LA POSTE",
        8,
        95,
        20,
        False,
        "Paris",
        "75015",
        "9 rue du Colonel Pierre Avia",
        "LP",
    ),
    VendorProfile(
        "Welcome to the Jungle SAS",
        "Welcome to the Jungle",
        "https://www.welcometothejungle.com",
        "FR",
        "EUR",
        "6231",
        "transfer",
        "WELCOME TO THE JUNGLE",
        900,
        2400,
        20,
        False,
        "Paris",
        "75002",
        "23 rue de Richelieu",
        "WTTJ-",
    ),
    VendorProfile(
        "Boulangerie Martin SARL",
        "Boulangerie Martin",
        "https://boulangerie-martin.fr",
        "FR",
        "EUR",
        "6257",
        "card",
        "CB BOULANGERIE MARTI",
        9.5,
        85,
        5.5,
        False,
        "Lyon",
        "69002",
        "8 rue Mercière",
        "BM",
    ),
    VendorProfile(
        "Brasserie du Marché SARL",
        "Brasserie du Marché",
        "https://brasseriedumarche.fr",
        "FR",
        "EUR",
        "6257",
        "card",
        "CB BRASSERIE DU MARC",
        38,
        260,
        10,
        False,
        "Lyon",
        "69001",
        "12 place des Terreaux",
        "T",
    ),
    VendorProfile(
        "Imprimerie Dupont & Fils SARL",
        "Imprimerie Dupont",
        "https://imprimerie-dupont.fr",
        "FR",
        "EUR",
        "6236",
        "transfer",
        "IMPRIMERIE DUPONT ET FILS",
        140,
        1900,
        20,
        False,
        "Villeurbanne",
        "69100",
        "55 rue Francis de Pressensé",
        "FA",
    ),
    VendorProfile(
        "Amazon Web Services EMEA SARL",
        "AWS",
        "https://aws.amazon.com",
        "LU",
        "USD",
        "6156",
        "card",
        "CB AWS EMEA",
        30,
        420,
        0,
        False,
        "Luxembourg",
        "L-1855",
        "38 avenue John F. Kennedy",
        "EUINFR",
    ),
    VendorProfile(
        "The Economist Newspaper Ltd",
        "The Economist",
        "https://www.economist.com",
        "GB",
        "GBP",
        "6181",
        "card",
        "CB ECONOMIST.COM",
        21,
        21,
        0,
        True,
        "London",
        "WC2N 6HT",
        "The Adelphi, 1-11 John Adam Street",
        "ECO",
    ),
    VendorProfile(
        "Bloomsbury Publishing Plc",
        "Bloomsbury",
        "https://www.bloomsbury.com",
        "GB",
        "GBP",
        "6181",
        "card",
        "CB BLOOMSBURY",
        18,
        140,
        0,
        False,
        "London",
        "WC1B 3DP",
        "50 Bedford Square",
        "BLM",
    ),
    VendorProfile(
        "Malt Community SAS",
        "Malt",
        "https://www.malt.fr",
        "FR",
        "EUR",
        "6226",
        "transfer",
        "MALT COMMUNITY",
        800,
        6500,
        20,
        False,
        "Paris",
        "75009",
        "6 rue de Provence",
        "MALT-",
    ),
)

_SURNAMES = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Legrand",
    "Garnier",
    "Faure",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Muller",
    "Henry",
    "Roussel",
    "Nicolas",
    "Perrin",
]
_TRADES = (
    ("Boulangerie", "6257", 5.5, 8, 70, "card"),
    ("Traiteur", "6257", 10, 150, 1400, "transfer"),
    ("Plomberie", "6152", 20, 110, 950, "transfer"),
    ("Imprimerie", "6236", 20, 80, 1600, "transfer"),
    ("Nettoyage", "6155", 20, 180, 820, "sepa_dd"),
    ("Transports", "6241", 20, 90, 1300, "transfer"),
    ("Conseil", "6226", 20, 500, 5200, "transfer"),
    ("Fleurs", "6238", 10, 30, 180, "card"),
    ("Menuiserie", "6152", 20, 300, 3800, "transfer"),
    ("Informatique", "6063", 20, 60, 2400, "transfer"),
)
_FORMS = ("SARL", "SAS", "EURL", "SASU", "SA")
_CITIES = (
    ("Lyon", "69003"),
    ("Villeurbanne", "69100"),
    ("Paris", "75011"),
    ("Marseille", "13001"),
    ("Grenoble", "38000"),
    ("Saint-Étienne", "42000"),
    ("Annecy", "74000"),
    ("Dijon", "21000"),
)
_STREETS = (
    "rue Garibaldi",
    "avenue Jean Jaurès",
    "rue de la Charité",
    "cours Vitton",
    "boulevard des Belges",
    "rue Paul Bert",
    "quai Saint-Vincent",
    "rue Ney",
)
_CUSTOMERS = (
    "Maison Durand SA",
    "Groupe Lacroix SAS",
    "Librairie Decitre SAS",
    "Hôtel des Célestins SARL",
    "Vins Chapoutier SA",
    "Fromagerie Mons SAS",
    "Théâtre des Célestins",
    "Biocoop Lyon Sud SCOP",
    "Cabinet d'Architecture Roux SARL",
    "Studio Nébuleuse SAS",
    "Pâtisserie Sébastien Bouillet SARL",
    "Lumen Films SAS",
)

# PCG (plan comptable général) accounts used by the seeded chart of accounts.
EXPENSE_ACCOUNTS = {
    "6061": "Fournitures non stockables (eau, énergie)",
    "6063": "Fournitures d'entretien et petit équipement",
    "6064": "Fournitures administratives",
    "6132": "Locations immobilières",
    "6152": "Entretien et réparations sur biens immobiliers",
    "6155": "Entretien et réparations sur biens mobiliers",
    "6156": "Maintenance (logiciels et abonnements)",
    "6161": "Primes d'assurance multirisque",
    "6181": "Documentation générale",
    "6226": "Honoraires",
    "6231": "Annonces et insertions",
    "6236": "Catalogues et imprimés",
    "6238": "Divers (pourboires, dons courants)",
    "6241": "Transports sur achats",
    "6251": "Voyages et déplacements",
    "6257": "Réceptions",
    "6261": "Frais postaux",
    "6262": "Frais de télécommunications",
    "6278": "Autres frais et commissions bancaires",
}
VAT_RATES = (20.0, 10.0, 5.5, 0.0)


@dataclass
class World:
    """Everything both sandboxes serve, plus the truth the matching team scores against."""

    seed: int
    now: datetime
    quickbooks: dict
    qonto: dict
    qonto_documents: dict = field(default_factory=dict)
    truth: list[dict] = field(default_factory=list)
    vendor_truth: dict[str, dict] = field(default_factory=dict)


def build_world(*, seed: int = 1, bills: int = 200, now: datetime | None = None) -> World:
    """Generate the company's books and bank for `seed` with `bills` supplier bills."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    return _Builder(seed=seed, bills=max(0, int(bills)), now=moment).build()


def _cents(amount: float) -> int:
    return round(amount * 100)


def _money(cents: int) -> float:
    return round(cents / 100, 2)


def _ref(record: dict, name_key: str = "Name") -> dict:
    return {"value": record["Id"], "name": record[name_key]}


class _Builder:
    """Builds one world; every random choice goes through `self.rng` in a fixed order."""

    def __init__(self, *, seed: int, bills: int, now: datetime) -> None:
        self.seed = seed
        self.bills_wanted = bills
        self.now = now
        self.rng = random.Random(f"well-world-{seed}")
        self.next_id = 1
        self.entities: dict[str, list[dict]] = {}
        self.documents: dict[str, dict] = {}
        self.qonto_documents: dict[str, dict] = {}
        self.transactions: list[dict] = []
        self.supplier_invoices: list[dict] = []
        self.truth: list[dict] = []
        self.vendor_truth: dict[str, dict] = {}
        self.tx_counter = 1000

    # ---- small helpers -------------------------------------------------------------------
    def new_id(self) -> str:
        """QBO ids are per-company integers shared across entity types."""
        value = str(self.next_id)
        self.next_id += 1
        return value

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

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

    # ---- build ---------------------------------------------------------------------------
    def build(self) -> World:
        self.realm_id = str(9130_0000_0000_0000 + self.rng.randint(1, 10**12))
        self.company()
        self.tax()
        self.accounts()
        self.items()
        self.vendors()
        self.customers()
        self.bills()
        self.vendor_credits()
        self.purchase_orders()
        self.purchases()
        self.sales()
        self.qonto_org()
        for records in self.entities.values():
            records.sort(key=lambda record: int(record["Id"]) if record["Id"].isdigit() else 0)
        quickbooks = {
            "realm_id": self.realm_id,
            "entities": self.entities,
            "documents": self.documents,
        }
        qonto = {
            "organization": self.organization,
            "supplier_invoices": self.supplier_invoices,
            "transactions": self.transactions,
        }
        return World(
            seed=self.seed,
            now=self.now,
            quickbooks=quickbooks,
            qonto=qonto,
            qonto_documents=self.qonto_documents,
            truth=self.truth,
            vendor_truth=self.vendor_truth,
        )

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
                CurrentBalance=_money(self.rng.randint(2_000_000, 9_000_000)),
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
        trade, account, rate, low, high, style = self.rng.choice(_TRADES)
        surname = self.rng.choice(_SURNAMES)
        form = self.rng.choice(_FORMS)
        city, postal = self.rng.choice(_CITIES)
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
            f"{self.rng.randint(1, 120)} {self.rng.choice(_STREETS)}",
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
        for index, name in enumerate(_CUSTOMERS):
            city, postal = _CITIES[index % len(_CITIES)]
            display = name.rsplit(" ", 1)[0] if name.endswith((*_FORMS, "SCOP")) else name
            record = self.add(
                "Customer",
                {
                    **self.base(
                        self.new_id(), self.now - timedelta(days=self.rng.randint(200, 900))
                    ),
                    "DisplayName": display,
                    "CompanyName": name,
                    "FullyQualifiedName": display,
                    "Active": index != len(_CUSTOMERS) - 1,
                    "Job": False,
                    "BillWithParent": False,
                    "Balance": 0.0,
                    "BalanceWithJobs": 0.0,
                    "Taxable": True,
                    "CurrencyRef": self.currency_ref(HOME),
                    "PrimaryEmailAddr": {"Address": f"compta@client{index + 1}.fr"},
                    "BillAddr": {
                        "Id": self.new_id(),
                        "Line1": f"{self.rng.randint(1, 90)} {self.rng.choice(_STREETS)}",
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
        detail = {"TxnTaxCodeRef": _ref(code["code"]), "TotalTax": _money(tax_cents)}
        detail["TaxLine"] = [
            {
                "Amount": _money(tax_cents),
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": _ref(code["rate"]),
                    "PercentBased": True,
                    "TaxPercent": rate,
                    "NetAmountTaxable": _money(net_cents),
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
                "Amount": _money(cents),
                "Description": description,
            }
            if item_based:
                item = self.rng.choice(self.item_list[:3])
                quantity = max(1, round(cents / max(1, _cents(item["PurchaseCost"]))))
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
            return _cents(profile.low)  # subscriptions: identical every month
        return self.rng.randint(_cents(profile.low), _cents(profile.high))

    def bill(self, profile: VendorProfile, vendor: dict, when: date, number: str) -> dict:
        net = self.net_cents(profile)
        parts = self.amount_lines(profile, net)
        item_based = profile.account in ("6064", "6063") and self.rng.random() < 0.5
        tax = self.tax_lines(profile.vat_rate, net)
        total = net + _cents(tax["TotalTax"])
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
            "TotalAmt": _money(total),
            "Balance": _money(total),
            "TxnTaxDetail": tax,
            "Line": self.expense_lines(profile, parts, item_based),
        }
        if profile.currency != HOME:
            record["HomeBalance"] = _money(round(total * rate))
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
                "unit_price": _money(cents),
                "vat_rate": profile.vat_rate,
                "amount": _money(cents),
            }
            for description, cents in parts
        ]
        subtotal = sum(_cents(line["amount"]) for line in lines)
        vat_total = _cents(record["TxnTaxDetail"]["TotalTax"])
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
            "subtotal": _money(subtotal),
            "vat_total": _money(vat_total),
            "total": _money(subtotal + vat_total),
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

    def debit(
        self, profile: VendorProfile, record: dict, paid_on: date, reference: str | None = None
    ) -> dict:
        """The Qonto statement line for a payment to `profile` (qonto-api.md §5.3)."""
        total = _cents(record["TotalAmt"])
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
            "amount": _money(amount_cents),
            "amount_cents": amount_cents,
            "settled_balance": None,
            "settled_balance_cents": None,
            "attachment_ids": [],
            "local_amount": _money(local_cents),
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
            "vat_amount": _money(vat_cents),
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
            total = net + _cents(tax["TotalTax"])
            self.current_month = when.strftime("%m/%Y")
            parts = [(self.describe(profile), net)]
            created = self.entered(when + timedelta(days=self.rng.randint(0, 6)))
            record = {
                **self.base(self.new_id(), created),
                "PaymentType": "CreditCard",
                "Credit": False,
                "AccountRef": _ref(self.card_account),
                "EntityRef": {**_ref(vendor, "DisplayName"), "type": "Vendor"},
                "TotalAmt": _money(total),
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
            total = net + _cents(tax["TotalTax"])
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
                        "Amount": _money(net),
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
                        "Amount": _money(net),
                        "DetailType": "SubTotalLineDetail",
                        "SubTotalLineDetail": {},
                    },
                ],
                "TxnTaxDetail": tax,
                "TotalAmt": _money(total),
                "HomeTotalAmt": _money(total),
                "Balance": _money(total),
                "HomeBalance": _money(total),
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
        total = _cents(invoice["TotalAmt"])
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

    # ---- Qonto organisation ------------------------------------------------------------
    def qonto_org(self) -> None:
        organization_id = self.uuid()
        accounts = []
        for entry in self.bank_accounts:
            balance_cents = _cents(entry["record"]["CurrentBalance"])
            name = entry["record"]["Name"].removeprefix("Qonto ")
            accounts.append(
                {
                    "id": self.uuid(),
                    "slug": f"atelier-lumiere-bank-account-{len(accounts) + 1}",
                    "name": name,
                    "iban": entry["iban"],
                    "bic": QONTO_BIC,
                    "currency": HOME,
                    "balance": _money(balance_cents),
                    "balance_cents": balance_cents,
                    "authorized_balance": _money(balance_cents),
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


def _utc_of(text: str) -> str:
    """A QBO timestamp (with offset) as a UTC ISO string."""
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()
