from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _variables_read_by(path: Path) -> set[str]:
    return set(re.findall(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z_]+)"', path.read_text()))


def test_env_example_documents_every_variable_the_settings_read():
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))

    missing = _variables_read_by(ROOT / "well" / "settings.py") - documented

    assert not missing, f"add these to .env.example with a comment: {sorted(missing)}"
