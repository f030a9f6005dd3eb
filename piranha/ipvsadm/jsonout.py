"""``piranha-ipvsadm -L --json``: the listings as JSON (schema in docs/ipvsadm-json.md).

One document per invocation, always with ``"schema": "piranha-ipvsadm/1"``. Addresses are
always numeric (``-n`` changes nothing), every field is present whatever layout switch was
given (``--stats``, ``--rate``, ``--exact``... change nothing), counters are exact integers,
and the order is ipvsadm's listing order unless ``--nosort``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from piranha.ipvs.types import Daemon, Dest, Forward, Info, Service, Stats, Table, Timeouts
from piranha.ipvsadm.conn import Conn
from piranha.ipvsadm.rules import ntop, sched_flag_words
from piranha.ipvsadm.sort import sort_dests, sort_services

SCHEMA = "piranha-ipvsadm/1"
_PROTO = {6: "tcp", 17: "udp", 132: "sctp"}
_FORWARD = {Forward.MASQ: "masq", Forward.LOCAL: "local", Forward.TUNNEL: "tunnel",
            Forward.ROUTE: "route"}
_TUN_TYPE = ("ipip", "gue", "gre")
_TUN_CSUM = ("nocsum", "csum", "remcsum")


def dumps(doc: dict[str, Any]) -> str:
    """The document as printed: schema first, 2-space indent, trailing newline."""
    return json.dumps({"schema": SCHEMA, **doc}, indent=2) + "\n"


def stats_doc(s: Stats) -> dict[str, int]:
    """Counters and rates."""
    return {"conns": s.conns, "inpkts": s.inpkts, "outpkts": s.outpkts, "inbytes": s.inbytes,
            "outbytes": s.outbytes, "cps": s.cps, "inpps": s.inpps, "outpps": s.outpps,
            "inbps": s.inbps, "outbps": s.outbps}


def dest_doc(d: Dest) -> dict[str, Any]:
    """One real server."""
    tunnel = None
    if d.forward == Forward.TUNNEL:
        tunnel = {"type": _TUN_TYPE[d.tun_type], "port": d.tun_port,
                  "csum": _TUN_CSUM[int(d.tun_flags)]}
    return {"address": ntop(d.addr), "family": "inet6" if d.addr.version == 6 else "inet",
            "port": d.port, "forward": _FORWARD[d.forward], "weight": d.weight,
            "u_threshold": d.u_threshold, "l_threshold": d.l_threshold,
            "active_conns": d.active_conns, "inactive_conns": d.inact_conns,
            "persistent_conns": d.persist_conns, "tunnel": tunnel, "stats": stats_doc(d.stats)}


def service_doc(svc: Service, dests: Sequence[Dest], nosort: bool) -> dict[str, Any]:
    """One virtual service with its real servers."""
    k = svc.key
    flags = sched_flag_words(svc)
    return {
        "protocol": _PROTO.get(k.protocol, str(int(k.protocol))),
        "family": "inet6" if k.family == 10 else "inet",
        "address": None if k.fwmark or k.addr is None else ntop(k.addr),
        "port": k.port, "fwmark": k.fwmark, "scheduler": svc.scheduler,
        "sched_flags": flags.split(",") if flags else [],
        "persistent": svc.persistent, "timeout": svc.timeout, "netmask": svc.netmask,
        "pe": svc.pe_name or None, "one_packet": bool(svc.flags & 0x4),
        "stats": stats_doc(svc.stats),
        "dests": [dest_doc(d) for d in (dests if nosort else sort_dests(dests))],
    }


def table_doc(info: Info | None, table: Table, services: Sequence[Service], nosort: bool) -> str:
    """A full listing (with ``info``) or a single-service listing (``info`` None)."""
    head: dict[str, Any] = {}
    if info is not None:
        head = {"version": ".".join(map(str, info.version)), "conn_tab_size": info.conn_tab_size}
    ordered = services if nosort else sort_services(services)
    docs = [service_doc(s, table.dests.get(s.key, ()), nosort) for s in ordered]
    return dumps({**head, "services": docs})


def _endpoint(addr_port: tuple[Any, int]) -> dict[str, Any]:
    """An address and port."""
    return {"address": ntop(addr_port[0]), "port": addr_port[1]}


def conns_doc(conns: Sequence[Conn]) -> str:
    """The connection table."""
    return dumps({"connections": [
        {"protocol": c.proto_text, "client": _endpoint(c.client), "virtual": _endpoint(c.virtual),
         "destination": _endpoint(c.dest), "state": c.state, "expires": c.expires,
         "pe_name": c.pe_name, "pe_data": c.pe_data}
        for c in conns]})


def timeouts_doc(t: Timeouts) -> str:
    """The three connection timeouts."""
    return dumps({"timeouts": {"tcp": t.tcp, "tcpfin": t.tcpfin, "udp": t.udp}})


def daemons_doc(daemons: Sequence[Daemon]) -> str:
    """Running sync daemons, master first."""
    ordered = sorted(daemons, key=lambda d: d.state)
    return dumps({"daemons": [
        {"state": d.state.name.lower(), "mcast_interface": d.mcast_ifn, "syncid": d.syncid,
         "sync_maxlen": d.sync_maxlen,
         "mcast_group": None if d.mcast_group is None else ntop(d.mcast_group),
         "mcast_port": d.mcast_port, "mcast_ttl": d.mcast_ttl}
        for d in ordered]})
