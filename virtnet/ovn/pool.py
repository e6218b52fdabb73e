"""The dynamic address pool: libvirt's DHCP ranges expressed as OVN's ``exclude_ips``.

OVN hands out dynamic addresses from a switch's whole ``other_config:subnet`` minus
``exclude_ips``; libvirt hands out only its ``<range>`` elements. So everything in the subnet
outside the ranges is excluded, and so are the gateway and the addresses reserved for
``<host>`` entries (dnsmasq gives those only to their MAC; OVN would give them to anyone).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Interval = tuple[int, int]


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def exclude_ips(
    subnet: ipaddress.IPv4Network,
    ranges: Sequence[tuple[str, str]],
    reserved: Iterable[str] = (),
) -> str:
    """``exclude_ips`` for ``subnet`` so that OVN's pool is exactly ``ranges`` minus ``reserved``.

    Tokens are single addresses or ``A..B`` ranges (OVN's syntax), ascending, space-separated.
    """
    first, last = int(subnet.network_address) + 1, int(subnet.broadcast_address) - 1
    pool = _merge(
        (max(first, int(ipaddress.IPv4Address(a))), min(last, int(ipaddress.IPv4Address(b))))
        for a, b in ranges
    )
    pool = [(lo, hi) for lo, hi in pool if lo <= hi]
    excluded: list[Interval] = []
    cursor = first
    for lo, hi in pool:
        if cursor < lo:
            excluded.append((cursor, lo - 1))
        cursor = hi + 1
    if cursor <= last:
        excluded.append((cursor, last))
    for addr in reserved:
        n = int(ipaddress.IPv4Address(addr))
        if first <= n <= last:
            excluded.append((n, n))
    return " ".join(
        str(ipaddress.IPv4Address(lo))
        if lo == hi
        else f"{ipaddress.IPv4Address(lo)}..{ipaddress.IPv4Address(hi)}"
        for lo, hi in _merge(excluded)
    )
