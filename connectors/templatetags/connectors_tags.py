"""The "needs reconnect" banner, shown on the dashboard and the connections page."""

from __future__ import annotations

from django import template

from connectors.selectors import connections_needing_reconnect

register = template.Library()


@register.inclusion_tag("connectors/_reconnect_banner.html", takes_context=True)
def reconnect_banner(context) -> dict:
    request = context["request"]
    workspace = getattr(request, "workspace", None)
    membership = getattr(request, "membership", None)
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "workspace": workspace,
        "is_owner": membership is not None and membership.role == "owner",
        "broken": connections_needing_reconnect(workspace=workspace) if workspace else [],
    }
