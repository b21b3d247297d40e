"""The QuickBooks company itself (CompanyInfo), VAT rates of lines, and the documents' language.

The company is the customer on every supplier invoice Well draws; its country and languages
give the language of those documents when the workspace has none of its own.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings

from connectors.pdf import Party, language_of
from connectors.quickbooks.extract import Malformed, address_text
from connectors.quickbooks.models import SourceRecord
from well.models import Workspace

# Countries whose invoices are written in French when nothing else says which language.
FRENCH_COUNTRIES = frozenset({"FR", "BE", "LU", "MC", "FRANCE"})


def company_info(workspace_id: int) -> dict:
    row = (
        SourceRecord.objects.for_workspace(workspace_id)
        .filter(entity_type="CompanyInfo", deleted=False)
        .only("payload")
        .first()
    )
    return row.payload if row is not None and isinstance(row.payload, dict) else {}


def company_party(workspace_id: int) -> Party | None:
    """The customer block: the company's name, legal name and address, from CompanyInfo."""
    info = company_info(workspace_id)
    name = str(info.get("CompanyName") or info.get("LegalName") or "").strip()
    if not name:
        return None
    try:
        address = address_text(info.get("LegalAddr") or info.get("CompanyAddr"), "CompanyAddr")
    except Malformed:
        address = ""
    return Party(
        name=name,
        legal_name=str(info.get("LegalName") or "").strip(),
        address=tuple(line for line in address.split("\n") if line),
    )


def document_language(workspace_id: int) -> str:
    """The language of the documents Well draws for a workspace: 'fr' or 'en'.

    The workspace's own language when it has one (a `language` field), else the QuickBooks
    company's (SupportedLanguages, then its country), else the site's default.
    """
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    own = getattr(workspace, "language", "") if workspace is not None else ""
    if own:
        return language_of(own)
    info = company_info(workspace_id)
    languages = str(info.get("SupportedLanguages") or "").split(",")
    if languages[0].strip():
        return language_of(languages[0].strip())
    if str(info.get("Country") or "").strip().upper() in FRENCH_COUNTRIES:
        return "fr"
    return language_of(settings.LANGUAGE_CODE)


def _decimal(value) -> Decimal | None:
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def tax_code_rates(workspace_id: int) -> dict[str, Decimal]:
    """Purchase VAT rate (percent) of each TaxCode Id, from the TaxCode and TaxRate rows."""
    rows = SourceRecord.objects.for_workspace(workspace_id).filter(
        entity_type__in=("TaxCode", "TaxRate"), deleted=False
    )
    rates: dict[str, Decimal] = {}
    codes: dict[str, list[str]] = {}
    for row in rows.only("entity_type", "qbo_id", "payload"):
        payload = row.payload if isinstance(row.payload, dict) else {}
        if row.entity_type == "TaxRate":
            value = _decimal(payload.get("RateValue"))
            if value is not None:
                rates[row.qbo_id] = value
        else:
            details = (payload.get("PurchaseTaxRateList") or {}).get("TaxRateDetail") or []
            codes[row.qbo_id] = [
                str((d.get("TaxRateRef") or {}).get("value"))
                for d in details
                if isinstance(d, dict) and isinstance(d.get("TaxRateRef"), dict)
            ]
    found: dict[str, Decimal] = {}
    for code, rate_ids in codes.items():
        values = [rates[r] for r in rate_ids if r in rates]
        if values:
            found[code] = sum(values, Decimal(0))
    return found


def vat_by_rate(payload: dict) -> list[tuple[Decimal | None, Decimal, Decimal | None]]:
    """(rate, VAT amount, amount taxed) per TxnTaxDetail.TaxLine, as QuickBooks computed them."""
    detail = payload.get("TxnTaxDetail")
    lines = detail.get("TaxLine") if isinstance(detail, dict) else None
    found = []
    for line in lines if isinstance(lines, list) else []:
        if not isinstance(line, dict):
            continue
        amount = _decimal(line.get("Amount"))
        info = line.get("TaxLineDetail") if isinstance(line.get("TaxLineDetail"), dict) else {}
        if amount is None:
            continue
        found.append(
            (_decimal(info.get("TaxPercent")), amount, _decimal(info.get("NetAmountTaxable")))
        )
    return found
