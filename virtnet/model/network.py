"""Dataclasses for a virtual network, mirroring libvirt's network XML element by element.

Values keep what the user wrote where libvirt's output preserves it (``netmask`` vs ``prefix``,
``family`` given or not), so the XML writer can be faithful. Optional attributes are ``None``
when absent. Everything is frozen: changing a network means building a new one
(``dataclasses.replace``), which keeps planning a pure function of the definition.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum


class ForwardMode(StrEnum):
    """libvirt's ``<forward mode=...>`` values, plus ISOLATED for a network with no forward."""

    NAT = "nat"
    ROUTE = "route"
    OPEN = "open"
    BRIDGE = "bridge"
    PRIVATE = "private"
    VEPA = "vepa"
    PASSTHROUGH = "passthrough"
    HOSTDEV = "hostdev"
    ISOLATED = "isolated"

    @property
    def has_own_bridge(self) -> bool:
        """virtnet creates and owns a bridge (and usually dnsmasq) for these modes."""
        return self in (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.OPEN, ForwardMode.ISOLATED)

    @property
    def is_direct(self) -> bool:
        """Modes where VM ports are macvtap devices (or VFs) on a host interface."""
        return self in (
            ForwardMode.PRIVATE,
            ForwardMode.VEPA,
            ForwardMode.PASSTHROUGH,
            ForwardMode.HOSTDEV,
        )


@dataclass(frozen=True)
class Lease:
    expiry: int  # 0 means infinite
    unit: str | None = None  # seconds | minutes | hours; None means libvirt's default (minutes)

    @property
    def seconds(self) -> int | None:
        """Lease length in seconds, or None for infinite."""
        if self.expiry == 0:
            return None
        mult = {"seconds": 1, "minutes": 60, "hours": 3600, None: 60}[self.unit]
        return self.expiry * mult


@dataclass(frozen=True)
class DHCPRange:
    start: str
    end: str
    lease: Lease | None = None

    def size(self) -> int:
        return int(ipaddress.ip_address(self.end)) - int(ipaddress.ip_address(self.start)) + 1


@dataclass(frozen=True)
class DHCPHost:
    ip: str | None = None
    mac: str | None = None  # IPv4 hosts
    id: str | None = None  # IPv6 hosts: DUID
    name: str | None = None
    lease: Lease | None = None


@dataclass(frozen=True)
class Bootp:
    file: str
    server: str | None = None


@dataclass(frozen=True)
class DHCP:
    ranges: tuple[DHCPRange, ...] = ()
    hosts: tuple[DHCPHost, ...] = ()
    bootp: Bootp | None = None


@dataclass(frozen=True)
class IPDef:
    """One ``<ip>``: the host's address on the bridge and what is served on that subnet."""

    address: str
    family: str | None = None  # as written: "ipv4", "ipv6" or None (ipv4 implied)
    netmask: str | None = None
    prefix: int | None = None
    local_ptr: bool | None = None
    tftp_root: str | None = None
    dhcp: DHCP | None = None

    @property
    def is_ipv6(self) -> bool:
        return self.family == "ipv6" or ":" in self.address

    @property
    def prefixlen(self) -> int:
        """Prefix length, with libvirt's defaults (classful for IPv4 without one, 64 for IPv6)."""
        if self.prefix is not None:
            return self.prefix
        if self.netmask is not None:
            return ipaddress.IPv4Network(f"0.0.0.0/{self.netmask}").prefixlen
        if self.is_ipv6:
            return 64
        first = int(self.address.split(".")[0])
        return 8 if first < 128 else 16 if first < 192 else 24

    @property
    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(f"{self.address}/{self.prefixlen}")

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return self.interface.network


@dataclass(frozen=True)
class Route:
    address: str
    gateway: str
    family: str | None = None
    netmask: str | None = None
    prefix: int | None = None
    metric: int | None = None


@dataclass(frozen=True)
class NatAddressRange:
    start: str
    end: str


@dataclass(frozen=True)
class Nat:
    ipv6: bool | None = None
    addresses: tuple[NatAddressRange, ...] = ()
    port_start: int | None = None
    port_end: int | None = None


@dataclass(frozen=True)
class PciAddress:
    domain: str
    bus: str
    slot: str
    function: str
    type: str = "pci"


@dataclass(frozen=True)
class Forward:
    mode: ForwardMode = ForwardMode.NAT
    dev: str | None = None
    managed: bool | None = None
    driver_name: str | None = None
    nat: Nat | None = None
    interfaces: tuple[str, ...] = ()
    pfs: tuple[str, ...] = ()
    addresses: tuple[PciAddress, ...] = ()
    mode_given: bool = True  # False when the XML had <forward> without mode= (libvirt: nat)


@dataclass(frozen=True)
class Bridge:
    name: str | None = None
    stp: bool | None = None
    delay: int | None = None
    mac_table_manager: str | None = None  # kernel | libvirt
    zone: str | None = None


@dataclass(frozen=True)
class Domain:
    name: str
    local_only: bool | None = None
    register: bool | None = None


@dataclass(frozen=True)
class DNSForwarder:
    addr: str | None = None
    domain: str | None = None
    port: int | None = None  # <forwarder addr=... port=...>: a non-standard DNS port


@dataclass(frozen=True)
class DNSHost:
    ip: str
    hostnames: tuple[str, ...] = ()


@dataclass(frozen=True)
class DNSTxt:
    name: str
    value: str


@dataclass(frozen=True)
class DNSSrv:
    service: str
    protocol: str
    domain: str | None = None
    target: str | None = None
    port: int | None = None
    priority: int | None = None
    weight: int | None = None


@dataclass(frozen=True)
class DNS:
    enable: bool | None = None
    forward_plain_names: bool | None = None
    forwarders: tuple[DNSForwarder, ...] = ()
    hosts: tuple[DNSHost, ...] = ()
    txts: tuple[DNSTxt, ...] = ()
    srvs: tuple[DNSSrv, ...] = ()


@dataclass(frozen=True)
class BandwidthRate:
    average: int | None = None
    peak: int | None = None
    burst: int | None = None
    floor: int | None = None


@dataclass(frozen=True)
class Bandwidth:
    inbound: BandwidthRate | None = None
    outbound: BandwidthRate | None = None


@dataclass(frozen=True)
class VlanTag:
    id: int
    native_mode: str | None = None  # tagged | untagged


@dataclass(frozen=True)
class Vlan:
    tags: tuple[VlanTag, ...] = ()
    trunk: bool | None = None


@dataclass(frozen=True)
class VirtualPort:
    type: str | None = None  # 802.1Qbg | 802.1Qbh | openvswitch | midonet | None
    # libvirt's <parameters> attributes in the order it prints them: managerid, typeid,
    # typeidversion, instanceid, interfaceid, profileid. Kept as (name, value) pairs.
    parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PortGroup:
    name: str
    default: bool | None = None
    trust_guest_rx_filters: bool | None = None
    vlan: Vlan | None = None
    virtualport: VirtualPort | None = None
    bandwidth: Bandwidth | None = None


@dataclass(frozen=True)
class Network:
    name: str
    uuid: str | None = None
    title: str | None = None
    description: str | None = None
    metadata: str | None = None  # the <metadata> element's children, as serialized XML
    ipv6: bool | None = None  # <network ipv6='yes'>: allow guest-to-guest IPv6 without an address
    trust_guest_rx_filters: bool | None = None
    forward: Forward | None = None
    bridge: Bridge | None = None
    mac: str | None = None
    mtu: int | None = None
    domain: Domain | None = None
    dns: DNS | None = None
    ips: tuple[IPDef, ...] = ()
    routes: tuple[Route, ...] = ()
    bandwidth: Bandwidth | None = None
    vlan: Vlan | None = None
    virtualport: VirtualPort | None = None
    portgroups: tuple[PortGroup, ...] = ()
    port_isolated: bool | None = None
    dnsmasq_options: tuple[str, ...] = field(default=())

    @property
    def mode(self) -> ForwardMode:
        """The connection type: the forward mode, or ISOLATED when there is no <forward>."""
        return self.forward.mode if self.forward else ForwardMode.ISOLATED

    @property
    def bridge_name(self) -> str | None:
        return self.bridge.name if self.bridge else None

    @property
    def ipv4(self) -> tuple[IPDef, ...]:
        return tuple(ip for ip in self.ips if not ip.is_ipv6)

    @property
    def ipv6_defs(self) -> tuple[IPDef, ...]:
        return tuple(ip for ip in self.ips if ip.is_ipv6)

    @property
    def dns_enabled(self) -> bool:
        return not (self.dns is not None and self.dns.enable is False)

    @property
    def needs_dnsmasq(self) -> bool:
        """libvirt's networkStartDhcpDaemon: a bridge-owning mode with an <ip>, and DNS on or
        DHCP or TFTP to serve."""
        if not self.mode.has_own_bridge or not self.ips:
            return False
        has_dhcp = any(ip.dhcp and (ip.dhcp.ranges or ip.dhcp.hosts) for ip in self.ips)
        has_tftp = any(ip.tftp_root for ip in self.ips)
        return self.dns_enabled or has_dhcp or has_tftp
