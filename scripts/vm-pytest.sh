#!/usr/bin/env bash
# Kernel tier: run every `kernel`-marked test against a real kernel with IPVS.
#
#   scripts/vm-pytest.sh [PYTEST ARGS...]      e.g. scripts/vm-pytest.sh -k smoke -x
#
# This machine's kernel has no IPVS and cannot load modules, so the tests run inside ONE VM
# (virtme-ng, software emulation) booting Debian's generic kernel from .cache/kernel/ (see
# docs: kernel-lab.md). The guest runs scripts/vm-guest.sh, which loads ip_vs and its
# schedulers and runs `pytest -m kernel` with the project's venv, writing pytest.log,
# junit.xml and exitcode into build/vm/. vng's own exit status is meaningless here (255 even
# on success), so the verdict comes from those files only.
#
# When the host kernel has IPVS itself and we are root (or PIRANHA_NO_VM=1), the same guest
# script runs directly, without a VM.
#
# Environment: PIRANHA_NO_VM=1           run without a VM
#              PIRANHA_VM_TIMEOUT=50m    overall limit for the VM (timeout(1) syntax; generous:
#                                        the tier takes ~15-25 min, longer on a busy machine)
#              PIRANHA_VM_MEMORY=4G PIRANHA_VM_CPUS=2
#              PIRANHA_KERNEL=/path/to/vmlinuz   boot that kernel instead of .cache/kernel/
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
RESULTS=$ROOT/build/vm
VENV=$ROOT/.venv
TIMEOUT=${PIRANHA_VM_TIMEOUT:-50m}

say() { printf 'kernel tier: %s\n' "$*"; }
die() { printf 'kernel tier: ERROR: %s\n' "$*" >&2; exit 1; }

# one test run at a time per checkout (scripts/test.sh already holds the lock when it calls us)
mkdir -p "$ROOT/build"
if [ "${PIRANHA_TEST_LOCK_HELD:-0}" != 1 ]; then
    exec 9>"$ROOT/build/.test.lock"
    if ! flock -n 9; then
        say "another test run is using this checkout; waiting for it"
        flock 9
    fi
fi

[ -x "$VENV/bin/python" ] || "$ROOT/scripts/bootstrap.sh" || die "bootstrap failed"

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
# extra pytest arguments travel through a file: no quoting problems on vng's command line
if [ "$#" -gt 0 ]; then printf '%s\0' "$@" >"$RESULTS/args"; else : >"$RESULTS/args"; fi

host_has_ipvs() {
    [ "$(id -u)" = 0 ] || return 1
    [ -e /proc/net/ip_vs ] && return 0
    modprobe -q ip_vs 2>/dev/null && [ -e /proc/net/ip_vs ]
}

started=$(date +%s.%N)
if [ "${PIRANHA_NO_VM:-0}" = 1 ] || host_has_ipvs; then
    say "running directly on this host (no VM): $(uname -r)"
    timeout -k 30s "$TIMEOUT" bash "$ROOT/scripts/vm-guest.sh" "$RESULTS"
    status=$?
else
    if [ -n "${PIRANHA_KERNEL:-}" ]; then
        kernel=$PIRANHA_KERNEL
    else
        if [ ! -s "$ROOT/.cache/kernel/current" ]; then
            "$ROOT/scripts/bootstrap.sh" || die "bootstrap failed"
        fi
        ver=$(cat "$ROOT/.cache/kernel/current")
        kernel=$ROOT/.cache/kernel/$ver/boot/vmlinuz-$ver
    fi
    # the real path: a symlink makes the guest panic
    kernel=$(readlink -f "$kernel") || die "no kernel at $kernel (run scripts/bootstrap.sh)"
    [ -f "$kernel" ] || die "no kernel at $kernel (run scripts/bootstrap.sh)"
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (run scripts/bootstrap.sh)"
    say "booting $kernel in a VM (emulated, --cpus ${PIRANHA_VM_CPUS:-2} --memory ${PIRANHA_VM_MEMORY:-4G}, limit $TIMEOUT)"
    # the guest does not inherit our environment: pass the patience knob on (lab/patience.py)
    guest_cmd="env PIRANHA_PATIENCE=$(printf '%q' "${PIRANHA_PATIENCE:-1}") bash $(printf '%q' "$ROOT/scripts/vm-guest.sh") $(printf '%q' "$RESULTS")"
    # vng's output is piped, never redirected to a file (QEMU truncates a regular-file stdout);
    # no stdin (CI has none); --force-9p saves ~5 s; KVM does not work on this machine.
    PATH="$VENV/bin:$PATH" timeout -k 30s "$TIMEOUT" \
        vng -r "$kernel" --user root --disable-kvm --force-9p \
        --cpus "${PIRANHA_VM_CPUS:-2}" --memory "${PIRANHA_VM_MEMORY:-4G}" \
        --rwdir "$RESULTS" -- "$guest_cmd" </dev/null 2>&1 | cat
    status=${PIPESTATUS[0]}
fi
ended=$(date +%s.%N)
elapsed=$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.0f", b - a }')

echo "----- guest pytest output ($RESULTS/pytest.log) -----"
if [ -f "$RESULTS/pytest.log" ]; then
    cat "$RESULTS/pytest.log"
else
    echo "(no pytest.log: the guest command never ran)"
fi
echo "----- end of guest output -----"

if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    say "TIMED OUT after ${elapsed}s (limit $TIMEOUT)"
fi
if [ ! -f "$RESULTS/exitcode" ]; then
    say "FAILED: the guest wrote no exit code into $RESULTS (the VM did not boot, crashed or timed out; vng/timeout status $status)"
fi
if [ -f "$RESULTS/timing" ]; then
    awk -F= -v l="$started" -v e="$ended" '{ t[$1] = $2 } END {
        g = t["guest_start"]; p = t["pytest_start"]; q = t["pytest_end"]
        if (g == "" || p == "" || q == "") { print "kernel tier: timing incomplete"; exit }
        printf "kernel tier: timing: launch to guest script %.1fs, module loading %.1fs, " \
            "pytest %.1fs, guest end to host %.1fs, total %.1fs\n",
            g - l, p - g, q - p, e - q, e - l }' "$RESULTS/timing"
else
    say "took ${elapsed}s in total"
fi
"$VENV/bin/python" "$ROOT/scripts/vmresults.py" check kernel "$RESULTS"
