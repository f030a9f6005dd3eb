#!/usr/bin/env bash
# Kernel tier, guest side: runs inside the VM (or directly on a host that has IPVS, as root).
# Started by scripts/vm-pytest.sh; do not run by hand unless you know you have IPVS.
#
#   vm-guest.sh RESULTS_DIR
#
# Reads pytest's extra arguments from RESULTS_DIR/args (NUL-separated), loads the IPVS modules,
# runs the `kernel`-marked tests with the project's venv and writes into RESULTS_DIR:
#   pytest.log  pytest's output (and the module loading before it)
#   junit.xml   pytest's junit report
#   timing      when the script, pytest and its end happened (epoch seconds)
#   exitcode    pytest's exit status, written last
# The checkout is read-only inside the VM: everything written goes to RESULTS_DIR or /tmp.
set -u

out=${1:?usage: vm-guest.sh RESULTS_DIR}
echo "guest_start=$(date +%s.%N)" >"$out/timing"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log=$out/pytest.log

args=()
if [ -s "$out/args" ]; then
    mapfile -d '' -t args <"$out/args"
fi

{
    echo "== guest: kernel $(uname -r), $(nproc) cpus, started $(date -u +%H:%M:%S)"
    if ! modprobe ip_vs; then
        echo "== guest: modprobe ip_vs FAILED"
    fi
    # schedulers and the FTP helper: one modprobe process (each costs ~0.2 s+ emulated);
    # a module that fails to load is only a warning
    schedulers=(ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_lblc ip_vs_lblcr
        ip_vs_sed ip_vs_nq ip_vs_ftp)
    modprobe -a "${schedulers[@]}"
    for m in "${schedulers[@]}"; do
        [ -d "/sys/module/$m" ] || echo "== guest: warning: module $m is not loaded"
    done
    if [ -e /proc/net/ip_vs ]; then
        echo "== guest: $(head -1 /proc/net/ip_vs)"
    else
        echo "== guest: /proc/net/ip_vs missing"
    fi
} >"$log" 2>&1

export PIRANHA_KERNEL_TIER=1
export PYTHONDONTWRITEBYTECODE=1
export HYPOTHESIS_STORAGE_DIRECTORY=/tmp/piranha-hypothesis
export PATH="$root/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

cd "$root" || exit 1
echo "pytest_start=$(date +%s.%N)" >>"$out/timing"
"$root/.venv/bin/python" -m pytest -p no:cacheprovider -m kernel \
    --junitxml="$out/junit.xml" "${args[@]}" >>"$log" 2>&1
rc=$?
echo "pytest_end=$(date +%s.%N)" >>"$out/timing"
echo "== guest: pytest exited $rc at $(date -u +%H:%M:%S)" >>"$log"
echo "$rc" >"$out/exitcode.tmp" && mv "$out/exitcode.tmp" "$out/exitcode"
sync
exit "$rc"
