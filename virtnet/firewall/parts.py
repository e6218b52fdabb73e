"""Typed pieces of a set element, printable as nft syntax and comparable as canonical text.

The same element must compare equal whether it was rendered by us or read back from
``nft -j list table`` (which prints 10.0.0.0/24 as a prefix, a lone address bare, a port
range as a range, and may print an address range that happens to be a prefix as a prefix).
So every part has ``render()`` (what goes into a script) and ``canon()`` (a normal form:
ranges as ``lo-hi``, singletons bare), and ``canon_json`` turns nft's JSON into that form.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from virtnet.firewall.names import quote_ifname

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Ifname:
    name: str

    def render(self) -> str:
        return quote_ifname(self.name)

    def canon(self) -> str:
        return '"' + self.name + '"'


@dataclass(frozen=True)
class Addrs:
    """An inclusive address range; a subnet is the range of its addresses."""

    lo: IPAddress
    hi: IPAddress

    @classmethod
    def net(cls, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Addrs:
        return cls(network.network_address, network.broadcast_address)

    @classmethod
    def parse(cls, text: str) -> Addrs:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return cls(ipaddress.ip_address(lo), ipaddress.ip_address(hi))
        return cls.net(ipaddress.ip_network(text, strict=False))

    def render(self) -> str:
        if self.lo == self.hi:
            return str(self.lo)
        lo, size = int(self.lo), int(self.hi) - int(self.lo) + 1
        if size > 0 and size & (size - 1) == 0 and lo % size == 0:  # an aligned prefix
            bits = 32 if self.lo.version == 4 else 128
            return f"{self.lo}/{bits - size.bit_length() + 1}"
        return f"{self.lo}-{self.hi}"

    def render_range(self) -> str:
        """Always ``lo-hi``: nft wants a range (not a singleton) as interval map data."""
        return f"{self.lo}-{self.hi}"

    def canon(self) -> str:
        return self.render()


@dataclass(frozen=True)
class Ports:
    lo: int
    hi: int

    def render(self) -> str:
        return f"{self.lo}-{self.hi}"

    def canon(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


@dataclass(frozen=True)
class Verdict:
    text: str  # "accept" or "jump CHAIN"

    def render(self) -> str:
        return self.text

    def canon(self) -> str:
        return self.text


Part = Ifname | Addrs | Ports | Verdict


@dataclass(frozen=True)
class Element:
    key: tuple[Part, ...]
    data: tuple[Part, ...] = ()

    def render(self) -> str:
        text = " . ".join(p.render() for p in self.key)
        if self.data:
            # Interval map data must be ranges even for one address.
            text += " : " + " . ".join(
                p.render_range() if isinstance(p, Addrs) else p.render() for p in self.data
            )
        return text

    def canon(self) -> str:
        text = " . ".join(p.canon() for p in self.key)
        if self.data:
            text += " : " + " . ".join(p.canon() for p in self.data)
        return text


# --- reading nft's JSON back -------------------------------------------------------------


def _canon_addr(value: Any) -> str:
    if isinstance(value, str):
        return value if "-" not in value else Addrs.parse(value).canon()
    if "prefix" in value:
        p = value["prefix"]
        return Addrs.net(ipaddress.ip_network(f"{p['addr']}/{p['len']}", strict=False)).canon()
    if "range" in value:
        lo, hi = value["range"]
        return Addrs(ipaddress.ip_address(lo), ipaddress.ip_address(hi)).canon()
    raise ValueError(f"unexpected address value {value!r}")


def _canon_port(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict) and "range" in value:
        lo, hi = value["range"]
        return Ports(int(lo), int(hi)).canon()
    raise ValueError(f"unexpected port value {value!r}")


def _canon_verdict(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, arg),) = value.items()
        if isinstance(arg, dict) and "target" in arg:
            return f"{kind} {arg['target']}"
        return str(kind)
    return str(value)


def canon_json_part(type_name: str, value: Any) -> str:
    if type_name == "ifname":
        return '"' + str(value) + '"'
    if type_name in ("ipv4_addr", "ipv6_addr"):
        return _canon_addr(value)
    if type_name == "inet_service":
        return _canon_port(value)
    if type_name == "verdict":
        return _canon_verdict(value)
    return str(value)


def _split(value: Any, types: list[str]) -> list[Any]:
    if len(types) == 1:
        return [value]
    if isinstance(value, dict) and "concat" in value:
        return list(value["concat"])
    raise ValueError(f"expected a concatenation of {types}, got {value!r}")


def canon_json_element(elem: Any, key_types: list[str], data_types: list[str] | None) -> str:
    """One element of nft's JSON set/map listing, in Element.canon() form."""
    if isinstance(elem, dict) and "elem" in elem:  # element with comment/timeout
        elem = elem["elem"]["val"]
    data: Any = None
    if data_types is not None:
        elem, data = elem
    text = " . ".join(
        canon_json_part(t, v) for t, v in zip(key_types, _split(elem, key_types), strict=True)
    )
    if data_types is not None:
        text += " : " + " . ".join(
            canon_json_part(t, v) for t, v in zip(data_types, _split(data, data_types), strict=True)
        )
    return text
