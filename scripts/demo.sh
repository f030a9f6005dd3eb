#!/usr/bin/env bash
# `make demo`: the piranha lab in one command (see demo/run.py for what it shows).
#
#   scripts/demo.sh            boot the kernel-lab VM, run the demo, exit 0 only if every step passed
#   scripts/demo.sh --keep     ...then leave the lab running with a shell in the client namespace
#                              (needs a terminal; `exit` ends it and powers the VM off)
#
# Same boot recipe as scripts/vm-pytest.sh (virtme-ng, emulated, Debian's kernel from
# .cache/kernel/). Progress is printed live; the verdict comes from the exit status the guest
# writes into build/demo/ (vng's own is unreliable). PIRANHA_NO_VM=1 runs the demo directly
# (a host whose kernel has IPVS, as root).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
OUT=$ROOT/build/demo
VENV=$ROOT/.venv
KEEP=""
case "${1:-}" in
    --keep) KEEP=--keep ;;
    "") ;;
    *) echo "usage: scripts/demo.sh [--keep]" >&2; exit 2 ;;
esac

"$ROOT/scripts/bootstrap.sh" || { echo "demo: bootstrap failed" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
# one VM at a time per checkout (the test runs take the same lock)
exec 9>"$ROOT/build/.test.lock"
if ! flock -n 9; then
    echo "demo: a test run is using this checkout's VM harness; waiting for it"
    flock 9
fi
cat >"$OUT/guest.sh" <<GUEST
#!/usr/bin/env bash
cd $(printf '%q' "$ROOT") || exit 1
export PATH=$(printf '%q' "$VENV/bin"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PIRANHA_PATIENCE=$(printf '%q' "${PIRANHA_PATIENCE:-1}")
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
modprobe ip_vs || echo "demo: modprobe ip_vs FAILED"
modprobe -a ip_vs_rr ip_vs_wlc ip_vs_ftp bridge 2>/dev/null
python3 -c 'import sys; print("demo: kernel", __import__("os").uname().release, "IPVS", open("/proc/net/ip_vs").readline().strip())' 2>/dev/null
$(printf '%q' "$VENV/bin/python") -m demo.run $KEEP --workdir /tmp/piranha-demo 2>&1 | tee $(printf '%q' "$OUT/demo.log")
echo \${PIPESTATUS[0]} >$(printf '%q' "$OUT/exitcode.tmp") && mv $(printf '%q' "$OUT/exitcode.tmp") $(printf '%q' "$OUT/exitcode")
sync
GUEST

if [ "${PIRANHA_NO_VM:-0}" = 1 ]; then
    bash "$OUT/guest.sh"
else
    ver=$(cat "$ROOT/.cache/kernel/current" 2>/dev/null) || { echo "demo: no kernel (scripts/bootstrap.sh)" >&2; exit 1; }
    kernel=$(readlink -f "$ROOT/.cache/kernel/$ver/boot/vmlinuz-$ver")
    echo "demo: booting the lab VM (emulated, about a minute before the first step)"
    vng_args=(-r "$kernel" --user root --disable-kvm --force-9p --cpus "${PIRANHA_VM_CPUS:-2}"
              --memory "${PIRANHA_VM_MEMORY:-4G}" --rwdir "$OUT")
    if [ -n "$KEEP" ]; then
        [ -t 0 ] || { echo "demo: --keep needs a terminal" >&2; exit 2; }
        PATH="$VENV/bin:$PATH" vng "${vng_args[@]}" -- "bash $OUT/guest.sh"
    else
        # the guest writes the log into $OUT (shared with the host): follow it live. vng's own
        # output is piped away (QEMU truncates a regular-file stdout); no stdin.
        : >"$OUT/demo.log"
        tail -n +1 -f "$OUT/demo.log" &
        tailer=$!
        PATH="$VENV/bin:$PATH" timeout -k 30s "${PIRANHA_VM_TIMEOUT:-20m}" \
            vng "${vng_args[@]}" -- "bash $OUT/guest.sh" </dev/null 2>&1 | cat >"$OUT/vng.log"
        sleep 1
        kill "$tailer" 2>/dev/null
        wait "$tailer" 2>/dev/null
    fi
fi
[ -f "$OUT/exitcode" ] || { echo "demo: FAILED: the VM did not run the demo to the end" >&2; exit 1; }
rc=$(cat "$OUT/exitcode")
[ "$rc" = 0 ] && echo "demo: PASSED (log: $OUT/demo.log)" || echo "demo: FAILED (log: $OUT/demo.log)"
exit "$rc"
