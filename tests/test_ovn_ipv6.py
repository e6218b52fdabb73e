"""IPv6 on OVN: SLAAC by router advertisements, SNAT66 for <nat ipv6='yes'>, the refusals.

Pure (translation and plans); the lab test (tests/test_ovn_lab.py) shows a VM taking its
SLAAC address from OVN and leaving as the SNAT66 address.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.ovn_cases import XML, options
from virtnet.cli.main import cli
from virtnet.errors import InvalidDefinition, NotSupported
from virtnet.loader import load_text
from virtnet.ovn import apply_commands, translate, translate_all
from virtnet.ovn.topology import Acl, Snat

V6 = "<ip family='ipv6' address='2001:db8:5::1' prefix='64'/>"
EXT6 = {"natnet": "2001:db8:ff::10/64"}


def nat6(*, nat_ipv6: bool = True, extra: str = V6) -> str:
    xml = XML["nat"].replace("</network>", f"{extra}</network>")
    if nat_ipv6:
        xml = xml.replace("<forward mode='nat'/>",
                          "<forward mode='nat'><nat ipv6='yes'/></forward>")
    return xml


def test_nat_ipv6_yes_is_snat66_to_the_external_ipv6_and_closed_inbound() -> None:
    o = translate(load_text(nat6()), options(external_ipv6s=EXT6))
    r = o.router
    assert r is not None and r.gateway is not None
    assert r.networks == ("192.168.122.1/24", "2001:db8:5::1/64")
    assert r.gateway.address6 == "2001:db8:ff::10/64"
    assert Snat("2001:db8:ff::10", "2001:db8:5::/64") in r.snat
    assert Snat("203.0.113.10", "192.168.122.0/24") in r.snat
    # both families are masqueraded, so both are closed to new connections from outside
    assert o.acls == (
        Acl("from-lport", 1000, "ip", "allow-related"),
        Acl("to-lport", 1001, 'inport == "vn-natnet-to-rtr" && ip && ct.new', "reject"),
    )
    ra = dict(r.ra)
    assert ra["address_mode"] == "slaac" and ra["mtu"] == "1442"
    assert ra["send_periodic"] == "true"
    assert o.ipv6_prefix == "2001:db8:5::"
    cmds = apply_commands([o], options(external_ipv6s=EXT6))
    assert ("--may-exist", "lr-nat-add", "vn-natnet-router", "snat", "2001:db8:ff::10",
            "2001:db8:5::/64") in cmds
    assert ("--may-exist", "lrp-add", "vn-natnet-router", "vn-natnet-rtr-out", r.gateway.mac,
            "203.0.113.10/24", "2001:db8:ff::10/64") in cmds
    assert any(c[:3] == ("set", "Logical_Router_Port", "vn-natnet-rtr")
               and c[3].startswith("ipv6_ra_configs=") for c in cmds)


def test_nat_without_ipv6_yes_routes_its_ipv6_as_libvirt_does() -> None:
    o = translate(load_text(nat6(nat_ipv6=False)), options(external_ipv6s=EXT6))
    assert o.router is not None
    assert all(":" not in s.logical_ip for s in o.router.snat)
    assert all("ip4" in a.match for a in o.acls)  # IPv6 stays open, as routed


def test_nat_ipv6_yes_needs_an_external_ipv6() -> None:
    with pytest.raises(InvalidDefinition, match="--external-ipv6") as e:
        translate(load_text(nat6()), options())
    assert e.value.element == "nat"


def test_ipv6_without_external_address_stays_inside_with_a_warning() -> None:
    o = translate(load_text(nat6(nat_ipv6=False)), options())
    assert any("--external-ipv6 natnet=" in w for w in o.warnings)
    assert o.router is not None and o.router.gateway is not None
    assert o.router.gateway.address6 is None


@pytest.mark.parametrize("dhcp,element", [
    ("<dhcp><range start='2001:db8:5::10' end='2001:db8:5::ff'/></dhcp>", "ip/dhcp/range"),
    ("<dhcp><host id='0:1:0:1:aa' ip='2001:db8:5::20'/></dhcp>", "ip/dhcp/host"),
])
def test_dhcpv6_elements_are_refused_each_by_name(dhcp: str, element: str) -> None:
    v6 = f"<ip family='ipv6' address='2001:db8:5::1' prefix='64'>{dhcp}</ip>"
    with pytest.raises(NotSupported) as e:
        translate(load_text(nat6(nat_ipv6=False, extra=v6)), options())
    assert e.value.element == element and "natnet" in str(e.value)


def test_isolated_ipv6_gets_router_advertisements_on_its_gateway_port() -> None:
    xml = XML["isolated"].replace("</network>", f"{V6}</network>")
    o = translate(load_text(xml), options())
    assert o.router is not None and o.router.gateway is None
    assert "2001:db8:5::1/64" in o.router.networks
    assert dict(o.router.ra)["address_mode"] == "slaac"
    assert o.warnings == ()


def test_external_ipv6_is_checked() -> None:
    with pytest.raises(InvalidDefinition, match="not an IPv6 address"):
        translate(load_text(nat6()), options(external_ipv6s={"natnet": "203.0.113.9/24"}))
    with pytest.raises(InvalidDefinition, match="names no given network"):
        translate_all([load_text(nat6())], options(external_ipv6s={"nope": "2001:db8::1/64"}))
    with pytest.raises(InvalidDefinition, match="--outside-gateway6"):
        translate_all([load_text(nat6())],
                      options(external_ipv6s=EXT6, outside_gateway6="203.0.113.1"))


def test_cli_takes_external_ipv6_and_prints_the_v6_route_of_a_routed_network(
    tmp_path: Path,
) -> None:
    f = tmp_path / "r.xml"
    f.write_text(XML["route"].replace("</network>", f"{V6}</network>"))
    res = CliRunner().invoke(cli, ["ovn", "plan", str(f), "--external-ip", "203.0.113.11/24",
                                   "--external-ipv6", "2001:db8:ff::11/64", "--chassis", "gw"])
    assert res.exit_code == 0, res.output
    assert "the outside needs a route: 2001:db8:5::/64 via 2001:db8:ff::11" in res.output
    assert "the outside needs a route: 192.168.100.0/24 via 203.0.113.11" in res.output
