"""QuickBooks record kinds and sync triggers in the reader's language."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

ENTITY_WORDS = {
    "Bill": pgettext_lazy("QuickBooks record", "Bill"),
    "Purchase": pgettext_lazy("QuickBooks record", "Purchase"),
    "VendorCredit": pgettext_lazy("QuickBooks record", "Vendor credit"),
    "BillPayment": pgettext_lazy("QuickBooks record", "Bill payment"),
    "Attachable": pgettext_lazy("QuickBooks record", "Attachment"),
    "Vendor": pgettext_lazy("QuickBooks record", "Vendor"),
    "Payment": pgettext_lazy("QuickBooks record", "Customer payment"),
    "Invoice": pgettext_lazy("QuickBooks record", "Sales invoice"),
    "CreditMemo": pgettext_lazy("QuickBooks record", "Credit note"),
    "PurchaseOrder": pgettext_lazy("QuickBooks record", "Purchase order"),
    "Customer": pgettext_lazy("QuickBooks record", "Customer"),
    "Account": pgettext_lazy("QuickBooks record", "Account"),
}

TRIGGER_WORDS = {
    "manual": _("by hand"),
    "onboarding": _("setup"),
    "schedule": _("hourly"),
    "webhook": _("QuickBooks notice"),
    "reimport": _("re-import"),
}


PHASE_WORDS = {
    "reference": _("reading accounts, vendors and tax codes"),
    "query": _("reading records"),
    "cdc": _("reading changes"),
    "sweep": _("checking deletions"),
    "attachments": _("downloading attachments"),
    "done": _("finished"),
}


def phase_words(phase: str) -> str:
    return str(PHASE_WORDS.get(phase, str(phase or "").replace("_", " ")))


def entity_words(entity_type: str) -> str:
    return str(ENTITY_WORDS.get(entity_type, entity_type))


def record_name(record) -> str:
    """A record as the pages name it: "Purchase 1072" (its document number, else its ID)."""
    return f"{entity_words(record.entity_type)} {record.invoice_number or record.qbo_id}"


def trigger_words(trigger: str) -> str:
    return str(TRIGGER_WORDS.get(trigger, str(trigger).replace("_", " ")))


INVOICE_STATUS_WORDS = {
    "to_review": _("to review"),
    "to_pay": _("to pay"),
    "awaiting_payment": _("awaiting payment"),
    "scheduled": _("scheduled"),
    "pending": _("pending"),
    "paid": _("paid"),
    "archived": _("archived"),
    "canceled": _("cancelled"),
}


def invoice_status_words(status: str) -> str:
    return str(INVOICE_STATUS_WORDS.get(status, str(status).replace("_", " ")))
