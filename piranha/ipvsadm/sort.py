"""ipvsadm's listing order: libipvs comparators run by glibc 2.36's ``qsort`` (a merge sort).

``ipvs_cmp_services`` / ``ipvs_cmp_dests`` subtract unsigned 32-bit fields (fwmark, address
words) and keep the difference in an ``int``, so ``a`` sorts before ``b`` when
``(a - b) mod 2**32 >= 2**31``: ``192.168.0.1`` lists before ``10.0.0.1``. That relation is not
transitive, so the result depends on the algorithm: glibc's top-down merge sort (split at
``n // 2``, the left element wins ties) is reproduced exactly by :func:`merge_sort`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from piranha.ipvs.types import Dest, Family, IPAddress, Service

T = TypeVar("T")


def wrap(diff: int) -> int:
    """A difference of two u32 values as C's ``int`` keeps it."""
    diff &= 0xFFFFFFFF
    return diff - 2**32 if diff >= 2**31 else diff


def merge_sort(items: Sequence[T], cmp: Callable[[T, T], int]) -> list[T]:
    """glibc ``msort``: top-down, ``n1 = n // 2``, take the left element when ``cmp <= 0``."""
    n = len(items)
    if n <= 1:
        return list(items)
    left = merge_sort(items[: n // 2], cmp)
    right = merge_sort(items[n // 2:], cmp)
    out: list[T] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out


def words(addr: IPAddress | None) -> tuple[int, int, int, int]:
    """The address as the four host-order 32-bit words of ``union nf_inet_addr``."""
    if addr is None:
        return (0, 0, 0, 0)
    value = int(addr)
    if addr.version == 4:
        return (value, 0, 0, 0)
    return (value >> 96, (value >> 64) & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF,
            value & 0xFFFFFFFF)


def _cmp_addr(v6: bool, a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """The address part of both comparators (4 words for IPv6, else the first)."""
    if not v6:
        return wrap(a[0] - b[0])
    for x, y in zip(a, b, strict=True):
        r = wrap(x - y)
        if r:
            return r
    return 0


_SvcKey = tuple[int, int, int, tuple[int, int, int, int], int]
_DestKey = tuple[bool, tuple[int, int, int, int], int]


def _svc_key(svc: Service) -> _SvcKey:
    """What ``ipvs_cmp_services`` looks at."""
    k = svc.key
    return (k.fwmark, int(k.family), int(k.protocol), words(k.addr), k.port)


def _cmp_services(a: _SvcKey, b: _SvcKey) -> int:
    """``ipvs_cmp_services``."""
    r = wrap(a[0] - b[0]) or (a[1] - b[1]) or (a[2] - b[2])
    if r:
        return r
    return _cmp_addr(a[1] == Family.INET6, a[3], b[3]) or (a[4] - b[4])


def _dest_key(dest: Dest) -> _DestKey:
    """What ``ipvs_cmp_dests`` looks at."""
    return (dest.addr.version == 6, words(dest.addr), dest.port)


def _cmp_dests(a: _DestKey, b: _DestKey) -> int:
    """``ipvs_cmp_dests`` (the family of the left element decides how many words count)."""
    return _cmp_addr(a[0], a[1], b[1]) or (a[2] - b[2])


def sort_services(services: Sequence[Service]) -> list[Service]:
    """Services in ipvsadm's listing order."""
    keyed = merge_sort([(_svc_key(s), s) for s in services],
                       lambda x, y: _cmp_services(x[0], y[0]))
    return [s for _, s in keyed]


def sort_dests(dests: Sequence[Dest]) -> list[Dest]:
    """Destinations in ipvsadm's listing order."""
    keyed = merge_sort([(_dest_key(d), d) for d in dests], lambda x, y: _cmp_dests(x[0], y[0]))
    return [d for _, d in keyed]
