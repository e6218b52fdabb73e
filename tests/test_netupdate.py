"""net-update semantics (libvirt's virNetworkDefUpdateSection), pure: every section, every
command, and the updates libvirt refuses."""

from __future__ import annotations

import pytest

from virtnet import netupdate
from virtnet.errors import Conflict, HostileInput, InvalidDefinition, NotFound, NotSupported
from virtnet.model.network import (
    DHCP,
    DNS,
    DHCPHost,
    DHCPRange,
    DNSHost,
    DNSSrv,
    DNSTxt,
    Forward,
    ForwardMode,
    IPDef,
    Lease,
    Network,
    PortGroup,
)

V4 = IPDef(
    address="192.168.122.1",
    prefix=24,
    dhcp=DHCP(
        ranges=(DHCPRange("192.168.122.2", "192.168.122.254"),),
        hosts=(DHCPHost(ip="192.168.122.10", mac="52:54:00:00:00:10", name="alpha"),),
    ),
)
V6 = IPDef(address="2001:db8::1", family="ipv6", prefix=64)
NET = Network(
    name="n1",
    forward=Forward(mode=ForwardMode.NAT),
    ips=(V4, V6),
    dns=DNS(
        hosts=(DNSHost(ip="192.168.122.50", hostnames=("web", "www")),),
        txts=(DNSTxt(name="k1", value="v1"),),
        srvs=(DNSSrv(service="ldap", protocol="tcp", domain="example.com", target="ldap1",
                     port=389),),
    ),
    portgroups=(PortGroup(name="pg1", default=True),),
)
PASSTHROUGH = Network(
    name="pt",
    forward=Forward(mode=ForwardMode.PASSTHROUGH, interfaces=("eth1", "eth2")),
)


def up(net: Network, command: str, section: str, xml: str, parent: int = -1) -> Network:
    return netupdate.update(net, command, section, xml, parent_index=parent)


# -- ip-dhcp-host ------------------------------------------------------------------------------

def test_dhcp_host_add_last_and_first() -> None:
    new = up(NET, "add", "ip-dhcp-host",
             "<host mac='52:54:00:AA:BB:CC' name='beta' ip='192.168.122.11'/>")
    hosts = new.ips[0].dhcp.hosts  # type: ignore[union-attr]
    assert hosts[-1] == DHCPHost(ip="192.168.122.11", mac="52:54:00:aa:bb:cc", name="beta")
    assert len(hosts) == 2
    first = up(NET, "add-first", "ip-dhcp-host", "<host name='gamma' ip='192.168.122.12'/>")
    assert first.ips[0].dhcp.hosts[0].name == "gamma"  # type: ignore[union-attr]
    assert NET.ips[0].dhcp.hosts == V4.dhcp.hosts  # type: ignore[union-attr]  # input untouched


def test_dhcp_host_add_with_lease() -> None:
    new = up(NET, "add-last", "ip-dhcp-host",
             "<host mac='52:54:00:00:00:20' ip='192.168.122.20'>"
             "<lease expiry='2' unit='hours'/></host>")
    assert new.ips[0].dhcp.hosts[-1].lease == Lease(2, "hours")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("xml", "error", "text"),
    [
        ("<host name='beta'/>", InvalidDefinition, "Missing IP address"),
        ("<host ip='192.168.122.30'/>", InvalidDefinition, "must have mac or name"),
        ("<host mac='52:54:00:00:00:10' ip='192.168.122.31'/>", Conflict, "existing dhcp host"),
        ("<host mac='52:54:00:00:00:31' ip='192.168.122.10'/>", Conflict, "existing dhcp host"),
        ("<host name='alpha' ip='192.168.122.32' mac='52:54:00:00:00:32'/>", Conflict,
         "existing dhcp host"),
        ("<host mac='01:00:5e:00:00:01' ip='192.168.122.33'/>", InvalidDefinition, "multicast"),
        ("<host mac='zz' ip='192.168.122.33'/>", InvalidDefinition, "Cannot parse MAC"),
        ("<host mac='52:54:00:00:00:33' ip='300.1.1.1'/>", InvalidDefinition, "Invalid IP"),
        ("<host name='9abc' ip='192.168.122.34'/>", InvalidDefinition, "Cannot use host name"),
        ("<range start='192.168.122.2' end='192.168.122.3'/>", InvalidDefinition,
         "unexpected element <range>, expecting <host>"),
        ("<host mac='52:54:00:00:00:35' ip='192.168.122.35'><lease expiry='x'/></host>",
         InvalidDefinition, "lease expiry"),
    ],
)
def test_dhcp_host_add_refused(xml: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        up(NET, "add", "ip-dhcp-host", xml)


def test_dhcp_host_ipv6_rules() -> None:
    with pytest.raises(InvalidDefinition, match="MAC address .* IPv6"):
        up(NET, "add", "ip-dhcp-host", "<host mac='52:54:00:00:00:01' ip='2001:db8::5'/>", 1)
    with pytest.raises(InvalidDefinition, match="must have id or name"):
        up(NET, "add", "ip-dhcp-host", "<host ip='2001:db8::5'/>", 1)
    with pytest.raises(InvalidDefinition, match="Invalid character 'g'"):
        up(NET, "add", "ip-dhcp-host", "<host id='0:1:g' ip='2001:db8::5'/>", 1)
    new = up(NET, "add", "ip-dhcp-host", "<host id='0:1:0:1:aa' ip='2001:db8::5'/>", 1)
    assert new.ips[1].dhcp.hosts == (DHCPHost(ip="2001:db8::5", id="0:1:0:1:aa"),)  # type: ignore[union-attr]


def test_dhcp_host_family_and_single_dhcp_ip() -> None:
    with pytest.raises(InvalidDefinition, match="address family of a host entry IP"):
        up(NET, "add", "ip-dhcp-host", "<host name='v6' ip='2001:db8::9'/>", 0)
    with pytest.raises(InvalidDefinition, match="address family of a host entry IP"):
        up(NET, "add", "ip-dhcp-host", "<host id='0:1' ip='192.168.122.9'/>", 1)
    # A second IPv4 <ip> may not serve DHCP too (libvirt: one per family).
    two = Network(name="two", ips=(V4, IPDef(address="10.1.0.1", prefix=24)))
    with pytest.raises(InvalidDefinition, match="single IPv4 address on each network"):
        up(two, "add", "ip-dhcp-host", "<host mac='52:54:00:00:00:09' ip='10.1.0.9'/>", 1)
    with pytest.raises(InvalidDefinition, match="single IPv4 address on each network"):
        up(two, "add", "ip-dhcp-range", "<range start='10.1.0.10' end='10.1.0.20'/>", 1)
    # Deleting is always allowed to look; modifying in the DHCP <ip> works.
    assert up(two, "modify", "ip-dhcp-host", "<host mac='52:54:00:00:00:10' "
              "ip='192.168.122.11'/>").ips[0].dhcp.hosts[0].ip == "192.168.122.11"  # type: ignore[union-attr]


def test_dhcp_host_parent_index() -> None:
    with pytest.raises(NotFound, match="no <ip> element found at index 5"):
        up(NET, "add", "ip-dhcp-host", "<host name='x' ip='192.168.122.9'/>", 5)
    bare = Network(name="bare")
    with pytest.raises(NotFound, match="no <ip> element found in network 'bare'"):
        up(bare, "add", "ip-dhcp-host", "<host name='x' ip='192.168.122.9'/>")
    # Without DHCP anywhere, libvirt picks the first IPv4 <ip> and creates <dhcp> there.
    plain = Network(name="p", ips=(V6, IPDef(address="10.0.0.1", prefix=24)))
    new = up(plain, "add", "ip-dhcp-host", "<host mac='52:54:00:00:00:01' ip='10.0.0.5'/>")
    assert new.ips[1].dhcp == DHCP(hosts=(DHCPHost(ip="10.0.0.5", mac="52:54:00:00:00:01"),))


def test_dhcp_host_modify_matches_by_mac_ip_or_name() -> None:
    by_mac = up(NET, "modify", "ip-dhcp-host",
                "<host mac='52:54:00:00:00:10' name='alpha2' ip='192.168.122.99'/>")
    assert by_mac.ips[0].dhcp.hosts == (  # type: ignore[union-attr]
        DHCPHost(ip="192.168.122.99", mac="52:54:00:00:00:10", name="alpha2"),)
    by_name = up(NET, "modify", "ip-dhcp-host", "<host name='alpha' ip='192.168.122.77'/>")
    assert by_name.ips[0].dhcp.hosts[0].ip == "192.168.122.77"  # type: ignore[union-attr]
    assert by_name.ips[0].dhcp.hosts[0].mac is None  # type: ignore[union-attr]
    with pytest.raises(NotFound, match="couldn't locate an existing dhcp host entry"):
        up(NET, "modify", "ip-dhcp-host",
           "<host mac='52:54:00:00:00:77' name='zed' ip='192.168.122.78'/>")
    with pytest.raises(InvalidDefinition, match="Missing IP address"):
        up(NET, "modify", "ip-dhcp-host", "<host mac='52:54:00:00:00:10'/>")


def test_dhcp_host_delete() -> None:
    for xml in ("<host mac='52:54:00:00:00:10'/>", "<host ip='192.168.122.10'/>",
                "<host name='alpha'/>",
                "<host mac='52:54:00:00:00:10' name='alpha' ip='192.168.122.10'/>"):
        assert up(NET, "delete", "ip-dhcp-host", xml).ips[0].dhcp.hosts == ()  # type: ignore[union-attr]
    # Every attribute given must match.
    with pytest.raises(NotFound, match="couldn't locate a matching dhcp host"):
        up(NET, "delete", "ip-dhcp-host", "<host mac='52:54:00:00:00:10' ip='192.168.122.11'/>")
    with pytest.raises(InvalidDefinition, match="At least one of name, mac, or ip"):
        up(NET, "delete", "ip-dhcp-host", "<host/>")


# -- ip-dhcp-range -----------------------------------------------------------------------------

def test_dhcp_range_add_delete() -> None:
    small = up(NET, "delete", "ip-dhcp-range",
               "<range start='192.168.122.2' end='192.168.122.254'/>")
    assert small.ips[0].dhcp.ranges == ()  # type: ignore[union-attr]
    new = up(small, "add", "ip-dhcp-range",
             "<range start='192.168.122.100' end='192.168.122.199'>"
             "<lease expiry='1' unit='hours'/></range>")
    new = up(new, "add-first", "ip-dhcp-range",
             "<range start='192.168.122.2' end='192.168.122.9'/>")
    assert [(r.start, r.end) for r in new.ips[0].dhcp.ranges] == [  # type: ignore[union-attr]
        ("192.168.122.2", "192.168.122.9"), ("192.168.122.100", "192.168.122.199")]
    assert new.ips[0].dhcp.ranges[1].lease == Lease(1, "hours")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("command", "xml", "error", "text"),
    [
        ("add", "<range start='192.168.122.2' end='192.168.122.254'/>", Conflict,
         "existing dhcp range"),
        ("add", "<range start='192.168.122.2' end='192.168.123.5'/>", InvalidDefinition,
         "not entirely within network 192.168.122.0/24"),
        ("add", "<range start='10.0.0.2' end='10.0.0.5'/>", InvalidDefinition,
         "not entirely within"),
        ("add", "<range start='192.168.122.0' end='192.168.122.5'/>", InvalidDefinition,
         "network address"),
        ("add", "<range start='192.168.122.5' end='192.168.122.255'/>", InvalidDefinition,
         "broadcast address"),
        ("add", "<range start='192.168.122.50' end='192.168.122.40'/>", InvalidDefinition,
         "reversed"),
        ("add", "<range start='192.168.122.5'/>", InvalidDefinition, "Missing 'end'"),
        ("add", "<range end='192.168.122.5'/>", InvalidDefinition, "Missing 'start'"),
        ("add", "<range start='2001:db8::5' end='192.168.122.5'/>", InvalidDefinition,
         "mismatch of address family"),
        ("modify", "<range start='192.168.122.2' end='192.168.122.254'/>", NotSupported,
         "cannot be modified"),
        ("delete", "<range start='192.168.122.3' end='192.168.122.254'/>", NotFound,
         "couldn't locate a matching dhcp range"),
    ],
)
def test_dhcp_range_refused(command: str, xml: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        up(NET, command, "ip-dhcp-range", xml)


def test_dhcp_range_ipv6_size_limit() -> None:
    with pytest.raises(InvalidDefinition, match="too large"):
        up(NET, "add", "ip-dhcp-range", "<range start='2001:db8::10' end='2001:db8::1:0:10'/>", 1)
    new = up(NET, "add", "ip-dhcp-range", "<range start='2001:db8::10' end='2001:db8::ff'/>", 1)
    assert new.ips[1].dhcp.ranges == (DHCPRange("2001:db8::10", "2001:db8::ff"),)  # type: ignore[union-attr]


# -- dns-host ----------------------------------------------------------------------------------

def test_dns_host_add_delete() -> None:
    new = up(NET, "add", "dns-host",
             "<host ip='192.168.122.60'><hostname>db</hostname><hostname>sql</hostname></host>")
    assert new.dns.hosts[-1] == DNSHost(ip="192.168.122.60", hostnames=("db", "sql"))  # type: ignore[union-attr]
    # The same name on another address is legitimate.
    again = up(NET, "add-first", "dns-host", "<host ip='192.168.122.61'><hostname>web"
               "</hostname></host>")
    assert again.dns.hosts[0].ip == "192.168.122.61"  # type: ignore[union-attr]
    # Delete by address or by name.
    assert up(NET, "delete", "dns-host", "<host ip='192.168.122.50'/>").dns.hosts == ()  # type: ignore[union-attr]
    assert up(NET, "delete", "dns-host",
              "<host><hostname>www</hostname></host>").dns.hosts == ()  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="multiple matching DNS HOST"):
        up(again, "delete", "dns-host", "<host><hostname>web</hostname></host>")


@pytest.mark.parametrize(
    ("command", "xml", "error", "text"),
    [
        ("add", "<host ip='192.168.122.50'><hostname>other</hostname></host>", Conflict,
         "already at least one DNS HOST"),
        ("add", "<host ip='192.168.122.70'/>", InvalidDefinition, "Missing hostname"),
        ("add", "<host><hostname>x</hostname></host>", InvalidDefinition, "Missing IP"),
        ("add", "<host ip='nope'><hostname>x</hostname></host>", InvalidDefinition,
         "Invalid IP"),
        ("add", "<host ip='192.168.122.71'><hostname> </hostname></host>", InvalidDefinition,
         "Missing hostname"),
        ("modify", "<host ip='192.168.122.50'><hostname>x</hostname></host>", NotSupported,
         "cannot be modified"),
        ("delete", "<host ip='192.168.122.99'/>", NotFound, "couldn't locate a matching DNS"),
        ("delete", "<host/>", InvalidDefinition, "Missing ip and hostname"),
        ("add", "<txt name='a' value='b'/>", InvalidDefinition, "expecting <host>"),
    ],
)
def test_dns_host_refused(command: str, xml: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        up(NET, command, "dns-host", xml)


# -- dns-txt -----------------------------------------------------------------------------------

def test_dns_txt() -> None:
    new = up(NET, "add", "dns-txt", "<txt name='k2' value='v 2'/>")
    assert new.dns.txts == (DNSTxt("k1", "v1"), DNSTxt("k2", "v 2"))  # type: ignore[union-attr]
    assert up(NET, "add-first", "dns-txt", "<txt name='k0' value='x'/>").dns.txts[0].name == "k0"  # type: ignore[union-attr]
    assert up(NET, "delete", "dns-txt", "<txt name='k1'/>").dns.txts == ()  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="already a DNS TXT record with name 'k1'"):
        up(NET, "add", "dns-txt", "<txt name='k1' value='other'/>")
    with pytest.raises(NotFound, match="couldn't locate a matching DNS TXT"):
        up(NET, "delete", "dns-txt", "<txt name='nope'/>")
    with pytest.raises(InvalidDefinition, match="missing required value"):
        up(NET, "add", "dns-txt", "<txt name='k3'/>")
    with pytest.raises(InvalidDefinition, match="missing required name"):
        up(NET, "add", "dns-txt", "<txt value='x'/>")
    with pytest.raises(InvalidDefinition, match="prohibited character"):
        up(NET, "add", "dns-txt", "<txt name='a b' value='x'/>")
    with pytest.raises(NotSupported, match="cannot be modified"):
        up(NET, "modify", "dns-txt", "<txt name='k1' value='x'/>")


# -- dns-srv -----------------------------------------------------------------------------------

def test_dns_srv() -> None:
    new = up(NET, "add", "dns-srv",
             "<srv service='http' protocol='tcp' target='web' port='80' priority='1' "
             "weight='5'/>")
    assert new.dns.srvs[-1] == DNSSrv("http", "tcp", target="web", port=80, priority=1,  # type: ignore[union-attr]
                                      weight=5)
    assert up(NET, "delete", "dns-srv", "<srv service='ldap'/>").dns.srvs == ()  # type: ignore[union-attr]
    assert up(NET, "delete", "dns-srv",
              "<srv service='ldap' protocol='tcp' domain='example.com'/>").dns.srvs == ()  # type: ignore[union-attr]
    star = up(NET, "add", "dns-srv", "<srv service='_any*' protocol='tcp'/>")
    assert star.dns.srvs[-1].service == "_any*"  # type: ignore[union-attr]
    two = up(NET, "add", "dns-srv", "<srv service='ldap' protocol='udp'/>")
    with pytest.raises(Conflict, match="multiple DNS SRV records"):
        up(two, "delete", "dns-srv", "<srv service='ldap'/>")


@pytest.mark.parametrize(
    ("command", "xml", "error", "text"),
    [
        ("add", "<srv service='ldap' protocol='tcp' domain='example.com' target='ldap1'/>",
         Conflict, "already at least one DNS SRV"),
        ("add", "<srv protocol='tcp'/>", InvalidDefinition, "missing required service"),
        ("add", "<srv service='x'/>", InvalidDefinition, "missing required protocol"),
        ("add", f"<srv service='{'s' * 483}' protocol='tcp'/>", InvalidDefinition,
         "too long, limit is 482 bytes"),
        ("add", "<srv service='a b' protocol='tcp'/>", InvalidDefinition, "invalid character"),
        ("add", "<srv service='x' protocol='tcp' port='80'/>", InvalidDefinition,
         "port attribute not permitted without target"),
        ("add", "<srv service='x' protocol='tcp' weight='1'/>", InvalidDefinition,
         "weight attribute not permitted without target"),
        ("add", "<srv service='x' protocol='tcp' target='t' port='70000'/>", InvalidDefinition,
         "invalid DNS SRV port"),
        ("add", "<srv service='x' protocol='tcp' target='t' port='0'/>", InvalidDefinition,
         "invalid DNS SRV port"),
        ("add", "<srv service='x' protocol='t.p'/>", InvalidDefinition,
         "invalid character in protocol"),
        ("modify", "<srv service='ldap' protocol='tcp'/>", NotSupported, "cannot be modified"),
        ("delete", "<srv service='nope'/>", NotFound, "couldn't locate a matching DNS SRV"),
    ],
)
def test_dns_srv_refused(command: str, xml: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        up(NET, command, "dns-srv", xml)


# -- portgroup ---------------------------------------------------------------------------------

def test_portgroup() -> None:
    new = up(NET, "add", "portgroup", "<portgroup name='pg2'><vlan><tag id='42'/></vlan>"
             "</portgroup>")
    assert [g.name for g in new.portgroups] == ["pg1", "pg2"]
    assert new.portgroups[1].vlan is not None and new.portgroups[1].vlan.tags[0].id == 42
    first = up(NET, "add-first", "portgroup", "<portgroup name='pg0'/>")
    assert [g.name for g in first.portgroups] == ["pg0", "pg1"]
    mod = up(NET, "modify", "portgroup", "<portgroup name='pg1' default='no'/>")
    assert [g.name for g in mod.portgroups] == ["pg1"] and not mod.portgroups[0].default
    assert up(NET, "delete", "portgroup", "<portgroup name='pg1'/>").portgroups == ()
    # Making another one default while pg1 is: refused; after pg1 stops being default: fine.
    with pytest.raises(Conflict, match="already set as the default"):
        up(NET, "add", "portgroup", "<portgroup name='pg3' default='yes'/>")
    ok = up(mod, "add", "portgroup", "<portgroup name='pg3' default='yes'/>")
    assert ok.portgroups[1].default is True
    # Re-stating the default one as default is fine.
    assert up(NET, "modify", "portgroup", "<portgroup name='pg1' default='yes'/>") == NET


@pytest.mark.parametrize(
    ("command", "xml", "error", "text"),
    [
        ("add", "<portgroup name='pg1'/>", Conflict, "existing portgroup entry"),
        ("modify", "<portgroup name='nope'/>", NotFound, "couldn't find a portgroup"),
        ("delete", "<portgroup name='nope'/>", NotFound, "couldn't find a portgroup"),
        ("add", "<portgroup/>", InvalidDefinition, "missing name attribute"),
        ("add", "<interface dev='x'/>", InvalidDefinition, "expecting <portgroup>"),
    ],
)
def test_portgroup_refused(command: str, xml: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        up(NET, command, "portgroup", xml)


# -- forward-interface -------------------------------------------------------------------------

def test_forward_interface() -> None:
    new = up(PASSTHROUGH, "add", "forward-interface", "<interface dev='eth3'/>")
    assert new.forward.interfaces == ("eth1", "eth2", "eth3")  # type: ignore[union-attr]
    first = up(PASSTHROUGH, "add-first", "forward-interface", "<interface dev='eth0'/>")
    assert first.forward.interfaces[0] == "eth0"  # type: ignore[union-attr]
    gone = up(PASSTHROUGH, "delete", "forward-interface", "<interface dev='eth1'/>")
    assert gone.forward.interfaces == ("eth2",)  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="existing interface entry"):
        up(PASSTHROUGH, "add", "forward-interface", "<interface dev='eth1'/>")
    with pytest.raises(NotFound, match="couldn't find an interface entry"):
        up(PASSTHROUGH, "delete", "forward-interface", "<interface dev='eth9'/>")
    with pytest.raises(InvalidDefinition, match="missing dev attribute"):
        up(PASSTHROUGH, "add", "forward-interface", "<interface/>")
    with pytest.raises(NotSupported, match="cannot be modified"):
        up(PASSTHROUGH, "modify", "forward-interface", "<interface dev='eth1'/>")
    with pytest.raises(NotSupported, match="no <forward> element"):
        up(Network(name="iso"), "add", "forward-interface", "<interface dev='eth1'/>")


# -- general -----------------------------------------------------------------------------------

def test_unknown_and_unsupported() -> None:
    with pytest.raises(InvalidDefinition, match="unknown net-update command"):
        up(NET, "replace", "dns-txt", "<txt name='a' value='b'/>")
    with pytest.raises(InvalidDefinition, match="unknown net-update section"):
        up(NET, "add", "dns-mx", "<mx/>")
    with pytest.raises(NotSupported, match="can't update 'bridge' section"):
        up(NET, "modify", "bridge", "<bridge name='virbr9'/>")
    with pytest.raises(InvalidDefinition, match="not well-formed"):
        up(NET, "add", "dns-txt", "<txt name='a' value='b'>")
    with pytest.raises(HostileInput):
        up(NET, "add", "dns-txt",
           "<!DOCTYPE x [<!ENTITY e 'v'>]><txt name='a' value='&e;'/>")


def test_live_effects() -> None:
    assert netupdate.live_effect("ip-dhcp-host") is netupdate.LiveEffect.DHCP_HOSTS
    assert netupdate.live_effect("dns-txt") is netupdate.LiveEffect.DNSMASQ
    assert netupdate.live_effect("portgroup") is netupdate.LiveEffect.NONE
    assert set(netupdate.SECTIONS) == {
        "ip-dhcp-host", "ip-dhcp-range", "dns-host", "dns-txt", "dns-srv", "portgroup",
        "forward-interface"}
