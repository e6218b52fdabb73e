"""``net-update``: change one section of a network definition, as libvirt's
virNetworkDefUpdateSection does, refusals included.

Pure: takes a Network and an XML fragment, returns the new Network (or raises). What the change
needs on a running network is ``live_effect(section)``: DHCP host entries reach dnsmasq by a
SIGHUP; DHCP ranges and DNS records need dnsmasq restarted; port groups and forward interfaces
change only the definition.

Commands: ``add`` (= ``add-last``), ``add-first``, ``add-last``, ``delete``, ``modify``.
Errors: bad fragments are InvalidDefinition, duplicates Conflict, deleting or modifying what is
not there NotFound, an update libvirt does not support NotSupported.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import TypeVar

from lxml import etree

from virtnet.errors import Conflict, InvalidDefinition, NotFound, NotSupported
from virtnet.libvirtxml import parse_network
from virtnet.libvirtxml.safe_xml import parse_document
from virtnet.model.network import (
    DHCP,
    DNS,
    DHCPHost,
    DHCPRange,
    DNSHost,
    DNSSrv,
    DNSTxt,
    Forward,
    IPDef,
    Lease,
    Network,
    PortGroup,
)

T = TypeVar("T")

COMMANDS = ("add", "add-first", "add-last", "delete", "modify")
SECTIONS = (
    "ip-dhcp-host",
    "ip-dhcp-range",
    "dns-host",
    "dns-txt",
    "dns-srv",
    "portgroup",
    "forward-interface",
)
# Sections libvirt knows but virtnet (like libvirt for most of them) cannot update in place.
UNSUPPORTED_SECTIONS = ("bridge", "domain", "ip", "forward", "forward-pf", "dns-forwarder")


class LiveEffect(Enum):
    NONE = "none"  # the definition only; nothing on the host changes
    DHCP_HOSTS = "dhcp-hosts"  # rewrite the hosts file, SIGHUP dnsmasq
    DNSMASQ = "dnsmasq"  # dnsmasq's configuration changed: restart it


_EFFECTS = {
    "ip-dhcp-host": LiveEffect.DHCP_HOSTS,
    "ip-dhcp-range": LiveEffect.DNSMASQ,
    "dns-host": LiveEffect.DNSMASQ,
    "dns-txt": LiveEffect.DNSMASQ,
    "dns-srv": LiveEffect.DNSMASQ,
    "portgroup": LiveEffect.NONE,
    "forward-interface": LiveEffect.NONE,
}


def live_effect(section: str) -> LiveEffect:
    return _EFFECTS[section]


def update(
    net: Network, command: str, section: str, xml: str, *, parent_index: int = -1
) -> Network:
    """Apply COMMAND to SECTION of NET with the XML fragment; return the updated network.

    PARENT_INDEX selects the ``<ip>`` (0-based, in document order) for the ip-dhcp-* sections;
    -1 means libvirt's choice: the first ``<ip>`` that has DHCP ranges or hosts, else the
    first IPv4 one, else the first IPv6 one.
    """
    if command not in COMMANDS:
        raise InvalidDefinition(
            f"unknown net-update command {command!r}",
            hint=f"use one of: {', '.join(COMMANDS)}",
        )
    if command == "add":
        command = "add-last"
    if section in UNSUPPORTED_SECTIONS:
        raise NotSupported(
            f"can't update '{section}' section of network '{net.name}'",
            hint=f"edit the definition (net-edit) and restart the network; net-update handles "
            f"{', '.join(SECTIONS)}",
        )
    if section not in SECTIONS:
        raise InvalidDefinition(
            f"unknown net-update section {section!r}", hint=f"use one of: {', '.join(SECTIONS)}"
        )
    root = parse_document(xml)
    handler = _HANDLERS[section]
    return handler(net, command, root, parent_index)


# -- helpers ---------------------------------------------------------------------------------


def _check_element(net: Network, el: etree._Element, expected: str) -> None:
    name = etree.QName(el).localname
    if name != expected:
        raise InvalidDefinition(
            f"unexpected element <{name}>, expecting <{expected}>, while updating network "
            f"'{net.name}'",
            hint=f"give a <{expected} .../> element for this section",
        )


def _bad(net: Network, element: str, message: str, hint: str | None = None) -> InvalidDefinition:
    return InvalidDefinition(f"{message} in network '{net.name}'", element=element, hint=hint)


def _unsupported_modify(net: Network, what: str) -> NotSupported:
    return NotSupported(
        f"{what} cannot be modified, only added or deleted (network '{net.name}')",
        hint="delete the old entry, then add the new one",
    )


def _insert(items: tuple[T, ...], item: T, command: str) -> tuple[T, ...]:
    return (item, *items) if command == "add-first" else (*items, item)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


_MAC = re.compile(r"^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$")


def _mac(text: str) -> str | None:
    if not _MAC.match(text):
        return None
    return ":".join(f"{int(p, 16):02x}" for p in text.split(":"))


def _same_mac(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and _mac(a) == _mac(b)


def _same_ip(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    pa, pb = _ip(a), _ip(b)
    return pa is not None and pa == pb


def _lease(net: Network, el: etree._Element, element: str) -> Lease | None:
    node = el.find("lease")
    if node is None:
        return None
    expiry_text = node.get("expiry")
    unit = node.get("unit")
    if expiry_text is None or not expiry_text.strip().isdigit():
        raise _bad(net, f"{element}/lease", f"lease expiry {expiry_text!r} is not a number",
                   "give expiry as a whole number (0 means infinite)")
    if unit is not None and unit not in ("seconds", "minutes", "hours"):
        raise _bad(net, f"{element}/lease", f"lease unit {unit!r} is not valid",
                   "use unit='seconds', 'minutes' or 'hours'")
    return Lease(expiry=int(expiry_text), unit=unit)


def _select_ip(net: Network, parent_index: int, what: str) -> int:
    """Index into net.ips of the <ip> an ip-dhcp-* update works on (libvirt's choice)."""
    if parent_index >= 0:
        if parent_index >= len(net.ips):
            raise NotFound(
                f"couldn't update {what} entry - no <ip> element found at index "
                f"{parent_index} in network '{net.name}'",
                hint=f"the network has {len(net.ips)} <ip> element(s); --parent-index counts "
                "from 0",
            )
        return parent_index
    for i, ip in enumerate(net.ips):
        if ip.dhcp and (ip.dhcp.ranges or ip.dhcp.hosts):
            return i
    for want_v6 in (False, True):
        for i, ip in enumerate(net.ips):
            if ip.is_ipv6 == want_v6:
                return i
    raise NotFound(
        f"couldn't update {what} entry - no <ip> element found in network '{net.name}'",
        hint="add an <ip> element to the definition first (net-edit)",
    )


def _check_multi_dhcp(net: Network, index: int) -> None:
    """libvirt serves DHCP on one <ip> per address family only."""
    chosen = net.ips[index]
    for i, ip in enumerate(net.ips):
        if i != index and ip.is_ipv6 == chosen.is_ipv6 and ip.dhcp and (
            ip.dhcp.ranges or ip.dhcp.hosts
        ):
            family = "IPv6" if chosen.is_ipv6 else "IPv4"
            raise InvalidDefinition(
                f"dhcp is supported only for a single {family} address on each network "
                f"(network '{net.name}')",
                element="ip/dhcp",
                hint=f"use --parent-index {i}: that <ip> already serves DHCP",
            )


def _with_dhcp(net: Network, index: int, dhcp: DHCP) -> Network:
    ips = list(net.ips)
    ips[index] = replace(ips[index], dhcp=dhcp)
    return replace(net, ips=tuple(ips))


# -- ip-dhcp-host ------------------------------------------------------------------------------


def _parse_dhcp_host(
    net: Network, ipdef: IPDef, el: etree._Element, partial_ok: bool
) -> DHCPHost:
    element = "ip/dhcp/host"
    mac_text = el.get("mac")
    mac: str | None = None
    if mac_text is not None:
        if ipdef.is_ipv6:
            raise _bad(net, element,
                       f"Invalid to specify MAC address '{mac_text}' in IPv6 static host "
                       "definition", "IPv6 hosts are matched by id (DUID) or name, not MAC")
        mac = _mac(mac_text)
        if mac is None:
            raise _bad(net, element, f"Cannot parse MAC address '{mac_text}'",
                       "write it as 52:54:00:xx:xx:xx")
        if int(mac[:2], 16) & 1:
            raise _bad(net, element,
                       f"expected unicast mac address, found multicast '{mac_text}'",
                       "clear the lowest bit of the first octet, e.g. 52:54:00:xx:xx:xx")
    ident = el.get("id")
    if ident is not None:
        rest = [c for c in ident if c not in "0123456789abcdefABCDEF:"]
        if rest:
            raise _bad(net, element, f"Invalid character '{rest[0]}' in id '{ident}'",
                       "a DUID is hex digits separated by ':'")
    name = el.get("name")
    if name is not None and not (name[:1].isascii() and name[:1].isalpha()):
        raise _bad(net, element, f"Cannot use host name '{name}'",
                   "host names start with a letter")
    ip_text = el.get("ip")
    ip: str | None = None
    if ip_text is not None:
        addr = _ip(ip_text)
        if addr is None:
            raise _bad(net, element,
                       f"Invalid IP address '{ip_text}' in static host definition",
                       "give a numeric IP address")
        ip = str(addr)
    if partial_ok:
        if not (mac or name or ip):
            raise _bad(net, element,
                       "At least one of name, mac, or ip attribute must be specified for "
                       "static host definition", "say which host: mac=, name= or ip=")
    else:
        if ipdef.is_ipv6:
            if not (ident or name):
                raise _bad(net, element,
                           "Static host definition in IPv6 network must have id or name "
                           "attribute", "add id='DUID' or name='...'")
        elif not (mac or name):
            raise _bad(net, element,
                       "Static host definition in IPv4 network must have mac or name attribute",
                       "add mac='52:54:00:..' (and name= if you like)")
        if ip is None:
            raise _bad(net, element, "Missing IP address in static host definition",
                       "add ip='...' inside the <ip> element's subnet")
    return DHCPHost(ip=ip, mac=mac, id=ident, name=name, lease=_lease(net, el, element))


def _update_dhcp_host(net: Network, command: str, el: etree._Element, parent: int) -> Network:
    index = _select_ip(net, parent, "dhcp host")
    ipdef = net.ips[index]
    _check_element(net, el, "host")
    dhcp = ipdef.dhcp or DHCP()
    hosts = dhcp.hosts
    host = _parse_dhcp_host(net, ipdef, el, partial_ok=command == "delete")
    addr = _ip(host.ip) if host.ip is not None else None
    if command != "delete" and addr is not None and (addr.version == 6) != ipdef.is_ipv6:
        raise _bad(net, "ip/dhcp/host",
                   "the address family of a host entry IP must match the address family of "
                   "the dhcp element's parent", "give an address of the <ip> element's family")

    if command == "modify":
        for i, h in enumerate(hosts):
            if (_same_mac(host.mac, h.mac) or _same_ip(host.ip, h.ip)
                    or (host.name is not None and host.name == h.name)):
                new = hosts[:i] + (host,) + hosts[i + 1:]
                return _with_dhcp(net, index, replace(dhcp, hosts=new))
        raise NotFound(
            f"couldn't locate an existing dhcp host entry with \"mac='{host.mac or 'unknown'}'"
            f"\" \"name='{host.name}'\" \"ip='{host.ip or 'unknown'}'\" in network '{net.name}'",
            hint="modify matches an existing host by mac, ip or name; use add for a new host",
        )
    if command in ("add-first", "add-last"):
        _check_multi_dhcp(net, index)
        for h in hosts:
            if (_same_mac(host.mac, h.mac) or (host.name is not None and host.name == h.name)
                    or _same_ip(host.ip, h.ip)):
                raise Conflict(
                    f"there is an existing dhcp host entry in network '{net.name}' that matches "
                    f"\"<host mac='{host.mac or 'unknown'}' name='{host.name}' "
                    f"ip='{host.ip or 'unknown'}'/>\"",
                    element="ip/dhcp/host",
                    hint="use modify to change it, or delete it first",
                )
        return _with_dhcp(net, index, replace(dhcp, hosts=_insert(hosts, host, command)))
    # delete: every attribute given must match
    for i, h in enumerate(hosts):
        if ((host.mac is None or h.mac is None or _same_mac(host.mac, h.mac))
                and (host.name is None or host.name == h.name)
                and (host.ip is None or _same_ip(host.ip, h.ip))):
            return _with_dhcp(net, index, replace(dhcp, hosts=hosts[:i] + hosts[i + 1:]))
    raise NotFound(
        f"couldn't locate a matching dhcp host entry in network '{net.name}'",
        element="ip/dhcp/host",
        hint="net-dumpxml shows the host entries; every attribute you give must match",
    )


# -- ip-dhcp-range ----------------------------------------------------------------------------


def _parse_range(net: Network, ipdef: IPDef, el: etree._Element) -> DHCPRange:
    element = "ip/dhcp/range"
    start_text, end_text = el.get("start"), el.get("end")
    if start_text is None:
        raise _bad(net, element, "Missing 'start' attribute in dhcp range",
                   "give start='first address' end='last address'")
    if end_text is None:
        raise _bad(net, element, "Missing 'end' attribute in dhcp range",
                   "give start='first address' end='last address'")
    start, end = _ip(start_text), _ip(end_text)
    if start is None:
        raise _bad(net, element, f"Invalid dhcp range start '{start_text}'", "give an IP address")
    if end is None:
        raise _bad(net, element, f"Invalid dhcp range end '{end_text}'", "give an IP address")
    subnet = ipdef.network
    label = f"{start} - {end}"
    if start.version != end.version:
        raise _bad(net, element, f"mismatch of address family in range {label}",
                   "start and end must both be IPv4 or both IPv6")
    if start not in subnet or end not in subnet:
        raise _bad(net, element, f"range {label} is not entirely within network {subnet}",
                   f"choose start and end inside {subnet}")
    if start.version == 4 and subnet.prefixlen < 31:
        if start == subnet.network_address:
            raise _bad(net, element,
                       f"start of range {label} in network {subnet} is the network address",
                       "start the range at least one address higher")
        if end == subnet.broadcast_address:
            raise _bad(net, element,
                       f"end of range {label} in network {subnet} is the broadcast address",
                       "end the range at least one address lower")
    if int(end) < int(start):
        raise _bad(net, element, f"range {label} is reversed", "swap start and end")
    if start.version == 6 and (int(start) >> 16) != (int(end) >> 16):
        raise _bad(net, element, f"range {label} is too large (> 65535)",
                   "an IPv6 range may differ only in its last 16 bits")
    return DHCPRange(start=str(start), end=str(end), lease=_lease(net, el, element))


def _update_dhcp_range(net: Network, command: str, el: etree._Element, parent: int) -> Network:
    _check_element(net, el, "range")
    index = _select_ip(net, parent, "dhcp range")
    ipdef = net.ips[index]
    if command == "modify":
        raise _unsupported_modify(net, "dhcp ranges")
    rng = _parse_range(net, ipdef, el)
    dhcp = ipdef.dhcp or DHCP()
    found = next(
        (i for i, r in enumerate(dhcp.ranges)
         if _same_ip(r.start, rng.start) and _same_ip(r.end, rng.end)),
        None,
    )
    if command in ("add-first", "add-last"):
        _check_multi_dhcp(net, index)
        if found is not None:
            raise Conflict(
                f"there is an existing dhcp range entry in network '{net.name}' that matches "
                f"\"<range start='{rng.start}' end='{rng.end}'/>\"",
                element="ip/dhcp/range",
            )
        return _with_dhcp(net, index, replace(dhcp, ranges=_insert(dhcp.ranges, rng, command)))
    if found is None:
        raise NotFound(
            f"couldn't locate a matching dhcp range entry in network '{net.name}'",
            element="ip/dhcp/range",
            hint="give the start and end exactly as net-dumpxml shows them",
        )
    ranges = dhcp.ranges[:found] + dhcp.ranges[found + 1:]
    return _with_dhcp(net, index, replace(dhcp, ranges=ranges))


# -- dns ---------------------------------------------------------------------------------------


def _with_dns(net: Network, **changes: object) -> Network:
    dns = net.dns or DNS()
    return replace(net, dns=replace(dns, **changes))  # type: ignore[arg-type]


@dataclass(frozen=True)
class _HostQuery:
    ip: str | None
    hostnames: tuple[str, ...]


def _update_dns_host(net: Network, command: str, el: etree._Element, parent: int) -> Network:
    if command == "modify":
        raise _unsupported_modify(net, "DNS HOST records")
    _check_element(net, el, "host")
    is_add = command != "delete"
    element = "dns/host"
    names: list[str] = []
    for child in el:
        if not isinstance(child.tag, str) or etree.QName(child).localname != "hostname":
            continue
        text = (child.text or "").strip()
        if not text:
            raise _bad(net, element, "Missing hostname in DNS HOST record",
                       "put the name inside <hostname>...</hostname>")
        names.append(text)
    if not names and is_add:
        raise _bad(net, element, "Missing hostname in DNS HOST record",
                   "add <hostname>name</hostname>")
    ip_text = el.get("ip")
    ip: str | None = None
    if ip_text is not None:
        addr = _ip(ip_text)
        if addr is None:
            raise _bad(net, element, f"Invalid IP address '{ip_text}' in DNS HOST record",
                       "give a numeric IP address")
        ip = str(addr)
    elif is_add:
        raise _bad(net, element, "Missing IP address in DNS HOST record", "add ip='...'")
    elif not names:
        raise _bad(net, element, "Missing ip and hostname in DNS HOST record",
                   "give ip='...' or a <hostname> of the record to delete")
    query = _HostQuery(ip, tuple(names))
    hosts = net.dns.hosts if net.dns else ()
    found = []
    for i, h in enumerate(hosts):
        hit = _same_ip(query.ip, h.ip)
        # Adding: only the address must be unique (several addresses may share a name).
        if not is_add and not hit:
            hit = any(n in h.hostnames for n in query.hostnames)
        if hit:
            found.append(i)
    if is_add:
        if found:
            raise Conflict(
                f"there is already at least one DNS HOST record with a matching field in "
                f"network {net.name}",
                element=element,
                hint="delete the existing record for that address first",
            )
        assert ip is not None
        new = DNSHost(ip=ip, hostnames=tuple(names))
        return _with_dns(net, hosts=_insert(hosts, new, command))
    if not found:
        raise NotFound(f"couldn't locate a matching DNS HOST record in network {net.name}",
                       element=element)
    if len(found) > 1:
        raise Conflict(
            f"multiple matching DNS HOST records were found in network {net.name}",
            element=element,
            hint="give both the ip and the hostnames of the one record to delete",
        )
    i = found[0]
    return _with_dns(net, hosts=hosts[:i] + hosts[i + 1:])


def _update_dns_txt(net: Network, command: str, el: etree._Element, parent: int) -> Network:
    if command == "modify":
        raise _unsupported_modify(net, "DNS TXT records")
    _check_element(net, el, "txt")
    is_add = command != "delete"
    element = "dns/txt"
    name = el.get("name")
    if not name:
        raise _bad(net, element, "missing required name attribute in DNS TXT record",
                   "add name='...'")
    bad = next((c for c in name if c in " ,"), None)
    if bad is not None:
        raise _bad(net, element, f"prohibited character {bad!r} in DNS TXT record name '{name}'",
                   "a TXT record name has no spaces or commas")
    value = el.get("value")
    if value is None and is_add:
        raise _bad(net, element, f"missing required value attribute in DNS TXT record "
                   f"named '{name}'", "add value='...'")
    txts = net.dns.txts if net.dns else ()
    found = next((i for i, t in enumerate(txts) if t.name == name), None)
    if is_add:
        if found is not None:
            raise Conflict(
                f"there is already a DNS TXT record with name '{name}' in network {net.name}",
                element=element,
                hint="delete it first to change its value",
            )
        assert value is not None
        return _with_dns(net, txts=_insert(txts, DNSTxt(name=name, value=value), command))
    if found is None:
        raise NotFound(f"couldn't locate a matching DNS TXT record in network {net.name}",
                       element=element)
    return _with_dns(net, txts=txts[:found] + txts[found + 1:])


SRV_MAX = 512 - 30  # libvirt's DNS_RECORD_LENGTH_SRV (RFC 2782 limit minus overhead)
_SRV_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+/")


def _update_dns_srv(net: Network, command: str, el: etree._Element, parent: int) -> Network:
    if command == "modify":
        raise _unsupported_modify(net, "DNS SRV records")
    _check_element(net, el, "srv")
    is_add = command != "delete"
    element = "dns/srv"
    service, protocol = el.get("service"), el.get("protocol")
    if service is None and is_add:
        raise _bad(net, element, "missing required service attribute in DNS SRV record",
                   "add service='...'")
    if service is not None:
        if len(service.encode()) > SRV_MAX:
            raise _bad(net, element, f"service attribute '{service}' is too long, limit is "
                       f"{SRV_MAX} bytes", "shorten the service name")
        if set(service) - _SRV_CHARS - {"_", "*"}:
            raise _bad(net, element, f"invalid character in service attribute '{service}'",
                       "use letters, digits, '-', '+', '/' and '_'")
    if protocol is None and is_add:
        raise _bad(net, element, "missing required protocol attribute in DNS SRV record",
                   "add protocol='tcp' or 'udp'")
    if protocol is not None and set(protocol) - _SRV_CHARS:
        raise _bad(net, element, f"invalid character in protocol attribute '{protocol}'",
                   "use a protocol name such as tcp or udp")
    domain, target = el.get("domain"), el.get("target")
    numbers: dict[str, int | None] = {}
    for attr in ("port", "priority", "weight"):
        text = el.get(attr)
        if text is None:
            numbers[attr] = None
            continue
        if target is None:
            raise _bad(net, element, f"DNS SRV {attr} attribute not permitted without target "
                       f"for service '{service}'", "add target='host.name' or drop it")
        low = 1 if attr == "port" else 0
        if not text.strip().isdigit() or not low <= int(text) <= 65535:
            raise _bad(net, element, f"invalid DNS SRV {attr} attribute '{text}' for service "
                       f"'{service}'", f"give {attr} between {low} and 65535")
        numbers[attr] = int(text)
    srvs = net.dns.srvs if net.dns else ()
    found = [
        i for i, s in enumerate(srvs)
        if (domain is None or domain == s.domain)
        and (service is None or service == s.service)
        and (protocol is None or protocol == s.protocol)
        and (target is None or target == s.target)
    ]
    if is_add:
        if found:
            raise Conflict(
                f"there is already at least one DNS SRV record matching all specified fields "
                f"in network {net.name}", element=element,
            )
        assert service is not None and protocol is not None
        new = DNSSrv(service=service, protocol=protocol, domain=domain, target=target,
                     port=numbers["port"], priority=numbers["priority"],
                     weight=numbers["weight"])
        return _with_dns(net, srvs=_insert(srvs, new, command))
    if not found:
        raise NotFound(f"couldn't locate a matching DNS SRV record in network {net.name}",
                       element=element)
    if len(found) > 1:
        raise Conflict(
            f"multiple DNS SRV records matching all specified fields were found in network "
            f"{net.name}", element=element,
            hint="give more fields (domain, target) to select one record",
        )
    i = found[0]
    return _with_dns(net, srvs=srvs[:i] + srvs[i + 1:])


# -- portgroup ---------------------------------------------------------------------------------


def _parse_portgroup(net: Network, el: etree._Element) -> PortGroup:
    # The full <portgroup> grammar (vlan, virtualport, bandwidth) lives in the XML reader:
    # parse it inside a minimal network so both paths read it the same way.
    if not el.get("name"):
        raise _bad(net, "portgroup", "missing name attribute in portgroup",
                   "add name='...'")
    wrapper = etree.Element("network")
    etree.SubElement(wrapper, "name").text = net.name
    wrapper.append(el)
    parsed = parse_network(etree.tostring(wrapper))
    return parsed.portgroups[0]


def _update_portgroup(net: Network, command: str, el: etree._Element, parent: int) -> Network:
    _check_element(net, el, "portgroup")
    pg = _parse_portgroup(net, el)
    groups = net.portgroups
    found = next((i for i, g in enumerate(groups) if g.name == pg.name), None)
    default = next((i for i, g in enumerate(groups) if g.default), None)
    if found is None and command in ("modify", "delete"):
        raise NotFound(
            f"couldn't find a portgroup entry in network '{net.name}' matching "
            f"<portgroup name='{pg.name}'>", element="portgroup",
        )
    if found is not None and command in ("add-first", "add-last"):
        raise Conflict(
            f"there is an existing portgroup entry in network '{net.name}' that matches "
            f"\"<portgroup name='{pg.name}'>\"", element="portgroup",
            hint="use modify to change it",
        )
    if command != "delete" and pg.default and default is not None and default != found:
        raise Conflict(
            f"a different portgroup entry in network '{net.name}' is already set as the "
            "default. Only one default is allowed.", element="portgroup",
            hint=f"drop default='yes', or first modify '{groups[default].name}' to not be default",
        )
    if command == "modify":
        assert found is not None
        return replace(net, portgroups=groups[:found] + (pg,) + groups[found + 1:])
    if command == "delete":
        assert found is not None
        return replace(net, portgroups=groups[:found] + groups[found + 1:])
    return replace(net, portgroups=_insert(groups, pg, command))


# -- forward-interface -------------------------------------------------------------------------


def _update_forward_interface(
    net: Network, command: str, el: etree._Element, parent: int
) -> Network:
    _check_element(net, el, "interface")
    if command == "modify":
        raise NotSupported(
            f"forward interface entries cannot be modified, only added or deleted (network "
            f"'{net.name}')", hint="delete the old interface, then add the new one",
        )
    dev = el.get("dev")
    if not dev:
        raise _bad(net, "forward/interface", "missing dev attribute in <interface> element",
                   "add dev='host interface name'")
    if net.forward is None:
        raise NotSupported(
            f"network '{net.name}' has no <forward> element to hold interfaces",
            element="forward", hint="interfaces belong to a network with <forward mode=...>",
        )
    ifaces = net.forward.interfaces
    fwd: Forward
    if command in ("add-first", "add-last"):
        if dev in ifaces:
            raise Conflict(
                f"there is an existing interface entry in network '{net.name}' that matches "
                f"\"<interface dev='{dev}'>\"", element="forward/interface",
            )
        fwd = replace(net.forward, interfaces=_insert(ifaces, dev, command))
        return replace(net, forward=fwd)
    if dev not in ifaces:
        raise NotFound(
            f"couldn't find an interface entry in network '{net.name}' matching "
            f"<interface dev='{dev}'>", element="forward/interface",
        )
    fwd = replace(net.forward, interfaces=tuple(i for i in ifaces if i != dev))
    return replace(net, forward=fwd)


_Handler = Callable[[Network, str, etree._Element, int], Network]
_HANDLERS: dict[str, _Handler] = {
    "ip-dhcp-host": _update_dhcp_host,
    "ip-dhcp-range": _update_dhcp_range,
    "dns-host": _update_dns_host,
    "dns-txt": _update_dns_txt,
    "dns-srv": _update_dns_srv,
    "portgroup": _update_portgroup,
    "forward-interface": _update_forward_interface,
}

__all__ = ["COMMANDS", "SECTIONS", "LiveEffect", "live_effect", "update"]
