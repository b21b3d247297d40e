"""The supplier of a bill, a vendor credit or a purchase: its QuickBooks Vendor, typed.

A Bill only carries `VendorRef` ({value: Id, name: DisplayName}); the name, legal name, address,
VAT number, website and e-mail are on the Vendor. They are copied onto each record of that
vendor, in typed columns (`SUPPLIER_FIELDS`), so that the queue sorts by supplier, the API
answers it and every PDF Well draws prints it:

- when a batch of bills (or vendor credits, purchases) is committed, from the Vendor rows Well
  already holds (the sync reads vendors before transactions);
- when a Vendor is committed (new or changed), onto every record that refers to it;
- when a PDF is drawn, once more from the Vendor row (`supplier_of`), in case a record was
  stored before its vendor.
"""

from __future__ import annotations

from collections.abc import Iterable

from connectors.quickbooks.extract import SUPPLIER_FIELDS
from connectors.quickbooks.models import SourceRecord

# The kinds that have a supplier (VendorRef, or a Purchase's EntityRef of type Vendor).
SUPPLIED_KINDS = ("Bill", "VendorCredit", "Purchase")

# QuickBooks masks TaxIdentifier in its answers: only the last four characters are real
# (quickbooks-api.md §4.3, "XXXXXX1234"). A masked value is kept, never printed as a VAT number.
MASK_CHAR = "X"


def tax_id_is_masked(value: str) -> bool:
    """True for QuickBooks' masked form: a run of at least four X before the visible tail."""
    compact = "".join(value.split())
    return len(compact) > 4 and compact[:-4].strip(MASK_CHAR) == "" and "XXXX" in compact


def _vendor_values(vendor: SourceRecord) -> dict[str, str]:
    return {name: getattr(vendor, name) for name in SUPPLIER_FIELDS}


def vendors_by_id(workspace_id: int, vendor_ids: Iterable[str]) -> dict[str, SourceRecord]:
    ids = {vendor_id for vendor_id in vendor_ids if vendor_id}
    if not ids:
        return {}
    return {
        vendor.qbo_id: vendor
        for vendor in SourceRecord.objects.for_workspace(workspace_id)
        .filter(entity_type="Vendor", qbo_id__in=ids, deleted=False, errored=False)
        .only("qbo_id", *SUPPLIER_FIELDS)
    }


def vendor_ref(payload: dict) -> str:
    """The vendor Id a bill (VendorRef) or a purchase (EntityRef) points at, "" if none."""
    for key in ("VendorRef", "EntityRef"):
        ref = payload.get(key)
        if isinstance(ref, dict) and ref.get("value") is not None:
            return str(ref["value"])[:64]
    return ""


def supplier_fill(fields: dict, vendors: dict[str, SourceRecord]) -> None:
    """Give a record's typed fields (about to be stored) its vendor's supplier block."""
    vendor = vendors.get(fields.get("vendor_qbo_id") or "")
    if vendor is not None:
        fields.update(_vendor_values(vendor))


def suppliers_propagate(vendors: Iterable[SourceRecord]) -> int:
    """Copy each committed vendor's supplier block onto the records that refer to it.

    One UPDATE per vendor; the caller holds the batch's transaction. Returns the rows changed.
    """
    changed = 0
    for vendor in vendors:
        if vendor.entity_type != "Vendor" or vendor.deleted or vendor.errored:
            continue
        values = _vendor_values(vendor)
        changed += (
            SourceRecord.objects.for_workspace(vendor.workspace_id)
            .filter(entity_type__in=SUPPLIED_KINDS, vendor_qbo_id=vendor.qbo_id)
            .exclude(**values)
            .update(**values)
        )
    return changed


def supplier_of(record: SourceRecord) -> dict[str, str]:
    """The record's supplier block, read again from its Vendor row when Well holds it."""
    values = {name: getattr(record, name) for name in SUPPLIER_FIELDS}
    vendor = vendors_by_id(record.workspace_id, [record.vendor_qbo_id]).get(record.vendor_qbo_id)
    if vendor is not None:
        values.update(_vendor_values(vendor))
    return values
