"""DHCP leases from dnsmasq's own lease file (``dhcp-leasefile=``).

Its format, one lease a line: ``EXPIRY MAC IP HOSTNAME CLIENT-ID`` for IPv4; for IPv6 the
second field is the IAID and a ``duid SERVER-DUID`` line comes first. ``*`` means unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DhcpLease:
    expiry: int  # seconds since the epoch; 0 = infinite
    mac: str | None  # IPv4 leases
    ip: str
    hostname: str | None
    client_id: str | None
    iaid: str | None = None  # IPv6 leases

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.ip


def parse(text: str) -> list[DhcpLease]:
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 4 or f[0] == "duid" or not f[0].isdigit():
            continue
        star = None if f[3] == "*" else f[3]
        cid = f[4] if len(f) > 4 and f[4] != "*" else None
        if ":" in f[2]:
            out.append(DhcpLease(int(f[0]), None, f[2], star, cid, iaid=f[1]))
        else:
            out.append(DhcpLease(int(f[0]), f[1].lower(), f[2], star, cid))
    return out


def read(path: Path) -> list[DhcpLease]:
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        return []
