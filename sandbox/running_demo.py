"""Where a serving demo's site and sandboxes listen, for the other commands on its data folder.

`make demo` writes it while it serves and removes it when it stops; the sandbox app reads it in
every process at start, so that `python manage.py sync demo` or `make worker` in another terminal
call the demo's sandboxes, never the real providers with a sandbox's tokens. Only a process on
the demo's data (the data folder's default SQLite file, DEBUG on) reads it, and only while the
demo that wrote it is alive. Nothing here imports models: every process pays for this check.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings


def _note() -> Path:
    return Path(settings.DATA_DIR) / "sandbox" / "running-demo.json"


def running_demo_share(urls: dict[str, str]) -> None:
    """This demo serves: say where (`site`, `quickbooks`, `qonto`), with its process id."""
    path = _note()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": os.getpid(), "urls": urls}))


def running_demo_unshare() -> None:
    """This demo stops: its sandboxes no longer answer."""
    _note().unlink(missing_ok=True)


def _on_demo_data() -> bool:
    database = settings.DATABASES["default"]
    return (
        settings.DEBUG
        and database["ENGINE"] == "django.db.backends.sqlite3"
        and Path(database["NAME"]).resolve() == (Path(settings.DATA_DIR) / "well.sqlite3").resolve()
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def running_demo_urls() -> dict[str, str] | None:
    """The serving demo's URLs when this process works on its data, else None."""
    if not _on_demo_data():
        return None
    try:
        note = json.loads(_note().read_text())
        pid, urls = int(note["pid"]), dict(note["urls"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    # A demo killed without cleaning up left its note behind: its sandboxes are gone.
    return urls if _alive(pid) else None
