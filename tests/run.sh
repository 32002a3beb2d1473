#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite: Python packages, Debian's Chromium for
# the end-to-end tests (never a browser download), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
# The browser tests launch /usr/bin/chromium itself (bench/browser.py), not whatever is on PATH; the
# two-server test runs deploy/nginx.conf with Debian's nginx.
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq $missing >/dev/null
fi
exec python3 -m pytest "$@"
