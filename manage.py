#!/usr/bin/env python
"""Django's command-line utility for Well."""

import os
import sys
from pathlib import Path

# The virtualenv `make install` creates: the README's `python manage.py …` commands run there.
VENV = Path(__file__).resolve().parent / ".venv"

if __name__ == "__main__":
    if Path(sys.prefix).resolve() != VENV.resolve() and (VENV / "bin" / "python").exists():
        # A Python outside the virtualenv (no Django, or other versions): use the project's one.
        os.execv(VENV / "bin" / "python", [str(VENV / "bin" / "python"), *sys.argv])  # noqa: S606
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "well.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
