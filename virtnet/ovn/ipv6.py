"""IPv6 on OVN: router advertisements (SLAAC), SNAT66 for ``<nat ipv6='yes'>``, refusals.

libvirt serves an IPv6 ``<ip>`` without ``<dhcp>`` with router advertisements only
(dnsmasq's ``ra-only``): VMs configure themselves by SLAAC. OVN does the same from the router
port's ``ipv6_ra_configs`` (address_mode=slaac; ovn-controller answers router solicitations
and sends periodic advertisements carrying the MTU), and northd gives ``dynamic`` ports the
EUI-64 address SLAAC picks (``other_config:ipv6_prefix``), so the NB database knows it.

A DHCPv6 ``<range>`` or ``<host>`` cannot be carried: OVN's DHCPv6 hands each port the
address northd derived from its MAC (or a static one), never an address from a range. They
are refused, each naming its element. ``<nat ipv6='yes'>`` becomes SNAT66 on the gateway
router, to the gateway port's IPv6 address on the outside network (``--external-ipv6``);
without ``ipv6='yes'`` a nat network's IPv6 is routed, as libvirt does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from virtnet.errors import InvalidDefinition, NotSupported
from virtnet.model.network import Network

RA_MIN_INTERVAL = 3  # seconds between unsolicited advertisements (RFC 4861 allows >= 3)
RA_MAX_INTERVAL = 4


def refuse_dhcp(net: Network) -> None:
    """A clear refusal for each IPv6 <dhcp> element OVN cannot carry."""
    for ip in net.ipv6_defs:
        dhcp = ip.dhcp
        if dhcp is None:
            continue
        where = f"<ip family='ipv6' address='{ip.address}'>"
        if dhcp.ranges:
            raise NotSupported(
                f"network '{net.name}': DHCPv6 <range> of {where} cannot be carried by OVN",
                element="ip/dhcp/range",
                hint="OVN gives each VM the address derived from its MAC (SLAAC, announced "
                "by router advertisements), not one from a range: remove the IPv6 <dhcp>",
            )
        if dhcp.hosts:
            raise NotSupported(
                f"network '{net.name}': DHCPv6 <host> of {where} cannot be carried by OVN",
                element="ip/dhcp/host",
                hint="give the VM its IPv6 address with 'virtnet ovn port-add ... --ip' or "
                "let it take the SLAAC address; remove the IPv6 <dhcp>",
            )
        if dhcp.bootp is not None:
            raise NotSupported(
                f"network '{net.name}': <bootp> in {where} has no DHCPv6 counterpart",
                element="ip/dhcp/bootp",
                hint="remove it",
            )


def ra_configs(mtu: int) -> tuple[tuple[str, str], ...]:
    """The router port's ipv6_ra_configs: SLAAC, periodic, with the network's MTU."""
    return tuple(sorted({
        "address_mode": "slaac",
        "send_periodic": "true",
        "min_interval": str(RA_MIN_INTERVAL),
        "max_interval": str(RA_MAX_INTERVAL),
        "mtu": str(mtu),
    }.items()))


def external(net: Network, given: Mapping[str, str]) -> ipaddress.IPv6Interface | None:
    """The gateway port's IPv6 address on the outside network (--external-ipv6), if any."""
    value = given.get(net.name)
    if value is None:
        return None
    try:
        iface = ipaddress.IPv6Interface(value if "/" in value else f"{value}/64")
    except ValueError:
        raise InvalidDefinition(
            f"--external-ipv6 {value!r} of network '{net.name}' is not an IPv6 address",
            element="--external-ipv6",
            hint="write it as e.g. 2001:db8:ff::10/64",
        ) from None
    if iface.ip == iface.network.network_address:
        raise InvalidDefinition(
            f"--external-ipv6 {iface} of network '{net.name}' is the subnet-router anycast "
            "address",
            element="--external-ipv6",
            hint="pick a host address on the outside network",
        )
    return iface


def needs_external(net: Network) -> InvalidDefinition:
    return InvalidDefinition(
        f"network '{net.name}' has <nat ipv6='yes'>, which needs an IPv6 address on the "
        "outside network to masquerade to",
        element="nat",
        hint=f"pass --external-ipv6 {net.name}=ADDR/PREFIX (e.g. 2001:db8:ff::10/64)",
    )
