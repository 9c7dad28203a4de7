#!/usr/bin/env bash
# What the tests need beyond `pip install -e '.[test]'`: Debian's chromium for the browser tests
# (Playwright drives /usr/bin/chromium; never `playwright install`). Idempotent: a no-op, in well
# under a second, when everything is already there.
set -euo pipefail

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
