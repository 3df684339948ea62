#!/usr/bin/env bash
# Installs what the browser test (tests/browser.rs) needs, when missing:
# Chromium (Debian package `chromium`, through apt-get) and the page's npm
# packages (sip.js, esbuild) in tests/browser/node_modules (`npm ci` from
# the lock file). Idempotent and quiet when everything is there. Installing
# Chromium needs root (or sudo) and apt-get; the npm packages need node and
# npm (Node 20). Exits non-zero, with a message, if something is still
# missing afterwards.
set -euo pipefail
# shellcheck source=apt.sh
. "$(dirname "$0")/apt.sh"

root="$(cd "$(dirname "$0")/.." && pwd)"
page="$root/tests/browser"

have_chromium() { command -v chromium >/dev/null 2>&1; }
have_modules() {
    [ -f "$page/node_modules/sip.js/package.json" ] && [ -x "$page/node_modules/.bin/esbuild" ]
}

if have_chromium && have_modules; then
    exit 0
fi

# One installer at a time (parallel test binaries may call this script).
exec 9>"${TMPDIR:-/tmp}/sipact-install-browser-deps.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

if ! have_chromium; then
    apt_install install-browser-deps chromium
    if ! have_chromium; then
        echo "install-browser-deps: chromium still not found after installing" >&2
        exit 1
    fi
fi

if ! have_modules; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-browser-deps: npm not found; install Node.js 20 and npm" >&2
        exit 1
    fi
    echo "install-browser-deps: installing the page's npm packages in tests/browser" >&2
    cd "$page"
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error >&2
    else
        npm install --no-audit --no-fund --loglevel=error >&2
    fi
    if ! have_modules; then
        echo "install-browser-deps: sip.js or esbuild still missing in $page/node_modules" >&2
        exit 1
    fi
fi
