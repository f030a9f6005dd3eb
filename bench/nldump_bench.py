"""Microbenchmark: decoding a big table's dump replies with the fast decoder (no kernel).

    .venv/bin/python -m bench.nldump_bench [--services 1000] [--dests 10] [--repeat 15]

Builds, with testkit.nlkernel (byte-identical to the kernel's replies on x86 but for the port
id), the GET_SERVICE dump of SERVICES services and one GET_DEST dump of DESTS destinations per
service, then times decoding all of it as ``NetlinkIpvs.dump()`` does after each ``recv``:
best of REPEAT, in microseconds per service, per destination and per entry of the whole dump,
the decoder kept warm across repeats (as in a long-lived NetlinkIpvs).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from ipaddress import IPv4Address

from piranha.ipvs import nldump as D
from piranha.ipvs.types import Dest, Forward, Proto, Service, ServiceKey, Stats
from testkit import nlkernel as K

PORTS = (80, 443, 8080, 8443)
#: the warm decoder, as a long-lived NetlinkIpvs has
DECODER = D.DumpDecoder()


def build(services: int, dests: int) -> tuple[list[bytes], list[tuple[int, list[bytes]]]]:
    """(service dump datagrams, [(family, dest dump datagrams)] per service)."""
    svcs = [Service(ServiceKey.inet(Proto.TCP, IPv4Address(0xC6336400 + i // 4), PORTS[i % 4]),
                    "wlc", stats=Stats(conns=i, inbytes=i * 1000))
            for i in range(services)]
    per = [K.dest_dump([Dest(IPv4Address(0x0AC80000 + (i * dests + j) % 60000), 80,
                             Forward.ROUTE if j % 2 else Forward.MASQ, 1 + j,
                             active_conns=j, stats=Stats() if j % 3 else Stats(conns=j))
                        for j in range(dests)]) for i in range(services)]
    return K.service_dump(svcs), [(2, grams) for grams in per]


def decode(svc_grams: list[bytes], dest_dumps: list[tuple[int, list[bytes]]],
           decoder: D.DumpDecoder = DECODER) -> int:
    """Decode everything as NetlinkIpvs.dump() does; the number of entries."""
    services: list[Service] = []
    for gram in svc_grams:
        for kind, _seq, off, end in D.messages(gram, len(gram)):
            if kind >= 16:
                services.append(decoder.service(gram, off + 4, end))
    count = len(services)
    for family, grams in dest_dumps:
        out: list[Dest] = []
        for gram in grams:
            if decoder.dests(gram, len(gram), family, out):
                break
        count += len(out)
    return count


def best(run: Callable[[], int], repeat: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--dests", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    svc_grams, dest_dumps = build(args.services, args.dests)
    entries = decode(svc_grams, dest_dumps)
    assert entries == args.services * (1 + args.dests), entries
    print(f"{args.services} services x {args.dests} dests = {entries} entries, "
          f"best of {args.repeat}")
    svc = best(lambda: decode(svc_grams, []), args.repeat)
    dest = best(lambda: decode([], dest_dumps), args.repeat)
    both = best(lambda: decode(svc_grams, dest_dumps), args.repeat)
    print(f"services: {svc * 1e6 / args.services:.3f} us/service")
    print(f"dests:    {dest * 1e6 / (entries - args.services):.3f} us/dest")
    print(f"dump:     {both * 1e6 / entries:.3f} us/entry ({both * 1e3:.2f} ms per dump)")


if __name__ == "__main__":
    main()
