"""A virtnet Network as the OVN northbound objects that carry it (pure: no database).

- the network -> logical switch ``vn-NAME``
- ``<ip address>`` (the gateway) -> router ``vn-NAME-router``, port ``vn-NAME-rtr``
  (nat/route/open only)
- ``<dhcp><range>`` -> switch ``other_config:subnet`` + ``exclude_ips``, and a DHCP_Options row
- ``<host mac ip name>`` -> excluded from the pool; static address of that MAC's port; DNS name
- nat -> gateway port on the outside switch, SNAT, stateful ACLs (new connections in are
  rejected)
- route / open -> gateway port on the outside switch, no NAT, no ACLs
- isolated (no ``<forward>``) -> a router with only the gateway port (it answers for the
  gateway address: ping, DHCP renewals, DNS), no chassis, no way out, no DHCP ``router``
- ``<route>`` -> static route on the router
- ``<mtu>`` -> DHCP ``mtu``; without it the underlay's MTU less the tunnel's overhead

A router with a way out is a gateway router (``options:chassis``), because OVN applies NAT
only on a gateway router or a distributed gateway port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from virtnet.errors import Conflict, InvalidDefinition, NotSupported
from virtnet.model.network import ForwardMode, IPDef, Network
from virtnet.model.validate import validate
from virtnet.modes import isolated as isolated_mode
from virtnet.modes import nat as nat_mode
from virtnet.modes.traits import nat_applies, traits
from virtnet.ovn import ipv6 as ipv6_mod
from virtnet.ovn import mtu as mtu_mod
from virtnet.ovn import names
from virtnet.ovn.pool import exclude_ips

SUPPORTED_MODES = (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.OPEN, ForwardMode.ISOLATED)
DEFAULT_OUTSIDE_SWITCH = "vn-outside"
DEFAULT_CHASSIS = "virtnet-gateway"
DEFAULT_LEASE_SECONDS = 3600  # dnsmasq's default, which libvirt keeps
INFINITE_LEASE = 0xFFFFFFFF  # DHCP's "infinity"
ACL_PRIORITY = 1000


@dataclass(frozen=True)
class OvnOptions:
    """What a definition does not say but OVN needs: the outside network and the gateway."""

    external_ips: Mapping[str, str] = field(default_factory=dict)  # network -> ADDR[/PLEN]
    outside_subnet: str | None = None  # CIDR of the outside network
    outside_gateway: str | None = None  # next hop of each router's default route
    outside_switch: str = DEFAULT_OUTSIDE_SWITCH
    physical_network: str | None = None  # localnet network_name (ovn-bridge-mappings)
    chassis: str = DEFAULT_CHASSIS  # chassis that hosts the gateway routers
    dns_servers: tuple[str, ...] = ()  # DHCP dns_server; default: the gateway address
    external_ipv6s: Mapping[str, str] = field(default_factory=dict)  # network -> ADDR/PLEN
    outside_gateway6: str | None = None  # next hop of each router's IPv6 default route
    underlay_mtu: int = mtu_mod.DEFAULT_UNDERLAY_MTU  # the chassis' tunnel network
    encap: str = "geneve"  # the cluster's tunnel type (ovn-encap-type)


@dataclass(frozen=True, order=True)
class Acl:
    direction: str  # from-lport | to-lport
    priority: int
    match: str
    action: str


@dataclass(frozen=True, order=True)
class Snat:
    external_ip: str
    logical_ip: str


@dataclass(frozen=True, order=True)
class StaticRoute:
    prefix: str
    nexthop: str


@dataclass(frozen=True)
class Dhcp:
    uuid: str
    cidr: str
    options: tuple[tuple[str, str], ...]  # sorted (key, value), values as OVN stores them


@dataclass(frozen=True)
class Gateway:
    """The router's side on the outside switch."""

    port: str
    mac: str
    address: str  # ADDR/PLEN
    outside_port: str
    address6: str | None = None  # ADDR/PLEN: IPv6 leaves (routed or SNAT66) only with one


@dataclass(frozen=True)
class OvnRouter:
    name: str
    port: str
    mac: str
    networks: tuple[str, ...]  # ADDR/PLEN, IPv4 first
    switch_port: str
    chassis: str | None  # None: a distributed router (isolated: the gateway port only)
    gateway: Gateway | None
    snat: tuple[Snat, ...] = ()
    routes: tuple[StaticRoute, ...] = ()
    ra: tuple[tuple[str, str], ...] = ()  # the router port's ipv6_ra_configs


@dataclass(frozen=True)
class OvnNetwork:
    name: str
    mode: ForwardMode
    switch: str
    subnet: str | None  # other_config:subnet, only when there is a dynamic pool
    exclude_ips: str | None
    ipv6_prefix: str | None
    router: OvnRouter | None
    dhcp: Dhcp | None
    acls: tuple[Acl, ...]
    dns_uuid: str
    dns_records: tuple[tuple[str, str], ...]  # (hostname, addresses)
    hosts: tuple[tuple[str, str], ...]  # (mac, ip) reservations, for port-add
    gateway: str | None  # the network's own (host's) IPv4 address: no VM may take it
    notes: tuple[str, ...]  # what the definition says that OVN does not carry
    warnings: tuple[str, ...] = ()  # what is carried but will not work as written


def _dhcp_ipdef(net: Network) -> IPDef | None:
    for ip in net.ipv4:
        if ip.dhcp and (ip.dhcp.ranges or ip.dhcp.hosts):
            return ip
    return None


def _external(net: Network, opts: OvnOptions) -> ipaddress.IPv4Interface:
    """The gateway port's address on the outside network, from the flags or <nat><address>."""
    outside = ipaddress.IPv4Network(opts.outside_subnet) if opts.outside_subnet else None
    given = opts.external_ips.get(net.name)
    nat_addrs = net.forward.nat.addresses if net.forward and net.forward.nat else ()
    source = "--external-ip"
    if given is None and nat_addrs:
        given, source = nat_addrs[0].start, "<nat><address start>"
    if given is None:
        raise InvalidDefinition(
            f"network '{net.name}' ({net.mode.value}) needs an external address for its OVN "
            "gateway port",
            element="forward",
            hint=f"pass --external-ip {net.name}=ADDR/PREFIX (an address on the outside "
            "network, e.g. 203.0.113.10/24)",
        )
    try:
        if "/" in given:
            iface = ipaddress.IPv4Interface(given)
        elif outside is not None:
            iface = ipaddress.IPv4Interface(f"{given}/{outside.prefixlen}")
        else:
            raise InvalidDefinition(
                f"{source} {given} of network '{net.name}' has no prefix length",
                element=source,
                hint="write ADDR/PREFIX or pass --outside-subnet CIDR",
            )
    except ValueError:
        raise InvalidDefinition(
            f"{source} {given!r} of network '{net.name}' is not an IPv4 address",
            element=source,
            hint="write it as e.g. 203.0.113.10/24",
        ) from None
    if outside is not None and iface.ip not in outside:
        raise InvalidDefinition(
            f"external address {iface.ip} of network '{net.name}' is not in the outside "
            f"subnet {outside}",
            element=source,
            hint="pick an address on the outside network",
        )
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        raise InvalidDefinition(
            f"external address {iface} of network '{net.name}' is not a host address",
            element=source,
            hint="pick a host address on the outside network",
        )
    return iface


def _lease_seconds(ip: IPDef) -> int:
    ranges = ip.dhcp.ranges if ip.dhcp else ()
    lease = ranges[0].lease if ranges else None
    if lease is None:
        return DEFAULT_LEASE_SECONDS
    seconds = lease.seconds
    return INFINITE_LEASE if seconds is None else seconds


def _dhcp(net: Network, ip: IPDef, opts: OvnOptions, server_mac: str) -> Dhcp:
    options: dict[str, str] = {
        "lease_time": str(_lease_seconds(ip)),
        "server_id": ip.address,
        "server_mac": server_mac,
    }
    if traits(net).dhcp_router:
        # libvirt gives isolated guests dhcp-option=3 (no router); the others get the gateway.
        options["router"] = ip.address
    if net.dns_enabled:
        servers = opts.dns_servers or (ip.address,)
        options["dns_server"] = "{" + ",".join(servers) + "}"
    if net.domain is not None:
        options["domain_name"] = f'"{net.domain.name}"'
    # <mtu> as written (a warning says when it cannot cross the underlay); without it the
    # largest MTU whose frames fit in the underlay's tunnel packets.
    options["mtu"] = str(net.mtu or mtu_mod.vm_mtu(opts.underlay_mtu, opts.encap))
    bootp = ip.dhcp.bootp if ip.dhcp else None
    if bootp is not None:
        options["bootfile_name"] = f'"{bootp.file}"'
        if bootp.server:
            options["tftp_server"] = f'"{bootp.server}"'
    return Dhcp(
        uuid=names.dhcp_uuid(net.name),
        cidr=str(ip.network),
        options=tuple(sorted(options.items())),
    )


def _notes(net: Network) -> list[str]:
    notes = []
    nat = net.forward.nat if net.forward else None
    if nat and (nat.port_start is not None or nat.port_end is not None):
        notes.append("<nat><port> range: OVN's SNAT chooses source ports itself")
    if (
        nat
        and nat.addresses
        and (len(nat.addresses) > 1 or nat.addresses[0].end != nat.addresses[0].start)
    ):
        notes.append("<nat><address> range: OVN SNATs to one address, the range's start")
    if net.forward and net.forward.dev:
        notes.append("<forward dev>: OVN leaves through the outside switch")
    if any(h.lease for ip in net.ipv4 if ip.dhcp for h in ip.dhcp.hosts):
        notes.append("per-host leases: every OVN lease has the range's lease time")
    if net.dns and (net.dns.txts or net.dns.srvs or net.dns.forwarders):
        notes.append("DNS TXT/SRV records and forwarders: OVN answers A records only")
    if net.dnsmasq_options:
        notes.append("<dnsmasq:options>: there is no dnsmasq in OVN")
    if net.bandwidth or net.portgroups or net.vlan or net.virtualport:
        notes.append("bandwidth, portgroups, vlan and virtualport are not carried")
    if net.mode is ForwardMode.OPEN:
        notes.append(
            "open mode: no ACLs, as route; the host firewall that decides in "
            "libvirt has no OVN counterpart"
        )
    return notes


def _acls(net: Network, switch_router_port: str) -> tuple[Acl, ...]:
    """Networks whose traffic leaves but whom nobody outside may reach (NAT): the families
    it masquerades are closed to new connections from the router (rejected)."""
    t = traits(net)
    if t.inbound_new or not t.forwards_out:
        return ()
    fams = [f for f in ("ipv4", "ipv6") if nat_applies(net, f)]
    return tuple(Acl(*a) for a in nat_mode.ovn_inbound_acls(switch_router_port, ACL_PRIORITY,
                                                             fams))


def _warnings(net: Network, opts: OvnOptions) -> list[str]:
    out = []
    if net.ipv6_defs and traits(net).forwards_out and net.name not in opts.external_ipv6s:
        out.append(f"network '{net.name}': its IPv6 subnet stays inside OVN (SLAAC, VM to "
                   f"VM): pass --external-ipv6 {net.name}=ADDR/PREFIX to route it out")
    if net.mtu:
        w = mtu_mod.warning(net.name, net.mtu, opts.underlay_mtu, opts.encap)
        if w:
            out.append(w)
    return out


def translate(net: Network, opts: OvnOptions | None = None) -> OvnNetwork:
    """The OVN objects for ``net``; NotSupported for modes OVN has no counterpart for."""
    opts = opts or OvnOptions()
    names.check_name(net.name)
    ipv6_mod.refuse_dhcp(net)
    if net.mode not in SUPPORTED_MODES:
        raise NotSupported(
            f"network '{net.name}': forward mode '{net.mode.value}' has no OVN counterpart",
            element="forward",
            hint="OVN carries nat, route, open and isolated networks; bridged and direct "
            "(macvtap/hostdev) modes attach VMs to host devices, which stay with the "
            "host backend (virtnet net-start)",
        )
    sw = names.switch(net.name)
    mode = net.mode
    gw_mac = net.mac or names.mac(net.name, "gateway")
    dhcp_ip = _dhcp_ipdef(net)
    v4 = net.ipv4
    if net.ips and not v4 and mode is not ForwardMode.ISOLATED:
        raise NotSupported(
            f"network '{net.name}' has only IPv6 addresses",
            element="ip",
            hint="the OVN backend routes IPv4 gateways; add an IPv4 <ip> element",
        )
    primary = dhcp_ip or (v4[0] if v4 else None)

    subnet = excl = None
    hosts: list[tuple[str, str]] = []
    if dhcp_ip is not None and dhcp_ip.dhcp is not None:
        hosts = [(h.mac.lower(), h.ip) for h in dhcp_ip.dhcp.hosts if h.mac and h.ip]
        if dhcp_ip.dhcp.ranges:
            network = ipaddress.IPv4Network(str(dhcp_ip.network))
            subnet = str(network)
            excl = exclude_ips(
                network,
                [(r.start, r.end) for r in dhcp_ip.dhcp.ranges],
                [dhcp_ip.address, *(ip for _, ip in hosts)],
            )
    v6 = net.ipv6_defs
    ipv6_prefix = str(v6[0].network.network_address) if v6 else None

    router = None
    swp = names.switch_router_port(net.name)
    vm_mtu = net.mtu or mtu_mod.vm_mtu(opts.underlay_mtu, opts.encap)
    ra = ipv6_mod.ra_configs(vm_mtu) if v6 else ()
    if not traits(net).forwards_out and isolated_mode.ovn_gateway_port(net):
        if net.routes:
            raise NotSupported(
                f"network '{net.name}' ({mode.value}) has <route> elements but no way out",
                element="route",
                hint="static routes need a gateway: use mode nat, route or open",
            )
        # Only the gateway port: answers for the gateway address on every chassis.
        router = OvnRouter(
            name=names.router(net.name),
            port=names.router_port(net.name),
            mac=gw_mac,
            networks=tuple(f"{ip.address}/{ip.prefixlen}" for ip in (*v4, *v6)),
            switch_port=swp,
            chassis=None,
            gateway=None,
            ra=ra,
        )
    elif traits(net).forwards_out and primary is not None:
        ext = _external(net, opts)
        nat_start = (
            net.forward.nat.addresses[0].start
            if net.forward and net.forward.nat and net.forward.nat.addresses
            else None
        )
        snat: tuple[Snat, ...] = ()
        if mode is ForwardMode.NAT:
            if nat_start and ipaddress.IPv4Address(nat_start) not in ext.network:
                raise InvalidDefinition(
                    f"<nat><address start='{nat_start}'> of network '{net.name}' is not on "
                    f"the outside network {ext.network}",
                    element="nat",
                    hint="SNAT needs an address the gateway port can answer ARP for",
                )
            snat_ip = nat_start or str(ext.ip)
            snat = tuple(Snat(snat_ip, str(ip.network)) for ip in v4)
        ext6 = ipv6_mod.external(net, opts.external_ipv6s)
        if nat_applies(net, "ipv6") and v6:
            if ext6 is None:
                raise ipv6_mod.needs_external(net)
            snat += tuple(Snat(str(ext6.ip), str(ip.network)) for ip in v6)
        routes = []
        if opts.outside_gateway:
            routes.append(StaticRoute("0.0.0.0/0", opts.outside_gateway))
        if opts.outside_gateway6 and ext6 is not None:
            routes.append(StaticRoute("::/0", opts.outside_gateway6))
        for r in net.routes:
            if ":" in r.address or r.family == "ipv6":
                continue
            plen = (
                r.prefix
                if r.prefix is not None
                else (ipaddress.IPv4Network(f"0.0.0.0/{r.netmask}").prefixlen if r.netmask else 32)
            )
            routes.append(
                StaticRoute(
                    str(ipaddress.IPv4Network(f"{r.address}/{plen}", strict=False)), r.gateway
                )
            )
        router = OvnRouter(
            name=names.router(net.name),
            port=names.router_port(net.name),
            mac=gw_mac,
            networks=tuple(f"{ip.address}/{ip.prefixlen}" for ip in (*v4, *v6)),
            switch_port=swp,
            chassis=opts.chassis,
            gateway=Gateway(
                port=names.gateway_port(net.name),
                mac=names.mac(net.name, "outside"),
                address=str(ext),
                outside_port=names.outside_port(net.name),
                address6=str(ext6) if ext6 is not None else None,
            ),
            snat=snat,
            routes=tuple(sorted(set(routes))),
            ra=ra,
        )
    elif net.routes:
        raise NotSupported(
            f"network '{net.name}' ({mode.value}) has <route> elements but no OVN router",
            element="route",
            hint="static routes need a router: use mode nat, route or open with an <ip>",
        )

    # OVN answers A/AAAA queries for these names itself (ovn-controller's DNS responder).
    records: dict[str, list[str]] = {}
    for ip in v4:
        for h in ip.dhcp.hosts if ip.dhcp else ():
            if h.name and h.ip:
                records.setdefault(h.name.lower(), []).append(h.ip)
    for dh in net.dns.hosts if net.dns else ():
        for hostname in dh.hostnames:
            records.setdefault(hostname.lower(), []).append(dh.ip)

    return OvnNetwork(
        name=net.name,
        mode=mode,
        switch=sw,
        subnet=subnet,
        exclude_ips=excl,
        ipv6_prefix=ipv6_prefix,
        router=router,
        dhcp=_dhcp(net, dhcp_ip, opts, gw_mac) if dhcp_ip is not None else None,
        acls=_acls(net, swp) if router is not None else (),
        dns_uuid=names.dns_uuid(net.name),
        dns_records=tuple(sorted((k, " ".join(dict.fromkeys(v))) for k, v in records.items()))
        if net.dns_enabled
        else (),
        hosts=tuple(sorted(hosts)),
        gateway=primary.address if primary is not None else None,
        notes=tuple(_notes(net)),
        warnings=tuple(_warnings(net, opts)),
    )


def _check_routed_subnets(nets: Sequence[OvnNetwork]) -> None:
    """route/open subnets are reachable from the shared outside network: no two may overlap
    (sorted sweep, so 1,000 networks cost no more than sorting them)."""
    subnets = sorted(
        (ipaddress.IPv4Network(a, strict=False), n.name)
        for n in nets
        if n.router is not None and not n.router.snat
        for a in n.router.networks
        if ":" not in a
    )
    for (a, an), (b, bn) in zip(subnets, subnets[1:], strict=False):
        if an != bn and a.overlaps(b):
            raise Conflict(
                f"routed subnets {a} ('{an}') and {b} ('{bn}') overlap on the outside network",
                element="ip",
                hint="give route/open networks subnets of their own",
            )


def _ipv4(value: str, flag: str, *, network: bool = False) -> None:
    try:
        if network:
            ipaddress.IPv4Network(value)
        else:
            ipaddress.IPv4Address(value)
    except ValueError:
        raise InvalidDefinition(
            f"{flag} {value!r} is not an IPv4 {'subnet' if network else 'address'}",
            element=flag,
            hint="e.g. 203.0.113.0/24" if network else "e.g. 203.0.113.1",
        ) from None


def check_options(opts: OvnOptions) -> None:
    """Every flag-given value, before any of it reaches an ovn-nbctl command line."""
    names.check_name(opts.outside_switch, element="--outside-switch", what="switch name")
    names.check_name(opts.chassis, element="--chassis", what="chassis name")
    if opts.physical_network is not None:
        names.check_name(opts.physical_network, element="--physical-network", what="name")
    if opts.outside_subnet is not None:
        _ipv4(opts.outside_subnet, "--outside-subnet", network=True)
    if opts.outside_gateway is not None:
        _ipv4(opts.outside_gateway, "--outside-gateway")
    for d in opts.dns_servers:
        _ipv4(d, "--dns-server")
    if opts.outside_gateway6 is not None:
        try:
            ipaddress.IPv6Address(opts.outside_gateway6)
        except ValueError:
            raise InvalidDefinition(
                f"--outside-gateway6 {opts.outside_gateway6!r} is not an IPv6 address",
                element="--outside-gateway6",
                hint="e.g. 2001:db8:ff::1",
            ) from None
    mtu_mod.check_underlay(opts.underlay_mtu, opts.encap)


def translate_all(nets: Sequence[Network], opts: OvnOptions | None = None) -> list[OvnNetwork]:
    """Every network, checked together: names and external addresses must not clash."""
    opts = opts or OvnOptions()
    check_options(opts)
    unknown = (set(opts.external_ips) | set(opts.external_ipv6s)) - {n.name for n in nets}
    if unknown:
        raise InvalidDefinition(
            f"--external-ip names no given network: {', '.join(sorted(unknown))}",
            element="--external-ip",
            hint="write NETWORK=ADDR/PREFIX with the name of a network being applied",
        )
    for n in nets:
        # Alone: each network has its own switch and router in OVN, so nat and isolated
        # subnets may repeat (as on two libvirt hosts); routed ones are checked below.
        validate(n)
    out = [translate(n, opts) for n in nets]
    _check_routed_subnets(out)
    seen: dict[str, str] = {}
    for o in out:
        if o.name in seen:
            raise Conflict(f"network '{o.name}' is given twice", hint="give each network once")
        seen[o.name] = o.name
    taken: dict[str, str] = {}
    for o in out:
        if o.router is None or o.router.gateway is None:
            continue
        g = o.router.gateway
        for ip in (a.split("/")[0] for a in (g.address, g.address6) if a):
            if ip in taken:
                raise Conflict(
                    f"networks '{taken[ip]}' and '{o.name}' both use external address {ip}",
                    element="--external-ip",
                    hint="give each nat/route/open network its own external address",
                )
            taken[ip] = o.name
    return out
