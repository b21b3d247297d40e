"""Typed readers for environment variables; a malformed value stops the start."""

from __future__ import annotations

import base64
import binascii
import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# A development master key, usable only while DEBUG is on: it is public (it is in this file).
DEVELOPMENT_MASTER_KEY = "dev:d2VsbC1kZXZlbG9wbWVudC1tYXN0ZXIta2V5LTAwMDE"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int_list(name: str, default: list[int]) -> list[int]:
    try:
        return [int(item) for item in env_list(name, [str(d) for d in default])]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be comma-separated integers") from exc


def origin_of(url: str) -> str:
    """'https://host[:port]' of a URL (for the content security policy)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _key_bytes(entry: str) -> bytes | None:
    """The secret of an "id:base64url" master-key entry, or None when it does not decode."""
    _, _, encoded = entry.strip().rpartition(":")
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None


def is_development_master_key(entry: str) -> bool:
    """Whether a master-key entry holds the development key's bytes, under any ID or padding."""
    secret = _key_bytes(entry)
    return secret is not None and secret == _key_bytes(DEVELOPMENT_MASTER_KEY)
