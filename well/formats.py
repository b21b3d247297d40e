"""Numbers, money, dates and times as the person's language writes them (CLDR data, Babel).

One format per kind and language: "1 284,00 €" / "€1,284.00", "22 avr. 2026" / "Apr 22, 2026",
"85 %" / "85%". Templates use the filters of well/templatetags/formats.py; exports and messages
call these functions. docs/i18n.md shows each format.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from django.utils import timezone, translation

DASH = "—"


def locale_name(language: str | None = None) -> str:
    """Babel's name for a Django language code ("fr" -> "fr_FR", "en" -> "en_US")."""
    code = (language or translation.get_language() or "en").lower()
    return {"fr": "fr_FR", "en": "en_US"}.get(code.split("-")[0], "en_US")


def money(amount, currency: str | None = "EUR", *, language: str | None = None) -> str:
    """An amount with its currency: "1 284,00 €" in French, "€1,284.00" in English."""
    if amount is None or amount == "":
        return DASH
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    code = (currency or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        return number(value, language=language)
    return babel_numbers.format_currency(value, code, locale=locale_name(language))


def number(value, *, digits: int = 2, language: str | None = None) -> str:
    """A decimal number with the language's separators: "1 284,50" / "1,284.50"."""
    if value is None or value == "":
        return DASH
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return babel_numbers.format_decimal(
        Decimal(str(value)), format=pattern, locale=locale_name(language)
    )


def percent(fraction, *, digits: int = 0, language: str | None = None) -> str:
    """A share of one as a percentage: 0.85 -> "85 %" in French, "85%" in English."""
    if fraction is None or fraction == "":
        return DASH
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        return DASH
    if not digits:
        return babel_numbers.format_percent(value, locale=locale_name(language))
    pattern = Locale.parse(locale_name(language)).percent_formats[None].pattern
    pattern = pattern.replace("#,##0", "#,##0." + "0" * digits)
    return babel_numbers.format_percent(value, format=pattern, locale=locale_name(language))


def day(value, *, language: str | None = None) -> str:
    """A date: "22 avr. 2026" in French, "Apr 22, 2026" in English (a datetime: its local day)."""
    if not value:
        return DASH
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    return babel_dates.format_date(value, format="medium", locale=locale_name(language))


def short_day(value, *, language: str | None = None) -> str:
    """A day and month, for dense lists: "22 avr." / "Apr 22"."""
    if not value:
        return DASH
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return babel_dates.format_skeleton("MMMd", value, locale=locale_name(language))


def zone_label(value: dt.datetime | None = None) -> str:
    """The current zone's short name at that moment ("CEST", "UTC")."""
    local = timezone.localtime(value) if value else timezone.localtime()
    return local.tzname() or str(timezone.get_current_timezone())


def when(value, *, seconds: bool = False, language: str | None = None) -> str:
    """A moment in the current zone with the zone's name: "22 avr. 2026, 14:35 CEST"."""
    if not value:
        return DASH
    if not isinstance(value, dt.datetime):
        return day(value, language=language)
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    time_format = "HH:mm:ss" if seconds else "HH:mm"
    if locale_name(language).startswith("en"):
        time_format = "h:mm:ss a" if seconds else "h:mm a"
    text = (
        babel_dates.format_date(local.date(), format="medium", locale=locale_name(language))
        + ", "
        + babel_dates.format_time(local.time(), format=time_format, locale=locale_name(language))
    )
    return f"{text} {local.tzname()}" if timezone.is_aware(value) else text


# --- reading numbers people type ------------------------------------------------------------

_SPACES = re.compile(r"[\s\u00a0\u202f']")


def decimal_parse(text: str) -> Decimal:
    """A number as a person types it, in either language: "0,7", "0.7", "1 284,50",
    "1,284.50", "1.284,50". A lone comma is a decimal comma (as French accountants write);
    where both marks appear, the last one is the decimal mark. Raises ValueError."""
    raw = _SPACES.sub("", str(text or "")).strip()
    if not raw:
        raise ValueError("empty")
    last_comma, last_dot = raw.rfind(","), raw.rfind(".")
    if last_comma >= 0 and last_dot >= 0:
        decimal_mark = "," if last_comma > last_dot else "."
        group_mark = "." if decimal_mark == "," else ","
        raw = raw.replace(group_mark, "").replace(decimal_mark, ".")
    elif raw.count(",") == 1:
        raw = raw.replace(",", ".")
    elif raw.count(",") > 1:
        raw = raw.replace(",", "")  # 1,284,000: commas grouping thousands
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", raw):
        raise ValueError(text)
    try:
        return Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError(text) from exc


def share_parse(text: str) -> Decimal:
    """A threshold as typed: a share of one ("0,85") or a percentage ("85", "85 %")."""
    raw = str(text or "").strip()
    is_percent = raw.endswith("%")
    value = decimal_parse(raw.rstrip("%").strip())
    if is_percent or value > 1:
        value = value / 100
    return value
