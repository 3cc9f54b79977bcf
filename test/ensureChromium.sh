#!/usr/bin/env bash
# Makes sure the browser tests (*.browser.test.ts) can launch Chromium: Debian's package, at
# CHROMIUM_PATH (default /usr/bin/chromium). playwright-core comes with npm ci; it never downloads
# a browser of its own. Run by `npm test`, test/run.mjs and .ci/run, before anything else.
#
# Present: prints its version. Missing, as root with apt-get: installs the `chromium` package.
# Missing otherwise: exits 1 with what to install; a skipped browser test is not a pass.
# Uses no command but `id` and `apt-get` (found on PATH) and the binary itself, so that its unit
# test (test/ensureChromium.unit.test.ts) can stand them in.
set -euo pipefail

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ -x "$chromium" ]; then
  echo "== chromium: $("$chromium" --version 2>/dev/null || echo "present at $chromium")"
  exit 0
fi

refuse() {
  {
    echo "FAIL: the browser tests need Chromium at $chromium, and it is not there."
    echo "$1"
    echo "Then run the tests again. (CHROMIUM_PATH points the tests at a Chromium elsewhere.)"
  } >&2
  exit 1
}

uid="$(id -u 2>/dev/null || echo unknown)"
if ! command -v apt-get >/dev/null 2>&1; then
  refuse "Install Chromium so that $chromium runs it; on Debian: apt-get install -y chromium."
fi
if [ "$uid" != 0 ]; then
  refuse "Install Debian's chromium package: sudo apt-get update && sudo apt-get install -y chromium"
fi

echo "== $chromium is missing: installing Debian's chromium package (apt-get install -y chromium)"
export DEBIAN_FRONTEND=noninteractive
apt-get update || refuse "apt-get update failed (output above). Install it yourself: apt-get update && apt-get install -y chromium"
apt-get install -y chromium || refuse "apt-get install -y chromium failed (output above)."
if [ ! -x "$chromium" ]; then
  refuse "apt-get installed the chromium package, but $chromium is still missing: set CHROMIUM_PATH to its binary."
fi
echo "== chromium: $("$chromium" --version 2>/dev/null || echo "installed at $chromium")"
