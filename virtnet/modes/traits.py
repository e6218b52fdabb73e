"""What each connection type is: the one table every layer asks.

A connection type is the seed's word (NAT, routed, bridged, isolated, open) plus libvirt's
macvtap "direct" modes. libvirt's ``<forward mode=...>`` alone does not name it:
``mode='bridge'`` is a host bridge with ``<bridge name=...>`` and macvtap with
``<forward dev=...>``/``<interface>``. ``connection_type`` resolves that once; ``traits``
answers every "does this mode ..." question. Nothing else in virtnet keeps a set of modes.

Pure: no host access, imports only the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from virtnet.model.network import ForwardMode, Network


class ConnectionType(StrEnum):
    NAT = "nat"
    ROUTE = "route"
    ISOLATED = "isolated"
    OPEN = "open"
    BRIDGED = "bridged"  # an existing host bridge (<forward mode='bridge'> + <bridge name>)
    MACVTAP = "macvtap"  # direct modes: bridge/private/vepa/passthrough on host interfaces
    HOSTDEV = "hostdev"  # SR-IOV VFs handed to guests (refused: needs hardware)


class Device(StrEnum):
    """What a VM port is attached to."""

    OWN_BRIDGE = "own-bridge"  # a bridge virtnet creates, addresses, firewalls and serves
    HOST_BRIDGE = "host-bridge"  # a bridge the host already has; virtnet adds ports only
    MACVTAP = "macvtap"  # a macvtap device on a host interface per port
    HOSTDEV = "hostdev"  # a PCI virtual function


class Nat(StrEnum):
    """Whether an address family is masqueraded."""

    NEVER = "never"
    ALWAYS = "always"
    OPT_IN = "opt-in"  # only with <nat ipv6='yes'> (libvirt routes a nat network's IPv6)


@dataclass(frozen=True)
class Traits:
    type: ConnectionType
    device: Device
    # virtnet's nftables table holds elements for it (bridges set, verdict maps).
    firewalled: bool
    # Starting it turns on ip_forward / IPv6 forwarding for the families it has addresses in
    # (libvirt: every network with a <forward>, open included).
    forwarding: bool
    nat_ipv4: Nat
    nat_ipv6: Nat
    # Traffic from outside may open connections to its subnets (given a route via the host).
    inbound_new: bool
    # Forwarded traffic may leave the host at all.
    forwards_out: bool
    # dnsmasq hands out the gateway as default router (isolated: dhcp-option=3, none).
    dhcp_router: bool
    # virtnet runs a dnsmasq for it (when it has an <ip> and DNS/DHCP/TFTP to serve).
    runs_dnsmasq: bool
    # The firewalld zone its bridge joins by default when firewalld runs (libvirt's choice;
    # <bridge zone=...> overrides). None: no zone (open: the host's firewall decides).
    firewalld_zone: str | None
    # The seed's row label in the comparison table (section 16.2.6).
    seed_row: str
    # Reachability is decided by the host's own firewall (open mode: "depends").
    host_firewall_decides: bool = False


FIREWALLD_ZONE = "virtnet"
FIREWALLD_ROUTED_ZONE = "virtnet-routed"

TRAITS: dict[ConnectionType, Traits] = {
    ConnectionType.NAT: Traits(
        ConnectionType.NAT, Device.OWN_BRIDGE, firewalled=True, forwarding=True,
        nat_ipv4=Nat.ALWAYS, nat_ipv6=Nat.OPT_IN, inbound_new=False, forwards_out=True,
        dhcp_router=True, runs_dnsmasq=True, firewalld_zone=FIREWALLD_ZONE, seed_row="NAT"),
    ConnectionType.ROUTE: Traits(
        ConnectionType.ROUTE, Device.OWN_BRIDGE, firewalled=True, forwarding=True,
        nat_ipv4=Nat.NEVER, nat_ipv6=Nat.NEVER, inbound_new=True, forwards_out=True,
        dhcp_router=True, runs_dnsmasq=True, firewalld_zone=FIREWALLD_ROUTED_ZONE,
        seed_row="Routed mode"),
    ConnectionType.ISOLATED: Traits(
        ConnectionType.ISOLATED, Device.OWN_BRIDGE, firewalled=True, forwarding=False,
        nat_ipv4=Nat.NEVER, nat_ipv6=Nat.NEVER, inbound_new=False, forwards_out=False,
        dhcp_router=False, runs_dnsmasq=True, firewalld_zone=FIREWALLD_ZONE,
        seed_row="Isolated mode"),
    ConnectionType.OPEN: Traits(
        ConnectionType.OPEN, Device.OWN_BRIDGE, firewalled=False, forwarding=True,
        nat_ipv4=Nat.NEVER, nat_ipv6=Nat.NEVER, inbound_new=True, forwards_out=True,
        dhcp_router=True, runs_dnsmasq=True, firewalld_zone=None, seed_row="Open mode",
        host_firewall_decides=True),
    ConnectionType.BRIDGED: Traits(
        ConnectionType.BRIDGED, Device.HOST_BRIDGE, firewalled=False, forwarding=False,
        nat_ipv4=Nat.NEVER, nat_ipv6=Nat.NEVER, inbound_new=True, forwards_out=True,
        dhcp_router=False, runs_dnsmasq=False, firewalld_zone=None, seed_row="Bridged mode"),
    ConnectionType.MACVTAP: Traits(
        ConnectionType.MACVTAP, Device.MACVTAP, firewalled=False, forwarding=False,
        nat_ipv4=Nat.NEVER, nat_ipv6=Nat.NEVER, inbound_new=True, forwards_out=True,
        dhcp_router=False, runs_dnsmasq=False, firewalld_zone=None, seed_row="Bridged mode"),
    ConnectionType.HOSTDEV: Traits(
        ConnectionType.HOSTDEV, Device.HOSTDEV, firewalled=False, forwarding=False,
        nat_ipv4=Nat.NEVER, nat_ipv6=Nat.NEVER, inbound_new=True, forwards_out=True,
        dhcp_router=False, runs_dnsmasq=False, firewalld_zone=None, seed_row="Bridged mode"),
}

_BY_FORWARD_MODE = {
    ForwardMode.NAT: ConnectionType.NAT,
    ForwardMode.ROUTE: ConnectionType.ROUTE,
    ForwardMode.ISOLATED: ConnectionType.ISOLATED,
    ForwardMode.OPEN: ConnectionType.OPEN,
    ForwardMode.PRIVATE: ConnectionType.MACVTAP,
    ForwardMode.VEPA: ConnectionType.MACVTAP,
    ForwardMode.PASSTHROUGH: ConnectionType.MACVTAP,
    ForwardMode.HOSTDEV: ConnectionType.HOSTDEV,
}


def connection_type(net: Network) -> ConnectionType:
    """NET's connection type. ``mode='bridge'`` is a host bridge when it names one, macvtap
    when it names host interfaces (or a <pf>), and a host bridge still to be named otherwise
    (libvirt accepts an Open vSwitch bridge network without a name; validation decides)."""
    mode = net.mode
    if mode is ForwardMode.BRIDGE:
        fw = net.forward
        if not net.bridge_name and fw is not None and (fw.dev or fw.interfaces or fw.pfs):
            return ConnectionType.MACVTAP
        return ConnectionType.BRIDGED
    return _BY_FORWARD_MODE[mode]


def traits(net: Network) -> Traits:
    return TRAITS[connection_type(net)]


def nat_applies(net: Network, family: str) -> bool:
    """Whether NET masquerades FAMILY ('ipv4' or 'ipv6') traffic leaving it."""
    t = traits(net)
    nat = t.nat_ipv4 if family == "ipv4" else t.nat_ipv6
    if nat is Nat.OPT_IN:
        fw = net.forward
        return bool(fw and fw.nat and fw.nat.ipv6)
    return nat is Nat.ALWAYS


def owns_bridge(net: Network) -> bool:
    return traits(net).device is Device.OWN_BRIDGE


def on_host_bridge(net: Network) -> bool:
    return traits(net).device is Device.HOST_BRIDGE


def is_macvtap(net: Network) -> bool:
    return traits(net).device in (Device.MACVTAP, Device.HOSTDEV)


def firewalld_zone(net: Network) -> str | None:
    """The zone NET's bridge joins when firewalld runs: <bridge zone=...>, else the type's."""
    zone = net.bridge.zone if net.bridge is not None else None
    return zone or traits(net).firewalld_zone


def refuses_new_inbound(net: Network, family: str) -> bool:
    """Whether forwarded connections from elsewhere into NET's FAMILY subnets are refused
    (NAT's "not visible", isolated). A nat network's IPv6 without <nat ipv6='yes'> is routed,
    so open to connections, as in libvirt."""
    t = traits(net)
    if not t.firewalled or t.inbound_new:
        return False
    return not t.forwards_out or nat_applies(net, family)


def forwards_nothing(net: Network) -> bool:
    """Whether nothing at all may be forwarded out of NET (isolated)."""
    t = traits(net)
    return t.firewalled and not t.forwards_out
