"""libvirt network XML -> Network, with libvirt's parse-time defaults and refusals.

Follows virNetworkDefParseXML (libvirt 9.0 src/conf/network_conf.c): unknown elements and
attributes are ignored, values are type-checked, and the semantic checks libvirt makes at
parse time (mode vs. bridge/dev/mtu, duplicate pool entries, disabled DNS with records,
unreachable route gateways, ...) are made here too. Every refusal is an InvalidDefinition
naming the element (``network/ip[2]/dhcp/range``) and how to fix it.
"""

from __future__ import annotations

import copy
import ipaddress

from lxml import etree

from virtnet.errors import HostileInput, InvalidDefinition
from virtnet.libvirtxml.parse_parts import (
    ULL_MAX,
    child,
    children,
    parse_bandwidth,
    parse_virtualport,
    parse_vlan,
)
from virtnet.libvirtxml.safe_xml import parse_document
from virtnet.libvirtxml.values import (
    attr,
    c_uint,
    fail,
    fmt_ip,
    ip_address,
    ip_attr,
    local_name,
    mac,
    path,
    text,
    tristate,
    uint,
    uuid,
    xattr,
)
from virtnet.model.network import (
    DHCP,
    DNS,
    Bootp,
    Bridge,
    DHCPHost,
    DHCPRange,
    DNSForwarder,
    DNSHost,
    DNSSrv,
    DNSTxt,
    Domain,
    Forward,
    ForwardMode,
    IPDef,
    Lease,
    Nat,
    NatAddressRange,
    Network,
    PciAddress,
    PortGroup,
    Route,
    VirtualPort,
)

DNSMASQ_NS = "http://libvirt.org/schemas/network/dnsmasq/1.0"
_LIBVIRT_MODES = ("none",) + tuple(m.value for m in ForwardMode if m is not ForwardMode.ISOLATED)
_DRIVER_NAMES = ("kvm", "vfio", "xen")
_LEASE_UNITS = ("seconds", "minutes", "hours")
_SRV_MAX = 512 - 30  # libvirt's DNS_RECORD_LENGTH_SRV
_PROTOCOL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+/")
_SERVICE_CHARS = _PROTOCOL_CHARS | frozenset("_*")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_network(text_or_bytes: str | bytes) -> Network:
    """Parse a libvirt ``<network>`` definition (untrusted input) into a Network."""
    root = parse_document(text_or_bytes)
    if not isinstance(root.tag, str) or root.tag != "network":
        ns = etree.QName(root).namespace
        where = f" in namespace '{ns}'" if ns else ""
        raise InvalidDefinition(
            f"root element is <{local_name(root)}>{where}, expected <network>",
            element=local_name(root),
            hint="a network definition starts with <network> (no xmlns on it)",
        )
    return _network(root)


# --- <network> ---------------------------------------------------------------------------


def _refuse_control_characters(root: etree._Element) -> None:
    """No attribute (nor <name>/<hostname> text) may carry line breaks or control characters.

    Values end up in dnsmasq configuration, firewall scripts and device names, where a line
    break starts a new directive; libvirt relies on its schema here, we refuse outright.
    <metadata> is kept as opaque XML and is exempt.
    """
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag == "metadata":
            continue
        if any(anc.tag == "metadata" for anc in el.iterancestors()):
            continue
        values = [(f"attribute {k!s}", str(v)) for k, v in el.attrib.items()]
        if el.tag in ("name", "hostname"):
            values.append(("text", "".join(str(t) for t in el.itertext())))
        for what, value in values:
            bad = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F), None)
            if bad is not None:
                shown = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(bad, f"\\x{ord(bad):02x}")
                raise HostileInput(
                    f"{what} contains a line break or control character ({shown})",
                    element=path(el),
                    hint="write the value on one line without control characters",
                )


def _network(root: etree._Element) -> Network:
    _refuse_control_characters(root)
    name_el = child(root, "name")
    name = text(name_el)
    if name is None:
        fail(root, "missing <name>", "add <name>NETWORK-NAME</name>")
    assert name_el is not None
    if "/" in name:
        fail(name_el, f"name '{name}' cannot contain '/'", "choose a name without '/'")

    uuid_el = child(root, "uuid")
    uuid_text = text(uuid_el)
    net_uuid = uuid(uuid_el, uuid_text) if uuid_el is not None and uuid_text else None

    title_el = child(root, "title")
    title = text(title_el)
    if title is not None and "\n" in title:
        assert title_el is not None
        fail(title_el, "network title can't contain newlines", "put long text in <description>")
    description = text(child(root, "description"))

    ipv6_attr = xattr(root, "ipv6")
    ipv6: bool | None = None
    if ipv6_attr is not None:
        if ipv6_attr not in ("yes", "no"):
            fail(root, f"invalid ipv6 setting '{ipv6_attr}'", "use ipv6='yes' or 'no'")
        ipv6 = ipv6_attr == "yes"
    trust = tristate(root, "trustGuestRxFilters")

    domain = _domain(child(root, "domain"))
    bw_el = child(root, "bandwidth")
    bandwidth = parse_bandwidth(bw_el) if bw_el is not None else None
    vlan_el = child(root, "vlan")
    vlan = parse_vlan(vlan_el) if vlan_el is not None else None
    port_isolated = tristate(child(root, "port"), "isolated")

    bridge_el = child(root, "bridge")
    bridge = _bridge(bridge_el) if bridge_el is not None else None

    mac_el = child(root, "mac")
    bridge_mac = None
    if mac_el is not None and attr(mac_el, "address"):
        bridge_mac = mac(mac_el, "address", attr(mac_el, "address") or "")

    mtu_el = child(root, "mtu")
    mtu = uint(mtu_el, "size", what="mtu size", blank_absent=True) if mtu_el is not None else None

    dns_el = child(root, "dns")
    dns = _dns(dns_el) if dns_el is not None else None

    vport_el = child(root, "virtualport")
    virtualport = parse_virtualport(vport_el, require_type=True) if vport_el is not None else None
    portgroups = tuple(_portgroup(el) for el in children(root, "portgroup"))

    ips = tuple(_ip(el) for el in children(root, "ip"))
    route_els = children(root, "route")
    routes = tuple(_route(el) for el in route_els)
    _check_gateways(route_els, routes, ips)

    fwd_el = child(root, "forward")
    forward = _forward(fwd_el) if fwd_el is not None else None

    net = Network(
        name=name,
        uuid=net_uuid,
        title=title,
        description=description,
        metadata=_metadata(child(root, "metadata")),
        ipv6=ipv6,
        trust_guest_rx_filters=trust,
        forward=forward,
        bridge=bridge,
        mac=bridge_mac,
        mtu=mtu or None,
        domain=domain,
        dns=dns,
        ips=ips,
        routes=routes,
        bandwidth=bandwidth,
        vlan=vlan,
        virtualport=virtualport,
        portgroups=portgroups,
        port_isolated=port_isolated,
        dnsmasq_options=_dnsmasq_options(root),
    )
    _check_mode(root, net)
    return net


def _domain(el: etree._Element | None) -> Domain | None:
    if el is None:
        return None
    local_only = tristate(el, "localOnly")
    register = tristate(el, "register")
    if register is True and local_only is not True:
        fail(el, "register='yes' requires localOnly='yes'", "add localOnly='yes' to <domain>")
    name = attr(el, "name")
    if not name:
        return None  # libvirt drops a <domain> without a name
    return Domain(name=name, local_only=local_only, register=register)


def _bridge(el: etree._Element) -> Bridge:
    stp_attr = xattr(el, "stp")
    stp: bool | None = None
    if stp_attr is not None:
        # libvirt treats anything but 'off' as on; refuse typos instead of guessing.
        if stp_attr not in ("on", "off"):
            fail(el, f"stp='{stp_attr}' must be 'on' or 'off'", "set stp='on' or stp='off'")
        stp = stp_attr == "on"
    mtm = xattr(el, "macTableManager")
    if mtm is not None and mtm not in ("kernel", "libvirt"):
        fail(
            el,
            f"invalid macTableManager setting '{mtm}'",
            "use macTableManager='kernel' or 'libvirt'",
        )
    return Bridge(
        name=attr(el, "name") or None,
        stp=stp,
        delay=uint(el, "delay", maximum=2**63 - 1, what="bridge delay", blank_absent=True),
        mac_table_manager=mtm,
        zone=attr(el, "zone") or None,
    )


def _metadata(el: etree._Element | None) -> str | None:
    """The children of <metadata> as serialized XML, one namespace each, as libvirt keeps them."""
    if el is None:
        return None
    kept: list[str] = []
    seen_ns: set[str] = set()
    for item in el:
        if not isinstance(item.tag, str):
            continue
        ns = etree.QName(item).namespace
        if ns is None or ns in seen_ns:
            continue  # libvirt drops metadata without a namespace and duplicates of one
        seen_ns.add(ns)
        clone = copy.deepcopy(item)
        clone.tail = None
        for node in clone.iter():
            if len(node) and node.text is not None and not node.text.strip():
                node.text = None
            if node is not clone and node.tail is not None and not node.tail.strip():
                node.tail = None
        etree.cleanup_namespaces(clone)
        kept.append(etree.tostring(clone, encoding="unicode", pretty_print=True).rstrip("\n"))
    return "\n".join(kept) if kept else None


def _dnsmasq_options(root: etree._Element) -> tuple[str, ...]:
    options: list[str] = []
    for group in root.findall(f"{{{DNSMASQ_NS}}}options"):
        for opt in group.findall(f"{{{DNSMASQ_NS}}}option"):
            value = attr(opt, "value")
            if value is None:
                fail(opt, "no dnsmasq option value specified", "add value='KEY=VALUE'")
            if "\n" in value or "\r" in value:
                fail(
                    opt, "dnsmasq option value contains a line break", "give one option per element"
                )
            options.append(value)
    return tuple(options)


# --- <forward> ---------------------------------------------------------------------------


def _forward(el: etree._Element) -> Forward | None:
    mode_attr = xattr(el, "mode")
    if mode_attr is not None and mode_attr not in _LIBVIRT_MODES:
        fail(
            el,
            f"unknown forwarding mode '{mode_attr}'",
            f"use one of: {', '.join(_LIBVIRT_MODES[1:])}",
        )
    mode_name = mode_attr or "nat"

    managed_attr = xattr(el, "managed")
    managed = None if managed_attr is None else managed_attr.lower() == "yes"

    driver_name = None
    driver_el = child(el, "driver")
    if driver_el is not None:
        driver_name = attr(driver_el, "name")
        if driver_name is not None and driver_name not in _DRIVER_NAMES:
            fail(
                driver_el,
                f"unknown driver name '{driver_name}'",
                f"use one of: {', '.join(_DRIVER_NAMES)}",
            )

    if_els = children(el, "interface")
    addr_els = children(el, "address")
    pf_els = children(el, "pf")
    nat_els = children(el, "nat")
    if len(nat_els) > 1:
        fail(
            nat_els[1], "only one <nat> element is allowed in <forward>", "merge the <nat> elements"
        )
    nat = _nat(nat_els[0], mode_name) if nat_els else None

    dev = xattr(el, "dev")
    if dev is not None and (addr_els or pf_els):
        fail(
            el,
            "the dev attribute cannot be used when <address> or <pf> sub-elements are present",
            "remove dev= or the <address>/<pf> elements",
        )

    interfaces: list[str] = []
    addresses: list[PciAddress] = []
    pfs: tuple[str, ...] = ()
    if if_els or dev is not None:
        seen_ifs: set[str] = set()
        if dev is not None:
            interfaces.append(dev)
            seen_ifs.add(dev)
        for i, if_el in enumerate(if_els):
            if_dev = attr(if_el, "dev")
            if if_dev is None:
                fail(if_el, "missing required dev attribute", "add dev='HOST-INTERFACE'")
            if i == 0 and dev is not None:
                if if_dev != dev:
                    fail(
                        if_el,
                        f"<forward dev='{dev}'> must match the first <interface dev='{if_dev}'/>",
                        "make the first <interface> the same device as forward dev=",
                    )
                continue
            if if_dev in seen_ifs:
                fail(if_el, f"interface '{if_dev}' can only be listed once", "remove the duplicate")
            seen_ifs.add(if_dev)
            interfaces.append(if_dev)
    elif addr_els:
        seen_pci: set[PciAddress] = set()
        for addr_el in addr_els:
            pci = _pci_address(addr_el)
            if pci in seen_pci:
                fail(
                    addr_el,
                    f"PCI device {pci.domain[2:]}:{pci.bus[2:]}:{pci.slot[2:]}.{pci.function[2:]} "
                    "can only be listed once",
                    "remove the duplicate <address>",
                )
            seen_pci.add(pci)
            addresses.append(pci)
    elif len(pf_els) > 1:
        fail(pf_els[1], "only one <pf> element is allowed in <forward>", "keep a single <pf>")
    elif pf_els:
        pf_dev = attr(pf_els[0], "dev")
        if pf_dev is None:
            fail(pf_els[0], "missing required dev attribute", "add dev='PHYSICAL-FUNCTION'")
        pfs = (pf_dev,)

    if mode_name == "none":
        return None  # libvirt's explicit mode='none' is the same as no <forward>
    return Forward(
        mode=ForwardMode(mode_name),
        dev=interfaces[0] if interfaces else None,
        managed=managed,
        driver_name=driver_name,
        nat=nat,
        interfaces=tuple(interfaces),
        pfs=pfs,
        addresses=tuple(addresses),
        mode_given=mode_attr is not None,
    )


def _nat(el: etree._Element, mode_name: str) -> Nat:
    if mode_name != "nat":
        fail(el, "the <nat> element can only be used when <forward> mode is 'nat'", "remove <nat>")
    ipv6 = tristate(el, "ipv6")
    addr_els = children(el, "address")
    if len(addr_els) > 1:
        fail(addr_els[1], "only one <address> element is allowed in <nat>", "keep a single range")
    addresses: tuple[NatAddressRange, ...] = ()
    if addr_els:
        a = addr_els[0]
        start, end = attr(a, "start"), attr(a, "end")
        if start is None:
            fail(a, "missing 'start' attribute", "add start='IPV4' end='IPV4'")
        if end is None:
            fail(a, "missing 'end' attribute", "add start='IPV4' end='IPV4'")
        s = ip_address(a, "start", start, version=4)
        e = ip_address(a, "end", end, version=4)
        if int(e) < int(s):
            fail(a, f"range {s} - {e} is reversed", "give the lower address as start")
        addresses = (NatAddressRange(start=fmt_ip(s), end=fmt_ip(e)),)
    port_els = children(el, "port")
    if len(port_els) > 1:
        fail(port_els[1], "only one <port> element is allowed in <nat>", "keep a single <port>")
    port_start = port_end = None
    if port_els:
        p = port_els[0]
        if attr(p, "start") is None:
            fail(p, "missing 'start' attribute", "add start='1024' end='65535'")
        port_start = uint(p, "start", maximum=65535, what="port start")
        if attr(p, "end") is None:
            fail(p, "missing 'end' attribute", "add end='65535'")
        port_end = uint(p, "end", maximum=65535, what="port end")
        assert port_start is not None and port_end is not None
        if port_end < port_start:
            fail(p, f"port end {port_end} is below start {port_start}", "give end >= start")
    return Nat(ipv6=ipv6, addresses=addresses, port_start=port_start, port_end=port_end)


def _pci_address(el: etree._Element) -> PciAddress:
    atype = attr(el, "type")
    if atype is None:
        fail(el, "missing address type", "add type='pci'")
    if atype != "pci":
        fail(el, f"unsupported address type '{atype}'", "use type='pci'")
    domain = c_uint(el, "domain", maximum=0xFFFF) or 0
    bus = c_uint(el, "bus", maximum=0xFF) or 0
    slot = c_uint(el, "slot", maximum=0x1F) or 0
    function = c_uint(el, "function", maximum=7) or 0
    return PciAddress(
        domain=f"0x{domain:04x}", bus=f"0x{bus:02x}", slot=f"0x{slot:02x}", function=f"0x{function}"
    )


# --- <ip> --------------------------------------------------------------------------------


def _ip(el: etree._Element) -> IPDef:
    family = xattr(el, "family")
    address_attr = xattr(el, "address")
    if not address_attr:
        fail(el, "missing required address attribute", "add address='IP' with netmask= or prefix=")
    address = ip_address(el, "address", address_attr)
    netmask_attr = xattr(el, "netmask")
    netmask = ip_address(el, "netmask", netmask_attr) if netmask_attr else None
    prefix = uint(el, "prefix", what="prefix")
    local_ptr = tristate(el, "localPtr")

    if family is None or family == "ipv4":
        if address.version != 4:
            fail(
                el,
                f"{family or 'no'} family specified for non-IPv4 address '{address_attr}'",
                "add family='ipv6' for an IPv6 address",
            )
        if netmask is not None:
            if netmask.version != 4:
                fail(el, f"invalid netmask '{netmask_attr}' (must be IPv4)", "give an IPv4 netmask")
            if prefix:
                fail(el, "an <ip> cannot have both a prefix and a netmask", "remove one of them")
            try:
                ipaddress.IPv4Network(f"0.0.0.0/{netmask}")
            except ValueError:
                fail(
                    el, f"netmask '{netmask_attr}' is not a valid netmask", "use e.g. 255.255.255.0"
                )
        elif prefix is not None and prefix > 32:
            fail(el, f"invalid IPv4 prefix '{prefix}'", "give a prefix from 1 to 32")
        elif not prefix and int(address) >> 29 == 0b111:
            fail(
                el,
                f"address '{address_attr}' has no natural (class A/B/C) prefix",
                "add prefix= or netmask=",
            )
    elif family == "ipv6":
        if address.version != 6:
            fail(
                el, f"family 'ipv6' specified for non-IPv6 address '{address_attr}'", "fix family="
            )
        if netmask is not None:
            fail(
                el, f"netmask not allowed for IPv6 address '{address_attr}'", "use prefix= instead"
            )
        if prefix is not None and prefix > 128:
            fail(el, f"invalid IPv6 prefix '{prefix}'", "give a prefix from 1 to 128")
    else:
        fail(el, f"unrecognized family '{family}'", "use family='ipv4' or 'ipv6'")

    ipdef = IPDef(
        address=fmt_ip(address),
        family=family,
        netmask=fmt_ip(netmask) if netmask is not None else None,
        prefix=prefix or None,
        local_ptr=local_ptr,
    )
    dhcp_el = child(el, "dhcp")
    dhcp = _dhcp(dhcp_el, ipdef) if dhcp_el is not None else None
    tftp_root = None
    tftp_el = child(el, "tftp")
    if tftp_el is not None:
        if address.version != 4:
            fail(tftp_el, "<tftp> is not supported in an IPv6 <ip>", "move <tftp> to an IPv4 <ip>")
        tftp_root = attr(tftp_el, "root")
    return IPDef(
        address=ipdef.address,
        family=family,
        netmask=ipdef.netmask,
        prefix=ipdef.prefix,
        local_ptr=local_ptr,
        tftp_root=tftp_root,
        dhcp=dhcp,
    )


def _dhcp(el: etree._Element, ipdef: IPDef) -> DHCP | None:
    ranges = tuple(_range(r, ipdef) for r in children(el, "range"))
    hosts = tuple(_host(h, ipdef) for h in children(el, "host"))
    bootp = None
    bootp_el = child(el, "bootp")
    if bootp_el is not None and not ipdef.is_ipv6:
        file = attr(bootp_el, "file")
        if not file:
            fail(bootp_el, "missing required file attribute", "add file='BOOT-FILE'")
        bootp = Bootp(file=file, server=ip_attr(bootp_el, "server"))
    if not (ranges or hosts or bootp):
        return None
    return DHCP(ranges=ranges, hosts=hosts, bootp=bootp)


def _lease(el: etree._Element | None) -> Lease | None:
    if el is None or attr(el, "expiry") is None:
        return None
    expiry = uint(el, "expiry", maximum=ULL_MAX, what="lease expiry")
    assert expiry is not None
    unit = attr(el, "unit")
    if unit is not None and unit not in _LEASE_UNITS:
        fail(el, f"invalid lease unit '{unit}'", "use unit='seconds', 'minutes' or 'hours'")
    effective = unit or "minutes"
    if expiry > 0 and (
        (effective == "seconds" and expiry < 120) or (effective == "minutes" and expiry < 2)
    ):
        fail(el, "the minimum lease time is 2 minutes", "give at least 120 seconds or 2 minutes")
    return Lease(expiry=expiry, unit=unit)


def _range(el: etree._Element, ipdef: IPDef) -> DHCPRange:
    start_attr, end_attr = attr(el, "start"), attr(el, "end")
    if start_attr is None:
        fail(el, "missing 'start' attribute in dhcp range", "add start='IP' end='IP'")
    start = ip_address(el, "start", start_attr)
    if end_attr is None:
        fail(el, "missing 'end' attribute in dhcp range", "add end='IP'")
    end = ip_address(el, "end", end_attr)
    _check_range(el, start, end, ipdef)
    return DHCPRange(start=fmt_ip(start), end=fmt_ip(end), lease=_lease(child(el, "lease")))


def _check_range(el: etree._Element, start: IPAddr, end: IPAddr, ipdef: IPDef) -> None:
    """libvirt's virSocketAddrGetRange: same family, inside the subnet, ordered, not too large."""
    if start.version != end.version:
        fail(el, f"range {start} - {end} mixes address families", "give both ends in one family")
    net = ipdef.network
    if start.version != net.version or start not in net or end not in net:
        fail(
            el,
            f"range {start} - {end} is not entirely within network {net}",
            f"give a range inside {net}",
        )
    if start.version == 4:
        if start == net.network_address:
            fail(el, f"start of range {start} - {end} is the network address", "start one higher")
        if end == net.broadcast_address:
            fail(el, f"end of range {start} - {end} is the broadcast address", "end one lower")
    # libvirt's legacy limit: only the low 16 bits may differ (at most 65536 addresses)
    if int(start) >> 16 != int(end) >> 16:
        fail(el, f"range {start} - {end} is too large (> 65535)", "split it or make it smaller")
    if int(end) < int(start):
        fail(el, f"range {start} - {end} is reversed", "give the lower address as start")


def _host(el: etree._Element, ipdef: IPDef) -> DHCPHost:
    host_mac = attr(el, "mac")
    if host_mac is not None:
        if ipdef.is_ipv6:
            fail(
                el, f"MAC address '{host_mac}' not allowed in an IPv6 static host", "use id= (DUID)"
            )
        mac(el, "mac", host_mac)  # checked only: libvirt keeps the host MAC as written
    host_id = attr(el, "id")
    if host_id is not None:
        bad = next((c for c in host_id if c not in _HEX_COLON), None)
        if bad is not None:
            fail(
                el,
                f"invalid character '{bad}' in id '{host_id}'",
                "give the DUID as hex digits and ':'",
            )
    name = attr(el, "name")
    if name is not None and not (name[:1].isascii() and name[:1].isalnum()):
        fail(el, f"cannot use host name '{name}'", "start the name with a letter or digit")
    ip = ip_attr(el, "ip")
    if ipdef.is_ipv6:
        if not (host_id or name):
            fail(el, "a static host in an IPv6 network must have id or name", "add id= or name=")
    elif not (host_mac or name):
        fail(el, "a static host in an IPv4 network must have mac or name", "add mac= or name=")
    if ip is None:
        fail(el, "missing IP address in static host definition", "add ip='ADDRESS'")
    return DHCPHost(ip=ip, mac=host_mac, id=host_id, name=name, lease=_lease(child(el, "lease")))


# --- <route> -----------------------------------------------------------------------------


def _route(el: etree._Element) -> Route:
    family = xattr(el, "family")
    address_attr, gateway_attr = xattr(el, "address"), xattr(el, "gateway")
    netmask_attr = xattr(el, "netmask")
    prefix = uint(el, "prefix", maximum=ULL_MAX, what="route prefix", blank_absent=True)
    metric = uint(el, "metric", maximum=2**32 - 1, what="route metric", blank_absent=True)
    if metric == 0:
        fail(el, "invalid metric value, must be > 0", "give metric='1' or more")
    if address_attr is None:
        fail(el, "missing required address attribute", "add address='NETWORK'")
    if gateway_attr is None:
        fail(el, "missing required gateway attribute", "add gateway='IP'")
    address = ip_address(el, "address", address_attr)
    gateway = ip_address(el, "gateway", gateway_attr)
    netmask = None
    if family is None or family == "ipv4":
        if address.version != 4:
            fail(
                el,
                f"{family or 'no'} family specified for non-IPv4 address '{address_attr}'",
                "add family='ipv6'",
            )
        if gateway.version != 4:
            fail(
                el,
                f"{family or 'no'} family specified for non-IPv4 gateway '{gateway_attr}'",
                "give an IPv4 gateway",
            )
        if netmask_attr is not None:
            netmask = ip_address(el, "netmask", netmask_attr, version=4)
            if prefix is not None:
                fail(el, "a route cannot have both a prefix and a netmask", "remove one of them")
            try:
                ipaddress.IPv4Network(f"0.0.0.0/{netmask}")
            except ValueError:
                fail(
                    el, f"netmask '{netmask_attr}' is not a valid netmask", "use e.g. 255.255.255.0"
                )
        if prefix is not None and prefix > 32:
            fail(el, f"invalid prefix {prefix}, must be 0 - 32", "give a prefix from 0 to 32")
    elif family == "ipv6":
        if address.version != 6:
            fail(el, f"ipv6 family specified for non-IPv6 address '{address_attr}'", "fix family=")
        if netmask_attr is not None:
            fail(el, "netmask is invalid for an IPv6 route", "use prefix= instead")
        if gateway.version != 6:
            fail(
                el, f"ipv6 specified for non-IPv6 gateway '{gateway_attr}'", "give an IPv6 gateway"
            )
        if prefix is not None and prefix > 128:
            fail(el, f"invalid prefix {prefix}, must be 0 - 128", "give a prefix from 0 to 128")
    else:
        fail(el, f"unrecognized family '{family}'", "use family='ipv4' or 'ipv6'")
    plen = prefix or 0
    if netmask is not None:
        plen = ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    masked = ipaddress.ip_network(f"{address}/{plen}", strict=False).network_address
    if masked != address:
        fail(el, f"address '{address_attr}' is not a network address", f"use {masked}/{plen}")
    return Route(
        address=fmt_ip(address),
        gateway=fmt_ip(gateway),
        family=family,
        netmask=fmt_ip(netmask) if netmask is not None else None,
        prefix=prefix,
        metric=metric,
    )


def _check_gateways(
    route_els: list[etree._Element], routes: tuple[Route, ...], ips: tuple[IPDef, ...]
) -> None:
    """Each route's gateway must be inside the subnet of one of the <ip>s (libvirt refuses
    unreachable gateways). Subnets are looked up by prefix length, so thousands of routes and
    addresses cost milliseconds, not a product of both."""
    subnets: dict[tuple[int, int], set[int]] = {}
    for ipdef in ips:
        net = ipdef.network
        subnets.setdefault((net.version, net.prefixlen), set()).add(int(net.network_address))
    for el, route in zip(route_els, routes, strict=True):
        gateway = ipaddress.ip_address(route.gateway)
        bits = gateway.max_prefixlen
        reachable = any(
            (int(gateway) >> (bits - plen) << (bits - plen)) in nets
            for (version, plen), nets in subnets.items()
            if version == gateway.version
        )
        if not reachable:
            fail(
                el,
                f"unreachable static route gateway '{gateway}'",
                "the gateway must be inside the subnet of one of the network's <ip> elements",
            )


# --- <dns> -------------------------------------------------------------------------------


def _dns(el: etree._Element) -> DNS:
    enable = tristate(el, "enable")
    forward_plain = tristate(el, "forwardPlainNames")
    fwd_els, host_els = children(el, "forwarder"), children(el, "host")
    srv_els, txt_els = children(el, "srv"), children(el, "txt")
    forwarders = tuple(_forwarder(f) for f in fwd_els)
    hosts = tuple(_dns_host(h) for h in host_els)
    srvs = tuple(_srv(s) for s in srv_els)
    txts = tuple(_txt(t) for t in txt_els)
    if enable is False and (fwd_els or host_els or srv_els or txt_els):
        fail(
            el,
            "extra data in disabled DNS: <dns enable='no'> cannot have forwarders, hosts, "
            "srv or txt records",
            "remove the records, or remove enable='no'",
        )
    return DNS(
        enable=enable,
        forward_plain_names=forward_plain,
        forwarders=forwarders,
        hosts=hosts,
        txts=txts,
        srvs=srvs,
    )


def _forwarder(el: etree._Element) -> DNSForwarder:
    addr = ip_attr(el, "addr")
    port = None
    if addr is not None:
        port = uint(el, "port", minimum=1, maximum=65535, what="forwarder port")
    domain = attr(el, "domain")
    if addr is None and domain is None:
        fail(el, "a forwarder must have addr or domain", "add addr='IP' and/or domain='NAME'")
    return DNSForwarder(addr=addr, domain=domain, port=port)


def _dns_host(el: etree._Element) -> DNSHost:
    names: list[str] = []
    for hn in children(el, "hostname"):
        value = "".join(str(t) for t in hn.itertext())
        if not value:
            fail(hn, "empty <hostname>", "give a host name")
        names.append(value)
    if not names:
        fail(el, "missing <hostname> in DNS host record", "add <hostname>NAME</hostname>")
    ip = attr(el, "ip")
    if ip is None:
        fail(el, "missing IP address in DNS host record", "add ip='ADDRESS'")
    return DNSHost(ip=fmt_ip(ip_address(el, "ip", ip)), hostnames=tuple(names))


def _no_line_breaks(el: etree._Element, record: str, field: str, value: str | None) -> None:
    if value is not None and ("\r" in value or "\n" in value):
        fail(
            el, f"invalid line break in DNS {record} record {field} attribute", "use a single line"
        )


def _srv(el: etree._Element) -> DNSSrv:
    service, protocol = attr(el, "service"), attr(el, "protocol")
    if service is None:
        fail(el, "missing required service attribute in DNS SRV record", "add service='NAME'")
    if len(service.encode()) > _SRV_MAX:
        fail(el, f"service attribute is too long, limit is {_SRV_MAX} bytes", "shorten it")
    if any(c not in _SERVICE_CHARS for c in service):
        fail(el, f"invalid character in service '{service}'", "use letters, digits and _-+/*")
    if protocol is None:
        fail(el, "missing required protocol attribute in DNS SRV record", "add protocol='tcp'")
    if any(c not in _PROTOCOL_CHARS for c in protocol):
        fail(el, f"invalid character in protocol '{protocol}'", "use letters, digits and -+/")
    domain, target = attr(el, "domain"), attr(el, "target")
    _no_line_breaks(el, "SRV", "domain", domain)
    _no_line_breaks(el, "SRV", "target", target)
    numbers: dict[str, int | None] = {}
    for name, low in (("port", 1), ("priority", 0), ("weight", 0)):
        value = uint(el, name, minimum=low, maximum=65535, what=f"SRV {name}")
        if value is not None and target is None:
            fail(
                el, f"SRV {name} attribute not permitted without target", "add target= or remove it"
            )
        numbers[name] = value
    return DNSSrv(
        service=service,
        protocol=protocol,
        domain=domain,
        target=target,
        port=numbers["port"],
        priority=numbers["priority"],
        weight=numbers["weight"],
    )


def _txt(el: etree._Element) -> DNSTxt:
    name, value = attr(el, "name"), attr(el, "value")
    if name is None:
        fail(el, "missing required name attribute in DNS TXT record", "add name='NAME'")
    if " " in name or "," in name:
        fail(
            el, f"prohibited character in DNS TXT record name '{name}'", "remove spaces and commas"
        )
    if value is None:
        fail(el, "missing required value attribute in DNS TXT record", "add value='TEXT'")
    _no_line_breaks(el, "TXT", "value", value)
    return DNSTxt(name=name, value=value)


# --- <portgroup> -------------------------------------------------------------------------


def _portgroup(el: etree._Element) -> PortGroup:
    name = attr(el, "name")
    if not name:
        fail(el, "missing required name attribute in portgroup", "add name='GROUP'")
    default = xattr(el, "default")
    vport_el = child(el, "virtualport")
    bw_el = child(el, "bandwidth")
    vlan_el = child(el, "vlan")
    vport: VirtualPort | None = (
        parse_virtualport(vport_el, require_type=False) if vport_el is not None else None
    )
    return PortGroup(
        name=name,
        default=True if default is not None and default.lower() == "yes" else None,
        trust_guest_rx_filters=tristate(el, "trustGuestRxFilters"),
        vlan=parse_vlan(vlan_el) if vlan_el is not None else None,
        virtualport=vport,
        bandwidth=parse_bandwidth(bw_el) if bw_el is not None else None,
    )


# --- checks across elements --------------------------------------------------------------


def _check_mode(root: etree._Element, net: Network) -> None:
    """libvirt's checks that the rest of the definition fits the forward mode."""
    fwd = net.forward
    where = _or_root(child(root, "forward"), root)
    bridge_el = child(root, "bridge")
    mode = net.mode
    nifs = len(fwd.interfaces) + len(fwd.addresses) if fwd else 0
    npfs = len(fwd.pfs) if fwd else 0
    br = net.bridge or Bridge()
    if mode in (ForwardMode.NAT, ForwardMode.ROUTE):
        if not net.ips:
            fail(
                where,
                f"{mode.value} forwarding requested, but no IP address provided",
                "add an <ip address=... netmask=...> element",
            )
        if nifs > 1:
            fail(
                where,
                "multiple forwarding interfaces specified, only one is supported",
                "keep a single forward dev",
            )
    elif mode is ForwardMode.OPEN:
        if nifs:
            fail(
                where,
                "forward dev not allowed with forward mode='open'",
                "remove dev= and <interface> from <forward mode='open'>",
            )
    elif mode is not ForwardMode.ISOLATED:
        if mode is not ForwardMode.BRIDGE:
            for value, what in (
                (br.name, "bridge name"),
                (br.zone, "bridge zone"),
                (br.mac_table_manager, "bridge macTableManager setting"),
            ):
                if value:
                    fail(
                        _or_root(bridge_el, root),
                        f"{what} not allowed in {mode.value} mode",
                        "remove it: VMs attach directly to the host interface in this mode",
                    )
        if br.delay or br.stp is not None or br.zone:
            fail(
                _or_root(bridge_el, root),
                "bridge delay/stp/zone options are only allowed in open, route, nat and isolated "
                f"mode, not in {mode.value}",
                "remove stp=, delay= and zone= from <bridge>",
            )
        if br.name and (nifs or npfs):
            fail(
                where,
                f"a network with forward mode='{mode.value}' can specify a bridge name or a "
                "forward dev, but not both",
                "remove the <bridge> name or the forward dev/interfaces",
            )
    if net.mtu and not mode.has_own_bridge:
        fail(
            _or_root(child(root, "mtu"), root),
            f"mtu size is only allowed in open, route, nat and isolated mode, not in {mode.value}",
            "remove <mtu>: the host interface's MTU applies",
        )


def _or_root(el: etree._Element | None, root: etree._Element) -> etree._Element:
    return el if el is not None else root
