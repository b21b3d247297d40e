#!/usr/bin/env bash
# The Debian packages the tests need: Chromium for the browser tests (driven by Playwright, never
# a downloaded browser), the fonts generated PDFs embed (DejaVu; Droid for CJK text), and GNU
# gettext (makemessages and msgfmt: the test that no French translation is missing), and npm
# (it installs axe-core, the accessibility checker the browser tests inject).
# Installs the missing ones when it can (root with apt-get), else stops with the command to run.
# FONTS_DIR is where Debian puts them (a test points it elsewhere).
set -euo pipefail

fonts="${FONTS_DIR:-/usr/share/fonts/truetype}"
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -f "$fonts/dejavu/DejaVuSans.ttf" ] || missing+=(fonts-dejavu-core)
[ -d "$fonts/droid" ] || missing+=(fonts-droid-fallback)
command -v msgfmt >/dev/null 2>&1 && command -v xgettext >/dev/null 2>&1 || missing+=(gettext)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing the Debian packages the tests need: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    exit 0
fi
echo "The tests need Debian packages that are not installed: ${missing[*]}." >&2
echo "Install them, then run make test again:" >&2
echo "    sudo apt-get install -y ${missing[*]}" >&2
exit 1
