"""Networks in every mode the firewall distinguishes, shared by the firewall tests."""

from __future__ import annotations

from virtnet.model.network import (
    Bridge,
    Forward,
    ForwardMode,
    IPDef,
    Nat,
    NatAddressRange,
    Network,
)


def net(
    name: str,
    mode: ForwardMode | None,
    bridge: str,
    *ips: str,
    dev: str | None = None,
    nat: Nat | None = None,
) -> Network:
    """A network with bridge BRIDGE and addresses like '10.1.0.1/24' or '2001:db8::1/64'."""
    ipdefs = []
    for ip in ips:
        addr, plen = ip.split("/")
        family = "ipv6" if ":" in addr else None
        ipdefs.append(IPDef(address=addr, prefix=int(plen), family=family))
    forward = Forward(mode=mode, dev=dev, nat=nat) if mode is not None else None
    return Network(name=name, forward=forward, bridge=Bridge(name=bridge), ips=tuple(ipdefs))


NAT = ForwardMode.NAT
ROUTE = ForwardMode.ROUTE
OPEN = ForwardMode.OPEN

CASES: dict[str, list[Network]] = {
    "nat": [net("default", NAT, "virbr0", "192.168.122.1/24")],
    "nat_dev": [net("natdev", NAT, "virbr1", "192.168.100.1/24", dev="eth0")],
    "nat_address_ports": [
        net(
            "snat",
            NAT,
            "virbr2",
            "192.168.101.1/24",
            nat=Nat(
                addresses=(NatAddressRange("198.51.100.10", "198.51.100.20"),),
                port_start=20000,
                port_end=30000,
            ),
        )
    ],
    "nat_address_dev": [
        net(
            "snatdev",
            NAT,
            "virbr3",
            "192.168.102.1/24",
            dev="eth1",
            nat=Nat(addresses=(NatAddressRange("203.0.113.7", "203.0.113.7"),)),
        )
    ],
    "nat_ports": [
        net("natports", NAT, "virbr4", "192.168.103.1/24", nat=Nat(port_start=4000, port_end=5000))
    ],
    "nat_ipv6": [
        net("nat6", NAT, "virbr5", "192.168.104.1/24", "2001:db8:ca2:2::1/64", nat=Nat(ipv6=True))
    ],
    "nat_ipv6_routed": [net("nat6r", NAT, "virbr6", "192.168.105.1/24", "2001:db8:ca2:3::1/64")],
    "route": [net("routed", ROUTE, "virbr7", "10.10.0.1/24", "2001:db8:10::1/64")],
    "route_dev": [net("routeddev", ROUTE, "virbr8", "10.11.0.1/24", dev="eth0")],
    "isolated": [net("isolated", None, "virbr9", "10.12.0.1/24", "fd00:12::1/64")],
    "open": [net("open", OPEN, "virbr10", "10.13.0.1/24")],
    "empty": [],
}
CASES["mix"] = [n for name in sorted(CASES) if name not in ("empty",) for n in CASES[name]]
