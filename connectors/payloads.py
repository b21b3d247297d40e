"""Provider payloads made storable: PostgreSQL keeps no NUL character, no lone surrogate and no
NaN in JSON.

A JSON parser hands all three over (`requests`' `.json()` accepts NaN and Infinity), so the syncs
pass every object through `storable` before it reaches the database: replaced, never dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any

REPLACEMENT_CHARACTER = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: Any) -> Any:
    """`value` with NUL characters and lone surrogates replaced, non-finite floats as text."""
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def _storable_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT_CHARACTER)
    # A lone surrogate ("\ud800" in the JSON) has no UTF-8 bytes: one stand-in for each.
    return _SURROGATE.sub(REPLACEMENT_CHARACTER, text)
