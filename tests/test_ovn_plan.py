"""The OVN backend's pure half: translation, address pools, plans (golden), errors. No OVN."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.ovn_cases import EXTERNAL, XML, all_nets, net, options
from virtnet.cli.main import cli
from virtnet.errors import Conflict, HostError, InvalidDefinition, NotFound, NotSupported
from virtnet.loader import load_text
from virtnet.model.network import Forward, ForwardMode, Nat, NatAddressRange
from virtnet.ovn import (
    NbState,
    apply_commands,
    delete_commands,
    format_commands,
    names,
    nbctl,
    port_commands,
    translate,
    translate_all,
)
from virtnet.ovn.pool import exclude_ips
from virtnet.ovn.state import from_tables, parse
from virtnet.ovn.topology import Acl, Snat, StaticRoute

GOLDEN = Path(__file__).resolve().parent / "golden" / "ovn"


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("VIRTNET_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path} (run with VIRTNET_UPDATE_GOLDEN=1)"
    assert text == path.read_text(), f"plan differs from {path}"


@pytest.mark.parametrize("mode", ["nat", "route", "isolated", "open"])
def test_plan_per_mode_is_golden(mode: str) -> None:
    n = net(mode)
    ext = {k: v for k, v in EXTERNAL.items() if k == n.name}
    cmds = apply_commands(translate_all([n], options(external_ips=ext)), options())
    golden(f"{mode}.txt", format_commands(cmds, "unix:/run/ovn/ovnnb_db.sock"))


def test_every_command_is_safe_to_repeat() -> None:
    # Adds carry --may-exist, deletes --if-exists; the rest set whole values. Creates of
    # unnamed rows name a fixed UUID, so a repeat fails loudly instead of duplicating.
    cmds = apply_commands(translate_all(all_nets(), options()), options())
    for c in cmds:
        verb = next(a for a in c if not a.startswith("--"))
        if verb.endswith("-add"):
            assert c[0] == "--may-exist", c
        elif verb.endswith("-del") or verb == "destroy":
            assert c[0] == "--if-exists", c
        elif verb == "create":
            assert re.fullmatch(r"--id=[0-9a-f-]{36}", c[0]), c
        else:
            assert verb in ("set", "remove", "clear") or verb.startswith("lsp-set-"), c


def test_nat_maps_to_snat_and_stateful_acls() -> None:
    o = translate(net("nat"), options())
    assert o.router is not None and o.router.gateway is not None
    assert o.router.networks == ("192.168.122.1/24",)
    assert o.router.gateway.address == "203.0.113.10/24"
    assert o.router.snat == (Snat("203.0.113.10", "192.168.122.0/24"),)
    assert o.acls == (
        Acl("from-lport", 1000, "ip4", "allow-related"),
        Acl("to-lport", 1001, 'inport == "vn-natnet-to-rtr" && ip4 && ct.new', "reject"),
    )
    opts = dict(o.dhcp.options) if o.dhcp else {}
    assert opts["router"] == "192.168.122.1"
    assert opts["server_id"] == "192.168.122.1"
    assert opts["dns_server"] == "{192.168.122.1}"
    assert opts["lease_time"] == "3600"
    # the <host> reservation: kept out of the pool, given to its MAC, resolvable by name
    assert o.exclude_ips == "192.168.122.1 192.168.122.10"
    assert o.hosts == (("52:54:00:00:00:10", "192.168.122.10"),)
    assert o.dns_records == (("web", "192.168.122.10"),)


def test_route_and_open_have_no_nat_and_no_acls() -> None:
    for mode in ("route", "open"):
        o = translate(net(mode), options())
        assert o.router is not None and o.router.snat == () and o.acls == ()
    r = translate(net("route"), options())
    assert r.router is not None
    assert StaticRoute("10.20.0.0/16", "192.168.100.254") in r.router.routes
    assert StaticRoute("0.0.0.0/0", "203.0.113.1") in r.router.routes
    assert dict(r.dhcp.options if r.dhcp else ())["lease_time"] == "7200"
    assert any("open mode" in n for n in translate(net("open"), options()).notes)


def test_isolated_has_its_gateway_port_only_and_no_default_route() -> None:
    o = translate(net("isolated"), options())
    # a router holding the gateway address and nothing else: no chassis, no way out
    r = o.router
    assert r is not None and o.acls == ()
    assert r.networks == ("192.168.150.1/24",) and r.chassis is None and r.gateway is None
    assert r.snat == () and r.routes == ()
    assert o.dhcp is not None
    opts = dict(o.dhcp.options)
    assert "router" not in opts  # libvirt: dhcp-option=3, no default route
    assert opts["server_id"] == "192.168.150.1" and opts["server_mac"] == r.mac
    assert opts["domain_name"] == '"iso.test"'
    cmds = apply_commands([o], options())
    assert ("--may-exist", "lr-add", "vn-isonet-router") in cmds
    assert not any("vn-outside" in c for c in cmds)
    assert not any(a.startswith("options:chassis") for c in cmds for a in c)
    assert not any(c[0:2] in (("--may-exist", "lr-route-add"), ("--may-exist", "lr-nat-add"))
                   for c in cmds)


@pytest.mark.parametrize(
    ("ranges", "reserved", "expected"),
    [
        ([("10.0.0.2", "10.0.0.254")], ["10.0.0.1"], "10.0.0.1"),
        (
            [("10.0.0.100", "10.0.0.199")],
            ["10.0.0.1"],
            "10.0.0.1..10.0.0.99 10.0.0.200..10.0.0.254",
        ),
        (
            [("10.0.0.10", "10.0.0.20"), ("10.0.0.15", "10.0.0.30")],
            ["10.0.0.1", "10.0.0.12"],
            "10.0.0.1..10.0.0.9 10.0.0.12 10.0.0.31..10.0.0.254",
        ),
        ([("10.0.0.1", "10.0.0.254")], [], ""),
        ([("10.0.0.5", "10.0.0.5")], ["10.0.0.5"], "10.0.0.1..10.0.0.254"),
    ],
)
def test_exclude_ips_leaves_exactly_the_ranges(
    ranges: list[tuple[str, str]], reserved: list[str], expected: str
) -> None:
    assert exclude_ips(ipaddress.IPv4Network("10.0.0.0/24"), ranges, reserved) == expected


def test_exclude_ips_pool_equals_range_minus_reserved() -> None:
    # Expand OVN's view (subnet minus exclude_ips) and compare with libvirt's pool.
    subnet = ipaddress.IPv4Network("172.16.0.0/26")
    ranges = [("172.16.0.5", "172.16.0.9"), ("172.16.0.40", "172.16.0.50")]
    text = exclude_ips(subnet, ranges, ["172.16.0.1", "172.16.0.7"])
    excluded: set[int] = set()
    for tok in text.split():
        lo, _, hi = tok.partition("..")
        excluded.update(
            range(int(ipaddress.IPv4Address(lo)), int(ipaddress.IPv4Address(hi or lo)) + 1)
        )
    pool = {
        a for a in range(int(subnet.network_address) + 1, int(subnet.broadcast_address))
    } - excluded
    want = {
        a
        for lo, hi in ranges
        for a in range(int(ipaddress.IPv4Address(lo)), int(ipaddress.IPv4Address(hi)) + 1)
    } - {int(ipaddress.IPv4Address("172.16.0.7"))}
    assert pool == want


@pytest.mark.parametrize("mode", ["bridge", "private", "vepa", "passthrough", "hostdev"])
def test_bridge_and_direct_modes_are_refused(mode: str) -> None:
    n = replace(net("isolated"), ips=(), forward=Forward(mode=ForwardMode(mode)))
    with pytest.raises(NotSupported) as exc:
        translate(n, options())
    assert exc.value.element == "forward"
    assert mode in str(exc.value) and "host backend" in str(exc.value)


def test_nat_without_external_address_names_the_flag() -> None:
    with pytest.raises(InvalidDefinition) as exc:
        translate(net("nat"), options(external_ips={}))
    assert "--external-ip natnet=" in str(exc.value)


def test_nat_address_start_is_the_external_address_with_outside_subnet() -> None:
    n = net("nat")
    assert n.forward is not None
    n = replace(
        n,
        forward=replace(
            n.forward, nat=Nat(addresses=(NatAddressRange("198.51.100.7", "198.51.100.9"),))
        ),
    )
    o = translate(n, options(external_ips={}, outside_subnet="198.51.100.0/24"))
    assert o.router is not None and o.router.gateway is not None
    assert o.router.gateway.address == "198.51.100.7/24"
    assert o.router.snat == (Snat("198.51.100.7", "192.168.122.0/24"),)
    assert any("range" in note for note in o.notes)
    with pytest.raises(InvalidDefinition):  # a bare address needs the outside's prefix
        translate(n, options(external_ips={}))


@pytest.mark.parametrize(
    ("external", "outside", "fragment"),
    [
        ("203.0.113.300/24", None, "not an IPv4 address"),
        ("203.0.113.10", None, "no prefix length"),
        ("198.51.100.10/24", "203.0.113.0/24", "not in the outside subnet"),
        ("203.0.113.0/24", None, "not a host address"),
    ],
)
def test_bad_external_addresses(external: str, outside: str | None, fragment: str) -> None:
    with pytest.raises(InvalidDefinition, match=fragment):
        translate(net("nat"), options(external_ips={"natnet": external}, outside_subnet=outside))


def test_two_networks_cannot_share_an_external_address() -> None:
    with pytest.raises(Conflict, match="203.0.113.10"):
        translate_all(
            [net("nat"), net("route")],
            options(external_ips={"natnet": "203.0.113.10/24", "routenet": "203.0.113.10/24"}),
        )


def test_unknown_network_in_external_ip_and_bad_names_are_refused() -> None:
    with pytest.raises(InvalidDefinition, match="nosuch"):
        translate_all([net("isolated")], options(external_ips={"nosuch": "203.0.113.5/24"}))
    bad = replace(net("isolated"), name='a"b')
    with pytest.raises(InvalidDefinition, match="cannot name OVN objects"):
        translate(bad, options())


def test_ipv6_only_forwarding_network_is_refused_and_dual_stack_carried() -> None:
    text = XML["route"].replace(
        "</network>", "<ip family='ipv6' address='fd00:10::1' prefix='64'/></network>"
    )
    o = translate(load_text(text), options())
    assert o.router is not None
    assert o.router.networks == ("192.168.100.1/24", "fd00:10::1/64")
    assert o.ipv6_prefix == "fd00:10::"
    v6only = replace(load_text(text), ips=load_text(text).ipv6_defs)
    with pytest.raises(NotSupported, match="only IPv6"):
        translate(v6only, options())


def test_invalid_definition_is_refused_before_planning() -> None:
    bad = XML["nat"].replace("192.168.122.254'/>", "192.168.123.254'/>")
    with pytest.raises(InvalidDefinition):
        translate_all([load_text(bad)], options())


def _state(**kw: object) -> NbState:
    st = NbState()
    for k, v in kw.items():
        setattr(st, k, v)
    return st


def test_plan_against_state_updates_in_place_and_removes_stale_rows() -> None:
    o = translate(net("nat"), options())
    stale_acl = Acl("to-lport", 1001, 'inport == "old" && ip4 && ct.new', "drop")
    st = _state(
        switches={"vn-natnet": {"other_config": {"ipv6_prefix": "fd00::"}, "external_ids": {}}},
        routers={"vn-natnet-router"},
        acls={"vn-natnet": {stale_acl, *o.acls}},
        snats={"vn-natnet-router": {Snat("203.0.113.99", "10.9.0.0/16")}},
        routes={"vn-natnet-router": {StaticRoute("0.0.0.0/0", "203.0.113.254")}},
        dhcp_uuids={names.dhcp_uuid("natnet")},
        dns_uuids={names.dns_uuid("natnet")},
    )
    cmds = apply_commands([o], options(), st)
    assert ("set", "DHCP_Options", names.dhcp_uuid("natnet")) == cmds[_index(cmds, "DHCP_Options")][
        :3
    ]
    assert not any("create" in c for c in cmds)
    assert ("acl-del", "vn-natnet", "to-lport", "1001", stale_acl.match) in cmds
    assert ("--if-exists", "lr-nat-del", "vn-natnet-router", "snat", "10.9.0.0/16") in cmds
    assert ("--if-exists", "lr-route-del", "vn-natnet-router", "0.0.0.0/0", "203.0.113.254") in cmds
    assert ("remove", "Logical_Switch", "vn-natnet", "other_config", "ipv6_prefix") in cmds
    # deletes come before the adds they make room for
    assert _index(cmds, "lr-nat-del") < _index(cmds, "lr-nat-add")


def _index(cmds: list[tuple[str, ...]], word: str) -> int:
    return next(i for i, c in enumerate(cmds) if word in c)


def test_mode_change_to_isolated_removes_the_way_out_and_dhcp_router_option() -> None:
    iso = replace(net("nat"), forward=None)
    st = _state(
        routers={"vn-natnet-router"},
        switches={"vn-natnet": {"other_config": {}, "external_ids": {}}},
        acls={"vn-natnet": set(translate(net("nat"), options()).acls)},
    )
    cmds = apply_commands([translate(iso, options())], options(), st)
    # the router keeps only its gateway port: no chassis, no port on the outside switch
    assert ("remove", "Logical_Router", "vn-natnet-router", "options", "chassis") in cmds
    assert ("--if-exists", "lrp-del", "vn-natnet-rtr-out") in cmds
    assert ("--if-exists", "lsp-del", "vn-natnet-gw") in cmds
    assert not any(c[1:2] == ("lr-del",) for c in cmds)
    assert sum(1 for c in cmds if c[0] == "acl-del") == 2


def test_delete_needs_the_network_and_takes_an_emptied_outside_switch() -> None:
    with pytest.raises(NotFound):
        delete_commands("natnet", NbState())
    st = _state(
        switches={"vn-natnet": {}, "vn-outside": {"external_ids": {"virtnet_role": "outside"}}},
        switch_ports={"vn-outside": ["vn-natnet-gw", "vn-outside-localnet"]},
        routers={"vn-natnet-router"},
    )
    cmds = delete_commands("natnet", st)
    assert ("--if-exists", "ls-del", "vn-outside") in cmds
    st.switch_ports["vn-outside"].append("vn-other-gw")
    assert ("--if-exists", "ls-del", "vn-outside") not in delete_commands("natnet", st)


def _applied_state() -> NbState:
    return _state(
        switches={
            "vn-natnet": {
                "other_config": {"subnet": "192.168.122.0/24"},
                "external_ids": {"virtnet_dhcp_hosts": "52:54:00:00:00:10=192.168.122.10"},
            }
        },
        switch_ports={"vn-natnet": []},
        dhcp_uuids={names.dhcp_uuid("natnet")},
    )


def test_port_add_addresses() -> None:
    st = _applied_state()

    def addresses(**kw: str) -> str:
        cmds = port_commands("natnet", "vm1", st, **kw)  # type: ignore[arg-type]
        return next(c[2] for c in cmds if c[0] == "lsp-set-addresses")

    assert addresses(mac="52:54:00:00:00:10") == "52:54:00:00:00:10 192.168.122.10"
    assert addresses(mac="52-54-00-AA-BB-CC") == "52:54:00:aa:bb:cc dynamic"
    assert addresses(ip="192.168.122.77") == "dynamic 192.168.122.77"
    assert addresses() == "dynamic"
    cmds = port_commands("natnet", "vm1", st)
    assert (
        "set",
        "Logical_Switch_Port",
        "vm1",
        f"dhcpv4_options={names.dhcp_uuid('natnet')}",
    ) in cmds


@pytest.mark.parametrize(
    ("kw", "error", "fragment"),
    [
        ({"mac": "52:54:00:00:00"}, InvalidDefinition, "not a MAC"),
        ({"mac": "01:00:5e:00:00:01"}, InvalidDefinition, "multicast"),
        ({"ip": "10.0.0.5"}, InvalidDefinition, "not in network"),
        ({"ip": "banana"}, InvalidDefinition, "not an IPv4"),
    ],
)
def test_port_add_refusals(kw: dict[str, str], error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        port_commands("natnet", "vm1", _applied_state(), **kw)  # type: ignore[arg-type]


def test_port_add_needs_an_applied_network() -> None:
    with pytest.raises(NotFound, match="apply its definition first"):
        port_commands("natnet", "vm1", NbState())


def test_state_parse_reads_ovsdb_json() -> None:
    text = "\n".join(
        [
            '{"data":[[["uuid","u1"],"vn-a",["set",[["uuid","p1"]]],["uuid","a1"],'
            '["map",[["subnet","10.0.0.0/24"]]],["map",[["virtnet_network","a"]]]]],'
            '"headings":["_uuid","name","ports","acls","other_config","external_ids"]}',
            '{"data":[[["uuid","p1"],"vm1","",["set",[]],["set",[]],["map",[]]]],'
            '"headings":["_uuid","name","type","addresses","dynamic_addresses","external_ids"]}',
            '{"data":[],"headings":["_uuid","name","ports","nat","static_routes","external_ids"]}',
            '{"data":[],"headings":["_uuid","name"]}',
            '{"data":[[["uuid","a1"],"to-lport",1001,"ip4","drop"]],'
            '"headings":["_uuid","direction","priority","match","action"]}',
            '{"data":[],"headings":["_uuid","type","external_ip","logical_ip"]}',
            '{"data":[],"headings":["_uuid","ip_prefix","nexthop"]}',
            '{"data":[[["uuid","d1"]]],"headings":["_uuid"]}',
            '{"data":[],"headings":["_uuid"]}',
        ]
    )
    st = from_tables(parse(text))
    assert st.switch_ports == {"vn-a": ["vm1"]}
    assert st.acls == {"vn-a": {Acl("to-lport", 1001, "ip4", "drop")}}
    assert st.switches["vn-a"]["other_config"] == {"subnet": "10.0.0.0/24"}
    assert st.dhcp_uuids == {"d1"}


def test_cli_plan_prints_one_transaction_and_notes(tmp_path: Path) -> None:
    f = tmp_path / "route.xml"
    f.write_text(XML["route"])
    res = CliRunner().invoke(cli, ["ovn", "plan", str(f), "--external-ip", "203.0.113.11/24"])
    assert res.exit_code == 0, res.output
    assert "# routenet: the outside needs a route: 192.168.100.0/24 via 203.0.113.11" in res.output
    assert res.output.count("ovn-nbctl") == 1
    assert "-- --may-exist lr-add vn-routenet-router" in res.output
    res = CliRunner().invoke(
        cli, ["-o", "json", "ovn", "plan", str(f), "--external-ip", "routenet=203.0.113.11/24"]
    )
    assert res.exit_code == 0 and '"commands"' in res.output


def test_cli_errors_are_messages_with_exit_codes(tmp_path: Path) -> None:
    f = tmp_path / "b.xml"
    f.write_text("<network><name>lan</name><forward mode='bridge'/><bridge name='br0'/></network>")
    res = CliRunner().invoke(cli, ["ovn", "plan", str(f)])
    assert res.exit_code == NotSupported.exit_status
    assert "has no OVN counterpart" in res.output and "Traceback" not in res.output
    g = tmp_path / "n.xml"
    g.write_text(XML["nat"])
    res = CliRunner().invoke(
        cli, ["ovn", "apply", str(g), "--db", "nowhere", "--external-ip", "203.0.113.10/24"]
    )
    assert res.exit_code == InvalidDefinition.exit_status and "--db" in res.output
    res = CliRunner().invoke(
        cli, ["ovn", "plan", str(g), str(f), "--external-ip", "203.0.113.10/24"]
    )
    assert res.exit_code == InvalidDefinition.exit_status and "which network" in res.output


def test_routed_subnets_must_not_overlap_but_nat_ones_may() -> None:
    other = load_text(XML["route"].replace("routenet", "routenet2"))
    with pytest.raises(Conflict, match="overlap on the outside network"):
        translate_all(
            [net("route"), other],
            options(external_ips={"routenet": "203.0.113.11/24", "routenet2": "203.0.113.12/24"}),
        )
    # two nat networks with one subnet: each is hidden behind its own router, as on two hosts
    nat2 = load_text(XML["nat"].replace("natnet", "natnet2"))
    out = translate_all(
        [net("nat"), nat2],
        options(external_ips={"natnet": "203.0.113.10/24", "natnet2": "203.0.113.12/24"}),
    )
    assert [o.subnet for o in out] == ["192.168.122.0/24", "192.168.122.0/24"]


def test_port_add_refuses_taken_addresses() -> None:
    st = _applied_state()
    st.switches["vn-natnet"]["external_ids"]["virtnet_gateway"] = "192.168.122.1"
    st.switch_ports["vn-natnet"] = ["vm-a"]
    st.ports["vm-a"] = {
        "addresses": ["dynamic"],
        "dynamic_addresses": "0a:00:00:00:00:01 192.168.122.2",
    }
    with pytest.raises(Conflict, match="gateway"):
        port_commands("natnet", "vm1", st, ip="192.168.122.1")
    with pytest.raises(Conflict, match="reserved for MAC 52:54:00:00:00:10"):
        port_commands("natnet", "vm1", st, ip="192.168.122.10")
    with pytest.raises(Conflict, match="port 'vm-a'"):
        port_commands("natnet", "vm1", st, ip="192.168.122.2")
    # the port itself may keep its address
    assert port_commands("natnet", "vm-a", st, ip="192.168.122.2")


@pytest.mark.parametrize(
    ("kw", "flag"),
    [
        ({"outside_subnet": "203.0.113.0/33"}, "--outside-subnet"),
        ({"outside_subnet": "203.0.113.5/24"}, "--outside-subnet"),
        ({"outside_gateway": "gw"}, "--outside-gateway"),
        ({"dns_servers": ("1.1.1.1", "x")}, "--dns-server"),
        ({"chassis": "gw 1"}, "--chassis"),
        ({"physical_network": "phys;net"}, "--physical-network"),
        ({"outside_switch": '"x'}, "--outside-switch"),
    ],
)
def test_bad_flag_values_are_refused_naming_the_flag(kw: dict[str, object], flag: str) -> None:
    with pytest.raises(InvalidDefinition) as exc:
        translate_all([net("isolated")], options(external_ips={}, **kw))
    assert exc.value.element == flag


def test_an_oversized_transaction_is_a_clear_error() -> None:
    if shutil.which("ovn-nbctl") is None:
        pytest.skip("ovn-nbctl not installed")
    huge = [("set", "NB_Global", ".", "external_ids:x=" + "a" * 100_000)] * 30  # 3 MB
    with pytest.raises(HostError, match="fewer networks"):
        nbctl.run("unix:/nonexistent/nb.sock", huge)


# -- MTU across chassis ------------------------------------------------------------------------


def test_dhcp_mtu_is_the_underlay_less_the_tunnels_overhead() -> None:
    plain = translate(net("nat"), options())
    assert dict(plain.dhcp.options)["mtu"] == "1442"  # type: ignore[union-attr]
    jumbo = translate(net("nat"), options(underlay_mtu=9000))
    assert dict(jumbo.dhcp.options)["mtu"] == str(9000 - 58)  # type: ignore[union-attr]
    vx = translate(net("nat"), options(encap="vxlan"))
    assert dict(vx.dhcp.options)["mtu"] == "1450"  # type: ignore[union-attr]
    assert translate(net("nat"), options()).warnings == ()


def test_definition_mtu_is_honoured_and_warned_when_it_cannot_cross() -> None:
    n = replace(net("nat"), mtu=1500)
    o = translate(n, options())
    assert dict(o.dhcp.options)["mtu"] == "1500"  # type: ignore[union-attr]
    (w,) = o.warnings
    assert "natnet" in w and "1500" in w and "1442" in w and "1558" in w
    fits = translate(n, options(underlay_mtu=1558))
    assert fits.warnings == ()
    assert translate(replace(net("nat"), mtu=1400), options()).warnings == ()


def test_cli_prints_the_mtu_warning(tmp_path: Path) -> None:
    f = tmp_path / "n.xml"
    f.write_text(XML["nat"].replace("</network>", "<mtu size='1500'/></network>"))
    res = CliRunner().invoke(cli, ["ovn", "plan", str(f), "--external-ip", "203.0.113.10/24"])
    assert res.exit_code == 0, res.output
    assert "warning: network 'natnet': <mtu size='1500'/> cannot cross" in res.output
    res = CliRunner().invoke(cli, ["ovn", "plan", str(f), "--external-ip", "203.0.113.10/24",
                                   "--underlay-mtu", "1600"])
    assert "warning" not in res.output
    assert 'mtu="1500"' in res.output


@pytest.mark.parametrize("mtu", [100, 633, 70000])
def test_impossible_underlay_mtu_is_refused(mtu: int) -> None:
    with pytest.raises(InvalidDefinition, match="--underlay-mtu"):
        translate_all([net("nat")], options(underlay_mtu=mtu))


def test_cli_plan_without_chassis_names_the_placeholder(tmp_path: Path) -> None:
    f = tmp_path / "n.xml"
    f.write_text(XML["nat"])
    res = CliRunner().invoke(cli, ["ovn", "plan", str(f), "--external-ip", "203.0.113.10/24"])
    assert res.exit_code == 0 and "no --chassis" in res.output
    res = CliRunner().invoke(cli, ["ovn", "plan", str(f), "--external-ip", "203.0.113.10/24",
                                   "--chassis", "gw1"])
    assert "no --chassis" not in res.output and 'options:chassis="gw1"' in res.output
