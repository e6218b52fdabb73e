"""The lab and ``virtnet verify`` for the macvtap direct modes (macvtap bridge, vepa, private,
passthrough): VMs are LAN stations leasing from the LAN's DHCP server, the host's macvtap
interfaces are veths into the LAN, the LAN switch hairpins or not, and verify finds the
observed matrix equal to the expected one -- with the modes' key facts checked explicitly."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import require_root
from virtnet import direct
from virtnet.cli.main import cli
from virtnet.errors import InvalidDefinition
from virtnet.host import netns as netns_mod
from virtnet.lab import bed, spec
from virtnet.model.network import ForwardMode
from virtnet.reach.expected import expected
from virtnet.reach.table import rows
from virtnet.reach.verify import verify

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lab" / "direct.yaml"
# A definition file's own pool: two more LAN interfaces the lab must create under these names.
POOL_XML = ("<network><name>mvfile</name><forward mode='bridge'>"
            "<interface dev='eth7'/><interface dev='eth8'/></forward></network>")


# -- pure: the lab description and the model ---------------------------------------------------


def test_shorthand_direct_modes() -> None:
    s = spec.parse({"vms_per_network": 3, "lan_hairpin": True, "networks": [
        {"mode": "macvtap-bridge"}, {"mode": "vepa"}, {"mode": "private"},
        {"mode": "passthrough"}, {"name": "own", "mode": "vepa", "interfaces": ["eth9"]}]})
    modes = [(n.name, n.mode) for n in s.networks]
    assert modes == [("macvtap-bridge", ForwardMode.BRIDGE), ("vepa", ForwardMode.VEPA),
                     ("private", ForwardMode.PRIVATE), ("passthrough", ForwardMode.PASSTHROUGH),
                     ("own", ForwardMode.VEPA)]
    pools = [direct.pool_of(n) for n in s.networks]
    # shared modes sit on eth0 (the host's address); passthrough: one interface per VM
    assert pools == [("eth0",), ("eth0",), ("eth0",), ("eth3p1", "eth3p2", "eth3p3"),
                     ("eth9",)]
    assert all(n.bridge is None and not n.ips for n in s.networks)
    assert spec.extra_uplinks(s.networks) == ["eth3p1", "eth3p2", "eth3p3", "eth9"]
    topo = spec.topology_of(s)
    assert topo.lan_hairpin is True and topo.uplink == "eth0"
    assert spec.from_flags(["bridge", "nat"]).networks[0].bridge_name == "br0"  # still bridged


@pytest.mark.parametrize(
    "data, words",
    [
        ({"networks": [{"mode": "vepa", "subnet": "192.168.5.0/24"}]}, "takes no subnet"),
        ({"networks": [{"mode": "nat", "interfaces": ["eth1"]}]}, "takes no interfaces"),
        ({"networks": [{"mode": "passthrough", "interfaces": ["eth1"]}]}, "one interface per VM"),
        ({"networks": [{"mode": "passthrough", "interfaces": ["eth0", "eth1"]}]},
         "host's own LAN interface"),
        ({"networks": [{"mode": "passthrough", "interfaces": ["eth1", "eth2"]},
                       {"mode": "vepa", "interfaces": ["eth2"]}]}, "one VM alone"),
        ({"networks": [{"mode": "bridge"}, {"mode": "macvtap-bridge"}]}, "port of br0"),
        ({"networks": [{"mode": "vepa", "interfaces": ["br0"]}]}, "cannot be a lab interface"),
        ({"networks": [{"mode": "vepa", "interfaces": ["a/b"]}]}, "cannot be a lab interface"),
        ({"networks": [{"mode": "vepa", "interfaces": []}]}, "empty interface pool"),
        ({"networks": [{"mode": "vepa", "interfaces": "eth1"}]}, "list of interface names"),
        ({"networks": [{"mode": "vepa"}], "lan_hairpin": "yes"}, "true or false"),
        ({"networks": [{"mode": "vepa"}, {"mode": "private"}], "vms_per_network": 26},
         "LAN's DHCP server"),
        ({"networks": [{"definition": "<network><name>h</name><forward mode='hostdev'>"
                                      "<pf dev='eth1'/></forward></network>"}]}, "SR-IOV"),
    ],
)
def test_what_the_lab_cannot_build_is_refused_up_front(data: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidDefinition) as exc:
        spec.parse(data)
    assert words in str(exc.value) and exc.value.hint


def test_model_a_nat_vm_reaches_macvtap_vms_the_host_can_see() -> None:
    """NAT VM -> macvtap VM: forwarded and masqueraded by the host, which works unless the
    macvtap device is the one holding the host's address (and the switch does not hairpin)."""
    s = spec.parse({"networks": [{"name": "mv", "mode": "macvtap-bridge"},
                                 {"name": "mv2", "mode": "macvtap-bridge",
                                  "interfaces": ["eth1"]},
                                 {"name": "nat", "mode": "nat"}]})
    for hairpin in (False, True):
        m = expected(spec.topology_of(spec.LabSpec(s.networks, lan_hairpin=hairpin)))
        on_eth0, on_eth1 = m.get("nat/vm1", "mv/vm1"), m.get("nat/vm1", "mv2/vm1")
        assert on_eth0 is not None and on_eth1 is not None
        assert on_eth0.reachable is hairpin
        assert on_eth1.reachable is True and on_eth1.seen_as == "host"
        back = m.get("mv2/vm1", "nat/vm1")  # the LAN's router does not route to the NAT subnet
        assert back is not None and back.reachable is False
        labels = {r.network: r.label for r in rows(m)}
        assert labels == {"mv": "macvtap bridge", "mv2": "macvtap bridge", "nat": "NAT"}


# -- host: real labs ------------------------------------------------------------------------------


def _spec(hairpin: bool) -> spec.LabSpec:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["lan_hairpin"] = hairpin
    data["networks"].append({"definition": POOL_XML})
    return spec.parse(data, base=EXAMPLE.parent)


@pytest.fixture(scope="module", params=[False, True], ids=["hairpin-off", "hairpin-on"])
def lab(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[bed.LabState]:
    require_root()
    state_dir = tmp_path_factory.mktemp("labdirect")
    st = bed.up(_spec(request.param), state_dir)
    try:
        yield st
    finally:
        bed.down(st)
        assert not [n for n in netns_mod.list_names() if n.startswith(st.mark + "-")]


def _ok(report: Any, src: str, dst: str) -> bool:
    """Observed src -> dst, ICMP and TCP agreeing."""
    seen = {r.key.proto: r.observed.ok for r in report.results
            if (r.key.src, r.key.dst, r.key.family) == (src, dst, "ipv4")}
    assert set(seen) == {"icmp", "tcp"}, f"{src} -> {dst} was not probed: {seen}"
    assert seen["icmp"] == seen["tcp"], f"{src} -> {dst}: {seen}"
    return seen["icmp"]


@pytest.mark.host
def test_verify_finds_the_macvtap_matrix_as_expected(lab: bed.LabState) -> None:
    report = verify(lab)
    assert not report.differences, "\n".join(
        f"{d.key}: expected {d.expected.reachable} ({d.expected.rule}), observed "
        f"{d.observed.detail}" for d in report.differences)
    hairpin = lab.lan_hairpin
    assert report.matrix.topology.lan_hairpin is hairpin
    # macvtap bridge: VMs switched on eth0; the host and its own macvtap VMs never meet
    # (unless the switch reflects the host's frames back)
    assert _ok(report, "mvbridge/vm1", "mvbridge/vm2")
    assert _ok(report, "host", "mvbridge/vm1") is hairpin
    assert _ok(report, "mvbridge/vm2", "host") is hairpin
    # vepa: VM to VM only through a hairpin switch; private: never
    assert _ok(report, "mvvepa/vm1", "mvvepa/vm2") is hairpin
    assert not _ok(report, "mvprivate/vm1", "mvprivate/vm2")
    assert not _ok(report, "mvprivate/vm2", "mvprivate/vm1")
    # passthrough and a definition's own pool: other interfaces than the host's, so the host
    # reaches them through the LAN
    assert _ok(report, "host", "mvpass/vm1") and _ok(report, "mvpass/vm2", "host")
    assert _ok(report, "host", "mvfile/vm1") and _ok(report, "mvfile/vm1", "mvfile/vm2")
    # every macvtap VM reaches the outside and is visible from it
    for net in ("mvbridge", "mvvepa", "mvprivate", "mvpass", "mvfile"):
        for i in (1, 2):
            assert _ok(report, "outside1", f"{net}/vm{i}") and _ok(report, f"{net}/vm{i}",
                                                                    "outside1")
    # a NAT VM reaches passthrough VMs masqueraded; not the eth0 ones unless hairpin
    assert _ok(report, "nat/vm1", "mvpass/vm1") and not _ok(report, "mvpass/vm1", "nat/vm1")
    assert _ok(report, "nat/vm1", "mvbridge/vm1") is hairpin


@pytest.mark.host
def test_the_lab_built_what_the_modes_need(lab: bed.LabState) -> None:
    # Every macvtap VM leased its address from the LAN's DHCP server, through its macvlan.
    leases = bed.lan_leases(lab)
    direct_vms = [v for v in lab.vms if v["network"] != "nat"]
    assert len(direct_vms) == 10
    for vm in direct_vms:
        assert vm["ipv4"] and f" {vm['ipv4']} " in leases, (vm, leases)
        assert vm["mac"].lower() in leases.lower()
        link = json.loads(subprocess.run(["ip", "-n", vm["netns"], "-d", "-j", "link", "show",
                                          "eth0"], capture_output=True, text=True).stdout)[0]
        assert link["linkinfo"]["info_kind"] == "macvlan"
    host_links = {ln["ifname"]: ln for ln in json.loads(subprocess.run(
        ["ip", "-n", lab.host_ns, "-j", "link"], capture_output=True, text=True).stdout)}
    assert {"eth3p1", "eth3p2", "eth7", "eth8"} <= set(host_links)
    # passthrough gave each of its interfaces the VM's MAC; ARP flux kept off
    macs = {v["id"]: v["mac"].lower() for v in lab.vms}
    assert {host_links["eth3p1"]["address"], host_links["eth3p2"]["address"]} == {
        macs["mvpass/vm1"], macs["mvpass/vm2"]}
    arp = subprocess.run(["ip", "netns", "exec", lab.host_ns, "sysctl", "-n",
                          "net.ipv4.conf.all.arp_ignore"], capture_output=True, text=True)
    assert arp.stdout.strip() == "1"
    # hairpin exactly on the LAN ports facing the host's macvtap interfaces (up0 is eth0's)
    ports = json.loads(subprocess.run(["bridge", "-n", lab.lan_ns, "-d", "-j", "link"],
                                      capture_output=True, text=True).stdout)
    hair = {p["ifname"]: p.get("hairpin", False) for p in ports}
    assert hair["o1"] is False
    assert {hair[p] for p in ("up0", "h1", "h2", "h3", "h4")} == {lab.lan_hairpin}


@pytest.mark.host
def test_cli_lab_up_example_and_verify(tmp_path: Path) -> None:
    """The brief's promise: `virtnet lab up examples/lab/direct.yaml && virtnet verify`."""
    require_root()
    runner = CliRunner()
    up = runner.invoke(cli, ["--state-dir", str(tmp_path), "lab", "up", str(EXAMPLE)])
    labs = bed.list_labs(tmp_path)
    try:
        assert up.exit_code == 0, up.output
        res = runner.invoke(cli, ["--state-dir", str(tmp_path), "--output", "json", "verify"])
        assert res.exit_code == 0, res.output
        data = json.loads(res.output[res.output.index("{"):])
        assert not [r for r in data["results"] if r["differs"]]
        table = {r["network"]: (r["row"], r["cells"]) for r in data["observed_table"]}
        assert table["mvbridge"][0] == "macvtap bridge"
        assert table["mvbridge"][1]["Connection to the host"] == "no"
        assert table["mvprivate"][1]["Connection to other VMs on the host"] == "no"
        assert table["mvpass"][1]["Visible to outside locations"] == "YES"
    finally:
        for st in labs or bed.list_labs(tmp_path):
            bed.down(st)
