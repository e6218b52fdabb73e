"""What the expected matrix is computed over: the host, its networks, their VMs, outside hosts.

A topology is pure data built from definitions; nothing here touches the host. Endpoint ids are
stable strings a person can read: ``host``, ``NET/vm1``, ``outside1``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from virtnet.model.network import ForwardMode, Network

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
FAMILIES = ("ipv4", "ipv6")


class Kind(StrEnum):
    HOST = "host"
    VM = "vm"
    OUTSIDE = "outside"


@dataclass(frozen=True)
class Endpoint:
    id: str
    kind: Kind
    network: str | None = None  # the VM's network


@dataclass(frozen=True)
class Outside:
    """A machine on the host's physical LAN (not the host, not a VM)."""

    name: str
    routes_to_vms: bool = True  # a route to every VM subnet via the VM host (the lab's default)
    ipv6: bool = True


@dataclass(frozen=True)
class Topology:
    networks: tuple[Network, ...]
    vms_per_network: int = 2
    outside: tuple[Outside, ...] = (Outside("outside1"),)
    # The host's forwarding sysctls; None: what starting these networks sets (nat/route on).
    ip_forward: bool | None = None
    ip6_forward: bool | None = None
    # The host's own nftables ruleset (``nft -j list ruleset`` output) outside virtnet's table;
    # None: not known (pure computation), so open mode "depends on the host's firewall rules".
    host_ruleset: dict[str, object] | None = None
    # The host's interface to the LAN; None (pure computation): whatever device a network's
    # <forward dev=...> names is taken to be it.
    uplink: str | None = None
    # Whether the LAN's switch sends a frame back out of the port it came in on (hairpin /
    # 802.1Qbg reflective relay); decides macvtap vepa VM to VM. None: not known.
    lan_hairpin: bool | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, nets: Sequence[Network], **kw: object) -> Topology:
        return cls(networks=tuple(nets), **kw)  # type: ignore[arg-type]

    def network(self, name: str) -> Network:
        for n in self.networks:
            if n.name == name:
                return n
        raise KeyError(name)

    def endpoints(self) -> list[Endpoint]:
        eps = [Endpoint("host", Kind.HOST)]
        for net in self.networks:
            eps += [
                Endpoint(f"{net.name}/vm{i}", Kind.VM, net.name)
                for i in range(1, self.vms_per_network + 1)
            ]
        eps += [Endpoint(o.name, Kind.OUTSIDE) for o in self.outside]
        return eps

    def outside_host(self, name: str) -> Outside:
        for o in self.outside:
            if o.name == name:
                return o
        raise KeyError(name)

    def forwarding(self, family: str) -> bool:
        given = self.ip_forward if family == "ipv4" else self.ip6_forward
        if given is not None:
            return given
        return any(
            n.mode in (ForwardMode.NAT, ForwardMode.ROUTE) and subnets(n, family)
            for n in self.networks
        )


def subnets(net: Network, family: str) -> list[IPNet]:
    """The network's subnets of FAMILY (a bridged network's VMs live on the LAN: none here)."""
    ips = net.ipv4 if family == "ipv4" else net.ipv6_defs
    return [ip.network for ip in ips]


def has_family(net: Network, family: str) -> bool:
    """Whether a VM on NET gets an address of FAMILY (bridged VMs: from the LAN, IPv4)."""
    if net.mode is ForwardMode.BRIDGE or net.mode.is_direct:
        return family == "ipv4"
    return bool(subnets(net, family))


def is_host_bridge(net: Network) -> bool:
    """libvirt's bridged mode proper: VMs join an existing host bridge (not macvtap)."""
    return net.mode is ForwardMode.BRIDGE and bool(net.bridge_name)
