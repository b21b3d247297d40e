"""Test harness: Well's settings on PostgreSQL (never SQLite), with a fast password hasher."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/well")

from well.settings import *  # noqa: F403
from well.settings import DATABASES

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError(
        "Tests run on PostgreSQL only; DATABASE_URL points at "
        f"{DATABASES['default']['ENGINE']}. Unset it or give a postgres:// URL."
    )

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ACCOUNT_RATE_LIMITS = {"login_failed": "5/m/ip,3/5m/key"}
