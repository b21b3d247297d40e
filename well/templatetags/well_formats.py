"""{% load well_formats %}: money, dates, times and percentages in the person's language."""

from __future__ import annotations

from django import template

from well import formats

register = template.Library()


@register.filter
def money(amount, currency="EUR") -> str:
    """{{ record.total_amount|money:record.currency }} -> "1 284,00 €" / "€1,284.00"."""
    return formats.money(amount, currency)


@register.filter
def num(value, digits=2) -> str:
    return formats.number(value, digits=int(digits))


@register.filter
def pct(fraction) -> str:
    """{{ 0.85|pct }} -> "85 %" / "85%"."""
    return formats.percent(fraction)


@register.filter
def day(value) -> str:
    """{{ record.issue_date|day }} -> "22 avr. 2026" / "Apr 22, 2026"."""
    return formats.day(value)


@register.filter
def short_day(value) -> str:
    return formats.short_day(value)


@register.filter
def when(value, seconds="") -> str:
    """{{ event.created_at|when }} -> "22 avr. 2026, 14:35 CEST" (the workspace's zone)."""
    return formats.when(value, seconds=bool(seconds))


@register.simple_tag
def zone_label() -> str:
    return formats.zone_label()
