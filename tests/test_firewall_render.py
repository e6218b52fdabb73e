"""Pure tests of virtnet's nftables scripts: golden files, per-mode semantics checked
against libvirt 9.0's own iptables rules, hostile names, constant packet path.

Golden files: tests/golden/firewall/CASE.nft; regenerate with VIRTNET_UPDATE_GOLDEN=1 and
review the diff.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import pytest

from tests.firewall_cases import CASES, NAT, OPEN, ROUTE, net
from virtnet.errors import HostileInput, InvalidDefinition
from virtnet.firewall import (
    network_elements,
    path_rule_count,
    render_add,
    render_remove,
    render_table,
)
from virtnet.firewall.elements import merged_elements
from virtnet.firewall.parts import Addrs, Element, Ifname, Verdict
from virtnet.firewall.schema import CHAINS, CHAINS_BY_NAME, EST_CHAIN, SETS_BY_NAME
from virtnet.model.network import ForwardMode, Nat

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "firewall"
CORPUS = (
    ROOT / ".." / "shared" / "conformance" / "libvirt-9.0.0" / "networkxml2firewalldata-iptables"
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_table_golden(case: str) -> None:
    script = render_table(CASES[case])
    path = GOLDEN / f"{case}.nft"
    if os.environ.get("VIRTNET_UPDATE_GOLDEN"):
        path.write_text(script)
    assert script == path.read_text(), f"{case}: render differs from {path}"


def test_table_script_replaces_whole_table_in_one_transaction() -> None:
    script = render_table(CASES["nat"])
    lines = script.splitlines()
    assert lines[:3] == [
        "add table inet virtnet",
        "delete table inet virtnet",
        "table inet virtnet {",
    ]
    # Nothing outside our table is named anywhere in the script.
    tables = set(re.findall(r"\b(?:table|element|chain|rule) (\w+ \w+)", script))
    assert tables == {"inet virtnet"}


def _names(elems: dict[str, list[Element]]) -> set[str]:
    return {name for name, items in elems.items() if items}


def test_open_and_bridge_modes_have_no_rules_at_all() -> None:
    for mode in (OPEN, ForwardMode.BRIDGE):
        n = net("o", mode, "virbr10", "10.13.0.1/24")
        assert network_elements(n) == {}
        assert render_add(n) == "" and render_remove(n) == ""
    # An open network adds no element to the table either.
    assert render_table(CASES["open"]) == render_table([])
    assert "element" not in render_table([])


def test_isolated_only_same_bridge_and_reject() -> None:
    elems = network_elements(CASES["isolated"][0])
    assert _names(elems) == {"bridges", "same_bridge", "isolated", "isolated4", "isolated6"}


def test_isolated_rejects_come_before_any_accept_into_another_bridge() -> None:
    """An isolated VM's packets must not reach a routed network's accept (libvirt 9.0 lets
    them in): every isolated reject precedes the first vmap into a bridge."""
    rules = list(CHAINS_BY_NAME["filter_forward"].rules)
    first_in = min(i for i, r in enumerate(rules) if "vmap @in" in r)
    for rule in ("iifname @isolated reject", "oifname @isolated reject",
                 "ip saddr @isolated4 reject with icmp port-unreachable",
                 "ip6 saddr @isolated6 reject with icmpv6 port-unreachable"):
        assert rules.index(rule) < first_in, rule


def test_nat_inbound_refusal_does_not_need_the_bridges_element() -> None:
    """The chain NAT's inbound verdict jumps to ends in its own reject: a deleted element of
    ``bridges`` does not open the network (fail closed)."""
    assert CHAINS_BY_NAME[EST_CHAIN].rules[-1] == "reject"


def test_nat_elements() -> None:
    elems = network_elements(CASES["nat"][0])
    s = Addrs.net(ipaddress.ip_network("192.168.122.0/24"))
    br = Ifname("virbr0")
    assert elems["out4"] == [Element((br, s))]
    assert elems["in4"] == [Element((br, s), (Verdict("jump forward_established"),))]
    assert elems["masq4"] == [Element((s,))]
    assert elems["masq4_ports"] == [Element((s,), (Verdict("goto masq_ports_1024_65535"),))]
    assert {e.render() for e in elems["nat4_skip"]} == {
        "192.168.122.0/24 . 192.168.122.0/24",
        "192.168.122.0/24 . 224.0.0.0/24",
        "192.168.122.0/24 . 255.255.255.255",
    }
    assert not any(k.startswith(("snat", "out6", "in6", "masq6")) for k in _names(elems))


def test_nat_forward_dev_restricts_both_directions() -> None:
    elems = network_elements(CASES["nat_dev"][0])
    assert "out4" not in elems and "in4" not in elems and "masq4" not in elems
    assert [e.render() for e in elems["out4_dev"]] == ['"virbr1" . "eth0" . 192.168.100.0/24']
    assert [e.render() for e in elems["in4_dev"]] == [
        '"eth0" . "virbr1" . 192.168.100.0/24 : jump forward_established'
    ]
    assert [e.render() for e in elems["masq4_dev"]] == ['192.168.100.0/24 . "eth0"']


def test_nat_address_range_is_snat_with_ports() -> None:
    elems = network_elements(CASES["nat_address_ports"][0])
    assert "masq4" not in elems
    assert [e.render() for e in elems["snat4_ports"]] == [
        "192.168.101.0/24 : 198.51.100.10-198.51.100.20 . 20000-30000"
    ]
    assert [e.render() for e in elems["snat4"]] == [
        "192.168.101.0/24 : 198.51.100.10-198.51.100.20"
    ]
    single = network_elements(CASES["nat_address_dev"][0])
    assert [e.render() for e in single["snat4_dev_ports"]] == [
        '192.168.102.0/24 . "eth1" : 203.0.113.7-203.0.113.7 . 1024-65535'
    ]


def test_nat_custom_ports_bring_their_own_chain() -> None:
    n = CASES["nat_ports"][0]
    assert [e.render() for e in network_elements(n)["masq4_ports"]] == [
        "192.168.103.0/24 : goto masq_ports_4000_5000"
    ]
    add = render_add(n)
    assert add.startswith(
        "add chain inet virtnet masq_ports_4000_5000\n"
        "flush chain inet virtnet masq_ports_4000_5000\n"
        "add rule inet virtnet masq_ports_4000_5000 "
        "meta l4proto { tcp, udp } masquerade to :4000-5000\n"
    )
    assert "chain masq_ports_4000_5000 {" in render_table([n])
    # Only TCP/UDP use the range; everything else gets a plain masquerade (libvirt).
    assert "masq4" in network_elements(n)


def test_ipv6_nat_only_with_nat_ipv6_yes() -> None:
    yes = network_elements(CASES["nat_ipv6"][0])
    no = network_elements(CASES["nat_ipv6_routed"][0])
    assert yes["masq6"] and yes["in6"][0].data == (Verdict("jump forward_established"),)
    assert "masq6" not in no and "nat6_skip" not in no
    # libvirt 9.0 routes a NAT network's IPv6 subnet: accepted in, any state.
    assert no["in6"][0].data == (Verdict("accept"),)
    assert {e.render() for e in yes["nat6_skip"]} == {
        "2001:db8:ca2:2::/64 . 2001:db8:ca2:2::/64",
        "2001:db8:ca2:2::/64 . ff02::/16",
    }


def test_route_accepts_any_state_and_no_nat() -> None:
    elems = network_elements(CASES["route"][0])
    assert all(e.data == (Verdict("accept"),) for e in elems["in4"] + elems["in6"])
    assert not any(k.startswith(("masq", "snat", "nat")) for k in elems)


def test_add_and_remove_touch_only_elements_of_one_network() -> None:
    for name in ("nat", "nat_dev", "route", "isolated", "nat_ipv6"):
        n = CASES[name][0]
        add, remove = render_add(n), render_remove(n)
        assert all(line.startswith("add element inet virtnet ") for line in add.splitlines())
        assert all(line.startswith("delete element inet virtnet ") for line in remove.splitlines())
        assert add.replace("add element", "delete element") == remove


def test_packet_path_is_constant_in_the_number_of_networks() -> None:
    many = [
        net(f"n{i}", NAT if i % 3 else ROUTE, f"vb{i}", f"10.{i // 256}.{i % 256}.1/24")
        for i in range(1000)
    ]
    one = render_table(many[:1])
    thousand = render_table(many)

    def chain_part(script: str) -> str:
        return script.split("add element")[0]

    assert chain_part(one) == chain_part(thousand)
    assert len(thousand.splitlines()) < len(one.splitlines()) + 20 * 1000 // 8 + 20
    counts = path_rule_count()
    assert counts["filter_forward"] == 17 and counts["nat_postrouting"] == 14
    # The incremental script for network #1000 is as small as for #1.
    assert len(render_add(many[999])) <= len(render_add(many[0])) + 60


@pytest.mark.parametrize("bad", ['vir"br0', "virbr0\n", "br'0", "br\\0", "eth*", "a;b", "x{y}"])
def test_hostile_interface_names_refused(bad: str) -> None:
    with pytest.raises(HostileInput) as err:
        render_add(net("evil", NAT, bad, "10.0.0.1/24"))
    assert "bridge name" in str(err.value)
    with pytest.raises(HostileInput):
        render_table([net("evil", NAT, "virbr0", "10.0.0.1/24", dev=bad)])


@pytest.mark.parametrize("bad", ["", "x" * 16, "a b", "a/b", ".."])
def test_invalid_interface_names_refused(bad: str) -> None:
    with pytest.raises(InvalidDefinition) as err:
        render_add(net("bad", ROUTE, bad, "10.0.0.1/24"))
    assert "fix:" in str(err.value)


def test_missing_bridge_name_and_bad_nat_range_are_definition_errors() -> None:
    n = net("nobr", NAT, "x", "10.0.0.1/24")
    from dataclasses import replace

    with pytest.raises(InvalidDefinition, match="no bridge name"):
        render_add(replace(n, bridge=None))
    from virtnet.model.network import NatAddressRange

    bad = net(
        "r", NAT, "vb", "10.0.0.1/24", nat=Nat(addresses=(NatAddressRange("1.2.3.9", "1.2.3.1"),))
    )
    with pytest.raises(InvalidDefinition, match="ascending IPv4"):
        render_add(bad)


def test_colliding_networks_are_refused_with_a_conflict() -> None:
    from virtnet.errors import Conflict

    a = net("a", NAT, "vba", "10.20.0.1/24")
    with pytest.raises(Conflict, match="both use bridge vba"):
        render_table([a, net("b", ROUTE, "vba", "10.21.0.1/24")])
    with pytest.raises(Conflict, match="overlaps 10.20.0.0/24 of network 'a'"):
        render_table([a, net("c", NAT, "vbc", "10.20.0.129/25")])
    with pytest.raises(Conflict, match="10.20.0.0/24 of network 'a' overlaps 10.0.0.0/8"):
        render_table([net("e", NAT, "vbe", "10.0.0.1/8", "10.30.0.1/24"), a])
    # Nested subnets in one network would collide in the interval sets too.
    with pytest.raises(InvalidDefinition, match="10.40.0.0/16 and 10.40.1.0/24 of network 'f'"):
        render_table([net("f", NAT, "vbf", "10.40.0.1/16", "10.40.1.1/24")])
    # Different families never clash.
    render_table([net("g", ROUTE, "vbg", "10.50.0.1/16", "2001:db8:40::1/64"), a])
    # An open network may reuse anything: it has no rules.
    assert render_table([a, net("d", OPEN, "vba", "10.20.0.1/24")]) == render_table([a])


def test_every_set_named_in_rules_is_declared_and_used() -> None:
    used = set()
    for chain in CHAINS:
        for rule in chain.rules:
            used |= set(re.findall(r"@(\w+)", rule))
    assert used == set(SETS_BY_NAME)


def test_merged_elements_keep_each_network() -> None:
    merged = merged_elements(CASES["mix"])
    bridges = {e.render() for e in merged["bridges"]}
    # open adds nothing; everything else with a bridge of its own is there.
    assert '"virbr10"' not in bridges
    assert len(bridges) == len([n for n in CASES["mix"] if n.mode != OPEN])


# --- libvirt 9.0's iptables rules, as facts, against ours --------------------------------


def _commands(text: str) -> list[list[str]]:
    cmds, cur = [], []
    for line in text.splitlines():
        cur.append(line.rstrip(" \\").strip())
        if not line.endswith("\\"):
            cmds.append([t for t in " ".join(cur).split() if t])
            cur = []
    return cmds


def _opt(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def _norm(addr: str) -> str:
    return Addrs.net(ipaddress.ip_network(addr)).render()


def libvirt_facts(args_text: str) -> set[tuple[str, ...]]:
    facts: set[tuple[str, ...]] = set()
    for cmd in _commands(args_text):
        if "--insert" not in cmd:
            continue
        fam = "6" if cmd[0] == "ip6tables" else "4"
        chain, jump = _opt(cmd, "--insert"), _opt(cmd, "--jump")
        iif, oif = _opt(cmd, "--in-interface"), _opt(cmd, "--out-interface")
        src, dst = _opt(cmd, "--source"), _opt(cmd, "--destination")
        if chain == "LIBVIRT_FWX":
            facts.add(("same_bridge", iif or ""))
        elif chain in ("LIBVIRT_FWO", "LIBVIRT_FWI") and jump == "REJECT":
            facts.add(("reject", iif or oif or ""))
        elif chain == "LIBVIRT_FWO":
            facts.add(("out", fam, iif or "", oif or "", _norm(src or "")))
        elif chain == "LIBVIRT_FWI":
            est = "ESTABLISHED,RELATED" in cmd
            facts.add(("in", fam, oif or "", iif or "", _norm(dst or ""), "est" if est else "any"))
        elif chain == "LIBVIRT_PRT" and jump == "MASQUERADE":
            ports = _opt(cmd, "--to-ports")
            facts.add(("masq", fam, _norm(src or ""), ports or ""))
        elif chain == "LIBVIRT_PRT" and jump == "RETURN":
            facts.add(("skip", fam, _norm(src or ""), _norm(dst or "")))
        elif chain == "LIBVIRT_PRT" and jump == "CHECKSUM":
            facts.add(("checksum", oif or ""))
        elif chain in ("LIBVIRT_INP", "LIBVIRT_OUT"):
            side = "in" if chain == "LIBVIRT_INP" else "out"
            facts.add(
                (
                    "host",
                    side,
                    iif or oif or "",
                    _opt(cmd, "--protocol") or "",
                    _opt(cmd, "--destination-port") or "",
                )
            )
    return facts


def our_facts(elems: dict[str, list[Element]]) -> set[tuple[str, ...]]:
    from virtnet.firewall import schema

    facts: set[tuple[str, ...]] = set()
    host = {
        "in": re.findall(r"(\w+) \. (\d+)", schema._HOST_IN),
        "out": re.findall(r"(\w+) \. (\d+)", schema._HOST_OUT),
    }
    for name, items in elems.items():
        for e in items:
            k = [p.render().strip('"') for p in e.key]
            v = [p.render() for p in e.data]
            fam = "6" if "6" in name else "4"
            if name == "same_bridge":
                facts.add(("same_bridge", k[0]))
            elif name == "bridges":
                facts.add(("reject", k[0]))
                facts.add(("checksum", k[0]))
                for side, pairs in host.items():
                    for proto, port in pairs:
                        facts.add(("host", side, k[0], proto, port))
            elif name in ("out4", "out6"):
                facts.add(("out", fam, k[0], "", k[1]))
            elif name in ("out4_dev", "out6_dev"):
                facts.add(("out", fam, k[0], k[1], k[2]))
            elif name in ("in4", "in6", "in4_dev", "in6_dev"):
                br, dev, sub = (k[0], "", k[1]) if len(k) == 2 else (k[1], k[0], k[2])
                facts.add(("in", fam, br, dev, sub, "est" if "jump" in v[0] else "any"))
            elif name in ("masq4", "masq6"):
                facts.add(("masq", fam, k[0], ""))
            elif name in ("masq4_ports", "masq6_ports"):
                lo, hi = re.findall(r"\d+", v[0].split("masq_ports_")[1])
                for _proto in ("tcp", "udp"):
                    facts.add(("masq", fam, k[0], f"{lo}-{hi}"))
            elif name in ("nat4_skip", "nat6_skip") and k[0] != k[1]:
                facts.add(("skip", fam, k[0], k[1]))
    return facts


CORPUS_CASES = [
    "nat-default",
    "nat-ipv6",
    "nat-ipv6-masquerade",
    "nat-many-ips",
    "nat-no-dhcp",
    "nat-tftp",
    "route-default",
]


@pytest.mark.parametrize("case", CORPUS_CASES)
def test_same_semantics_as_libvirt_iptables(case: str) -> None:
    """Every libvirt rule has its counterpart in our elements and vice versa, except the
    host-service accepts and the DHCP checksum fill, which we do on every bridge (libvirt
    leaves some out when a network has no DHCP/TFTP; accepting them anyway is harmless)."""
    libvirtxml = pytest.importorskip("virtnet.libvirtxml")
    if not CORPUS.is_dir():
        pytest.skip("libvirt corpus not present")
    n = libvirtxml.parse_network((CORPUS / f"{case}.xml").read_text())
    theirs = libvirt_facts((CORPUS / f"{case}-linux.args").read_text())
    ours = our_facts(network_elements(n))
    theirs_host = {f for f in theirs if f[0] in ("host", "checksum")}
    assert theirs_host <= ours, sorted(theirs_host - ours)
    core_theirs = theirs - theirs_host
    core_ours = {f for f in ours if f[0] not in ("host", "checksum")}
    assert core_theirs == core_ours, (
        sorted(core_theirs - core_ours),
        sorted(core_ours - core_theirs),
    )
