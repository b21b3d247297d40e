"""Every string meant for people has its French translation, and the committed catalogue is
the one Django loads.

The check runs `makemessages` on a copy of the source (so a string added to a template or a
module without its French fails here, not in front of a French accountant), then reads every
French entry: none may be empty or fuzzy.
"""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["well", "connectors", "matching", "review", "api", "templates", "locale", "manage.py"]
# Not for people: the fake providers, the benchmarks, the tests.
IGNORED = ["sandbox", "benchmarks", "tests", ".venv", "var", "node_modules", "docs"]
PO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"
MO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.mo"


def _unquote(line: str) -> str:
    text = line[line.index('"') + 1 : line.rindex('"')]
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def po_entries(path: Path) -> list[dict]:
    """The entries of a .po file: flags, msgctxt, msgid, msgid_plural, msgstr forms."""
    entries, current, field = [], None, None

    def close():
        if current is not None and current.get("msgid") is not None:
            entries.append(current)

    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if not line:
            close()
            current, field = None, None
            continue
        if current is None:
            current = {"flags": set(), "msgstr": {}, "obsolete": False}
        if line.startswith("#~"):
            current["obsolete"] = True
            continue
        if line.startswith("#,"):
            current["flags"].update(f.strip() for f in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        match = re.match(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s", line)
        if match:
            keyword, form = match.group(1), match.group(2)
            if keyword.startswith("msgstr"):
                field = ("msgstr", int(form or 0))
                current["msgstr"][field[1]] = _unquote(line)
            else:
                field = (keyword, None)
                current[keyword] = _unquote(line)
        elif line.startswith('"') and field is not None:
            if field[0] == "msgstr":
                current["msgstr"][field[1]] += _unquote(line)
            else:
                current[field[0]] += _unquote(line)
    return [e for e in entries if not e["obsolete"] and e["msgid"] != ""]


def untranslated(entries: list[dict]) -> list[str]:
    return [
        e["msgid"]
        for e in entries
        if "fuzzy" in e["flags"] or not e["msgstr"] or any(not s for s in e["msgstr"].values())
    ]


def test_the_reader_finds_an_empty_or_fuzzy_entry(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: fr\\n"\n\n'
        'msgid "Done"\nmsgstr "Fait"\n\n'
        'msgid "Missing"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Guessed"\nmsgstr "Deviné"\n\n'
        'msgid "%(n)s record"\nmsgid_plural "%(n)s records"\nmsgstr[0] "%(n)s pièce"\n'
        'msgstr[1] ""\n',
        encoding="utf-8",
    )
    assert untranslated(po_entries(po)) == ["Missing", "Guessed", "%(n)s record"]


def test_every_string_meant_for_people_has_its_french_translation(tmp_path):
    copy = tmp_path / "src"
    copy.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    args = [sys.executable, "manage.py", "makemessages", "-l", "fr", "--no-location"]
    args += [f"--ignore={name}" for name in IGNORED]
    subprocess.run(
        args,
        cwd=copy,
        check=True,
        capture_output=True,
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "PYTHONPATH": str(copy),
            "DJANGO_SETTINGS_MODULE": "well.settings",
            "DATABASE_URL": "sqlite:///" + str(tmp_path / "unused.sqlite3"),
            "WELL_DATA_DIR": str(tmp_path / "var"),
        },
    )
    entries = po_entries(copy / "locale" / "fr" / "LC_MESSAGES" / "django.po")
    assert len(entries) > 500
    missing = untranslated(entries)
    assert not missing, (
        f"{len(missing)} strings have no French translation (docs/i18n.md says how to add "
        f"them): {missing[:20]}"
    )


def test_the_committed_catalogue_is_the_compiled_french(tmp_path):
    """django.mo is committed (a fresh machine needs no msgfmt): it must match django.po."""
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(compiled), str(PO)], check=True)
    with compiled.open("rb") as fresh, MO.open("rb") as committed:
        assert (
            gettext.GNUTranslations(fresh)._catalog == gettext.GNUTranslations(committed)._catalog
        )
