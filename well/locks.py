"""Locks that hold across every worker process and machine sharing the database."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

_local_locks: dict[int, threading.Lock] = {}
_local_guard = threading.Lock()


def lock_key(value: uuid.UUID, *, salt: int = 0) -> int:
    """A positive 63-bit key for `value`, different per `salt` (one per kind of work)."""
    return (value.int >> 65) ^ salt


@contextmanager
def advisory_lock(key: int) -> Iterator[bool]:
    """Try to take the lock `key` without waiting; yields whether it was taken.

    PostgreSQL: a session-level advisory lock, shared by every process on the database.
    SQLite (the single-process demo only): a lock in this process.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            got = bool(cursor.fetchone()[0])
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    with _local_guard:
        lock = _local_locks.setdefault(key, threading.Lock())
    got = lock.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            lock.release()
