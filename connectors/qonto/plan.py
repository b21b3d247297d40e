"""What the Qonto organization's price plan lets Well read, recorded on the connection.

`GET /v2/supplier_invoices` "is available for all Qonto price plans except Solo basic"
(https://docs.qonto.com/api-reference/business-api/expense-management/supplier-invoices/list-supplier-invoices);
uploading (`POST /v2/supplier_invoices/bulk`) is "available for all Qonto price plans"
(https://docs.qonto.com/api-reference/business-api/expense-management/supplier-invoices/create-supplier-invoices).
Well learns the plan from the list's answer: a 403 that is not a missing scope means the plan
does not include it. On such a plan Well verifies each upload from the bulk answer and the
per-invoice read, reads the invoices it uploaded one by one, and never resends an upload whose
outcome it cannot check (docs/connections.md, "Qonto plans").
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from connectors.models import Connection
from well.http import ProviderError

# A plan can be upgraded: the list is tried again after this long.
RECHECK_AFTER = timedelta(hours=24)
LIMITED_DETAIL = (
    "Qonto answered that the organization's price plan (Solo Basic) does not include the list "
    "of supplier invoices."
)


def is_plan_refusal(exc: ProviderError) -> bool:
    """A 403 on the list that is not a missing OAuth scope (that one asks to reconnect)."""
    return exc.status == 403 and "scope" not in (exc.message or "").lower()


def list_worth_trying(connection: Connection) -> bool:
    """True unless the list was refused by the plan less than RECHECK_AFTER ago."""
    if connection.supplier_invoice_list_available is not False:
        return True
    checked = connection.plan_checked_at
    return checked is None or timezone.now() - checked >= RECHECK_AFTER


def plan_record(connection: Connection, *, list_available: bool, detail: str = "") -> None:
    """Record what the list answered (no-op write when nothing changed but the time)."""
    values = {
        "supplier_invoice_list_available": list_available,
        "plan_checked_at": timezone.now(),
        "plan_detail": (detail if not list_available else "")[:500],
    }
    Connection.objects.filter(pk=connection.pk).update(**values)
    for name, value in values.items():
        setattr(connection, name, value)
