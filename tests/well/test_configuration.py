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


def _pytest_with(database_url: str):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--ds=tests.settings",
            "-q",
            "tests/well/test_configuration.py::test_env_example_documents_every_variable_the_settings_read",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_test_run_that_cannot_reach_postgresql_fails_loudly():
    result = _pytest_with("postgres://postgres@127.0.0.1:1/well")

    assert result.returncode != 0
    assert "PostgreSQL is not reachable" in result.stdout + result.stderr


def test_a_test_run_never_falls_back_to_sqlite():
    result = _pytest_with("sqlite:///tmp/well-should-not-exist.sqlite3")

    assert result.returncode != 0
    assert "Tests run on PostgreSQL only" in result.stdout + result.stderr
