"""The matching core must run without Django: it never queries a database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import builtins, sys
real_import = builtins.__import__
def guarded(name, *args, **kwargs):
    if name == "django" or name.startswith("django."):
        raise ImportError("django is blocked for the matching core")
    return real_import(name, *args, **kwargs)
builtins.__import__ = guarded
import matching.core, matching.core.io, matching.core.engine, matching.core.fitting
import matching.datasets.generate
print("pure")
"""


def test_the_core_imports_with_django_blocked():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pure"


def test_no_core_module_mentions_django():
    for path in (ROOT / "matching" / "core").glob("*.py"):
        assert "django" not in path.read_text(), path
