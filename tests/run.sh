#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite: Python packages, Debian's Chromium for
# the end-to-end tests (never a browser download), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
# The browser tests launch /usr/bin/chromium itself (bench/browser.py), not whatever is on PATH.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
exec python3 -m pytest "$@"
