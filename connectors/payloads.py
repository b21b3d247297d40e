"""Provider payloads made storable: PostgreSQL keeps no NUL character and no NaN in JSON.

A JSON parser hands both over (`requests`' `.json()` accepts NaN and Infinity), so the syncs
pass every object through `storable` before it reaches the database: replaced, never dropped.
"""

from __future__ import annotations

import math
from typing import Any

NUL_STANDIN = "\ufffd"


def storable(value: Any) -> Any:
    """`value` with NUL characters replaced and non-finite floats as text ("nan", "inf")."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_STANDIN) if "\x00" in value else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value
