#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the browser tests (tests/browser/).
#
# Idempotent: does nothing when `chromium` is already on PATH. Never fails the build:
# when Chromium cannot be installed (no root, no apt-get, no network) it says so loudly
# and exits 0, and the browser tests then skip with the same advice.
# Playwright's own browser download (`playwright install`) is deliberately not used:
# it needs network access to a CDN; Debian's package comes from the distribution mirror.
set -u

skip() {
    echo "" >&2
    echo "*****************************************************************" >&2
    echo "SKIPPING browser tests: chromium could not be installed ($1)." >&2
    echo "Install it by hand: apt-get update && apt-get install -y chromium" >&2
    echo "*****************************************************************" >&2
    echo "" >&2
    exit 0
}

if command -v chromium >/dev/null 2>&1; then
    echo "install_browser: chromium already installed ($(command -v chromium))"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || skip "no apt-get on this machine"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        skip "not root and no password-less sudo"
    fi
fi

echo "install_browser: installing chromium with apt-get (about a minute)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q || skip "apt-get update failed"
$SUDO apt-get install -y -q chromium || skip "apt-get install chromium failed"

command -v chromium >/dev/null 2>&1 || skip "apt-get finished but chromium is not on PATH"
echo "install_browser: $(chromium --version 2>/dev/null || echo chromium installed)"
exit 0
