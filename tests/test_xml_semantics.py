"""libvirt's parse-time semantics and formatting rules beyond the corpus, and round trips.

Every formatted document is also validated against libvirt's own RelaxNG schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from virtnet.libvirtxml import format_network, parse_network
from virtnet.model.network import Forward, ForwardMode, Network

SCHEMAS = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "conformance"
    / "libvirt-9.0.0"
    / "schemas"
)
IP = "<ip address='192.168.70.1' netmask='255.255.255.0'/>"


@pytest.fixture(scope="module")
def schema() -> etree.RelaxNG:
    return etree.RelaxNG(file=str(SCHEMAS / "network.rng"))


def roundtrip(doc: str, *, inactive: bool = False) -> str:
    return format_network(parse_network(doc), inactive=inactive)


UUID = "81ff0d90-c91e-6742-64da-4a736edb9a9b"


def net(body: str, attrs: str = "") -> str:
    return f"<network{attrs}><name>n</name><uuid>{UUID}</uuid>{body}</network>"


KITCHEN_SINK = """<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'
    trustGuestRxFilters='yes' ipv6='yes'>
  <name>sink &amp; "co"</name>
  <uuid>81FF0D90C91E674264DA4A736EDB9A9B</uuid>
  <metadata>
    <a:info xmlns:a='urn:a'><a:owner team='net'>ops</a:owner></a:info>
    <plain>dropped: no namespace</plain>
    <a:again xmlns:a='urn:a'>dropped: duplicate namespace</a:again>
  </metadata>
  <forward mode='nat' dev='eth9'>
    <nat ipv6='yes'>
      <address start='203.0.113.10' end='203.0.113.20'/>
      <port start='1024' end='65000'/>
    </nat>
  </forward>
  <bridge name='vsink0' zone='trusted' stp='off' delay='2' macTableManager='libvirt'/>
  <mtu size='1400'/>
  <mac address='52:54:00:AB:CD:EF'/>
  <domain name='sink.test' localOnly='yes'/>
  <dns enable='yes' forwardPlainNames='no'>
    <forwarder addr='192.0.2.53'/>
    <forwarder domain='corp.test' addr='198.51.100.53'/>
    <forwarder domain='local.test'/>
    <txt name='info' value='hello world'/>
    <srv service='ldap' protocol='tcp' domain='sink.test' target='dc.sink.test' port='389'
         priority='1' weight='5'/>
    <host ip='192.168.70.5'><hostname>db</hostname><hostname>db2</hostname></host>
  </dns>
  <vlan trunk='yes'><tag id='10' nativeMode='untagged'/><tag id='20'/></vlan>
  <bandwidth><inbound average='1000' peak='2000' burst='512'/><outbound average='500'/></bandwidth>
  <port isolated='yes'/>
  <ip address='192.168.70.1' netmask='255.255.255.0' localPtr='yes'>
    <tftp root='/srv/tftp'/>
    <dhcp>
      <range start='192.168.70.100' end='192.168.70.199'><lease expiry='2' unit='hours'/></range>
      <range start='192.168.70.200' end='192.168.70.210'/>
      <host mac='52:54:00:00:00:AA' name='vm1' ip='192.168.70.10'><lease expiry='0'/></host>
      <host name='vm2' ip='192.168.70.11'/>
      <bootp file='pxelinux.0' server='192.168.70.2'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='2001:DB8:70::1' prefix='64'>
    <dhcp>
      <range start='2001:db8:70::100' end='2001:db8:70::1ff'/>
      <host id='0:3:0:1:52:54:0:0:0:aa' name='vm1' ip='2001:db8:70::10'/>
    </dhcp>
  </ip>
  <ip address='10.70.0.1' prefix='16'/>
  <route address='198.51.100.0' prefix='24' gateway='192.168.70.254' metric='5'/>
  <route family='ipv6' address='2001:db8:99::' prefix='48' gateway='2001:db8:70::fe'/>
  <portgroup name='engineering' default='yes' trustGuestRxFilters='no'>
    <vlan><tag id='42'/></vlan>
    <bandwidth><inbound average='100'/></bandwidth>
  </portgroup>
  <portgroup name='empty'/>
  <dnsmasq:options>
    <dnsmasq:option value='log-queries'/>
    <dnsmasq:option value="address=/x.test/'192.0.2.1'"/>
  </dnsmasq:options>
  <unknown-element whatever='ignored'/>
</network>
"""


def test_kitchen_sink_round_trip_is_stable_and_schema_valid(schema: etree.RelaxNG) -> None:
    net = parse_network(KITCHEN_SINK)
    xml = format_network(net)
    doc = etree.fromstring(xml.encode())
    assert schema.validate(doc), schema.error_log.last_error
    again = parse_network(xml)
    assert again == net
    assert format_network(again) == xml
    assert net.name == 'sink & "co"'
    assert net.uuid == "81ff0d90-c91e-6742-64da-4a736edb9a9b"
    assert net.mac == "52:54:00:ab:cd:ef"
    assert net.ips[1].address == "2001:db8:70::1"
    assert net.dnsmasq_options == ("log-queries", "address=/x.test/'192.0.2.1'")
    assert "unknown-element" not in xml


def test_kitchen_sink_element_order_matches_libvirt() -> None:
    xml = roundtrip(KITCHEN_SINK)
    order = [el.tag for el in etree.fromstring(xml.encode())]
    assert order == [
        "name", "uuid", "metadata", "forward", "bridge", "mtu", "mac",
        "domain", "dns", "vlan", "bandwidth", "port", "ip", "ip", "ip", "route", "route",
        "portgroup", "portgroup", "{http://libvirt.org/schemas/network/dnsmasq/1.0}options",
    ]  # fmt: skip
    assert (
        "<bridge name='vsink0' zone='trusted' stp='off' delay='2' macTableManager='libvirt'/>"
        in xml
    )
    assert "<forwarder domain='corp.test' addr='198.51.100.53'/>" in xml
    assert "<inbound average='1000' peak='2000' burst='512'/>" in xml


def test_metadata_keeps_one_element_per_namespace_only() -> None:
    xml = roundtrip(KITCHEN_SINK)
    meta = etree.fromstring(xml.encode()).find("metadata")
    assert meta is not None
    assert [etree.QName(c).localname for c in meta] == ["info"]
    assert "    <metadata>\n" not in xml and "  <metadata>\n    <a:info" in xml
    assert '      <a:owner team="net">ops</a:owner>\n' in xml


def test_metadata_without_namespaced_children_is_dropped() -> None:
    assert parse_network(net("<metadata><plain/></metadata>")).metadata is None
    assert parse_network(net("<metadata>  </metadata>")).metadata is None


def test_network_mac_lowercased_dhcp_host_mac_kept_as_written() -> None:
    doc = net(
        "<mac address='52:54:00:0A:B:C'/><ip address='10.1.1.1' prefix='24'><dhcp>"
        "<host mac='52:54:00:AA:BB:CC' ip='10.1.1.5'/></dhcp></ip>"
    )
    parsed = parse_network(doc)
    assert parsed.mac == "52:54:00:0a:0b:0c"
    assert parsed.ips[0].dhcp is not None
    assert parsed.ips[0].dhcp.hosts[0].mac == "52:54:00:AA:BB:CC"


def test_forward_dev_and_interface_pool_are_one_list() -> None:
    by_dev = parse_network(net("<forward mode='route' dev='eth1'/>" + IP))
    assert by_dev.forward is not None
    assert by_dev.forward.dev == "eth1" and by_dev.forward.interfaces == ("eth1",)
    by_pool = parse_network(
        net("<forward mode='vepa'><interface dev='e1'/><interface dev='e2'/></forward>")
    )
    assert by_pool.forward is not None
    assert by_pool.forward.dev == "e1" and by_pool.forward.interfaces == ("e1", "e2")
    xml = format_network(by_pool)
    assert "<forward dev='e1' mode='vepa'>" in xml


def test_forward_without_mode_is_nat_and_mode_none_is_no_forward() -> None:
    bare = parse_network(net("<forward/>" + IP))
    assert bare.forward is not None
    assert bare.mode is ForwardMode.NAT and not bare.forward.mode_given
    assert "<forward mode='nat'/>" in format_network(bare)
    none = parse_network(net("<forward mode='none'/>" + IP))
    assert none.forward is None and none.mode is ForwardMode.ISOLATED
    assert "<forward" not in format_network(none)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (IP, "<bridge stp='on' delay='0'/>"),
        ("<bridge name='x'/>" + IP, "<bridge name='x' stp='on' delay='0'/>"),
        ("<forward mode='bridge'/><bridge name='br0'/>", "<bridge name='br0'/>"),
        ("<forward mode='private' dev='eth0'/>", None),
    ],
)
def test_bridge_defaults_only_for_bridge_owning_modes(body: str, expected: str | None) -> None:
    xml = roundtrip(net(body))
    if expected is None:
        assert "<bridge" not in xml
    else:
        assert f"  {expected}\n" in xml


def test_attribute_normalisations() -> None:
    xml = roundtrip(
        net(
            "<domain name='d'/><ip address='10.2.0.1' prefix='0'/>"
            "<ip address='10.3.0.1' netmask='255.255.0.0'><dhcp>"
            "<range start='10.3.0.10' end='10.3.0.20'><lease expiry='30'/></range></dhcp></ip>",
            attrs=" ipv6='no' trustGuestRxFilters='no'",
        )
    )
    assert "<network trustGuestRxFilters='no'>" in xml  # ipv6='no' is libvirt's default
    assert "<ip address='10.2.0.1'>" in xml  # prefix='0' means "not given"
    assert "<lease expiry='30' unit='minutes'/>" in xml


def test_vlan_rules() -> None:
    single_no = parse_network(net("<vlan trunk='no'><tag id='5'/></vlan>"))
    assert single_no.vlan is not None and single_no.vlan.trunk is None
    assert "<vlan>\n    <tag id='5'/>" in format_network(single_no)
    implied = parse_network(net("<vlan><tag id='5'/><tag id='6'/></vlan>"))
    assert "<vlan trunk='yes'>" in format_network(implied)


def test_virtualport_values_printed_as_libvirt_does() -> None:
    doc = net(
        "<forward mode='bridge'/><bridge name='ovsbr'/><virtualport type='802.1Qbg'>"
        "<parameters instanceid='09B11C53-8B5C-4EEB-8F00-D84EAA0AAA4F' typeidversion='0x2'"
        " typeid='010' managerid='11'/></virtualport>"
    )
    xml = roundtrip(doc)
    assert (
        "<parameters managerid='11' typeid='8' typeidversion='2' "
        "instanceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/>"
    ) in xml
    ovs = roundtrip(
        net(
            "<forward mode='bridge'/><bridge name='ovsbr'/><virtualport type='openvswitch'>"
            "<parameters profileid='p' interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/>"
            "</virtualport>"
        )
    )
    assert "<parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f' profileid='p'/>" in ovs


def test_pci_addresses_and_hostdev_managed_default() -> None:
    xml = roundtrip(
        net(
            "<forward mode='hostdev'>"
            "<address type='pci' bus='3' slot='0x1' function='2'/></forward>"
        )
    )
    assert "<forward mode='hostdev' managed='no'>" in xml
    assert "<address type='pci' domain='0x0000' bus='0x03' slot='0x01' function='0x2'/>" in xml


def test_inactive_hides_the_runtime_interface_pool_of_a_pf() -> None:
    # At start libvirt fills the pool from the PF's virtual functions; the persistent
    # (inactive) definition keeps only the <pf>.
    running = Network(
        name="pt",
        forward=Forward(mode=ForwardMode.PASSTHROUGH, pfs=("eth0",), interfaces=("vf0", "vf1")),
    )
    active = format_network(running)
    inactive = format_network(running, inactive=True)
    assert "<interface dev='vf0'/>" in active and "<pf dev='eth0'/>" in active
    assert "<interface" not in inactive and "<pf dev='eth0'/>" in inactive
    assert "<forward mode='passthrough'>" in active  # no dev= when a pf is present


def test_pf_is_ignored_when_an_interface_pool_is_given() -> None:
    parsed = parse_network(
        net("<forward mode='passthrough'><interface dev='e1'/><pf dev='p'/></forward>")
    )
    assert parsed.forward is not None and parsed.forward.pfs == ()


def test_srv_zero_values_and_empty_dhcp_are_not_printed() -> None:
    xml = roundtrip(
        net(
            "<dns><srv service='s' protocol='udp' target='t' priority='0' weight='0'/></dns>"
            "<ip address='10.9.0.1' prefix='24'><dhcp/></ip>"
            "<ip family='ipv6' address='2001:db8::1' prefix='64'>"
            "<dhcp><bootp file='f'/></dhcp></ip>"
        )
    )
    assert "<srv service='s' protocol='udp' target='t'/>" in xml
    assert "<dhcp" not in xml


def test_domain_without_name_is_dropped() -> None:
    assert parse_network(net("<domain localOnly='yes'/>")).domain is None


def test_unknown_elements_and_attributes_are_ignored() -> None:
    doc = net("<frobnicate/><bridge name='b' colour='red'/>" + IP, attrs=" connections='3'")
    assert roundtrip(doc) == roundtrip(net("<bridge name='b'/>" + IP))


def test_escaping_survives_round_trip(schema: etree.RelaxNG) -> None:
    doc = net("<dns><txt name='t' value=\"it's &amp; &lt;x&gt; &quot;\"/></dns>" + IP)
    xml = roundtrip(doc)
    parsed = parse_network(xml)
    assert parsed.dns is not None and parsed.dns.txts[0].value == "it's & <x> \""
    assert schema.validate(etree.fromstring(xml.encode()))


def test_newer_libvirt_elements_round_trip() -> None:
    # <title>, <description>, <forwarder port=...> and <domain register=...> came after
    # libvirt 9.0 (they are not in its schema); virtnet reads and writes them all the same.
    doc = net(
        "<title>Lab</title><description>a &lt;b&gt; &amp; 'c' \"d\"</description>"
        "<domain name='lab.test' localOnly='yes' register='yes'/>"
        "<dns><forwarder addr='192.0.2.53' port='5353'/></dns>" + IP
    )
    parsed = parse_network(doc)
    assert parsed.title == "Lab"
    assert parsed.description == "a <b> & 'c' \"d\""
    assert parsed.dns is not None and parsed.dns.forwarders[0].port == 5353
    xml = format_network(parsed)
    assert f"<uuid>{UUID}</uuid>\n  <title>Lab</title>\n  <description>" in xml
    assert "<domain name='lab.test' localOnly='yes' register='yes'/>" in xml
    assert "<forwarder addr='192.0.2.53' port='5353'/>" in xml
    assert format_network(parse_network(xml)) == xml


def test_every_corpus_output_of_ours_is_schema_valid(schema: etree.RelaxNG) -> None:
    corpus = SCHEMAS.parent / "networkxml2xmlin"
    checked = 0
    for path in sorted(corpus.glob("*.xml")):
        try:
            net_ = parse_network(path.read_text())
        except Exception:  # the parse-error cases
            continue
        doc = etree.fromstring(format_network(net_).encode())
        assert schema.validate(doc), (path.name, schema.error_log.last_error)
        checked += 1
    assert checked >= 40


def test_empty_attributes_libvirt_reads_by_xpath_count_as_absent() -> None:
    parsed = parse_network(
        net(
            "<forward mode='' dev=''/><bridge name='' stp='' delay=''/><mtu size=''/>"
            "<ip family='' address='10.4.0.1' prefix='24'/>"
            "<route family='' address='10.5.0.0' prefix='16' gateway='10.4.0.2' metric=''/>"
        )
    )
    assert parsed.forward is not None
    assert parsed.mode is ForwardMode.NAT and parsed.forward.dev is None
    assert parsed.bridge is not None and parsed.bridge.stp is None and parsed.bridge.delay is None
    assert parsed.mtu is None
    assert parsed.ips[0].family is None
    assert parsed.routes[0].metric is None


def test_format_is_robust_for_networks_built_in_code() -> None:
    from virtnet.errors import InvalidDefinition
    from virtnet.model.network import Bridge, VirtualPort

    built = Network(
        name="code",
        description="line one\nline two",
        forward=Forward(mode=ForwardMode.BRIDGE),
        bridge=Bridge(name="br0"),
        virtualport=VirtualPort(
            type="openvswitch", parameters=(("profileid", "p"), ("interfaceid", UUID))
        ),
    )
    xml = format_network(built)
    assert f"<parameters interfaceid='{UUID}' profileid='p'/>" in xml
    assert "<description>line one\nline two</description>" in xml
    assert parse_network(xml).description == "line one\nline two"
    tricky = Network(
        name="t",
        forward=Forward(mode=ForwardMode.NAT, dev="eth0\nx"),
        ips=parse_network(net(IP)).ips,
    )
    assert "dev='eth0&#10;x'" in format_network(tricky)
    broken = Network(name="m", metadata="<unclosed>")
    with pytest.raises(InvalidDefinition) as info:
        format_network(broken)
    assert info.value.element == "network/metadata"


def test_ipv6_addresses_printed_as_glibc_inet_ntop() -> None:
    parsed = parse_network(
        net(
            "<ip family='ipv6' address='::FFFF:192.168.80.1' prefix='120'>"
            "<dhcp><range start='::ffff:c0a8:5002' end='::ffff:192.168.80.9'/></dhcp></ip>"
            "<ip family='ipv6' address='2001:DB8:0:0:1:0:0:1' prefix='64'/>"
        )
    )
    assert parsed.ips[0].address == "::ffff:192.168.80.1"
    assert parsed.ips[0].dhcp is not None
    assert parsed.ips[0].dhcp.ranges[0].start == "::ffff:192.168.80.2"
    assert parsed.ips[1].address == "2001:db8::1:0:0:1"


def test_scoped_ipv6_address_is_refused() -> None:
    from virtnet.errors import InvalidDefinition

    with pytest.raises(InvalidDefinition) as info:
        parse_network(net("<ip family='ipv6' address='fe80::1%eth0' prefix='64'/>"))
    assert info.value.element == "network/ip"
