"""ipvsadm's ``-S`` rule lines (``-A -t VIP:PORT -s wlc -p 300 -M 255.255.255.0``, ``-a ...``),
the one renderer of ipvsadm command text: ``piranha-ipvsadm -S`` prints them, lvsd logs every
op it applies with :func:`op_text`, and ``lvsd -t`` shows its plan with it. Light on imports,
so lvsd pays nothing for it."""

from __future__ import annotations

import socket

from piranha.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    EditDest,
    EditService,
    Family,
    Forward,
    IPAddress,
    Service,
    ServiceKey,
    SetTimeouts,
    SvcFlags,
    TunType,
)
from piranha.text import hostport

PROTO_OPTION = {6: "-t", 17: "-u", 132: "--sctp-service"}
FWD_SWITCH = {Forward.MASQ: "-m", Forward.LOCAL: "-g", Forward.TUNNEL: "-i", Forward.ROUTE: "-g"}
TUN_FLAG_OPTS = ("--tun-nocsum", "--tun-csum", "--tun-remcsum")
SCHED_BITS = SvcFlags.SCHED1 | SvcFlags.SCHED2 | SvcFlags.SCHED3


def c_int(value: int) -> int:
    """A 32-bit unsigned value printed with %d."""
    return value - 2**32 if value >= 2**31 else value


def ntop(addr: IPAddress) -> str:
    """``inet_ntop`` (glibc's IPv6 text, e.g. ``::ffff:1.2.3.4``)."""
    if addr.version == 4:
        return str(addr)
    return socket.inet_ntop(socket.AF_INET6, addr.packed)


def addrport(addr: IPAddress, port: int) -> str:
    """``addr:port`` as ipvsadm -n prints it (IPv6 in brackets)."""
    return hostport(ntop(addr), port)


def service_option(key: ServiceKey) -> str:
    """The numeric service option: ``-t VIP:PORT``, ``-u ...``, ``-f MARK [-6]``."""
    if key.fwmark:
        return f"-f {c_int(key.fwmark)}" + (" -6" if key.family == Family.INET6 else "")
    assert key.addr is not None
    return f"{PROTO_OPTION.get(key.protocol, '--xxx-service')} {addrport(key.addr, key.port)}"


def sched_flag_words(svc: Service) -> str:
    """``print_sched_flags``: the comma-joined flag words (may be empty)."""
    flags = svc.flags
    pairs: tuple[tuple[SvcFlags, str], ...]
    if svc.scheduler in ("sh", "mh"):
        pairs = ((SvcFlags.SCHED1, f"{svc.scheduler}-fallback"),
                 (SvcFlags.SCHED2, f"{svc.scheduler}-port"))
    else:
        pairs = ((SvcFlags.SCHED1, "flag-1"), (SvcFlags.SCHED2, "flag-2"),
                 (SvcFlags.SCHED3, "flag-3"))
    return ",".join(word for bit, word in pairs if flags & bit)


def mask_text(svc: Service) -> str | None:
    """The persistence mask as printed, or None when it is the full one."""
    if svc.key.family == Family.INET6:
        return None if svc.netmask == 128 else str(svc.netmask)
    if svc.netmask == 32:
        return None
    mask = (0xFFFFFFFF << (32 - svc.netmask)) & 0xFFFFFFFF
    return socket.inet_ntoa(mask.to_bytes(4, "big"))


def service_rule(svc: Service, name: str) -> str:
    """The ``-A`` line of -S."""
    out = [f"-A {name} -s {svc.scheduler}"]
    if svc.flags & SvcFlags.PERSISTENT:
        out.append(f" -p {svc.timeout}")
        mask = mask_text(svc)
        if mask is not None:
            out.append(f" -M {mask}")
    if svc.pe_name:
        out.append(f" --pe {svc.pe_name}")
    if svc.flags & SvcFlags.ONEPACKET:
        out.append(" -o")
    if svc.flags & SCHED_BITS:
        out.append(f" -b {sched_flag_words(svc)}")
    return "".join(out)


def dest_rule(dest: Dest, svc_name: str, dname: str) -> str:
    """The ``-a`` line of -S (tunnel options for -i dests)."""
    line = f"-a {svc_name} -r {dname} {FWD_SWITCH[dest.forward]} -w {c_int(dest.weight)}"
    if dest.forward != Forward.TUNNEL:
        return line
    csum = TUN_FLAG_OPTS[int(dest.tun_flags)]
    if dest.tun_type == TunType.GRE:
        return f"{line} --tun-type gre {csum}"
    if dest.tun_type == TunType.GUE:
        return f"{line} --tun-type gue --tun-port {dest.tun_port} {csum}"
    return f"{line} --tun-type ipip"


def op_text(op: object) -> str:
    """The ipvsadm command line that does what ``op`` does, in ``-S`` form (numeric)."""
    if isinstance(op, AddService | EditService):
        rule = service_rule(op.service, service_option(op.service.key))
        return "ipvsadm " + (rule if isinstance(op, AddService) else "-E" + rule[2:])
    if isinstance(op, DelService):
        return f"ipvsadm -D {service_option(op.key)}"
    if isinstance(op, AddDest | EditDest):
        rule = dest_rule(op.dest, service_option(op.service), addrport(op.dest.addr,
                                                                        op.dest.port))
        return "ipvsadm " + (rule if isinstance(op, AddDest) else "-e" + rule[2:])
    if isinstance(op, DelDest):
        return (f"ipvsadm -d {service_option(op.service)} "
                f"-r {addrport(op.dest.addr, op.dest.port)}")
    if isinstance(op, SetTimeouts):
        t = op.timeouts
        return f"ipvsadm --set {t.tcp} {t.tcpfin} {t.udp}"
    return repr(op)
