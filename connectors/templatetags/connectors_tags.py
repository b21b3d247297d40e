"""The "needs reconnect" banner, shown on the dashboard and the connections page."""

from __future__ import annotations

from django import template

from connectors import words
from connectors.qonto.models import PostingState
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


@register.filter
def entity_name(entity_type: str) -> str:
    return words.entity_words(entity_type)


@register.filter
def record_name(record) -> str:
    return words.record_name(record)


@register.filter
def phase_text(phase: str) -> str:
    return words.phase_words(phase)


@register.filter
def trigger_text(trigger: str) -> str:
    return words.trigger_words(trigger)


@register.filter
def posting_state_text(state: str) -> str:
    try:
        return str(PostingState(state).label)
    except ValueError:
        return str(state).replace("_", " ")


@register.filter
def invoice_status_text(status: str) -> str:
    return words.invoice_status_words(status)
