"""Audit the locked dependencies for known vulnerabilities; exit non-zero on any finding.

pip-audit asks PyPI's per-release JSON (or OSV) for advisories. Where those do not answer for every
package (this workplace's registry mirror serves only per-project JSON), an audit that quietly
audits nothing would be worse than none, so a second check runs that still means something there:
every security-sensitive package is on the newest non-yanked patch release of its series (Django,
cryptography and the rest publish their fixes as patch releases) and no locked release is yanked.
"""

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from packaging.version import InvalidVersion, Version

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"

# Packages that parse untrusted input or guard secrets: a missing patch release is a finding.
SECURITY_SENSITIVE = {
    "django",
    "django-allauth",
    "djangorestframework",
    "django-q2",
    "cryptography",
    "requests",
    "urllib3",
    "requests-oauthlib",
    "oauthlib",
    "pypdf",
    "pillow",
    "fpdf2",
    "werkzeug",
    "gunicorn",
    "psycopg",
    "sqlparse",
    "jinja2",
    "certifi",
    "idna",
}


# A patch release gets this long to be taken before it fails the audit: a release published the
# morning CI runs is a notice to act on, not a broken build (a known vulnerability fails at once,
# through pip-audit above).
PATCH_GRACE = timedelta(days=7)


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[name.strip().lower()] = version.strip()
    return pins


def pip_audit() -> list[dict]:
    """pip-audit's verdict per locked package; packages it could not audit carry a skip_reason."""
    # The lock pins every package, so there is nothing to resolve or install.
    command = ["pip_audit", "--requirement", str(LOCK), "--no-deps", "--disable-pip"]
    result = subprocess.run(
        [sys.executable, "-m", *command, "--format", "json"],
        capture_output=True,
        text=True,
    )
    if not result.stdout.strip():
        sys.exit(f"pip-audit did not run: {result.stderr.strip()}")
    return json.loads(result.stdout)["dependencies"]


def project_releases(name: str) -> dict:
    url = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)["releases"]


def published_at(release_files: list[dict]) -> datetime:
    return min(datetime.fromisoformat(f["upload_time_iso_8601"]) for f in release_files)


def patch_level_findings(pins: dict[str, str]) -> tuple[list[str], list[str]]:
    """Findings (yanked pins, patch releases older than the grace) and notices (fresher ones)."""
    findings, notices = [], []
    now = datetime.now(UTC)
    for name in sorted(SECURITY_SENSITIVE & pins.keys()):
        locked = Version(pins[name])
        releases = project_releases(name)
        files = releases.get(pins[name], [])
        if files and all(f.get("yanked") for f in files):
            findings.append(f"{name}=={locked} is yanked")
        same_series = []
        for release, release_files in releases.items():
            try:
                version = Version(release)
            except InvalidVersion:
                continue
            live = release_files and not all(f.get("yanked") for f in release_files)
            if live and not version.is_prerelease and version.release[:2] == locked.release[:2]:
                same_series.append((version, published_at(release_files)))
        newer = [(version, at) for version, at in same_series if version > locked]
        if not newer:
            continue
        newest, _ = max(newer)
        overdue = [version for version, at in newer if now - at > PATCH_GRACE]
        line = f"{name}=={locked}: patch release {newest} exists"
        (findings if overdue else notices).append(line)
    return findings, notices


def main() -> None:
    dependencies = pip_audit()
    vulnerable = [d for d in dependencies if d.get("vulns")]
    for dependency in vulnerable:
        ids = ", ".join(v["id"] for v in dependency["vulns"])
        print(f"  {dependency['name']}=={dependency['version']}: {ids}")
    if vulnerable:
        sys.exit(f"pip-audit: {len(vulnerable)} package(s) with known vulnerabilities")
    audited = [d for d in dependencies if "skip_reason" not in d]
    if audited:
        print(f"pip-audit: {len(audited)} packages audited, no known vulnerability")
        if len(audited) == len(dependencies):
            return
    print("pip-audit could not audit every package from here; patch-level check as well")
    pins = locked_versions()
    findings, notices = patch_level_findings(pins)
    for notice in notices:
        print(f"  notice (published less than {PATCH_GRACE.days} days ago): {notice}")
    for finding in findings:
        print(f"  {finding}")
    if findings:
        sys.exit(f"{len(findings)} security-sensitive package(s) behind their patch release")
    print(f"patch-level check: {len(SECURITY_SENSITIVE & pins.keys())} packages up to date")


if __name__ == "__main__":
    main()
