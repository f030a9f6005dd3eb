#!/usr/bin/env bash
# Install everything the test suite needs, idempotently. Quick (~1 s) when nothing is missing.
#
#   1. Debian packages: qemu-system-x86 ipvsadm busybox-static kmod iproute2, chromium and
#      chromium-driver for the browser tests, nftables for the FTP firewall-mark test,
#      iptables and arptables for the real-server tests of their backends, keepalived for the
#      benchmarks, prometheus for promtool (the metrics and alert-rule tests) (+ python3-venv when
#      the python3 on PATH cannot create a venv)
#   2. .venv/ in the checkout, with `pip install -e '.[test]'`; skipped while the stamp
#      .venv/.bootstrap-stamp matches a hash of setup.cfg and pyproject.toml (the venv is
#      made anew when the interpreter or the checkout's path changes)
#   3. Debian's generic amd64 kernel, unpacked (not installed) into .cache/kernel/<version>/;
#      .cache/kernel/current names the version the kernel tier boots
#   4. .pyc files for the project (the checkout is read-only inside the VM)
#
# Everything lives inside the checkout: the VM cannot see /var/cache or /var/tmp.
# Must run as root on Debian 12 (or have all Debian packages already installed).
# Environment: PYTHON (interpreter for the venv, default python3),
#              PIRANHA_SKIP_KERNEL=1 (do not fetch the kernel).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

VENV=$ROOT/.venv
KCACHE=$ROOT/.cache/kernel
PYTHON=${PYTHON:-python3}
APT_PACKAGES=(qemu-system-x86 ipvsadm busybox-static kmod iproute2 chromium chromium-driver nftables
    iptables arptables keepalived prometheus)

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: ERROR: %s\n' "$*" >&2; exit 1; }

# one bootstrap at a time per checkout (several shells may share it)
mkdir -p "$ROOT/.cache"
exec 8>"$ROOT/.cache/bootstrap.lock"
flock 8

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ]; then
        say "apt-get update"
        apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
}

have_pkg() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# ---- 1. Debian packages ---------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
    have_pkg "$p" || missing+=("$p")
done
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    [ "$PYTHON" = python3 ] || die "$PYTHON not found"
    missing+=(python3 python3-venv)
elif ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    # Debian's own python3 needs python3-venv for `python -m venv`
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}); run as root to install them"
    apt_update_once
    say "apt-get install ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
fi

# ---- 2. virtualenv --------------------------------------------------------------------------
# the venv is tied to its interpreter and to this folder (its scripts carry absolute shebangs):
# either changing means a new venv; a change of the packaging files means a new pip install
venv_usable() {
    local want have
    want=$("$PYTHON" -c 'import sys; print(sys.version)') || return 1
    have=$("$VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null) || return 1
    [ "$want" = "$have" ] || return 1
    case "$(head -1 "$VENV/bin/pip" 2>/dev/null)" in
        "#!$VENV/bin/python"*) return 0 ;;
        *) return 1 ;;
    esac
}
pkg_stamp=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if ! venv_usable; then
    say "creating $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.bootstrap-stamp" 2>/dev/null)" != "$pkg_stamp" ]; then
    say "pip install -e '.[test]' (new venv, or setup.cfg/pyproject.toml changed)"
    rm -f "$VENV/.bootstrap-stamp"
    "$VENV/bin/python" -m pip install -q -e '.[test]' || die "pip install failed"
    echo "$pkg_stamp" >"$VENV/.bootstrap-stamp"
fi

# ---- 3. kernel for the VM tier -------------------------------------------------------------
kernel_version() {
    apt-cache depends linux-image-amd64 2>/dev/null \
        | sed -n 's/.*Depends: linux-image-\(.*\)$/\1/p' | head -1
}
fetch_kernel() { # $1 = version; downloads and unpacks into $KCACHE/$1
    local ver=$1 tmp
    tmp=$(mktemp -d "$KCACHE/.fetch.XXXXXX")
    # apt-get download writes into the current folder; as root it warns that the _apt user
    # cannot read it ("unsandboxed"), which is harmless. Success is judged by the .deb below.
    (cd "$tmp" && apt-get download -qq "linux-image-$ver") 2>&1 | grep -v unsandboxed || true
    if ! ls "$tmp"/linux-image-"$ver"_*.deb >/dev/null 2>&1; then
        rm -rf "$tmp"
        return 1
    fi
    dpkg -x "$tmp"/linux-image-"$ver"_*.deb "$tmp/unpacked"
    [ -f "$tmp/unpacked/boot/vmlinuz-$ver" ] || { rm -rf "$tmp"; die "no vmlinuz in the package"; }
    rm -rf "${KCACHE:?}/$ver"
    mv "$tmp/unpacked" "$KCACHE/$ver"
    rm -rf "$tmp"
}

if [ "${PIRANHA_SKIP_KERNEL:-0}" != 1 ]; then
    mkdir -p "$KCACHE"
    rm -rf "$KCACHE"/.fetch.*
    ver=
    if [ -s "$KCACHE/current" ] \
        && [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' \
            -newer "$KCACHE/current" -print -quit 2>/dev/null)" ]; then
        # package lists unchanged since the last resolution: skip apt-cache (~1 s)
        ver=$(cat "$KCACHE/current")
        [ -f "$KCACHE/$ver/boot/vmlinuz-$ver" ] || ver=
    fi
    [ -n "$ver" ] || ver=$(kernel_version)
    if [ -z "$ver" ]; then
        apt_update_once
        ver=$(kernel_version)
    fi
    if [ -z "$ver" ]; then
        # no package lists (offline?): fall back to a kernel fetched earlier
        ver=$(cat "$KCACHE/current" 2>/dev/null || true)
        if [ -z "$ver" ] || [ ! -f "$KCACHE/$ver/boot/vmlinuz-$ver" ]; then
            die "cannot resolve linux-image-amd64 (apt-cache depends) and no kernel in $KCACHE"
        fi
        say "warning: apt-cache does not know linux-image-amd64; using cached kernel $ver"
    fi
    if [ ! -f "$KCACHE/$ver/boot/vmlinuz-$ver" ]; then
        say "fetching kernel linux-image-$ver into $KCACHE/$ver"
        if ! fetch_kernel "$ver"; then
            # package lists may be stale (the mirror dropped that version): refresh, re-resolve
            apt_update_once
            ver=$(kernel_version)
            [ -n "$ver" ] || die "cannot resolve linux-image-amd64 after apt-get update"
            fetch_kernel "$ver" || die "apt-get download linux-image-$ver failed"
        fi
        # remove kernels fetched for older versions (each is ~400 MB unpacked)
        for d in "$KCACHE"/*/; do
            d=${d%/}
            [ "$(basename "$d")" = "$ver" ] || rm -rf "$d"
        done
    fi
    echo "$ver" >"$KCACHE/current.tmp" && mv "$KCACHE/current.tmp" "$KCACHE/current"
fi

# ---- 4. byte-code for the read-only guest ---------------------------------------------------
# (a file that does not compile is left to pytest to report)
"$VENV/bin/python" -m compileall -q -j 0 piranha testkit lab tests scripts bench demo >/dev/null \
    || say "warning: compileall reported errors (pytest will show them)"

say "ok (venv: $VENV, kernel: $(cat "$KCACHE/current" 2>/dev/null || echo none))"
