#!/usr/bin/env bash
# Installs what the browser tests (*.browser.test.ts) drive: Debian's Chromium at /usr/bin/chromium.
# playwright-core comes with npm ci; it never downloads a browser of its own.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "== chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi

echo "== installing chromium (Debian package)"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium
/usr/bin/chromium --version
