#!/usr/bin/env bash
# What the tests need beyond `pip install -e '.[test]'`: Debian's chromium for the browser tests
# (Playwright drives /usr/bin/chromium; never `playwright install`), npm's axe-core, which they
# inject into the page (under .cache/npm/, gitignored), and PostgreSQL for the event store's tests
# (a running server, or the binaries for a throwaway cluster). Idempotent: a no-op, in well under a
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

# PostgreSQL for the event store's tests (tests/postgres.py): the machine's server at
# 127.0.0.1:5432 (a local cluster that is down is started; `sudo -n` when not root), else initdb/pg_ctl for a
# throwaway cluster: Debian's postgresql package when neither is there.
pg_answers() { timeout 3 bash -c '</dev/tcp/127.0.0.1/5432' 2>/dev/null; }
pg_binaries() {
    { command -v initdb && command -v pg_ctl; } >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null
}
if ! pg_answers && command -v pg_ctlcluster >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then PG_SUDO="sudo -n"; else PG_SUDO=; fi
    for conf in /etc/postgresql/*/main; do
        [ -d "$conf" ] || continue
        version=$(basename "$(dirname "$conf")")
        $PG_SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start \
            || echo "prepare.sh: could not start PostgreSQL $version/main; the tests make a throwaway cluster" >&2
    done
fi
if ! pg_answers && ! pg_binaries; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql
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
