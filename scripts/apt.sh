# Sourced by the install scripts: `apt_install WHO PACKAGE...` installs
# Debian packages non-interactively, through sudo when not root. Returns
# non-zero, with a message naming WHO, when apt-get or root is missing.

apt_install() {
    local who="$1"
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$who: apt-get not found; install $* by hand" >&2
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "$who: installing $* needs root" >&2
            return 1
        fi
    fi
    echo "$who: installing $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2 || true
    # tshark asks whether non-root users may capture: no.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections 2>/dev/null || true
    $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}
