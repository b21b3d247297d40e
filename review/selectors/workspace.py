"""The settings page's other reads: the members, and the per-vendor rules with their vendors."""

from __future__ import annotations

from connectors.quickbooks.models import SourceRecord
from matching.models import VendorRule
from well.models import Membership, Workspace


def workspace_members(*, workspace: Workspace | int):
    """The workspace's members with their users, owners first."""
    return (
        Membership.objects.for_workspace(workspace)
        .select_related("user")
        .order_by("role", "user__email")
    )


def vendor_rules(*, workspace: Workspace | int):
    """The workspace's per-vendor overrides."""
    return VendorRule.objects.for_workspace(workspace).order_by("vendor_name", "vendor_qbo_id")


def vendors_for_rules(*, workspace: Workspace | int) -> list[tuple[str, str]]:
    """QuickBooks vendors as (id, name) choices."""
    rows = (
        SourceRecord.objects.for_workspace(workspace)
        .filter(entity_type="Vendor", deleted=False)
        .values_list("qbo_id", "payload")
    )
    return sorted(
        ((qbo_id, p.get("DisplayName") or p.get("CompanyName") or qbo_id) for qbo_id, p in rows),
        key=lambda v: v[1].lower(),
    )
