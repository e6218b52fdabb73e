"""Semantic checks on a network definition, beyond what its schema says.

The XML reader already refuses what libvirt refuses while parsing; these checks apply to every
definition whatever it was read from (XML, YAML, or built in Python), so they repeat libvirt's
semantic checks (``virNetworkDefParseXML`` and the network driver's ``networkValidate``) and add
the ones virtnet needs to run a network safely: subnets that collide with other networks, DHCP
ranges that hand out the host's own address, bridge names the kernel refuses, and any value that
could smuggle lines into dnsmasq's configuration or tokens into an nftables script.

``problems`` lists every problem found (each names the element, the problem and the fix);
``validate`` raises them all at once.
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from virtnet.errors import HostileInput, InvalidDefinition
from virtnet.model.filename import max_name_bytes
from virtnet.model.network import (
    DHCP,
    DNS,
    Bandwidth,
    ForwardMode,
    IPDef,
    Lease,
    Network,
    Vlan,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_L3 = (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.OPEN, ForwardMode.ISOLATED)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# libvirt's schema type dnsName.
_DNS_NAME = re.compile(r"[A-Za-z0-9.-]+")
_HOST_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
_SRV_SERVICE = re.compile(r"[A-Za-z0-9_-]{1,63}")  # one DNS label
_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
_DUID = re.compile(r"[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2})+")
IFNAMSIZ = 16  # the kernel's limit includes the terminating NUL: 15 characters
# dnsmasq directives that decide how the process runs (files, users, scripts run as root,
# interfaces). virtnet sets them itself; from a definition they would take over the daemon.
_PROCESS_DIRECTIVES = frozenset(
    {
        "conf-file",
        "conf-dir",
        "conf-script",
        "servers-file",
        "dhcp-script",
        "dhcp-luascript",
        "dhcp-scriptuser",
        "script-arp",
        "user",
        "group",
        "pid-file",
        "dhcp-leasefile",
        "leasefile-ro",
        "log-facility",
        "interface",
        "except-interface",
        "no-dhcp-interface",
        "listen-address",
        "bind-interfaces",
        "bind-dynamic",
        "auth-server",
        "dumpfile",
        "keep-in-foreground",
        "no-daemon",
    }
)


@dataclass
class _Problems:
    items: list[InvalidDefinition] = field(default_factory=list)

    def add(self, element: str, problem: str, fix: str, *, hostile: bool = False) -> None:
        cls = HostileInput if hostile else InvalidDefinition
        self.items.append(cls(problem, element=element, hint=fix))


class DefinitionProblems(InvalidDefinition):
    """Several problems found at once; ``problems`` holds each one."""

    def __init__(self, name: str, problems: Sequence[InvalidDefinition]):
        lines = "\n".join(f"  - {p}".replace("\n", "\n    ") for p in problems)
        super().__init__(f"{len(problems)} problems in network '{name}':\n{lines}")
        self.problems = list(problems)
        if any(isinstance(p, HostileInput) for p in problems):
            self.code = HostileInput.code


def validate(net: Network, *, others: Sequence[Network] = ()) -> None:
    """Raise InvalidDefinition (listing every problem) unless ``net`` is a sound definition."""
    found = problems(net, others=others)
    if len(found) == 1:
        raise found[0]
    if found:
        raise DefinitionProblems(net.name, found)


def problems(net: Network, *, others: Sequence[Network] = ()) -> list[InvalidDefinition]:
    """Every semantic problem of ``net``; ``others`` are the other defined networks."""
    p = _Problems()
    _check_identity(p, net)
    _check_bridge(p, net)
    _check_forward(p, net)
    _check_mode_options(p, net)
    _check_ips(p, net)
    _check_routes(p, net)
    _check_dns(p, net)
    _check_portgroups(p, net)
    _check_dnsmasq_options(p, net)
    _check_others(p, net, [o for o in others if o.name != net.name])
    return p.items


# --- helpers -----------------------------------------------------------------------------


def _hostile_chars(p: _Problems, element: str, value: str) -> bool:
    """Report control characters (newlines end a dnsmasq directive or an nft statement)."""
    if _CONTROL.search(value):
        p.add(
            element,
            f"{value!r} contains a newline or control character, which could inject lines "
            "into the dnsmasq configuration or the nftables script",
            "remove the control characters",
            hostile=True,
        )
        return True
    return False


def _config_text(p: _Problems, element: str, value: str, *, commas: bool = False) -> None:
    """A value written into one dnsmasq directive: it must stay one value of that directive."""
    if _hostile_chars(p, element, value):
        return
    if value != value.strip():
        p.add(element, f"{value!r} starts or ends with whitespace", "remove the spaces")
    if '"' in value:
        p.add(
            element,
            f"{value!r} contains a double quote, which dnsmasq reads as quoting",
            "remove the quotes",
            hostile=True,
        )
    if re.search(r"(^|\s)#", value):
        p.add(
            element,
            f"{value!r} contains '#' at the start of a word, where dnsmasq starts a comment "
            "and drops the rest of the line",
            "remove the '#'",
            hostile=True,
        )
    if not commas and "," in value:
        p.add(
            element,
            f"{value!r} contains ',', which splits the dnsmasq directive into more fields",
            "remove the comma",
            hostile=True,
        )


def _dns_name(p: _Problems, element: str, value: str, what: str) -> None:
    if _hostile_chars(p, element, value):
        return
    if not _DNS_NAME.fullmatch(value) or value.startswith("."):
        p.add(
            element,
            f"{what} {value!r} is not a DNS name",
            "use letters, digits, '-' and '.' only (like example.com)",
            hostile=any(c in value for c in ',"#/ '),
        )


def _ip(p: _Problems, element: str, text: str | None, what: str) -> IPAddress | None:
    if text is None:
        p.add(element, f"{what} is missing", f"give the {what}")
        return None
    if _hostile_chars(p, element, text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        p.add(element, f"{what} {text!r} is not an IP address", "give a numeric IPv4/IPv6 address")
        return None


def _mac(p: _Problems, element: str, text: str, *, unicast: bool = True) -> None:
    if _hostile_chars(p, element, text):
        return
    if not _MAC.fullmatch(text):
        p.add(element, f"{text!r} is not a MAC address", "write it like 52:54:00:12:34:56")
    elif unicast and int(text[:2], 16) & 1:
        p.add(
            element,
            f"MAC address {text} is a multicast address",
            "use a unicast address (the first octet's lowest bit clear, e.g. 52:54:00:...)",
        )


def _ip_label(ip: IPDef) -> str:
    return f"ip[address='{ip.address}']"


def _ip_network(p: _Problems, ip: IPDef) -> IPNetwork | None:
    """The subnet of an <ip>, reporting why there is none."""
    el = _ip_label(ip)
    addr = _ip(p, el, ip.address, "address")
    if addr is None:
        return None
    if ip.family not in (None, "ipv4", "ipv6"):
        p.add(el, f"family {ip.family!r} is unknown", "use family 'ipv4' or 'ipv6'")
        return None
    if ip.family is not None and (ip.family == "ipv6") != (addr.version == 6):
        p.add(el, f"address {ip.address} is not of family {ip.family}", "fix address or family")
        return None
    if ip.netmask is not None and ip.prefix is not None:
        p.add(el, "both netmask and prefix are given", "give either netmask or prefix")
        return None
    if ip.netmask is not None:
        if addr.version == 6:
            p.add(el, "netmask is given for an IPv6 address", "give prefix='64' instead")
            return None
        try:
            ipaddress.IPv4Network(f"0.0.0.0/{ip.netmask}")
        except ValueError:
            p.add(el, f"netmask {ip.netmask!r} is not a valid netmask", "e.g. 255.255.255.0")
            return None
    if ip.prefix is not None and not 0 < ip.prefix <= addr.max_prefixlen:
        p.add(el, f"prefix {ip.prefix} is out of range", f"give 1..{addr.max_prefixlen}")
        return None
    try:
        return ipaddress.ip_interface(f"{addr}/{ip.prefixlen}").network
    except ValueError:
        p.add(el, "the address and prefix do not form a subnet", "fix the prefix")
        return None


# --- identity ----------------------------------------------------------------------------


def _check_identity(p: _Problems, net: Network) -> None:
    name = net.name
    if not name:
        p.add("name", "the network has no name", "give <name>")
    elif not _hostile_chars(p, "name", name):
        if "/" in name:
            p.add("name", f"name {name!r} contains '/'", "choose a name without '/'")
        if name.startswith("."):
            p.add("name", f"name {name!r} starts with '.'", "choose a name not starting with '.'")
        limit = max_name_bytes(name)
        if limit is not None:
            p.add("name", f"name {name[:40]!r}... is too long to name the network's files "
                  f"and marks ({len(name)} characters)",
                  f"use a name of at most {limit} bytes (in file names, characters other than "
                  "letters, digits, '_', '.', '-' count 3 bytes per byte of UTF-8)")
    if net.uuid is not None:
        try:
            uuidlib.UUID(net.uuid)
        except ValueError:
            p.add("uuid", f"{net.uuid!r} is not a UUID", "give 32 hex digits or leave it out")
    for label, text in (("title", net.title),):
        if text is not None and "\n" in text:
            p.add(label, "the title contains a newline", "keep the title on one line")
    if net.mac is not None:
        _mac(p, "mac", net.mac)
    if net.mtu is not None and not 68 <= net.mtu <= 65535:
        p.add("mtu", f"MTU {net.mtu} is outside what the kernel accepts", "give 68..65535")


def _check_bridge(p: _Problems, net: Network) -> None:
    br = net.bridge
    if br is None:
        return
    if br.name is not None:
        _bridge_name(p, br.name)
    if br.delay is not None and br.delay < 0:
        p.add("bridge", f"delay {br.delay} is negative", "give delay in seconds, 0 or more")
    if br.mac_table_manager not in (None, "kernel", "libvirt"):
        p.add(
            "bridge",
            f"macTableManager {br.mac_table_manager!r} is unknown",
            "use 'kernel' or 'libvirt'",
        )
    if br.zone is not None:
        _dns_name(p, "bridge zone", br.zone, "firewalld zone")


def _bridge_name(p: _Problems, name: str) -> None:
    el = f"bridge[name='{name}']"
    # "%d" is libvirt's template for "first free number" (virbr%d); check it as filled in.
    probe = name.replace("%d", "0", 1) if name.count("%") == 1 and "%d" in name else name
    if not name:
        p.add("bridge", "the bridge name is empty", "give a name like virbr1, or leave it out")
    else:
        _ifname(p, el, probe, "bridge name")


_IFNAME_OK = re.compile(r"[A-Za-z0-9_.-]+")
_IFNAME_HOSTILE = re.compile(r"[\s\"'\\,#;{}$`]")


def _ifname(p: _Problems, el: str, name: str, what: str) -> None:
    """An interface name the kernel takes and that is one safe token for dnsmasq and nft."""
    if _hostile_chars(p, el, name):
        return
    if not name:
        p.add(el, f"the {what} is empty", "give an interface name like eth0")
    elif len(name.encode()) >= IFNAMSIZ:
        p.add(el, f"{what} {name!r} is longer than {IFNAMSIZ - 1} bytes", "use a shorter name")
    elif name in (".", "..") or not _IFNAME_OK.fullmatch(name):
        p.add(
            el,
            f"{what} {name!r} is not a usable interface name: the kernel refuses '.', '..', "
            "'/', ':' and whitespace, and quotes, commas or '#' would break the dnsmasq "
            "configuration or the nftables rules",
            "use letters, digits, '-', '_' and '.' (like virbr1 or eth0)",
            hostile=bool(_IFNAME_HOSTILE.search(name)),
        )


# --- forward -----------------------------------------------------------------------------


def _check_forward(p: _Problems, net: Network) -> None:
    fw = net.forward
    if fw is None:
        return
    mode = fw.mode
    el = f"forward[mode='{mode.value}']"
    if mode is ForwardMode.ISOLATED:
        p.add("forward", "'isolated' is not a forward mode", "leave out <forward> for isolated")
        return
    for dev in (fw.dev, *fw.interfaces, *fw.pfs):
        if dev is not None:
            _ifname(p, el, dev, "device name")
    if fw.dev and fw.interfaces and fw.dev != fw.interfaces[0]:
        p.add(
            el,
            f"forward dev '{fw.dev}' must match first interface element dev '{fw.interfaces[0]}'",
            "make dev= the same as the first <interface dev=...>",
        )
    for what, items in (("interface", fw.interfaces), ("pf", fw.pfs), ("address", fw.addresses)):
        dups = sorted({str(x) for x in items if items.count(x) > 1})
        for dup in dups:
            p.add(el, f"duplicate <{what}> {dup} in the device pool", "list each device once")
    if len(fw.pfs) > 1:
        p.add(el, "only one <pf> element is allowed", "keep a single <pf dev=...>")
    if sum(map(bool, (fw.pfs, fw.interfaces, fw.addresses))) > 1:
        p.add(
            el,
            "<address>, <interface>, and <pf> elements of <forward> are mutually exclusive",
            "use only one kind of device pool",
        )
    if fw.addresses and mode is not ForwardMode.HOSTDEV:
        p.add(
            el,
            "devices listed by PCI address are only supported with forward mode 'hostdev'",
            "list the devices as <interface dev=...>, or use mode='hostdev'",
        )
    if fw.interfaces and mode is ForwardMode.HOSTDEV:
        p.add(
            el,
            "hostdev networks require all devices to be listed by PCI address",
            "list the virtual functions as <address type='pci' .../>",
        )
    if fw.driver_name not in (None, "kvm", "vfio", "xen", "default"):
        p.add(el, f"driver name {fw.driver_name!r} is unknown", "use 'vfio' or 'kvm'")
    if fw.nat is not None:
        if mode is not ForwardMode.NAT:
            p.add(
                f"{el}/nat",
                "the <nat> element can only be used when <forward> mode is 'nat'",
                "remove <nat>, or use mode='nat'",
            )
        nat = fw.nat
        for rng in nat.addresses:
            start = _ip(p, f"{el}/nat/address", rng.start, "start address")
            end = _ip(p, f"{el}/nat/address", rng.end, "end address")
            if start and end and (start.version != 4 or end.version != 4):
                p.add(f"{el}/nat/address", "NAT addresses must be IPv4", "give IPv4 addresses")
            elif start and end and int(start) > int(end):
                p.add(f"{el}/nat/address", f"range {start}-{end} is reversed", "swap start/end")
        ports = [x for x in (nat.port_start, nat.port_end) if x is not None]
        if any(not 0 <= x <= 65535 for x in ports):
            p.add(f"{el}/nat/port", "a port is outside 0..65535", "give ports in 0..65535")
        elif len(ports) == 2 and ports[0] > ports[1]:
            p.add(f"{el}/nat/port", f"port range {ports[0]}-{ports[1]} is reversed", "swap them")


def _check_mode_options(p: _Problems, net: Network) -> None:
    """Options that do not belong to the connection type (libvirt's own rules, and ours)."""
    mode = net.mode
    fw = net.forward
    name = f"forward mode '{mode.value}'"
    br = net.bridge
    if mode in (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.OPEN):
        if not net.ips:
            p.add(
                "ip",
                f"{mode.value} forwarding requested, but no IP address provided",
                "add <ip address=... prefix=...> with the subnet the VMs use",
            )
        if fw and len(fw.interfaces) > 1:
            p.add("forward", "multiple forwarding interfaces, only one is supported", "keep one")
        if fw and mode is ForwardMode.OPEN and (fw.dev or fw.interfaces):
            p.add(
                "forward",
                "forward dev not allowed with forward mode 'open' (open places no restriction "
                "on where traffic goes)",
                "remove dev= and <interface>, or use mode='nat' or 'route'",
            )
        if fw and (fw.pfs or fw.addresses):
            p.add("forward", f"<pf>/<address> device pools are not used by {name}", "remove them")
    _check_vlan_use(p, net)
    if mode in _L3:
        return
    # bridge and the direct modes (private, vepa, passthrough, hostdev)
    if mode is not ForwardMode.BRIDGE and br is not None:
        if br.name:
            p.add("bridge", f"bridge name not allowed in {name}", "remove <bridge>")
        if br.mac_table_manager:
            p.add("bridge", f"macTableManager not allowed in {name}", "remove macTableManager")
    if br is not None and (br.stp is not None or br.delay or br.zone):
        p.add(
            "bridge",
            f"bridge delay/stp/zone options are only allowed in route, nat, open and isolated "
            f"mode, not in {name}",
            "remove stp=, delay= and zone= (the host bridge is not virtnet's to configure)",
        )
    if br is not None and br.name and fw and (fw.interfaces or fw.pfs):
        p.add(
            "forward",
            f"a network with {name} can give a bridge name or a forward dev, but not both",
            "keep either <bridge name=...> or the <interface> pool",
        )
    if (
        mode is ForwardMode.BRIDGE
        and not (br and br.name)
        and not (fw and (fw.dev or fw.interfaces))
    ):
        p.add(
            "bridge",
            "a bridged network needs the existing host bridge to attach VMs to",
            "give <bridge name='br0'/> (the host's bridge)",
        )
    if mode.is_direct and fw and not (fw.dev or fw.interfaces or fw.pfs or fw.addresses):
        p.add(
            "forward",
            f"{name} needs host interfaces to give the VMs",
            "give dev= or <interface dev=...> (or <address>/<pf> for hostdev/passthrough)",
        )
    if net.mtu is not None:
        p.add(
            "mtu",
            f"MTU is only allowed in open, route, nat and isolated mode, not in {name}",
            "remove <mtu> (the host interface's MTU applies)",
        )
    if net.mac is not None:
        p.add("mac", f"<mac> is not supported with {name}", "remove <mac>")
    if net.ips:
        p.add(
            "ip",
            f"<ip> is not supported with {name}: virtnet runs no addresses, DHCP or DNS there "
            "(the physical network provides them)",
            "remove the <ip> elements, or use mode='nat'/'route' to have virtnet serve them",
        )
    if net.dns and (net.dns.txts or net.dns.hosts or net.dns.srvs or net.dns.forwarders):
        p.add("dns", f"<dns> records are not supported with {name}", "remove <dns>")
    if net.domain is not None:
        p.add("domain", f"<domain> is not supported with {name}", "remove <domain>")
    if net.routes:
        p.add("route", f"<route> is not supported with {name}", "remove <route>")
    if net.dnsmasq_options:
        p.add("dnsmasq:options", f"{name} runs no dnsmasq", "remove <dnsmasq:options>")
    bandwidth_ok = mode is ForwardMode.BRIDGE and br is not None and br.name is not None
    if net.bandwidth is not None and not bandwidth_ok:
        p.add(
            "bandwidth",
            f"network-wide <bandwidth> is not supported with {name}",
            "remove <bandwidth> (set it per VM interface instead)",
        )
    for pg in net.portgroups:
        if pg.bandwidth is not None and not bandwidth_ok:
            p.add(
                f"portgroup[name='{pg.name}']/bandwidth",
                f"<bandwidth> in a portgroup is not supported with {name}",
                "remove it from the portgroup",
            )


def _check_vlan_use(p: _Problems, net: Network) -> None:
    """libvirt's networkValidate: VLAN tags only for hostdev, passthrough and Open vSwitch."""
    mode = net.mode
    vp_type = net.virtualport.type if net.virtualport else None
    allowed = mode in (ForwardMode.HOSTDEV, ForwardMode.PASSTHROUGH) or (
        mode is ForwardMode.BRIDGE and vp_type == "openvswitch"
    )
    used = bool(net.vlan and net.vlan.tags)
    bad = False
    default = False
    for pg in net.portgroups:
        if used or (pg.vlan and pg.vlan.tags):
            if pg.virtualport is not None:
                if mode is not ForwardMode.BRIDGE or pg.virtualport.type != "openvswitch":
                    bad = True
            elif not allowed:
                bad = True
        default = default or bool(pg.default)
    if bad or (used and not allowed and not default):
        p.add(
            "vlan",
            f"<vlan> given, but forward mode '{mode.value}' does not support VLAN tags",
            "remove <vlan>; tags work with hostdev, passthrough, or a bridge with "
            "<virtualport type='openvswitch'/>",
        )
    for label, vlan in (
        ("vlan", net.vlan),
        *((f"portgroup[name='{g.name}']/vlan", g.vlan) for g in net.portgroups),
    ):
        _check_vlan_tags(p, label, vlan)


def _check_vlan_tags(p: _Problems, label: str, vlan: Vlan | None) -> None:
    if vlan is None:
        return
    for tag in vlan.tags:
        if not 0 <= tag.id <= 4095:
            p.add(label, f"VLAN tag {tag.id} is outside 0..4095", "give a tag in 0..4095")
        if tag.native_mode not in (None, "tagged", "untagged"):
            p.add(label, f"nativeMode {tag.native_mode!r} is unknown", "use tagged/untagged")
    if len(vlan.tags) > 1 and vlan.trunk is False:
        p.add(label, "several tags need trunk='yes'", "set trunk='yes' or keep one tag")


# --- addresses and DHCP ------------------------------------------------------------------


def _check_ips(p: _Problems, net: Network) -> None:
    subnets: list[tuple[IPDef, IPNetwork]] = []
    dhcp_seen = {4: False, 6: False}
    for ip in net.ips:
        subnet = _ip_network(p, ip)
        if subnet is None:
            continue
        el = _ip_label(ip)
        addr = ipaddress.ip_address(ip.address)
        if (
            subnet.version == 4
            and subnet.prefixlen <= 30
            and addr
            in (
                subnet.network_address,
                subnet.broadcast_address,
            )
        ):
            p.add(
                el,
                f"{addr} is the {'network' if addr == subnet.network_address else 'broadcast'} "
                f"address of {subnet}",
                "give the host an address inside the subnet, like the .1",
            )
        for other_ip, other in subnets:
            if other.version == subnet.version and subnet.overlaps(other):
                p.add(
                    el,
                    f"subnet {subnet} overlaps {other} of ip[address='{other_ip.address}']",
                    "give each <ip> of the network its own subnet",
                )
        subnets.append((ip, subnet))
        if ip.local_ptr and subnet.prefixlen % (8 if subnet.version == 4 else 4):
            p.add(
                el,
                f"localPtr needs a prefix that is a multiple of {8 if subnet.version == 4 else 4}",
                "change the prefix or remove localPtr",
            )
        if ip.tftp_root is not None:
            if subnet.version == 6:
                p.add(f"{el}/tftp", "TFTP is only served on IPv4", "move <tftp> to an IPv4 <ip>")
            _config_text(p, f"{el}/tftp", ip.tftp_root)
            if not ip.tftp_root.startswith("/"):
                p.add(f"{el}/tftp", "the TFTP root is not an absolute path", "give /srv/tftp")
        if ip.dhcp is not None and (ip.dhcp.ranges or ip.dhcp.hosts):
            if dhcp_seen[subnet.version]:
                p.add(
                    f"{el}/dhcp",
                    f"multiple IPv{subnet.version} dhcp sections: DHCP is supported only for "
                    f"a single IPv{subnet.version} address of each network",
                    "keep <dhcp> in one <ip> per address family",
                )
            dhcp_seen[subnet.version] = True
        if ip.dhcp is not None:
            _check_dhcp(p, ip, ip.dhcp, subnet, addr)


def _check_lease(p: _Problems, element: str, lease: Lease | None) -> None:
    if lease is None:
        return
    if lease.expiry < 0 or lease.expiry > 4294967295:
        p.add(element, f"lease expiry {lease.expiry} is out of range", "give 0 (infinite) or more")
    if lease.unit not in (None, "seconds", "minutes", "hours"):
        p.add(element, f"lease unit {lease.unit!r} is unknown", "use seconds, minutes or hours")


def _check_dhcp(p: _Problems, ip: IPDef, dhcp: DHCP, subnet: IPNetwork, own: IPAddress) -> None:
    el = f"{_ip_label(ip)}/dhcp"
    ranges: list[tuple[int, int, str]] = []
    for rng in dhcp.ranges:
        rel = f"{el}/range[start='{rng.start}']"
        start = _ip(p, rel, rng.start, "start")
        end = _ip(p, rel, rng.end, "end")
        _check_lease(p, rel, rng.lease)
        if start is None or end is None:
            continue
        if start.version != subnet.version or end.version != subnet.version:
            p.add(rel, "range and <ip> are of different address families", "fix the range")
            continue
        if start not in subnet or end not in subnet:
            p.add(
                rel,
                f"range {start} - {end} is not entirely within network {subnet}",
                f"give start and end inside {subnet}",
            )
            continue
        if int(start) > int(end):
            p.add(rel, f"range {start} - {end} is reversed", "swap start and end")
            continue
        if subnet.version == 4 and start == subnet.network_address:
            p.add(rel, f"start of range {start} is the network address", "start one higher")
        if subnet.version == 4 and end == subnet.broadcast_address:
            p.add(rel, f"end of range {end} is the broadcast address", "end one lower")
        if int(start) <= int(own) <= int(end):
            p.add(
                rel,
                f"range {start} - {end} contains the host's own address {own}",
                "start the range after the host's address (or end it before)",
            )
        for s, e, label in ranges:
            if int(start) <= e and s <= int(end):
                p.add(rel, f"range overlaps the range starting at {label}", "make ranges disjoint")
        ranges.append((int(start), int(end), str(start)))
    seen: dict[str, dict[str, str]] = {"mac": {}, "ip": {}, "name": {}, "id": {}}
    for host in dhcp.hosts:
        rel = f"{el}/host[ip='{host.ip}']"
        _check_lease(p, rel, host.lease)
        hip = _ip(p, rel, host.ip, "ip")
        if hip is not None:
            if hip.version != subnet.version or hip not in subnet:
                p.add(
                    rel, f"host address {hip} is outside {subnet}", f"give an address in {subnet}"
                )
            elif hip == own:
                p.add(rel, f"{hip} is the host's own address", "give the VM another address")
        if subnet.version == 4:
            if host.id is not None:
                p.add(rel, "id= (DUID) is for IPv6 hosts", "use mac= for an IPv4 host")
            if host.mac is None and host.name is None:
                p.add(rel, "an IPv4 static host needs mac= or name=", "give the VM's MAC address")
        else:
            if host.mac is not None:
                p.add(rel, "mac= is not used in an IPv6 static host", "use id= (the DUID) or name=")
            if host.id is None and host.name is None:
                p.add(rel, "an IPv6 static host needs id= or name=", "give the VM's DUID")
        if host.mac is not None:
            _mac(p, rel, host.mac)
        if (
            host.id is not None
            and not _hostile_chars(p, rel, host.id)
            and not _DUID.fullmatch(host.id)
        ):
            p.add(rel, f"id {host.id!r} is not a DUID", "write it as hex bytes like 0:3:0:1:...")
        if (
            host.name is not None
            and not _hostile_chars(p, rel, host.name)
            and not _HOST_NAME.fullmatch(host.name)
        ):
            p.add(
                rel,
                f"cannot use host name {host.name!r}",
                "start with a letter; use letters, digits, '-', '_' and '.' only",
                hostile=any(c in host.name for c in ',"# \t'),
            )
        for key, value in (
            ("mac", host.mac.lower() if host.mac else None),
            ("ip", str(hip) if hip else None),
            ("name", host.name.lower() if host.name else None),
            ("id", host.id),
        ):
            if value is None:
                continue
            if value in seen[key]:
                p.add(rel, f"duplicate host {key} {value}", f"give every static host its own {key}")
            seen[key][value] = host.ip or ""
    if dhcp.bootp is not None:
        rel = f"{el}/bootp"
        if subnet.version == 6:
            p.add(rel, "<bootp> is only supported for IPv4", "move it to the IPv4 <ip>")
        _config_text(p, rel, dhcp.bootp.file)
        if not dhcp.bootp.file:
            p.add(rel, "bootp file is empty", "give the boot file name")
        if dhcp.bootp.server is not None:
            _ip(p, rel, dhcp.bootp.server, "server")


def _check_routes(p: _Problems, net: Network) -> None:
    nets = [ip.network for ip in net.ips if _quiet_network(ip) is not None]
    for rt in net.routes:
        el = f"route[address='{rt.address}']"
        addr = _ip(p, el, rt.address, "address")
        gw = _ip(p, el, rt.gateway, "gateway")
        if rt.metric is not None and rt.metric < 0:
            p.add(el, "metric is negative", "give 0 or more")
        if addr is None or gw is None:
            continue
        if addr.version != gw.version:
            p.add(el, "address and gateway are of different families", "fix one of them")
            continue
        if not any(n.version == gw.version and gw in n for n in nets):
            p.add(
                el,
                f"unreachable static route gateway {gw}",
                "give a gateway inside one of the network's <ip> subnets",
            )


def _quiet_network(ip: IPDef) -> IPNetwork | None:
    try:
        return ip.network
    except ValueError:
        return None


# --- DNS -----------------------------------------------------------------------------------


def _check_dns(p: _Problems, net: Network) -> None:
    if net.domain is not None:
        _dns_name(p, "domain", net.domain.name, "domain")
    dns = net.dns
    if dns is None:
        return
    if dns.enable is False and (
        dns.forwarders or dns.hosts or dns.srvs or dns.txts or dns.forward_plain_names
    ):
        p.add(
            "dns",
            "extra data in <dns enable='no'>: records or forwarders for a disabled DNS server",
            "remove the records, or enable DNS",
        )
    _check_dns_records(p, dns)


def _check_dns_records(p: _Problems, dns: DNS) -> None:
    for fwd in dns.forwarders:
        el = "dns/forwarder"
        if fwd.addr is None and fwd.domain is None:
            p.add(el, "a forwarder needs addr= or domain=", "give the upstream server's address")
        if fwd.addr is not None:
            _ip(p, el, fwd.addr, "addr")
        if fwd.domain is not None:
            _dns_name(p, el, fwd.domain, "domain")
        if fwd.port is not None:
            if not 1 <= fwd.port <= 65535:
                p.add(el, f"port {fwd.port} is outside 1..65535", "give a port in 1..65535")
            if fwd.addr is None:
                p.add(el, "port= needs addr=", "give the upstream server's addr= with its port")
    for host in dns.hosts:
        el = f"dns/host[ip='{host.ip}']"
        _ip(p, el, host.ip, "ip")
        if not host.hostnames:
            p.add(el, "a DNS host needs at least one <hostname>", "add <hostname>NAME</hostname>")
        for hn in host.hostnames:
            _dns_name(p, el, hn, "hostname")
    for txt in dns.txts:
        el = f"dns/txt[name='{txt.name}']"
        if not txt.name:
            p.add(el, "TXT record has no name", "give name=")
        else:
            _dns_name(p, el, txt.name, "TXT record name")
        _config_text(p, el, txt.value)
        if not txt.value:
            p.add(el, "TXT record has no value", "give value=")
    for srv in dns.srvs:
        el = f"dns/srv[service='{srv.service}']"
        if not _hostile_chars(p, el, srv.service) and not _SRV_SERVICE.fullmatch(srv.service):
            p.add(
                el,
                f"service name {srv.service!r} is invalid or longer than 63 bytes (one DNS label)",
                "use up to 63 letters, digits, '-' or '_' (like ldap)",
                hostile=any(c in srv.service for c in ',"# .'),
            )
        if srv.protocol not in ("tcp", "udp"):
            p.add(
                el,
                f"protocol {srv.protocol!r} is not tcp or udp",
                "use tcp or udp",
                hostile=bool(_CONTROL.search(srv.protocol)),
            )
        if srv.domain is not None:
            _dns_name(p, el, srv.domain, "domain")
        if srv.target is not None and srv.target != ".":
            _dns_name(p, el, srv.target, "target")
        for label, value in (
            ("port", srv.port),
            ("priority", srv.priority),
            ("weight", srv.weight),
        ):
            if value is not None and not 0 <= value <= 65535:
                p.add(el, f"{label} {value} is outside 0..65535", f"give {label} in 0..65535")


def _check_portgroups(p: _Problems, net: Network) -> None:
    names: set[str] = set()
    default: str | None = None
    for pg in net.portgroups:
        el = f"portgroup[name='{pg.name}']"
        if not pg.name:
            p.add("portgroup", "a portgroup has no name", "give name=")
        _hostile_chars(p, el, pg.name)
        if pg.name in names:
            p.add(el, f"multiple <portgroup> elements with the same name ({pg.name})", "rename one")
        names.add(pg.name)
        if pg.default:
            if default is not None:
                p.add(
                    el,
                    f"multiple default portgroups ({default} and {pg.name})",
                    "mark only one portgroup default='yes'",
                )
            default = pg.name
        if net.mode is ForwardMode.HOSTDEV and pg.bandwidth is not None:
            p.add(f"{el}/bandwidth", "<bandwidth> is not supported with hostdev", "remove it")
        _check_bandwidth(p, f"{el}/bandwidth", pg.bandwidth)
    _check_bandwidth(p, "bandwidth", net.bandwidth)


def _check_bandwidth(p: _Problems, el: str, bw: Bandwidth | None) -> None:
    if bw is None:
        return
    for direction, rate in (("inbound", bw.inbound), ("outbound", bw.outbound)):
        if rate is None:
            continue
        values = (rate.average, rate.peak, rate.burst, rate.floor)
        if any(v is not None and v < 0 for v in values):
            p.add(f"{el}/{direction}", "a rate is negative", "give rates of 0 or more")
        if rate.average is None and rate.floor is None:
            p.add(f"{el}/{direction}", "average= is required", "give average= in KiB/s")
        if rate.floor is not None and direction == "outbound":
            p.add(f"{el}/{direction}", "floor is only supported inbound", "move floor= to inbound")


def _check_dnsmasq_options(p: _Problems, net: Network) -> None:
    for opt in net.dnsmasq_options:
        el = f"dnsmasq:option[value='{opt}']"
        if _hostile_chars(p, el, opt):
            continue
        if opt.count('"') % 2:
            p.add(el, "unbalanced double quote", "close the quote", hostile=True)
        key = opt.split("=", 1)[0].strip().lstrip("-")
        if key in _PROCESS_DIRECTIVES:
            p.add(
                el,
                f"'{key}' controls the dnsmasq process itself (files, users, scripts), which "
                "virtnet sets",
                "remove this option; virtnet chooses the pid, lease and log files and interface",
                hostile=True,
            )


# --- other networks ----------------------------------------------------------------------


def _check_others(p: _Problems, net: Network, others: Iterable[Network]) -> None:
    mine = [(ip, n) for ip in net.ips if (n := _quiet_network(ip)) is not None]
    for other in others:
        if net.uuid and other.uuid and net.uuid.lower() == other.uuid.lower():
            p.add(
                "uuid",
                f"UUID {net.uuid} is already used by network '{other.name}'",
                "leave uuid out to get a new one",
            )
        if net.bridge_name and net.bridge_name == other.bridge_name and net.mode.has_own_bridge:
            p.add(
                f"bridge[name='{net.bridge_name}']",
                f"bridge name '{net.bridge_name}' already in use by network '{other.name}'",
                "choose another bridge name, or leave it out to get the first free virbrN",
            )
        for oip in other.ips:
            onet = _quiet_network(oip)
            if onet is None:
                continue
            for ip, subnet in mine:
                if subnet.version == onet.version and subnet.overlaps(onet):
                    p.add(
                        _ip_label(ip),
                        f"subnet {subnet} overlaps {onet} of network '{other.name}'",
                        "choose a subnet no other network uses (e.g. another 192.168.X.0/24)",
                    )
