"""`make test` on a fresh machine: the Debian packages its tests need are there, or it says how."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "system-packages.sh"


def _run(tmp_path: Path, *, uid: int, fonts: Path) -> subprocess.CompletedProcess:
    """The script on a machine whose PATH has no chromium and whose `id -u` says `uid`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "id").chmod(0o755)
    return subprocess.run(
        [shutil.which("bash"), str(SCRIPT)],
        env={"PATH": str(bin_dir), "FONTS_DIR": str(fonts)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_make_test_checks_the_system_packages_before_anything_else():
    recipe = (ROOT / "Makefile").read_text().split("\ntest: ", 1)[1].split("\n", 1)[0]
    assert recipe.split() == ["install", "system-packages"]
    assert "apt-get" not in (ROOT / ".ci" / "run").read_text()  # make test does it


def test_missing_packages_without_root_stop_at_once_with_the_command_to_run(tmp_path):
    result = _run(tmp_path, uid=1000, fonts=tmp_path / "no-fonts")

    assert result.returncode == 1
    assert (
        "sudo apt-get install -y chromium fonts-dejavu-core fonts-droid-fallback gettext npm"
        in result.stderr
    )


def test_nothing_is_asked_for_when_every_package_is_there(tmp_path):
    fonts = tmp_path / "fonts"
    (fonts / "dejavu").mkdir(parents=True)
    (fonts / "dejavu" / "DejaVuSans.ttf").write_bytes(b"")
    (fonts / "droid").mkdir()
    (tmp_path / "bin").mkdir()
    for tool in ("chromium", "msgfmt", "xgettext", "npm"):
        stub = tmp_path / "bin" / tool
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)

    result = _run(tmp_path, uid=1000, fonts=fonts)

    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""


def test_this_machine_has_what_the_tests_need():
    assert shutil.which("chromium") or os.path.exists("/usr/bin/chromium")
    assert Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").is_file()
    assert Path("/usr/share/fonts/truetype/droid").is_dir()
