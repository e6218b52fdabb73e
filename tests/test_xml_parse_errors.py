"""libvirt's parse-time refusals (virNetworkDefParseXML and helpers), one case each.

Every refusal must be an InvalidDefinition whose ``element`` names the offending element
(``network/ip[2]/dhcp/range``), whose message says what is wrong, and whose hint says how to
fix it.
"""

from __future__ import annotations

import pytest

from virtnet.errors import InvalidDefinition
from virtnet.libvirtxml import parse_network

IP4 = "<ip address='192.168.50.1' netmask='255.255.255.0'/>"


def net(body: str, attrs: str = "", name: str = "<name>t</name>") -> str:
    return f"<network{attrs}>{name}{body}</network>"


def dhcp(inner: str, ip: str = "address='192.168.50.1' netmask='255.255.255.0'") -> str:
    return f"<ip {ip}><dhcp>{inner}</dhcp></ip>"


def dns(inner: str, attrs: str = "") -> str:
    return f"<dns{attrs}>{inner}</dns>" + IP4


CASES: list[tuple[str, str, str, str]] = [
    # id, document, element, fragment of the message
    ("no-name", "<network><bridge name='b'/></network>", "network", "missing <name>"),
    ("empty-name", net("", name="<name></name>"), "network", "missing <name>"),
    ("slash-name", net("", name="<name>a/b</name>"), "network/name", "'/'"),
    ("bad-uuid", net("<uuid>1234</uuid>"), "network/uuid", "malformed uuid"),
    (
        "uuid-garbage",
        net("<uuid>81ff0d90-c91e-6742-64da-4a736edb9a9z</uuid>"),
        "network/uuid",
        "malformed uuid",
    ),
    ("title-newline", net("<title>a\nb</title>"), "network/title", "newlines"),
    ("ipv6-attr", net("", attrs=" ipv6='maybe'"), "network", "ipv6"),
    ("trust-attr", net("", attrs=" trustGuestRxFilters='1'"), "network", "trustGuestRxFilters"),
    ("domain-register", net("<domain name='x' register='yes'/>"), "network/domain", "localOnly"),
    ("domain-localonly", net("<domain name='x' localOnly='sure'/>"), "network/domain", "localOnly"),
    ("stp-value", net("<bridge name='b' stp='no'/>"), "network/bridge", "stp"),
    ("delay-negative", net("<bridge name='b' delay='-1'/>"), "network/bridge", "delay"),
    (
        "mac-table",
        net("<bridge name='b' macTableManager='x'/>"),
        "network/bridge",
        "macTableManager",
    ),
    ("mac-syntax", net("<mac address='52:54:00:zz:00:01'/>"), "network/mac", "not a MAC"),
    ("mac-short", net("<mac address='52:54:00:00:01'/>"), "network/mac", "not a MAC"),
    ("mac-multicast", net("<mac address='01:00:5e:00:00:01'/>"), "network/mac", "multicast"),
    ("mtu-text", net("<mtu size='big'/>"), "network/mtu", "mtu size"),
    ("mode-isolated", net("<forward mode='isolated'/>" + IP4), "network/forward", "unknown"),
    ("mode-bogus", net("<forward mode='bogus'/>" + IP4), "network/forward", "unknown"),
    (
        "driver-name",
        net("<forward mode='hostdev'><driver name='foo'/><pf dev='e'/></forward>"),
        "network/forward/driver",
        "driver",
    ),
    (
        "nat-in-route",
        net("<forward mode='route'><nat/></forward>" + IP4),
        "network/forward/nat",
        "mode is 'nat'",
    ),
    (
        "two-nat",
        net("<forward mode='nat'><nat/><nat/></forward>" + IP4),
        "network/forward/nat[2]",
        "only one <nat>",
    ),
    (
        "nat-no-end",
        net("<forward><nat><address start='192.0.2.1'/></nat></forward>" + IP4),
        "network/forward/nat/address",
        "end",
    ),
    (
        "nat-v6-address",
        net("<forward><nat><address start='2001:db8::1' end='2001:db8::2'/></nat></forward>" + IP4),
        "network/forward/nat/address",
        "IPv4",
    ),
    (
        "nat-reversed",
        net("<forward><nat><address start='192.0.2.9' end='192.0.2.1'/></nat></forward>" + IP4),
        "network/forward/nat/address",
        "reversed",
    ),
    (
        "nat-two-addresses",
        net(
            "<forward><nat><address start='192.0.2.1' end='192.0.2.2'/>"
            "<address start='192.0.2.5' end='192.0.2.6'/></nat></forward>" + IP4
        ),
        "network/forward/nat/address[2]",
        "only one",
    ),
    (
        "nat-port-order",
        net("<forward><nat><port start='2000' end='1000'/></nat></forward>" + IP4),
        "network/forward/nat/port",
        "below start",
    ),
    (
        "nat-port-range",
        net("<forward><nat><port start='1' end='70000'/></nat></forward>" + IP4),
        "network/forward/nat/port",
        "out of range",
    ),
    (
        "nat-port-missing",
        net("<forward><nat><port start='1'/></nat></forward>" + IP4),
        "network/forward/nat/port",
        "end",
    ),
    (
        "dev-with-pf",
        net("<forward mode='passthrough' dev='e0'><pf dev='e1'/></forward>"),
        "network/forward",
        "dev",
    ),
    (
        "dev-with-address",
        net("<forward mode='hostdev' dev='e0'><address type='pci' bus='1'/></forward>"),
        "network/forward",
        "dev",
    ),
    (
        "interface-no-dev",
        net("<forward mode='bridge'><interface/></forward>"),
        "network/forward/interface",
        "dev",
    ),
    (
        "dev-mismatch",
        net("<forward mode='bridge' dev='e0'><interface dev='e1'/></forward>"),
        "network/forward/interface",
        "must match",
    ),
    (
        "address-type",
        net("<forward mode='hostdev'><address type='usb' bus='1'/></forward>"),
        "network/forward/address",
        "unsupported address type",
    ),
    (
        "address-no-type",
        net("<forward mode='hostdev'><address bus='1'/></forward>"),
        "network/forward/address",
        "type",
    ),
    (
        "address-slot",
        net("<forward mode='hostdev'><address type='pci' slot='0x20'/></forward>"),
        "network/forward/address",
        "slot",
    ),
    (
        "two-pf",
        net("<forward mode='passthrough'><pf dev='a'/><pf dev='b'/></forward>"),
        "network/forward/pf[2]",
        "only one <pf>",
    ),
    ("pf-no-dev", net("<forward mode='passthrough'><pf/></forward>"), "network/forward/pf", "dev"),
    ("nat-without-ip", net("<forward mode='nat'/>"), "network/forward", "no IP address"),
    ("route-without-ip", net("<forward mode='route'/>"), "network/forward", "no IP address"),
    (
        "nat-two-devs",
        net("<forward mode='nat'><interface dev='a'/><interface dev='b'/></forward>" + IP4),
        "network/forward",
        "only one is supported",
    ),
    (
        "open-with-interface",
        net("<forward mode='open'><interface dev='a'/></forward>" + IP4),
        "network/forward",
        "mode='open'",
    ),
    (
        "bridge-mode-stp",
        net("<forward mode='bridge'/><bridge name='br0' stp='on'/>"),
        "network/bridge",
        "stp",
    ),
    (
        "bridge-mode-delay",
        net("<forward mode='bridge'/><bridge name='br0' delay='2'/>"),
        "network/bridge",
        "delay",
    ),
    (
        "bridge-mode-zone",
        net("<forward mode='bridge'/><bridge name='br0' zone='z'/>"),
        "network/bridge",
        "zone",
    ),
    (
        "private-bridge-name",
        net("<forward mode='private' dev='e0'/><bridge name='br0'/>"),
        "network/bridge",
        "bridge name not allowed",
    ),
    (
        "vepa-mac-table",
        net("<forward mode='vepa' dev='e0'/><bridge macTableManager='libvirt'/>"),
        "network/bridge",
        "macTableManager",
    ),
    (
        "bridge-and-dev",
        net("<forward mode='bridge' dev='e0'/><bridge name='br0'/>"),
        "network/forward",
        "not both",
    ),
    (
        "mtu-bridge-mode",
        net("<forward mode='bridge'/><bridge name='br0'/><mtu size='9000'/>"),
        "network/mtu",
        "mtu",
    ),
    ("ip-no-address", net("<ip netmask='255.255.255.0'/>"), "network/ip", "address"),
    ("ip-bad-address", net("<ip address='192.168.300.1'/>"), "network/ip", "not an IP address"),
    (
        "ip-family-mismatch",
        net("<ip family='ipv6' address='192.168.1.1'/>"),
        "network/ip",
        "non-IPv6",
    ),
    ("ip-no-family-v6", net("<ip address='2001:db8::1' prefix='64'/>"), "network/ip", "non-IPv4"),
    (
        "ip-mask-and-prefix",
        net("<ip address='10.0.0.1' netmask='255.0.0.0' prefix='8'/>"),
        "network/ip",
        "both a prefix and a netmask",
    ),
    (
        "ip-bad-netmask",
        net("<ip address='10.0.0.1' netmask='255.0.255.0'/>"),
        "network/ip",
        "not a valid netmask",
    ),
    ("ip-prefix-33", net("<ip address='10.0.0.1' prefix='33'/>"), "network/ip", "prefix"),
    ("ip-prefix-text", net("<ip address='10.0.0.1' prefix='x'/>"), "network/ip", "prefix"),
    (
        "ip6-netmask",
        net("<ip family='ipv6' address='2001:db8::1' netmask='255.0.0.0'/>"),
        "network/ip",
        "netmask not allowed",
    ),
    (
        "ip6-prefix-129",
        net("<ip family='ipv6' address='2001:db8::1' prefix='129'/>"),
        "network/ip",
        "prefix",
    ),
    ("ip-family-bogus", net("<ip family='ipx' address='10.0.0.1'/>"), "network/ip", "family"),
    ("ip-class-d", net("<ip address='224.0.0.1'/>"), "network/ip", "natural"),
    ("second-ip", net(IP4 + "<ip address='10.0.0.1' prefix='99'/>"), "network/ip[2]", "prefix"),
    (
        "range-outside",
        net(dhcp("<range start='192.168.51.2' end='192.168.51.9'/>")),
        "network/ip/dhcp/range",
        "not entirely within",
    ),
    (
        "range-reversed",
        net(dhcp("<range start='192.168.50.9' end='192.168.50.2'/>")),
        "network/ip/dhcp/range",
        "reversed",
    ),
    (
        "range-network-address",
        net(dhcp("<range start='192.168.50.0' end='192.168.50.9'/>")),
        "network/ip/dhcp/range",
        "network address",
    ),
    (
        "range-broadcast",
        net(dhcp("<range start='192.168.50.2' end='192.168.50.255'/>")),
        "network/ip/dhcp/range",
        "broadcast",
    ),
    ("range-no-end", net(dhcp("<range start='192.168.50.2'/>")), "network/ip/dhcp/range", "end"),
    (
        "range-family",
        net(dhcp("<range start='192.168.50.2' end='2001:db8::9'/>")),
        "network/ip/dhcp/range",
        "families",
    ),
    (
        "range-in-second-ip",
        net(
            IP4
            + dhcp("<range start='10.1.0.2' end='10.2.0.9'/>", ip="address='10.0.0.1' prefix='24'")
        ),
        "network/ip[2]/dhcp/range",
        "not entirely within",
    ),
    (
        "range-v6-too-large",
        net(
            dhcp(
                "<range start='2001:db8::1:0:0' end='2001:db8::2:0:0'/>",
                ip="family='ipv6' address='2001:db8::1' prefix='64'",
            )
        ),
        "network/ip/dhcp/range",
        "too large",
    ),
    (
        "lease-short",
        net(dhcp("<range start='192.168.50.2' end='192.168.50.9'><lease expiry='1'/></range>")),
        "network/ip/dhcp/range/lease",
        "2 minutes",
    ),
    (
        "lease-seconds-short",
        net(
            dhcp(
                "<range start='192.168.50.2' end='192.168.50.9'>"
                "<lease expiry='60' unit='seconds'/></range>"
            )
        ),
        "network/ip/dhcp/range/lease",
        "2 minutes",
    ),
    (
        "lease-unit",
        net(
            dhcp(
                "<range start='192.168.50.2' end='192.168.50.9'>"
                "<lease expiry='5' unit='days'/></range>"
            )
        ),
        "network/ip/dhcp/range/lease",
        "unit",
    ),
    (
        "host-multicast",
        net(dhcp("<host mac='01:00:00:00:00:01' ip='192.168.50.3'/>")),
        "network/ip/dhcp/host",
        "multicast",
    ),
    (
        "host-bad-mac",
        net(dhcp("<host mac='nope' ip='192.168.50.3'/>")),
        "network/ip/dhcp/host",
        "not a MAC",
    ),
    (
        "host-v6-mac",
        net(
            dhcp(
                "<host mac='52:54:00:00:00:01' ip='2001:db8::3'/>",
                ip="family='ipv6' address='2001:db8::1' prefix='64'",
            )
        ),
        "network/ip/dhcp/host",
        "IPv6",
    ),
    (
        "host-v6-no-id",
        net(dhcp("<host ip='2001:db8::3'/>", ip="family='ipv6' address='2001:db8::1' prefix='64'")),
        "network/ip/dhcp/host",
        "id or name",
    ),
    (
        "host-bad-id",
        net(
            dhcp(
                "<host id='0:1:xyz' ip='2001:db8::3'/>",
                ip="family='ipv6' address='2001:db8::1' prefix='64'",
            )
        ),
        "network/ip/dhcp/host",
        "invalid character",
    ),
    (
        "host-bad-name",
        net(dhcp("<host name='-x' ip='192.168.50.3'/>")),
        "network/ip/dhcp/host",
        "host name",
    ),
    (
        "host-no-ip",
        net(dhcp("<host mac='52:54:00:00:00:01'/>")),
        "network/ip/dhcp/host",
        "IP address",
    ),
    (
        "host-no-mac-or-name",
        net(dhcp("<host ip='192.168.50.3'/>")),
        "network/ip/dhcp/host",
        "mac or name",
    ),
    (
        "second-host",
        net(dhcp("<host mac='52:54:00:00:00:01' ip='192.168.50.3'/><host name='b' ip='x'/>")),
        "network/ip/dhcp/host[2]",
        "not an IP address",
    ),
    (
        "bootp-no-file",
        net(dhcp("<range start='192.168.50.2' end='192.168.50.9'/><bootp/>")),
        "network/ip/dhcp/bootp",
        "file",
    ),
    (
        "tftp-v6",
        net("<ip family='ipv6' address='2001:db8::1' prefix='64'><tftp root='/t'/></ip>"),
        "network/ip/tftp",
        "IPv6",
    ),
    (
        "route-no-gateway",
        net(IP4 + "<route address='10.0.0.0' prefix='8'/>"),
        "network/route",
        "gateway",
    ),
    (
        "route-not-network",
        net(IP4 + "<route address='10.0.0.1' prefix='8' gateway='192.168.50.2'/>"),
        "network/route",
        "not a network address",
    ),
    (
        "route-no-prefix",
        net(IP4 + "<route address='10.0.0.0' gateway='192.168.50.2'/>"),
        "network/route",
        "not a network address",
    ),
    (
        "route-unreachable",
        net(IP4 + "<route address='10.0.0.0' prefix='8' gateway='172.16.0.1'/>"),
        "network/route",
        "unreachable",
    ),
    (
        "route-metric-0",
        net(IP4 + "<route address='10.0.0.0' prefix='8' gateway='192.168.50.2' metric='0'/>"),
        "network/route",
        "metric",
    ),
    (
        "route-v6-netmask",
        net(
            IP4 + "<route family='ipv6' address='2001:db8::' netmask='255.0.0.0' "
            "gateway='2001:db8::1'/>"
        ),
        "network/route",
        "netmask",
    ),
    (
        "second-route",
        net(
            IP4 + "<route address='10.0.0.0' prefix='8' gateway='192.168.50.2'/>"
            "<route address='10.0.0.0' prefix='8' gateway='192.168.9.2'/>"
        ),
        "network/route[2]",
        "unreachable",
    ),
    (
        "dns-disabled-forwarder",
        net(dns("<forwarder addr='192.0.2.53'/>", " enable='no'")),
        "network/dns",
        "disabled",
    ),
    (
        "dns-disabled-host",
        net(dns("<host ip='192.168.50.5'><hostname>h</hostname></host>", " enable='no'")),
        "network/dns",
        "disabled",
    ),
    ("dns-enable-value", net(dns("", " enable='off'")), "network/dns", "enable"),
    ("forwarder-empty", net(dns("<forwarder/>")), "network/dns/forwarder", "addr or domain"),
    (
        "forwarder-bad-addr",
        net(dns("<forwarder addr='dns.example'/>")),
        "network/dns/forwarder",
        "not an IP address",
    ),
    (
        "forwarder-port-0",
        net(dns("<forwarder addr='192.0.2.53' port='0'/>")),
        "network/dns/forwarder",
        "port",
    ),
    (
        "forwarder-port-big",
        net(dns("<forwarder addr='192.0.2.53' port='65536'/>")),
        "network/dns/forwarder",
        "port",
    ),
    ("dns-host-no-name", net(dns("<host ip='192.168.50.5'/>")), "network/dns/host", "hostname"),
    (
        "dns-host-empty-name",
        net(dns("<host ip='192.168.50.5'><hostname/></host>")),
        "network/dns/host/hostname",
        "hostname",
    ),
    (
        "dns-host-no-ip",
        net(dns("<host><hostname>h</hostname></host>")),
        "network/dns/host",
        "IP address",
    ),
    ("srv-no-protocol", net(dns("<srv service='ldap'/>")), "network/dns/srv", "protocol"),
    (
        "srv-bad-service",
        net(dns("<srv service='a.b' protocol='tcp'/>")),
        "network/dns/srv",
        "service",
    ),
    (
        "srv-bad-protocol",
        net(dns("<srv service='ldap' protocol='t_p'/>")),
        "network/dns/srv",
        "protocol",
    ),
    (
        "srv-port-no-target",
        net(dns("<srv service='ldap' protocol='tcp' port='389'/>")),
        "network/dns/srv",
        "without target",
    ),
    (
        "srv-port-0",
        net(dns("<srv service='ldap' protocol='tcp' target='.' port='0'/>")),
        "network/dns/srv",
        "port",
    ),
    (
        "srv-weight-big",
        net(dns("<srv service='ldap' protocol='tcp' target='.' weight='70000'/>")),
        "network/dns/srv",
        "weight",
    ),
    ("txt-space-name", net(dns("<txt name='a b' value='v'/>")), "network/dns/txt", "prohibited"),
    ("txt-no-value", net(dns("<txt name='a'/>")), "network/dns/txt", "value"),
    ("txt-newline", net(dns("<txt name='a' value='x&#10;y'/>")), "network/dns/txt", "line break"),
    ("vlan-no-tag", net("<vlan/>"), "network/vlan", "tag"),
    ("vlan-tag-big", net("<vlan><tag id='5000'/></vlan>"), "network/vlan/tag", "4095"),
    ("vlan-tag-missing-id", net("<vlan><tag/></vlan>"), "network/vlan/tag", "id"),
    (
        "vlan-trunk-no",
        net("<vlan trunk='no'><tag id='1'/><tag id='2'/></vlan>"),
        "network/vlan",
        "trunk",
    ),
    ("vlan-trunk-bogus", net("<vlan trunk='maybe'><tag id='1'/></vlan>"), "network/vlan", "trunk"),
    (
        "vlan-native-twice",
        net(
            "<vlan trunk='yes'><tag id='1' nativeMode='tagged'/><tag id='2' nativeMode='untagged'/>"
            "</vlan>"
        ),
        "network/vlan/tag[2]",
        "duplicate native",
    ),
    (
        "vlan-native-bogus",
        net("<vlan><tag id='1' nativeMode='x'/></vlan>"),
        "network/vlan/tag",
        "nativeMode",
    ),
    (
        "bw-no-average",
        net("<bandwidth><inbound peak='10'/></bandwidth>"),
        "network/bandwidth/inbound",
        "average",
    ),
    (
        "bw-floor",
        net("<bandwidth><inbound average='10' floor='5'/></bandwidth>"),
        "network/bandwidth/inbound",
        "floor",
    ),
    (
        "bw-two-inbound",
        net("<bandwidth><inbound average='1'/><inbound average='2'/></bandwidth>"),
        "network/bandwidth/inbound[2]",
        "only one",
    ),
    (
        "bw-text",
        net("<bandwidth><outbound average='fast'/></bandwidth>"),
        "network/bandwidth/outbound",
        "average",
    ),
    (
        "bw-class-id",
        net("<bandwidth classID='3'><inbound average='1'/></bandwidth>"),
        "network/bandwidth",
        "classID",
    ),
    (
        "vport-no-type",
        net("<forward mode='bridge'/><bridge name='b'/><virtualport/>"),
        "network/virtualport",
        "type",
    ),
    ("vport-bad-type", net("<virtualport type='none'/>"), "network/virtualport", "unknown"),
    (
        "vport-extra",
        net("<virtualport type='802.1Qbh'><parameters managerid='1'/></virtualport>"),
        "network/virtualport/parameters",
        "not allowed",
    ),
    (
        "vport-range",
        net("<virtualport type='802.1Qbg'><parameters managerid='300'/></virtualport>"),
        "network/virtualport/parameters",
        "managerid",
    ),
    (
        "vport-uuid",
        net("<virtualport type='openvswitch'><parameters interfaceid='x'/></virtualport>"),
        "network/virtualport/parameters",
        "uuid",
    ),
    ("portgroup-no-name", net("<portgroup/>"), "network/portgroup", "name"),
    (
        "portgroup-vlan",
        net("<portgroup name='a'><vlan/></portgroup>"),
        "network/portgroup/vlan",
        "tag",
    ),
    (
        "dnsmasq-no-value",
        net(
            "<dnsmasq:options><dnsmasq:option/></dnsmasq:options>",
            " xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'",
        ),
        "network/dnsmasq:options/dnsmasq:option",
        "value",
    ),
    ("wrong-root", "<domain><name>x</name></domain>", "domain", "expected <network>"),
]


@pytest.mark.parametrize(
    ("doc", "element", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refused_naming_the_element(doc: str, element: str, fragment: str) -> None:
    with pytest.raises(InvalidDefinition) as info:
        parse_network(doc)
    err = info.value
    assert err.element == element, str(err)
    assert fragment.lower() in err.message.lower(), str(err)
    assert err.hint, f"no hint for: {err}"
    assert str(err).startswith(f"{element}: ")


def test_case_ids_are_unique() -> None:
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
