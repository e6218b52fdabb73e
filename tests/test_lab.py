"""The lab: built in namespaces, real leases, two labs side by side, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root
from virtnet.errors import InvalidDefinition, VirtnetError
from virtnet.host import netns as netns_mod
from virtnet.lab import bed, spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "lab"


def _leftovers(mark: str) -> list[str]:
    found = [n for n in netns_mod.list_names() if n.startswith(mark + "-")]
    found += [str(p) for p in bed.ETC_NETNS.glob(f"{mark}-*")] if bed.ETC_NETNS.is_dir() else []
    return found


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # Whatever a test did, its labs go (and only its labs: the marks recorded here).
    marks = {p.stem for p in (tmp_path / "labs").glob("vl*.json")}
    if marks:
        bed.down_all(tmp_path, only=marks)


# -- pure: the lab description ----------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_lab_files_load(path: Path) -> None:
    s = spec.load(path)
    assert s.networks and s.vms_per_network >= 1


@pytest.mark.parametrize(
    "data, words",
    [
        ({"networks": []}, "non-empty"),
        ({"networks": [{"mode": "hostdev"}]}, "not one of"),
        ({"networks": [{"mode": "bridge"}, {"name": "b2", "mode": "bridge"}]}, "one LAN"),
        ({"networks": [{"mode": "nat", "subnet": "10.0.0.0/24"},
                       {"mode": "route", "subnet": "10.0.0.0/16"}]}, "overlap"),
        ({"networks": [{"mode": "nat", "subnet": "203.0.113.0/25"}]}, "LAN"),
        ({"networks": [{"mode": "nat"}], "vms_per_network": 0}, "vms_per_network"),
        ({"networks": [{"mode": "nat"}], "colour": "red"}, "unknown lab keys"),
        ({"networks": [{"mode": "nat", "subnet": "not-a-net"}]}, "networks[0]"),
        ({"networks": [{"name": "a", "mode": "nat"}, {"name": "a", "mode": "route"}]}, "named"),
        ({"networks": [{"mode": "nat", "ipv6": "2001:db8::/48"}]}, "/64"),
    ],
)
def test_bad_lab_descriptions_are_clear_errors(data: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidDefinition) as exc:
        spec.parse(data)
    assert words in str(exc.value)


def test_lab_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidDefinition, match="does not exist"):
        spec.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("networks: [\n")
    with pytest.raises(InvalidDefinition, match="not valid YAML"):
        spec.load(bad)


def test_flags_name_repeated_modes_apart() -> None:
    s = spec.from_flags(["nat", "nat", "route"])
    assert [n.name for n in s.networks] == ["nat0", "nat1", "route"]
    assert len({n.bridge_name for n in s.networks}) == 3


# -- host: real namespaces ----------------------------------------------------------------------


@pytest.mark.host
def test_lab_up_gives_real_leases_and_down_leaves_nothing(state_dir: Path) -> None:
    require_root()
    s = spec.from_flags(["nat", "isolated"], vms=2)
    st = bed.up(s, state_dir)
    try:
        assert st.status == "up"
        assert all(netns_mod.exists(n) for n in st.namespaces)
        # Every VM holds the lease virtnet's dnsmasq handed out (its lease file says so).
        eng = bed.engine_for(st)
        try:
            leased = {(lease.mac.lower(), lease.ip) for net in ("nat", "isolated")
                      for lease in eng.leases(net)}
        finally:
            eng.close()
        for vm in st.vms:
            assert vm["ipv4"], vm
            assert (vm["mac"].lower(), vm["ipv4"]) in leased, (vm, leased)
            assert (bed.ETC_NETNS / vm["netns"] / "resolv.conf").exists()
        # An isolated VM got no default route (dhcp-option=3 is empty), a nat VM did.
        routes = {vm["id"]: subprocess.run(["ip", "-n", vm["netns"], "route", "show",
                                            "default"], capture_output=True, text=True).stdout
                  for vm in st.vms}
        assert "via 192.168.100.1" in routes["nat/vm1"]
        assert routes["isolated/vm1"].strip() == ""
        record = json.loads(bed.state_path(state_dir, st.mark).read_text())
        assert record["status"] == "up" and record["pids"]
        pids = record["pids"]
    finally:
        removed = bed.down(st)
    assert removed
    assert _leftovers(st.mark) == []
    assert not bed.state_path(state_dir, st.mark).exists()
    assert not any(os.path.exists(f"/proc/{p}") and bed._alive(p) for p in pids)


@pytest.mark.host
def test_two_labs_coexist(state_dir: Path) -> None:
    require_root()
    s = spec.from_flags(["nat"], vms=1)
    a = bed.up(s, state_dir)
    b = bed.up(s, state_dir)
    try:
        assert a.mark != b.mark
        assert set(a.namespaces).isdisjoint(b.namespaces)
        assert {lab.mark for lab in bed.list_labs(state_dir)} == {a.mark, b.mark}
        assert a.vms[0]["ipv4"] and b.vms[0]["ipv4"]
    finally:
        bed.down(a)
    assert _leftovers(a.mark) == []
    assert all(netns_mod.exists(n) for n in b.namespaces)  # the other lab is untouched
    bed.down(b)
    assert _leftovers(b.mark) == []


@pytest.mark.host
def test_down_all_finds_a_crashed_labs_leftovers_by_mark(state_dir: Path) -> None:
    require_root()
    st = bed.up(spec.from_flags(["nat"], vms=1), state_dir)
    dnsmasq = subprocess.run(["ip", "netns", "pids", st.host_ns], capture_output=True,
                             text=True).stdout.split()
    assert dnsmasq
    # The crash: the state file is gone, namespaces, /etc/netns and dnsmasq are still there.
    bed.state_path(state_dir, st.mark).unlink()
    assert _leftovers(st.mark)
    removed = bed.down_all(state_dir, only={st.mark})
    assert st.mark in removed and removed[st.mark]
    assert _leftovers(st.mark) == []
    assert not any(bed._alive(int(p)) for p in dnsmasq)


@pytest.mark.host
def test_failed_build_leaves_nothing(state_dir: Path) -> None:
    require_root()
    # A network the engine refuses (two bridges with one name) fails mid-build.
    s = spec.from_flags(["nat", "route"], vms=1)
    from dataclasses import replace

    clash = replace(s.networks[1], bridge=s.networks[0].bridge)
    s = replace(s, networks=(s.networks[0], clash))
    mark = bed.new_mark()
    with pytest.raises(VirtnetError):
        bed.up(s, state_dir, mark=mark)
    assert _leftovers(mark) == []
    assert not bed.state_path(state_dir, mark).exists()


@pytest.mark.host
def test_down_all_keeps_another_state_dirs_live_lab(state_dir: Path, tmp_path: Path) -> None:
    require_root()
    other = tmp_path / "other-state"
    st = bed.up(spec.from_flags(["nat"], vms=1), other)
    try:
        removed = bed.down_all(state_dir, only={st.mark})
        assert st.mark not in removed
        assert all(netns_mod.exists(n) for n in st.namespaces)
    finally:
        bed.down(st)
    assert _leftovers(st.mark) == []
    assert not (bed.REGISTRY / st.mark).exists()


@pytest.mark.host
def test_bridged_vms_lease_from_the_lans_dhcp_server(state_dir: Path) -> None:
    require_root()
    st = bed.up(spec.from_flags(["bridge", "nat"], vms=1), state_dir)
    try:
        vm = next(v for v in st.vms if v["network"] == "bridge")
        lo, hi = (int(a.split(".")[-1]) for a in bed.LAN_DHCP)
        assert vm["ipv4"].startswith("203.0.113.") and lo <= int(vm["ipv4"].split(".")[-1]) <= hi
        assert f" {vm['ipv4']} " in bed.lan_leases(st)  # the LAN's server, not virtnet's
        route = subprocess.run(["ip", "-n", vm["netns"], "route", "show", "default"],
                               capture_output=True, text=True).stdout
        assert f"via {bed.LAN_GATEWAY_V4}" in route
        # The host's LAN address moved onto the bridge that enslaves its uplink.
        br = subprocess.run(["ip", "-n", st.host_ns, "-j", "addr", "show", "dev", "br0"],
                            capture_output=True, text=True).stdout
        assert "203.0.113.1" in br
    finally:
        bed.down(st)
    assert _leftovers(st.mark) == []
