"""The expected matrix, over many generated topologies (pure: no root, milliseconds)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virtnet.lab.spec import shorthand_network
from virtnet.model.network import Bridge, Forward, ForwardMode, Nat, Network
from virtnet.reach import SEED_TABLE, Kind, Outside, Topology, expected, rows
from virtnet.reach.table import DEPENDS, NO, YES

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
SEED = SHARED / "seed" / "network-connection-types.txt"


def bridged(name: str = "lan") -> Network:
    return Network(name=name, forward=Forward(mode=ForwardMode.BRIDGE), bridge=Bridge(name="br0"))


def canonical_five() -> list[Network]:
    nets = [shorthand_network(m, i) for i, m in enumerate(["nat", "route", "isolated", "open"])]
    return [bridged(), *nets]


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    modes = draw(st.lists(st.sampled_from(["nat", "route", "isolated", "open", "bridge"]),
                          min_size=1, max_size=5))
    nets: list[Network] = []
    for i, mode in enumerate(modes):
        if mode == "bridge":
            if any(n.mode is ForwardMode.BRIDGE for n in nets):
                continue
            nets.append(bridged(f"br{i}"))
            continue
        v6 = f"2001:db8:{i + 1:x}::/64" if draw(st.booleans()) else None
        net = shorthand_network(mode, i, name=f"n{i}{mode}", ipv6=v6)
        if mode == "nat" and v6 and draw(st.booleans()):
            assert net.forward is not None
            net = replace(net, forward=replace(net.forward, nat=Nat(ipv6=True)))
        nets.append(net)
    outside = tuple(Outside(f"outside{j}", routes_to_vms=draw(st.booleans()))
                    for j in range(1, draw(st.integers(1, 2)) + 1))
    return Topology(networks=tuple(nets), vms_per_network=draw(st.integers(1, 3)),
                    outside=outside, host_ruleset=draw(st.sampled_from([None, {"nftables": []}])))


def _mode(topo: Topology, ep_id: str) -> ForwardMode | None:
    for n in topo.networks:
        if ep_id.startswith(n.name + "/"):
            return n.mode
    return None


@settings(max_examples=150, deadline=None)
@given(topologies())
def test_invariants_hold_for_any_topology(topo: Topology) -> None:
    m = expected(topo)
    kinds = {e.id: e for e in m.endpoints}
    for key, v in m:
        assert v.rule, key
        src, dst = kinds[key.src], kinds[key.dst]
        smode, dmode = _mode(topo, key.src), _mode(topo, key.dst)
        # Isolated: nothing in or out but the host and its own bridge.
        if ForwardMode.ISOLATED in (smode, dmode) and Kind.HOST not in (src.kind, dst.kind) \
                and src.network != dst.network:
            assert v.reachable is False, (key, v)
        # NAT is never visible: no new connection into a nat network from anywhere else (IPv4).
        if dmode is ForwardMode.NAT and key.family == "ipv4" and src.kind is not Kind.HOST \
                and src.network != dst.network:
            assert v.reachable is False, (key, v)
            assert "inbound guard" in v.rule or "no route" in v.rule, (key, v)
        # Every managed mode: a VM reaches its host and the VMs on its own bridge.
        if smode in (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.ISOLATED) and (
            dst.kind is Kind.HOST or dst.network == src.network
        ):
            assert v.reachable is True, (key, v)
        # "depends" only where open mode meets host rules nobody read.
        if v.reachable is None:
            assert topo.host_ruleset is None and ForwardMode.OPEN in (smode, dmode)
        # Masquerade only out of nat, only for IPv4 or nat ipv6='yes', never to the host.
        if v.seen_as == "host":
            assert smode is ForwardMode.NAT and dst.kind is not Kind.HOST
        # Outside hosts see route networks exactly when they have a route there.
        if src.kind is Kind.OUTSIDE and dmode is ForwardMode.ROUTE:
            assert v.reachable is topo.outside_host(src.id).routes_to_vms, (key, v)
        if src.kind is Kind.OUTSIDE and dmode is ForwardMode.BRIDGE:
            assert v.reachable is True


@settings(max_examples=100, deadline=None)
@given(topologies())
def test_symmetric_facts(topo: Topology) -> None:
    m = expected(topo)
    for key, v in m:
        back = m.get(key.dst, key.src, key.family, key.proto)
        assert back is not None, key  # every pair is there both ways
        smode, dmode = _mode(topo, key.src), _mode(topo, key.dst)
        same_net = smode is not None and key.src.split("/")[0] == key.dst.split("/")[0]
        if same_net or Kind.HOST.value in (key.src, key.dst) and smode is not ForwardMode.OPEN \
                and dmode is not ForwardMode.OPEN:
            assert v.reachable == back.reachable, key
        # Routed both ways between route networks.
        if smode is ForwardMode.ROUTE and dmode is ForwardMode.ROUTE:
            assert v.reachable is True and back.reachable is True
        # nat reaches route, never the other way round.
        if smode is ForwardMode.NAT and dmode is ForwardMode.ROUTE and key.family == "ipv4":
            assert v.reachable is True and v.seen_as == "host"
            assert back.reachable is False


def test_icmp_and_tcp_agree_without_host_rules() -> None:
    m = expected(Topology(networks=tuple(canonical_five())))
    for key, v in m:
        other = m.get(key.src, key.dst, key.family, "icmp" if key.proto == "tcp" else "tcp")
        assert other is not None and other.reachable == v.reachable


def _seed_file_table() -> dict[str, tuple[str, ...]]:
    text = SEED.read_text()
    start = text.index("16.2.6.")
    out: dict[str, tuple[str, ...]] = {}
    for line in text[start:].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].endswith(("mode", "NAT")):
            vals = [c for c in cells[1:] if c]
            out[cells[0]] = tuple(vals * 4 if len(vals) == 1 else vals)
    return out


def test_seed_table_constant_is_the_seed_file() -> None:
    parsed = _seed_file_table()
    assert set(parsed) == set(SEED_TABLE)
    for label, cells in parsed.items():
        norm = tuple(re.sub("[’']", "'", c) for c in cells)
        assert norm == SEED_TABLE[label], label


def test_canonical_five_give_the_seed_table() -> None:
    m = expected(Topology(networks=tuple(canonical_five())))
    table = {r.label: r.cells for r in rows(m, seed_style=True)}
    assert table == SEED_TABLE
    # Without seed style, open mode says what is not known rather than a guess.
    raw = {r.label: r.cells for r in rows(m)}
    assert raw["Open mode"] == (DEPENDS,) * 4


def test_open_mode_with_no_host_rules_is_decided_by_forwarding() -> None:
    nets = canonical_five()
    m = expected(Topology(networks=tuple(nets), host_ruleset={"nftables": []}))
    row = next(r for r in rows(m) if r.label == "Open mode")
    assert row.cells == (YES, YES, YES, YES)
    off = expected(Topology(networks=tuple(nets), host_ruleset={"nftables": []},
                            ip_forward=False))
    row = next(r for r in rows(off) if r.label == "Open mode")
    assert row.cells == (YES, YES, NO, NO)
    v = off.get("open/vm1", "outside1")
    assert v is not None and "forwarding off" in v.rule


def _ruleset(policy: str, *rules: list[dict[str, object]]) -> dict[str, object]:
    items: list[dict[str, object]] = [
        {"table": {"family": "inet", "name": "hostfw", "handle": 1}},
        {"chain": {"family": "inet", "table": "hostfw", "name": "fwd", "handle": 1,
                   "type": "filter", "hook": "forward", "prio": 0, "policy": policy}},
    ]
    for i, expr in enumerate(rules):
        items.append({"rule": {"family": "inet", "table": "hostfw", "chain": "fwd",
                               "handle": 2 + i, "expr": expr}})
    return {"nftables": items}


def _iif(name: str) -> dict[str, object]:
    return {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": name}}


def test_open_mode_reads_host_rules() -> None:
    nets = canonical_five()
    open_br = next(n for n in nets if n.mode is ForwardMode.OPEN).bridge_name
    assert open_br
    est = {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                     "right": ["established", "related"]}}
    # Docker-style: forward policy drop, only the open network's outbound and replies accepted.
    rs = _ruleset("drop", [est, {"accept": None}], [_iif(open_br), {"accept": None}])
    m = expected(Topology(networks=tuple(nets), host_ruleset=rs))
    out = m.get("open/vm1", "outside1")
    vis = m.get("outside1", "open/vm1")
    assert out is not None and out.reachable is True
    assert vis is not None and vis.reachable is False and "policy drop" in vis.rule
    # A host drop policy is final in nftables: it breaks route mode too, and says so.
    rt = m.get("outside1", "route/vm1")
    assert rt is not None and rt.reachable is False and "host firewall" in rt.rule
    # A rule the evaluator does not understand gives "depends", naming the rule.
    odd = {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 7}}
    m2 = expected(Topology(networks=tuple(nets), host_ruleset=_ruleset("accept", [odd, {
        "drop": None}])))
    v = m2.get("open/vm1", "outside1")
    assert v is not None and v.reachable is None and "mark" in v.rule


def test_nat_ipv6_is_routed_unless_nat_ipv6_yes() -> None:
    nat = shorthand_network("nat", 0, ipv6="2001:db8:1::/64")
    m = expected(Topology(networks=(nat,)))
    v6 = m.get("outside1", "nat/vm1", "ipv6")
    v4 = m.get("outside1", "nat/vm1", "ipv4")
    assert v4 is not None and v4.reachable is False
    assert v6 is not None and v6.reachable is True and "route" in v6.rule
    assert nat.forward is not None
    masq = replace(nat, forward=replace(nat.forward, nat=Nat(ipv6=True)))
    m = expected(Topology(networks=(masq,)))
    v6 = m.get("outside1", "nat/vm1", "ipv6")
    assert v6 is not None and v6.reachable is False
    out6 = m.get("nat/vm1", "outside1", "ipv6")
    assert out6 is not None and out6.seen_as == "host"


def test_nat_forward_dev_restricts_egress() -> None:
    nat = shorthand_network("nat", 0)
    rt = shorthand_network("route", 1)
    assert nat.forward is not None
    nat = replace(nat, forward=replace(nat.forward, dev="eth0"))
    m = expected(Topology(networks=(nat, rt), uplink="eth0"))
    out = m.get("nat/vm1", "outside1")
    cross = m.get("nat/vm1", "route/vm1")
    assert out is not None and out.reachable is True
    # The route network's FWI lets the request in (before nat's FWO is consulted: libvirt's
    # chain order), but nat with a forward dev takes replies only from that dev.
    assert cross is not None and cross.reachable is False
    assert cross.rule.startswith("replies:") and "forward dev" in cross.rule
    m2 = expected(Topology(networks=(nat, shorthand_network("open", 1)), uplink="eth0"))
    to_open = m2.get("nat/vm1", "open/vm1")
    assert to_open is not None and to_open.reachable is False and "forward dev" in to_open.rule


def test_without_outside_routes_routed_mode_is_one_way_dead() -> None:
    rt = shorthand_network("route", 0)
    m = expected(Topology(networks=(rt,), outside=(Outside("outside1", routes_to_vms=False),)))
    for a, b in (("route/vm1", "outside1"), ("outside1", "route/vm1")):
        v = m.get(a, b)
        assert v is not None and v.reachable is False and "no route" in v.rule


@pytest.mark.parametrize("mode", ["private", "vepa", "passthrough"])
def test_macvtap_modes_never_reach_their_host(mode: str) -> None:
    net = Network(name="mv", forward=Forward(mode=ForwardMode(mode), dev="eth1"))
    m = expected(Topology(networks=(net,)))
    v = m.get("mv/vm1", "host")
    assert v is not None and v.reachable is False and "macvtap" in v.rule
    out = m.get("outside1", "mv/vm1")
    assert out is not None and out.reachable is True
