#!/usr/bin/env bash
# What the tests need beyond `pip install -e '.[test]'`: Debian's chromium for the browser tests
# (Playwright drives /usr/bin/chromium; never `playwright install`) and npm's axe-core, which they
# inject into the page (under .cache/npm/, gitignored). Idempotent: a no-op, in well under a
# second, when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

AXE_VERSION=4.14.1
if [ ! -f .cache/npm/node_modules/axe-core/axe.min.js ]; then
    if ! command -v npm >/dev/null; then
        if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm
    fi
    mkdir -p .cache/npm
    npm install --silent --no-audit --no-fund --prefix .cache/npm "axe-core@${AXE_VERSION}"
fi

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium
/usr/bin/chromium --version
