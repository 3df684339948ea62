#!/usr/bin/env bash
# Installs the peers the interop tests need, when missing: SIPp (Debian
# package `sip-tester`, binary `sipp`) and tshark (decodes the `--pcap`
# captures). Idempotent: does nothing when both are on PATH. Needs root
# (or sudo) and apt-get. Exits non-zero, with a message, if a tool is
# still missing afterwards.
set -euo pipefail
# shellcheck source=apt.sh
. "$(dirname "$0")/apt.sh"

missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v tshark >/dev/null 2>&1 || missing+=(tshark)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

# One installer at a time (parallel test binaries may call this script).
exec 9>"${TMPDIR:-/tmp}/sipact-install-test-deps.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
# Another caller may have finished while we waited.
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v tshark >/dev/null 2>&1 || missing+=(tshark)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

apt_install install-test-deps "${missing[@]}"

for tool in sipp tshark; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-test-deps: $tool still not found after installing" >&2
        exit 1
    fi
done
