"""Semantic validation: every check fires on its bad input, names the element, and gives a fix."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from virtnet.errors import HostileInput, InvalidDefinition
from virtnet.model.network import (
    DHCP,
    DNS,
    Bandwidth,
    BandwidthRate,
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
    PortGroup,
    Route,
    Vlan,
    VlanTag,
)
from virtnet.model.validate import DefinitionProblems, problems, validate

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "libvirt-9.0.0"

RANGE = DHCPRange("192.168.122.2", "192.168.122.254")
HOSTS = (
    DHCPHost(ip="192.168.122.10", mac="52:54:00:00:00:01", name="a"),
    DHCPHost(ip="192.168.122.11", mac="52:54:00:00:00:02", name="b"),
)
IP = IPDef(address="192.168.122.1", prefix=24, dhcp=DHCP(ranges=(RANGE,), hosts=HOSTS))


def nat(**kw: Any) -> Network:
    base = Network(
        name="default",
        forward=Forward(mode=ForwardMode.NAT),
        bridge=Bridge(name="virbr0"),
        ips=(IP,),
    )
    return replace(base, **kw)


def bridged(**kw: Any) -> Network:
    base = Network(name="br", forward=Forward(mode=ForwardMode.BRIDGE), bridge=Bridge("br0"))
    return replace(base, **kw)


def dhcp_ip(ranges: tuple[DHCPRange, ...] = (RANGE,), hosts: tuple[DHCPHost, ...] = ()) -> IPDef:
    return replace(IP, dhcp=DHCP(ranges=ranges, hosts=hosts))


def test_sound_definitions_pass() -> None:
    validate(nat())
    validate(bridged())
    validate(nat(forward=None, name="my 'quoted' net"))
    validate(nat(forward=Forward(mode=ForwardMode.OPEN)))


BAD: list[tuple[str, Network, str, bool]] = [
    # name rules
    ("name-slash", nat(name="a/b"), "contains '/'", False),
    ("name-dot", nat(name=".hidden"), "starts with '.'", False),
    ("name-newline", nat(name="x\ny"), "control character", True),
    ("name-empty", nat(name=""), "no name", False),
    # bridge names the kernel refuses
    ("br-long", nat(bridge=Bridge("a" * 16)), "longer than 15", False),
    ("br-slash", nat(bridge=Bridge("br/0")), "kernel refuses", False),
    ("br-space", nat(bridge=Bridge("br 0")), "kernel refuses", True),
    ("br-dot", nat(bridge=Bridge("..")), "kernel refuses", False),
    ("br-empty", nat(bridge=Bridge("")), "empty", False),
    ("br-comma", nat(bridge=Bridge("virbr0,lo")), "not a usable interface name", True),
    ("br-quote", nat(bridge=Bridge('br"0')), "not a usable interface name", True),
    ("br-backslash", nat(bridge=Bridge("br\\")), "not a usable interface name", True),
    ("br-colon", nat(bridge=Bridge("br:1")), "not a usable interface name", False),
    ("dev-long", nat(forward=Forward(dev="x" * 16)), "longer than 15", False),
    ("dev-space", nat(forward=Forward(dev="eth 0")), "not a usable interface name", True),
    # subnets
    (
        "overlap-inside",
        nat(ips=(IP, IPDef(address="192.168.122.129", prefix=25))),
        "overlaps 192.168.122.0/24",
        False,
    ),
    (
        "net-address",
        nat(ips=(IPDef(address="192.168.122.0", prefix=24),)),
        "network address",
        False,
    ),
    # DHCP ranges
    (
        "range-outside",
        nat(ips=(dhcp_ip((DHCPRange("192.168.122.2", "192.168.123.9"),)),)),
        "not entirely within",
        False,
    ),
    (
        "range-reversed",
        nat(ips=(dhcp_ip((DHCPRange("192.168.122.9", "192.168.122.2"),)),)),
        "reversed",
        False,
    ),
    (
        "range-own",
        nat(ips=(dhcp_ip((DHCPRange("192.168.122.1", "192.168.122.9"),)),)),
        "host's own address",
        False,
    ),
    (
        "range-overlap",
        nat(
            ips=(
                dhcp_ip(
                    (
                        DHCPRange("192.168.122.2", "192.168.122.99"),
                        DHCPRange("192.168.122.50", "192.168.122.150"),
                    )
                ),
            )
        ),
        "overlaps the range",
        False,
    ),
    (
        "range-broadcast",
        nat(ips=(dhcp_ip((DHCPRange("192.168.122.2", "192.168.122.255"),)),)),
        "broadcast",
        False,
    ),
    (
        "lease-unit",
        nat(ips=(dhcp_ip((DHCPRange("192.168.122.2", "192.168.122.9", Lease(1, "days")),)),)),
        "lease unit",
        False,
    ),
    # DHCP hosts
    (
        "host-outside",
        nat(ips=(dhcp_ip(hosts=(DHCPHost(ip="10.0.0.5", mac="52:54:00:00:00:01"),)),)),
        "outside",
        False,
    ),
    (
        "host-own",
        nat(ips=(dhcp_ip(hosts=(DHCPHost(ip="192.168.122.1", mac="52:54:00:00:00:01"),)),)),
        "host's own address",
        False,
    ),
    (
        "dup-mac",
        nat(ips=(dhcp_ip(hosts=(HOSTS[0], replace(HOSTS[1], mac="52:54:00:00:00:01"))),)),
        "duplicate host mac",
        False,
    ),
    (
        "dup-ip",
        nat(ips=(dhcp_ip(hosts=(HOSTS[0], replace(HOSTS[1], ip="192.168.122.10"))),)),
        "duplicate host ip",
        False,
    ),
    (
        "dup-name",
        nat(ips=(dhcp_ip(hosts=(HOSTS[0], replace(HOSTS[1], name="A"))),)),
        "duplicate host name",
        False,
    ),
    (
        "host-name-comma",
        nat(ips=(dhcp_ip(hosts=(replace(HOSTS[0], name="a,b"),)),)),
        "cannot use host name",
        True,
    ),
    (
        "host-mcast-mac",
        nat(ips=(dhcp_ip(hosts=(replace(HOSTS[0], mac="01:00:5e:00:00:01"),)),)),
        "multicast",
        False,
    ),
    (
        "two-dhcp",
        nat(ips=(IP, replace(IP, address="192.168.123.1", dhcp=DHCP(ranges=(RANGE,))))),
        "multiple IPv4 dhcp",
        False,
    ),
    # options that do not belong to the mode
    (
        "open-dev",
        nat(forward=Forward(mode=ForwardMode.OPEN, dev="eth0")),
        "not allowed with forward mode 'open'",
        False,
    ),
    ("mtu-bridge", bridged(mtu=9000), "MTU is only allowed", False),
    (
        "mtu-direct",
        Network("d", forward=Forward(mode=ForwardMode.VEPA, dev="eth0"), mtu=1500),
        "MTU is only allowed",
        False,
    ),
    (
        "bw-passthrough",
        Network(
            "d",
            forward=Forward(mode=ForwardMode.PASSTHROUGH, dev="eth0"),
            bandwidth=Bandwidth(inbound=BandwidthRate(average=100)),
        ),
        "<bandwidth> is not supported",
        False,
    ),
    (
        "bw-hostdev-pg",
        Network(
            "d",
            forward=Forward(mode=ForwardMode.HOSTDEV, pfs=("eth0",)),
            portgroups=(PortGroup("p", bandwidth=Bandwidth(inbound=BandwidthRate(average=1))),),
        ),
        "not supported with hostdev",
        False,
    ),
    ("ip-bridge", bridged(ips=(IP,)), "<ip> is not supported", False),
    ("dns-bridge", bridged(dns=DNS(txts=(DNSTxt("a", "b"),))), "<dns> records", False),
    ("stp-bridge", bridged(bridge=Bridge("br0", stp=True)), "delay/stp/zone", False),
    (
        "nat-elem",
        nat(forward=Forward(mode=ForwardMode.ROUTE, nat=Nat())),
        "only be used when <forward> mode is 'nat'",
        False,
    ),
    (
        "nat-range",
        nat(forward=Forward(nat=Nat(addresses=(NatAddressRange("10.0.0.9", "10.0.0.1"),)))),
        "reversed",
        False,
    ),
    (
        "nat-ports",
        nat(forward=Forward(nat=Nat(port_start=2000, port_end=1000))),
        "reversed",
        False,
    ),
    ("nat-no-ip", nat(ips=()), "no IP address provided", False),
    (
        "bridge-name-direct",
        Network("d", forward=Forward(mode=ForwardMode.PRIVATE, dev="eth0"), bridge=Bridge("b")),
        "bridge name not allowed",
        False,
    ),
    ("vlan-nat", nat(vlan=Vlan(tags=(VlanTag(5),))), "does not support VLAN", False),
    # DNS
    (
        "dns-disabled-extra",
        nat(dns=DNS(enable=False, txts=(DNSTxt("a", "b"),))),
        "disabled DNS server",
        False,
    ),
    ("fwd-empty", nat(dns=DNS(forwarders=(DNSForwarder(),))), "needs addr", False),
    ("fwd-port", nat(dns=DNS(forwarders=(DNSForwarder("1.1.1.1", port=0),))), "1..65535", False),
    (
        "fwd-port-noaddr",
        nat(dns=DNS(forwarders=(DNSForwarder(domain="a", port=53),))),
        "needs addr",
        False,
    ),
    ("srv-proto", nat(dns=DNS(srvs=(DNSSrv("ldap", "sctp"),))), "not tcp or udp", False),
    ("srv-long", nat(dns=DNS(srvs=(DNSSrv("x" * 64, "tcp"),))), "longer than 63", False),
    ("dns-host-empty", nat(dns=DNS(hosts=(DNSHost("192.168.122.5"),))), "at least one", False),
    # routes
    (
        "route-gw",
        nat(routes=(Route(address="10.9.0.0", prefix=16, gateway="10.1.1.1"),)),
        "unreachable static route gateway",
        False,
    ),
    # hostile values: every string that reaches dnsmasq or nftables
    ("domain-nl", nat(domain=Domain("ex\nserver=1.2.3.4")), "control character", True),
    ("domain-space", nat(domain=Domain("ex ample")), "not a DNS name", True),
    ("txt-value-nl", nat(dns=DNS(txts=(DNSTxt("t", "a\nconf-file=/x"),))), "control", True),
    ("txt-value-hash", nat(dns=DNS(txts=(DNSTxt("t", "a #rest"),))), "comment", True),
    ("txt-value-quote", nat(dns=DNS(txts=(DNSTxt("t", 'a"b'),))), "double quote", True),
    ("txt-value-comma", nat(dns=DNS(txts=(DNSTxt("t", "a,b"),))), "','", True),
    ("txt-name-comma", nat(dns=DNS(txts=(DNSTxt("t,u", "a"),))), "not a DNS name", True),
    ("hostname-tab", nat(dns=DNS(hosts=(DNSHost("192.168.122.5", ("a\tb",)),))), "control", True),
    (
        "fwd-domain",
        nat(dns=DNS(forwarders=(DNSForwarder(domain="a/b"),))),
        "not a DNS name",
        True,
    ),
    ("srv-target", nat(dns=DNS(srvs=(DNSSrv("s", "tcp", target="a,b"),))), "DNS name", True),
    ("opt-nl", nat(dnsmasq_options=("a=b\nc=d",)), "control", True),
    ("opt-quote", nat(dnsmasq_options=('txt-record=a,"b',)), "unbalanced", True),
    ("opt-script", nat(dnsmasq_options=("dhcp-script=/tmp/x",)), "controls the dnsmasq", True),
    (
        "tftp-comma",
        nat(ips=(replace(IP, tftp_root="/srv/tftp,eth0"),)),
        "splits the dnsmasq directive",
        True,
    ),
    (
        "bootp-hash",
        nat(ips=(replace(IP, dhcp=DHCP(ranges=(RANGE,), bootp=Bootp("#x"))),)),
        "comment",
        True,
    ),
    ("fwd-dev-nl", nat(forward=Forward(dev="eth0\nx")), "control", True),
    ("mac-bad", nat(mac="zz:zz"), "not a MAC", False),
]


@pytest.mark.parametrize(
    ("net", "needle", "hostile"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_each_problem_is_found(net: Network, needle: str, hostile: bool) -> None:
    found = problems(net)
    match = [p for p in found if needle in str(p)]
    assert match, f"expected a problem with {needle!r}, got {[str(p) for p in found]}"
    assert all(p.element and p.hint for p in found), "every problem names the element and a fix"
    assert any(isinstance(p, HostileInput) for p in match) == hostile
    with pytest.raises(InvalidDefinition):
        validate(net)


def test_all_problems_are_listed_at_once() -> None:
    net = nat(name="a/b", bridge=Bridge("x" * 20), mtu=10)
    with pytest.raises(DefinitionProblems) as info:
        validate(net)
    assert len(info.value.problems) == 3
    text = str(info.value)
    assert "3 problems in network 'a/b'" in text
    assert "name:" in text and "bridge[name=" in text and "mtu:" in text


def test_hostile_problem_makes_the_summary_hostile() -> None:
    with pytest.raises(DefinitionProblems) as info:
        validate(nat(name="x\n", domain=Domain("a b")))
    assert info.value.code == "hostile-input"


def test_overlap_with_other_networks() -> None:
    other = nat(name="other", bridge=Bridge("virbr9"), ips=(IPDef("192.168.122.129", prefix=25),))
    found = [str(p) for p in problems(nat(), others=[other])]
    assert any("overlaps 192.168.122.128/25 of network 'other'" in f for f in found)
    # the same network redefined is not a conflict with itself
    assert problems(nat(), others=[nat()]) == []


def test_bridge_and_uuid_taken_by_other_network() -> None:
    uuid = "81ff0d90-c91e-6742-64da-4a736edb9a9b"
    other = nat(name="other", uuid=uuid, ips=(IPDef("10.9.0.1", prefix=24),))
    found = [str(p) for p in problems(nat(uuid=uuid.upper()), others=[other])]
    assert any("already in use by network 'other'" in f for f in found)
    assert any("already used by network 'other'" in f for f in found)


def test_names_with_quotes_and_spaces_are_accepted() -> None:
    assert problems(nat(name='it\'s my "net" 1')) == []


def test_template_bridge_name_is_checked_as_filled() -> None:
    assert problems(nat(bridge=Bridge("virbr%d"))) == []
    assert problems(nat(bridge=Bridge("averylongnamexx%d")))


# libvirt's parser accepts these, but its network driver refuses them when they are defined
# (networkValidate in src/network/bridge_driver.c), so virtnet refuses them too:
DEFINE_TIME_REFUSALS = {
    # <vlan> on a 'private' (macvtap) network: "<vlan> element specified for network ..., whose
    # type doesn't support vlan configuration"
    "8021Qbh-net": "does not support VLAN",
    # portgroups with a typeless <virtualport> and VLAN tags: the same refusal (badVlanUse)
    "openvswitch-net": "does not support VLAN",
    # "Unsupported <ip> element in network local with forward mode='passthrough'"
    "passthrough-pf": "<ip> is not supported",
    # "network ... has forward mode 'passthrough' but lists a device by PCI address"
    "passthrough-address-crash": "only supported with forward mode 'hostdev'",
}


def _corpus_ok_cases() -> list[str]:
    lines = (CORPUS / "xml2xml-cases.tsv").read_text().splitlines()[1:]
    return [ln.split("\t")[0] for ln in lines if ln.split("\t")[1] == "ok"]


@pytest.mark.parametrize("case", _corpus_ok_cases())
def test_corpus_ok_inputs_validate(case: str) -> None:
    libvirtxml = pytest.importorskip("virtnet.libvirtxml")
    net = libvirtxml.parse_network((CORPUS / "networkxml2xmlin" / f"{case}.xml").read_text())
    found = [str(p) for p in problems(net)]
    if case in DEFINE_TIME_REFUSALS:
        assert any(DEFINE_TIME_REFUSALS[case] in f for f in found), found
    else:
        assert found == []


@pytest.mark.parametrize(
    "case", sorted(p.stem for p in (CORPUS / "networkxml2confdata").glob("*.xml"))
)
def test_corpus_conf_inputs_validate(case: str) -> None:
    libvirtxml = pytest.importorskip("virtnet.libvirtxml")
    net = libvirtxml.parse_network((CORPUS / "networkxml2confdata" / f"{case}.xml").read_text())
    assert [str(p) for p in problems(net)] == []
