#!/usr/bin/env bash
# Run one command as root inside the kernel-lab VM (one boot) and print its output.
#
#   bench/vm-run.sh COMMAND [ARGS...]     e.g. bench/vm-run.sh .venv/bin/python -m bench.ipvs_bench
#
# Same boot recipe as scripts/vm-pytest.sh (virtme-ng, emulated, Debian's generic kernel from
# .cache/kernel/), but for an arbitrary command: the guest loads ip_vs and its schedulers, runs
# the command from the checkout with the venv on PATH, and writes its output and exit status into
# build/vm-run/ (vng's own exit status and output are unreliable here; see kernel-lab.md).
# The checkout is read-only in the guest: write results under $PIRANHA_OUT (= build/vm-run/).
#
# Environment: PIRANHA_VM_TIMEOUT=30m PIRANHA_VM_MEMORY=4G PIRANHA_VM_CPUS=2
#              PIRANHA_NO_VM=1   run the command directly (a host with IPVS, as root)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
OUT=$ROOT/build/vm-run
VENV=$ROOT/.venv
[ "$#" -gt 0 ] || { echo "usage: bench/vm-run.sh COMMAND [ARGS...]" >&2; exit 2; }

rm -rf "$OUT"
mkdir -p "$OUT"
printf '%q ' "$@" >"$OUT/cmd"
cat >"$OUT/guest.sh" <<GUEST
#!/usr/bin/env bash
# guest side: load IPVS, run the command, record output and exit status
cd $(printf '%q' "$ROOT") || exit 1
export PATH=$(printf '%q' "$VENV/bin"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PIRANHA_PATIENCE=$(printf '%q' "${PIRANHA_PATIENCE:-1}")
export PYTHONDONTWRITEBYTECODE=1 PIRANHA_OUT=$(printf '%q' "$OUT") PIRANHA_KERNEL_TIER=1
{
    modprobe ip_vs || echo "vm-run: modprobe ip_vs FAILED"
    for m in ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_lblc ip_vs_lblcr \\
        ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh ip_vs_ftp ip_vs_pe_sip; do
        modprobe "\$m" 2>/dev/null || echo "vm-run: warning: modprobe \$m failed"
    done
    bash -c "\$(cat $(printf '%q' "$OUT/cmd"))"
} >$(printf '%q' "$OUT/log") 2>&1
echo \$? >$(printf '%q' "$OUT/exitcode.tmp") && mv $(printf '%q' "$OUT/exitcode.tmp") $(printf '%q' "$OUT/exitcode")
sync
GUEST

if [ "${PIRANHA_NO_VM:-0}" = 1 ]; then
    bash "$OUT/guest.sh"
else
    ver=$(cat "$ROOT/.cache/kernel/current" 2>/dev/null) || { echo "no kernel: run scripts/bootstrap.sh" >&2; exit 1; }
    kernel=$(readlink -f "$ROOT/.cache/kernel/$ver/boot/vmlinuz-$ver")
    # vng output piped (QEMU truncates a regular-file stdout); no stdin; KVM does not work here
    PATH="$VENV/bin:$PATH" timeout -k 30s "${PIRANHA_VM_TIMEOUT:-30m}" \
        vng -r "$kernel" --user root --disable-kvm --force-9p \
        --cpus "${PIRANHA_VM_CPUS:-2}" --memory "${PIRANHA_VM_MEMORY:-4G}" \
        --rwdir "$OUT" -- "bash $OUT/guest.sh" </dev/null 2>&1 | cat >"$OUT/vng.log"
fi
cat "$OUT/log" 2>/dev/null || { echo "vm-run: no output (the VM did not run the command); vng said:"; tail -20 "$OUT/vng.log" 2>/dev/null; }
[ -f "$OUT/exitcode" ] || { echo "vm-run: FAILED: no exit status in $OUT" >&2; exit 1; }
exit "$(cat "$OUT/exitcode")"
