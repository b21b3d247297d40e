"""State of the Qonto sandbox: one JSON document plus uploaded files, optionally kept on disk."""

from __future__ import annotations

import copy
import json
import os
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

STATE_FILE = "qonto_state.json"
FILES_DIR = "qonto_files"
STATE_VERSION = 1


def empty_state() -> dict:
    """A blank state document; every value is JSON-ready so it can be written as is."""
    return {
        "version": STATE_VERSION,
        "clock_offset": 0.0,
        "url_secret": secrets.token_hex(16),
        "seeded": False,
        "seed": {"organization": {}, "supplier_invoices": [], "transactions": []},
        "organization": {},
        "supplier_invoices": {},
        "invoice_private": {},
        "transactions": [],
        "attachments": {},
        "idempotency": {},
        "grants": {},
        "challenges": {},
        "codes": {},
        "access_tokens": {},
        "refresh_tokens": {},
        "api_keys": {},
    }


class QontoStore:
    """Holds the state under one re-entrant lock and writes it through when a data dir is set."""

    def __init__(self, data_dir: Path | None) -> None:
        self.lock = threading.RLock()
        self.data_dir = Path(data_dir) if data_dir else None
        self._memory_files: dict[str, bytes] = {}
        self.loaded_from_disk = False
        self.state = self._load() or empty_state()

    # --- clock -------------------------------------------------------------------------------

    def now(self) -> float:
        """Sandbox time: wall clock plus the offset the control API has added."""
        return time.time() + float(self.state["clock_offset"])

    def now_iso(self) -> str:
        """Sandbox time as an RFC 3339 string with milliseconds, like Qonto's timestamps."""
        return iso_from_epoch(self.now())

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward (tests expire keys and tokens without sleeping)."""
        with self.lock:
            self.state["clock_offset"] = float(self.state["clock_offset"]) + seconds
            self.save()

    # --- persistence -------------------------------------------------------------------------

    def _load(self) -> dict | None:
        """Read a previous run's state, if any."""
        if self.data_dir is None:
            return None
        path = self.data_dir / STATE_FILE
        if not path.exists():
            return None
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("version") != STATE_VERSION:
            return None
        self.loaded_from_disk = True
        return {**empty_state(), **state}

    def save(self) -> None:
        """Write the state atomically (temp file + rename) so a crash never leaves half a file."""
        if self.data_dir is None:
            return
        with self.lock:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path = self.data_dir / STATE_FILE
            temp = path.with_suffix(".tmp")
            temp.write_text(json.dumps(self.state), encoding="utf-8")
            os.replace(temp, path)

    def put_file(self, attachment_id: str, data: bytes) -> None:
        """Keep an uploaded file's bytes."""
        if self.data_dir is None:
            self._memory_files[attachment_id] = data
            return
        folder = self.data_dir / FILES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f"{attachment_id}.tmp"
        temp.write_bytes(data)
        os.replace(temp, folder / attachment_id)

    def get_file(self, attachment_id: str) -> bytes | None:
        """Return an uploaded file's bytes, or None."""
        if self.data_dir is None:
            return self._memory_files.get(attachment_id)
        path = self.data_dir / FILES_DIR / attachment_id
        if "/" in attachment_id or not path.is_file():
            return None
        return path.read_bytes()

    def clear_files(self) -> None:
        """Forget every uploaded file (reset)."""
        self._memory_files.clear()
        if self.data_dir is None:
            return
        folder = self.data_dir / FILES_DIR
        if folder.is_dir():
            for path in folder.iterdir():
                path.unlink(missing_ok=True)

    def snapshot(self, value):
        """A deep copy, so answers never alias live state."""
        return copy.deepcopy(value)


def iso_from_epoch(epoch: float) -> str:
    """Format a POSIX time as 2024-01-21T12:01:02.123Z."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value) -> datetime | None:
    """Parse an RFC 3339 timestamp or a date; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
