"""Which language and time zone a request is shown in (docs/i18n.md)."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import trans_real

SUPPORTED = {code for code, _ in settings.LANGUAGES}


def _supported(code: str | None) -> str | None:
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


def language_chosen(request) -> str | None:
    """The person's own choice (the switcher's cookie), else a language their browser asks for."""
    chosen = _supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
    if chosen:
        return chosen
    for code, _quality in trans_real.parse_accept_lang_header(
        request.headers.get("Accept-Language", "")
    ):
        if code != "*" and (found := _supported(code)):
            return found
    return None


def zone_get(name: str | None) -> zoneinfo.ZoneInfo:
    """The named IANA zone, or Well's default one when the name is empty or unknown."""
    for candidate in (name, settings.WELL_DEFAULT_TIME_ZONE, "UTC"):
        if not candidate:
            continue
        try:
            return zoneinfo.ZoneInfo(candidate)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return zoneinfo.ZoneInfo("UTC")


def workspace_locale_activate(request, workspace) -> None:
    """The workspace's zone always; its language only when the person and browser chose none."""
    timezone.activate(zone_get(workspace.time_zone))
    if language_chosen(request) is None and workspace.language in SUPPORTED:
        translation.activate(workspace.language)
        request.LANGUAGE_CODE = workspace.language
