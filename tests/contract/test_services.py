"""Contract: virtual services (add, edit, delete, get, dump order, errors) on every backend."""

from __future__ import annotations

import errno
import itertools

import pytest

from piranha.errors import KernelError
from piranha.ipvs.fake import service_bucket
from piranha.ipvs.types import (
    AddService,
    DelService,
    EditService,
    Family,
    Info,
    Proto,
    Query,
    Service,
    ServiceKey,
    SvcFlags,
    Table,
    Timeouts,
)
from testkit.ipvs_cases import VIP, VIP6, WEB, WEB6, fails, key, ok, service

SERVICES = {
    "tcp": service(WEB),
    "udp-persistent-netmask": service(key(53, proto=Proto.UDP), "rr", flags=SvcFlags.PERSISTENT,
                                      timeout=300, netmask=24),
    "sctp-sched-flags": service(key(3868, proto=Proto.SCTP), "sh",
                                flags=SvcFlags.SCHED1 | SvcFlags.SCHED2),
    "ipv6": service(WEB6, "wrr"),
    "ipv6-persistent-prefix": service(key(8443, VIP6), "lc", flags=SvcFlags.PERSISTENT,
                                      timeout=60, netmask=64),
    "fwmark": service(ServiceKey.mark(7), "rr"),
    "fwmark-ipv6": service(ServiceKey.mark(8, Family.INET6), "rr", flags=SvcFlags.PERSISTENT,
                           timeout=60, netmask=64),
    "pe-sip": service(key(5060, proto=Proto.UDP), "rr", flags=SvcFlags.PERSISTENT, timeout=60,
                      pe_name="sip"),
    "one-packet": service(key(1812, proto=Proto.UDP), "wlc", flags=SvcFlags.ONEPACKET),
    "mh-flags": service(key(8080), "mh", flags=SvcFlags.SCHED1 | SvcFlags.SCHED2),
    "no-scheduler": service(key(81), "none"),
    "port-zero-persistent": service(key(0), "wlc", flags=SvcFlags.PERSISTENT, timeout=360),
}


def test_a_new_table_is_empty_with_kernel_defaults(lab):
    assert lab.ipvs.dump() == Table()
    assert lab.ipvs.info() == Info((1, 2, 1), 4096)
    assert lab.ipvs.timeouts() == Timeouts(900, 120, 300)
    assert lab.ipvs.daemons() == []


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_reads_back_as_added(lab, name):
    svc = SERVICES[name]
    ok(lab, AddService(svc))
    table = lab.ipvs.dump()
    assert table.services == (svc,)
    assert table.dests == {svc.key: ()}
    assert lab.ipvs.get_service(svc.key) == (svc, ())


def test_every_kind_of_service_coexists(lab):
    ok(lab, *(AddService(s) for s in SERVICES.values()))
    assert sorted(map(repr, lab.ipvs.dump().services)) == sorted(map(repr, SERVICES.values()))


def test_a_fwmark_service_is_kept_as_tcp_without_address(lab):
    sloppy = ServiceKey(Family.INET, Proto.UDP, VIP, 99, fwmark=12)
    ok(lab, AddService(service(sloppy, "rr")))
    assert lab.ipvs.dump().services[0].key == ServiceKey.mark(12)
    assert lab.ipvs.get_service(ServiceKey.mark(12))[0].key == ServiceKey.mark(12)


def test_fwmark_services_are_per_family(lab):
    ok(lab, AddService(service(ServiceKey.mark(5))),
       AddService(service(ServiceKey.mark(5, Family.INET6))))
    assert {s.key for s in lab.ipvs.dump().services} == {
        ServiceKey.mark(5), ServiceKey.mark(5, Family.INET6)}


def test_the_hashed_flag_is_neither_kept_nor_reported(lab):
    ok(lab, AddService(service(flags=SvcFlags.HASHED | SvcFlags.ONEPACKET)))
    assert lab.ipvs.dump().services[0].flags == SvcFlags.ONEPACKET


def test_edit_replaces_every_setting(lab):
    ok(lab, AddService(service(key(5060, proto=Proto.UDP), "rr", flags=SvcFlags.PERSISTENT,
                               timeout=60, pe_name="sip", netmask=24)))
    edited = service(key(5060, proto=Proto.UDP), "sh", flags=SvcFlags.SCHED1 | SvcFlags.ONEPACKET,
                     timeout=0, netmask=32)
    ok(lab, EditService(edited))
    assert lab.ipvs.dump().services == (edited,)


def test_delete_removes_only_that_service(lab):
    ok(lab, AddService(service(WEB)), AddService(service(WEB6)), DelService(WEB))
    assert lab.ipvs.dump().services == (service(WEB6),)


def test_dump_order_is_the_kernel_hash_walk(lab):
    # addresses chosen so that some share a bucket: newest first inside a bucket
    keys = [key(port, addr) for addr, port in itertools.product(
        ["198.51.100.80", "198.51.100.81", "198.51.100.96", "2001:db8:100::80"], [80, 81, 336])]
    keys += [ServiceKey.mark(m) for m in (1, 2, 257, 9)] + [ServiceKey.mark(3, Family.INET6)]
    ok(lab, *(AddService(service(k, "rr")) for k in keys))
    dumped = [s.key for s in lab.ipvs.dump().services]
    assert sorted(map(repr, dumped)) == sorted(map(repr, keys))
    born = {k: i for i, k in enumerate(keys)}
    orders = {salt: sorted(keys, key=lambda k: (service_bucket(k, salt), -born[k]))
              for salt in range(256)}
    # the salt comes from a kernel address, so any salt may be the namespace's
    assert dumped in orders.values()
    # inside one bucket the newest comes first: (336 >> 8) ^ 336 == 337, i.e. 81 modulo 256
    assert service_bucket(key(81), 0) == service_bucket(key(336), 0)
    assert dumped.index(key(336)) < dumped.index(key(81))


# -- errors ---------------------------------------------------------------------------------


def test_adding_an_existing_service_is_eexist(lab):
    ok(lab, AddService(service(WEB)))
    err = fails(lab, AddService(service(WEB, "rr")))
    assert (err.errno, err.message) == (errno.EEXIST, "Service already exists")
    assert lab.ipvs.dump().services == (service(WEB),)


@pytest.mark.parametrize("op", [EditService(service(WEB)), DelService(WEB),
                                DelService(ServiceKey.mark(3))], ids=["edit", "del", "del-fwmark"])
def test_a_missing_service_is_esrch(lab, op):
    err = fails(lab, op)
    assert (err.errno, err.message) == (errno.ESRCH, "No such service")


def test_get_of_a_missing_service_is_esrch(lab):
    with pytest.raises(KernelError) as caught:
        lab.ipvs.get_service(WEB)
    assert (caught.value.errno, caught.value.message) == (errno.ESRCH, "No such service")
    assert caught.value.op == Query("service", WEB)


@pytest.mark.parametrize("svc", [service(scheduler="nosuch"), service(pe_name="nosuch"),
                                 service(scheduler="")], ids=["scheduler", "pe", "empty"])
def test_an_unknown_scheduler_or_pe_is_enoent(lab, svc):
    err = fails(lab, AddService(svc))
    assert (err.errno, err.message) == (errno.ENOENT, "Scheduler or persistence engine not found")
    ok(lab, AddService(service()))
    assert fails(lab, EditService(svc)).errno == errno.ENOENT
    assert lab.ipvs.dump().services == (service(),)


def test_a_scheduler_name_over_15_bytes_is_einval_even_when_the_service_exists(lab):
    ok(lab, AddService(service()))
    assert fails(lab, AddService(service(scheduler="x" * 16))).errno == errno.EINVAL
    assert fails(lab, EditService(service(scheduler="x" * 16))).errno == errno.EINVAL


@pytest.mark.parametrize("prefix", [0, 129])
def test_an_ipv6_prefix_outside_1_to_128_is_einval(lab, prefix):
    err = fails(lab, AddService(service(WEB6, netmask=prefix)))
    assert err.errno == errno.EINVAL
    assert err.message.startswith("Invalid operation.  Possibly wrong module version")
    ok(lab, AddService(service(WEB6)))
    assert fails(lab, EditService(service(WEB6, netmask=prefix))).errno == errno.EINVAL


def test_an_unencodable_op_raises_before_anything_is_applied(lab):
    with pytest.raises(ValueError):
        lab.ipvs.apply([AddService(service()), AddService(service(key(70000)))])
    with pytest.raises(ValueError):
        lab.ipvs.apply([AddService(service(netmask=33))])
    with pytest.raises(TypeError):
        lab.ipvs.apply([AddService(service()), "not an op"])
    assert lab.ipvs.dump() == Table()


def test_service_defaults_of_the_type_are_accepted(lab):
    ok(lab, AddService(Service(WEB)))
    assert lab.ipvs.dump().services == (Service(WEB),)
