"""What the checks look at: a host's links as seen by one source (sysfs, keyfiles, nmstate).

Every source produces the same small model, so the rules are written once: a ``HostView`` maps
interface names to ``Link``s; bridges and bonds list their ports, a VLAN its lower device, and a
bond carries its settings. ``origin`` says where a link was read from, for messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from virtnet.hostcfg.modes import BondMode


class LinkKind(StrEnum):
    ETHERNET = "ethernet"
    WIRELESS = "wireless"
    BOND = "bond"
    BRIDGE = "bridge"
    VLAN = "vlan"
    TAP = "tap"  # a VM's port (tun/tap); never an uplink
    OTHER = "other"
    UNKNOWN = "unknown"  # named as a port but not described by the source


@dataclass(frozen=True)
class BondSettings:
    mode: BondMode
    miimon: int = 0  # ms; 0 = MII monitoring off
    arp_interval: int = 0  # ms; 0 = ARP monitoring off
    arp_ip_targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Link:
    name: str
    kind: LinkKind
    state: str | None = None  # operstate: up, down, unknown, lowerlayerdown, ...; None: not known
    ports: tuple[str, ...] = ()  # bridge or bond members
    lower: tuple[str, ...] = ()  # a VLAN's (or other stacked device's) lower devices
    bond: BondSettings | None = None
    origin: str | None = None  # file or directory it was read from
    alias: str | None = None  # ifalias: marks the ports virtnet attached ("virtnet-port:...")


@dataclass(frozen=True)
class HostView:
    links: Mapping[str, Link] = field(default_factory=dict)
    source: str = ""  # e.g. "sysfs under /", "NetworkManager keyfiles"

    def get(self, name: str) -> Link | None:
        return self.links.get(name)

    def bridges(self) -> list[str]:
        return sorted(n for n, link in self.links.items() if link.kind is LinkKind.BRIDGE)

    def bonds(self) -> list[str]:
        return sorted(n for n, link in self.links.items() if link.kind is LinkKind.BOND)

    def upper_of(self, name: str) -> str | None:
        """The bridge or bond that has NAME as a port, or a VLAN on top of it, if any."""
        for link in self.links.values():
            if name in link.ports or name in link.lower:
                return link.name
        return None

    def __iter__(self) -> Iterator[Link]:
        return iter(self.links.values())
