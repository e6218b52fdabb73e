"""Break a mode on purpose: verify reports exactly that difference, and nothing else."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root
from virtnet.demo import demo_spec
from virtnet.host import netns as netns_mod
from virtnet.lab import bed
from virtnet.reach.verify import verify

pytestmark = pytest.mark.host


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[bed.LabState]:
    require_root()
    st = bed.up(demo_spec(vms=1), tmp_path)
    try:
        yield st
    finally:
        bed.down(st)


def _forward_chains(netns: str) -> list[str]:
    out = netns_mod.run(netns, ["nft", "-j", "list", "table", "inet", "virtnet"]).stdout
    return [i["chain"]["name"] for i in json.loads(out)["nftables"]
            if "chain" in i and i["chain"].get("hook") == "forward"]


def _nft(netns: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "nft", *args], check=True)


def test_intact_lab_has_no_difference(lab: bed.LabState) -> None:
    assert verify(lab).differences == []


def test_removing_nats_inbound_guard_shows_exactly_that(lab: bed.LabState) -> None:
    nat = next(n for n in lab.network_defs() if n.name == "nat")
    chains = _forward_chains(lab.host_ns)
    assert chains
    for chain in chains:  # accept into the nat bridge before virtnet's guard can reject
        _nft(lab.host_ns, "insert", "rule", "inet", "virtnet", chain,
             "oifname", f'"{nat.bridge_name}"', "accept")
    report = verify(lab)
    got = {(d.key.src, d.key.dst, d.key.proto) for d in report.differences}
    # New connections into nat now arrive from everywhere that has a route there: the outside
    # host (route via the VM host), and VMs of route and open networks. Isolated VMs have no
    # route; the host and nat's own VMs reached it before.
    want = {(src, "nat/vm1", proto) for src in ("outside1", "route/vm1", "open/vm1")
            for proto in ("icmp", "tcp")}
    assert got == want
    for d in report.differences:
        assert d.expected.reachable is False and d.observed.ok is True
        assert "inbound guard" in d.expected.rule


def test_removing_masquerade_is_seen_by_the_far_end(lab: bed.LabState) -> None:
    # Without NAT the outside host (which routes the VM subnets) still answers, but sees the
    # VM's own address: verify notices that masquerading is gone.
    out = netns_mod.run(lab.host_ns, ["nft", "-j", "list", "table", "inet", "virtnet"]).stdout
    for item in json.loads(out)["nftables"]:
        c = item.get("chain")
        if c and c.get("hook") == "postrouting":
            _nft(lab.host_ns, "insert", "rule", "inet", "virtnet", c["name"], "accept")
    report = verify(lab)
    diffs = report.differences
    assert all(d.key.src == "nat/vm1" for d in diffs)
    seen = {d.key.dst for d in diffs if d.key.proto == "tcp" and d.observed.ok}
    assert seen == {"outside1", "route/vm1", "open/vm1"}
    for d in diffs:
        if d.observed.ok:
            assert d.expected.seen_as == "host" and d.seen_as == "itself"
    # The bridged VM has no route back to the nat subnet (its router is the LAN's): without
    # masquerading it cannot answer at all.
    lost = {(d.key.dst, d.key.proto) for d in diffs if not d.observed.ok}
    assert lost == {("bridge/vm1", "icmp"), ("bridge/vm1", "tcp")}
