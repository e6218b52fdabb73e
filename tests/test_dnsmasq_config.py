"""dnsmasq configuration rendering beyond the corpus: each branch of libvirt's generator."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from virtnet.dnsmasq.config import (
    DnsmasqPaths,
    escape_name,
    ptr_domain,
    render_addnhosts,
    render_conf,
    render_hostsfile,
)
from virtnet.errors import HostileInput, InvalidDefinition
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
    Network,
)

STATE = Path("/var/lib/virtnet")


def nat(**kw: object) -> Network:
    base = Network(
        name="default",
        forward=Forward(mode=ForwardMode.NAT),
        bridge=Bridge(name="virbr0"),
        ips=(
            IPDef(
                address="192.168.122.1",
                prefix=24,
                dhcp=DHCP(ranges=(DHCPRange("192.168.122.2", "192.168.122.254"),)),
            ),
        ),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def conf(net: Network) -> list[str]:
    text = render_conf(net, DnsmasqPaths.for_network(STATE, net.name))
    assert text is not None
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_paths_live_in_state_dir() -> None:
    p = DnsmasqPaths.for_network(STATE, "default")
    assert p.conf == STATE / "dnsmasq" / "default.conf"
    assert p.hostsfile.name == "default.hostsfile"
    assert p.addnhosts.name == "default.addnhosts"
    assert p.leasefile.name == "default.leases"
    assert {p.pidfile.parent, p.logfile.parent} == {STATE / "dnsmasq"}


@pytest.mark.parametrize(
    ("name", "stem"),
    [("my net", "my%20net"), ("a'b", "a%27b"), ("..", "%2E%2E"), ("50%", "50%25"), ("é", "%C3%A9")],
)
def test_names_are_escaped_into_one_component(name: str, stem: str) -> None:
    assert escape_name(name) == stem
    assert DnsmasqPaths.for_network(STATE, name).conf.parent == STATE / "dnsmasq"


def test_state_dir_that_would_break_the_config_is_refused() -> None:
    with pytest.raises(InvalidDefinition, match="state directory"):
        DnsmasqPaths.for_network(Path("/tmp/a b"), "x")


@pytest.mark.parametrize(
    "net",
    [
        nat(forward=Forward(mode=ForwardMode.BRIDGE), ips=()),
        nat(forward=Forward(mode=ForwardMode.PRIVATE, dev="eth0")),
        nat(ips=()),
        nat(ips=(IPDef(address="192.168.122.1", prefix=24),), dns=DNS(enable=False)),
    ],
    ids=["bridge", "direct", "no-ip", "no-dhcp-dns-off"],
)
def test_no_dnsmasq(net: Network) -> None:
    assert render_conf(net, DnsmasqPaths.for_network(STATE, net.name)) is None


def test_basic_nat_order_and_runtime_directives() -> None:
    lines = conf(nat())
    assert lines[:5] == [
        "strict-order",
        f"pid-file={STATE}/dnsmasq/default.pid",
        "except-interface=lo",
        "bind-dynamic",
        "interface=virbr0",
    ]
    assert "dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0" in lines
    assert "dhcp-lease-max=253" in lines
    assert f"dhcp-leasefile={STATE}/dnsmasq/default.leases" in lines
    assert f"dhcp-hostsfile={STATE}/dnsmasq/default.hostsfile" in lines
    assert "leasefile-ro" not in lines
    assert "no-resolv" not in lines and "dhcp-option=3" not in lines


def test_dns_disabled_dhcp_only() -> None:
    lines = conf(nat(dns=DNS(enable=False, txts=(DNSTxt("a", "b"),))))
    assert "port=0" in lines
    assert not any(line.startswith(("addn-hosts", "txt-record")) for line in lines)


def test_tftp_without_dhcp_runs_dnsmasq_even_with_dns_off() -> None:
    net = nat(
        ips=(IPDef(address="192.168.122.1", prefix=24, tftp_root="/srv/tftp"),),
        dns=DNS(enable=False),
    )
    lines = conf(net)
    assert lines.index("enable-tftp") + 1 == lines.index("tftp-root=/srv/tftp")
    assert not any(line.startswith("dhcp-range") for line in lines)


def test_static_only_dhcp_and_leases() -> None:
    hosts = (
        DHCPHost(ip="192.168.122.10", mac="52:54:00:00:00:01", name="a"),
        DHCPHost(ip="192.168.122.11", name="b", lease=Lease(0)),
        DHCPHost(ip="192.168.122.12", mac="52:54:00:00:00:03", lease=Lease(5)),
    )
    net = nat(ips=(IPDef(address="192.168.122.1", prefix=24, dhcp=DHCP(hosts=hosts)),))
    lines = conf(net)
    assert "dhcp-range=192.168.122.1,static" in lines
    assert not any(line.startswith("dhcp-lease-max") for line in lines)
    assert render_hostsfile(net) == (
        "52:54:00:00:00:01,192.168.122.10,a\nb,192.168.122.11,infinite\n"
        "52:54:00:00:00:03,192.168.122.12,5m\n"
    )


def test_ipv6_static_only_and_ra() -> None:
    v6 = IPDef(
        address="fd00:0:0:1::1",
        family="ipv6",
        prefix=64,
        dhcp=DHCP(hosts=(DHCPHost(ip="fd00:0:0:1::20", id="0:3:0:1"),)),
    )
    lines = conf(nat(ips=(v6,)))
    assert "dhcp-range=fd00:0:0:1::1,static,64" in lines
    assert lines.count("enable-ra") == 1
    assert "dhcp-no-override" not in lines
    assert render_hostsfile(nat(ips=(v6,))) == "id:0:3:0:1,[fd00:0:0:1::20]\n"


def test_range_lease_and_mtu_and_bootp_server() -> None:
    ip = IPDef(
        address="10.1.0.1",
        netmask="255.255.0.0",
        dhcp=DHCP(
            ranges=(DHCPRange("10.1.0.10", "10.1.0.19", Lease(30)),),
            bootp=Bootp("pxelinux.0", "10.1.0.5"),
        ),
    )
    lines = conf(nat(ips=(ip,), mtu=9000))
    assert "dhcp-range=10.1.0.10,10.1.0.19,255.255.0.0,30m" in lines
    assert "dhcp-lease-max=10" in lines
    assert "dhcp-boot=pxelinux.0,,10.1.0.5" in lines
    assert "dhcp-option=option:mtu,9000" in lines


def test_srv_positions_and_domain_local() -> None:
    dns = DNS(
        srvs=(
            DNSSrv("ldap", "tcp", domain="example.com", target="ldap.example.com", port=389),
            DNSSrv("sip", "udp", target="sip", weight=5),
            DNSSrv("x", "tcp", target=".", port=10),
        )
    )
    lines = conf(nat(dns=dns, domain=Domain("example.com", local_only=True)))
    assert "srv-host=_ldap._tcp.example.com,ldap.example.com,389" in lines
    assert "srv-host=_sip._udp,sip,1,0,5" in lines
    assert "srv-host=_x._tcp" in lines
    assert lines.index("local=/example.com/") < lines.index("domain=example.com")


def test_local_ptr() -> None:
    v4 = IPDef(address="192.168.122.1", prefix=24, local_ptr=True)
    v6 = IPDef(address="2001:db8:ac10:fd01::1", prefix=64, family="ipv6", local_ptr=True)
    assert ptr_domain(v4) == "122.168.192.in-addr.arpa"
    assert ptr_domain(v6) == "1.0.d.f.0.1.c.a.8.b.d.0.1.0.0.2.ip6.arpa"
    lines = conf(nat(ips=(v4, v6)))
    assert "local=/122.168.192.in-addr.arpa/" in lines
    with pytest.raises(InvalidDefinition, match="prefix 20"):
        ptr_domain(IPDef(address="10.0.0.1", prefix=20, local_ptr=True))


def test_forwarders() -> None:
    dns = DNS(
        forwarders=(
            DNSForwarder(domain="lan", addr="192.168.1.1"),
            DNSForwarder("fd00::1"),
            DNSForwarder("192.0.2.1", port=5353),
        )
    )
    lines = conf(nat(dns=dns))
    assert lines[1:5] == [
        "server=/lan/192.168.1.1",
        "server=fd00::1",
        "server=192.0.2.1#5353",
        "no-resolv",
    ]


def test_isolated_has_no_default_route() -> None:
    lines = conf(nat(forward=None))
    assert {"dhcp-option=3", "no-resolv", "ra-param=*,0,0"} <= set(lines)


def test_two_ipv4_dhcp_refused() -> None:
    ip = nat().ips[0]
    other = replace(ip, address="192.168.123.1")
    with pytest.raises(InvalidDefinition, match="multiple DHCP"):
        render_conf(nat(ips=(ip, other)), DnsmasqPaths.for_network(STATE, "x"))


@pytest.mark.parametrize(
    "net",
    [
        nat(dnsmasq_options=("foo=bar\nconf-file=/etc/shadow",)),
        nat(dns=DNS(txts=(DNSTxt("a", "b\rc"),))),
        nat(domain=Domain("ex\x00ample")),
    ],
)
def test_control_characters_never_reach_the_file(net: Network) -> None:
    with pytest.raises(HostileInput):
        render_conf(net, DnsmasqPaths.for_network(STATE, net.name))


def test_addnhosts_merges_names_per_address() -> None:
    dns = DNS(
        hosts=(
            DNSHost("192.168.122.1", ("host", "gateway")),
            DNSHost("192.168.122.2", ("b",)),
            DNSHost("192.168.122.1", ("again",)),
        )
    )
    assert render_addnhosts(nat(dns=dns)) == (
        "192.168.122.1\thost\tgateway\tagain\t\n192.168.122.2\tb\t\n"
    )
    assert render_addnhosts(nat()) == ""


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq not installed")
def test_dnsmasq_accepts_a_rich_config(tmp_path: Path) -> None:
    """dnsmasq's own parser (--test) accepts what we write, every branch at once."""
    v6 = IPDef(
        address="fd00:0:0:1::1",
        family="ipv6",
        prefix=64,
        dhcp=DHCP(ranges=(DHCPRange("fd00:0:0:1::10", "fd00:0:0:1::ff", Lease(2, "hours")),)),
    )
    net = nat(
        ips=(replace(nat().ips[0], local_ptr=True, tftp_root="/srv/tftp"), v6),
        domain=Domain("example.com", local_only=True),
        mtu=1400,
        dns=DNS(
            forward_plain_names=False,
            forwarders=(DNSForwarder("192.0.2.53", port=5353), DNSForwarder(domain="corp")),
            txts=(DNSTxt("t", "some text"),),
            srvs=(DNSSrv("ldap", "tcp", target="ldap", port=389, priority=1, weight=2),),
        ),
    )
    paths = DnsmasqPaths.for_network(tmp_path, net.name)
    paths.conf.parent.mkdir()
    text = render_conf(net, paths)
    assert text is not None
    paths.conf.write_text(text)
    res = subprocess.run(
        ["dnsmasq", "--test", f"--conf-file={paths.conf}"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr


def test_unvalidated_bad_addresses_are_virtnet_errors() -> None:
    bad_mask = nat(ips=(replace(nat().ips[0], prefix=None, netmask="255.0.255.0"),))
    with pytest.raises(InvalidDefinition, match="not a valid netmask"):
        render_conf(bad_mask, DnsmasqPaths.for_network(STATE, "x"))
    bad_host = nat(ips=(replace(nat().ips[0], dhcp=DHCP(hosts=(DHCPHost(ip="zz", mac="m"),))),))
    with pytest.raises(InvalidDefinition, match="not an IP address"):
        render_hostsfile(bad_host)
