"""The rules and their messages, on hand-built views; mode names; file-reader errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtnet.errors import HostileInput, InvalidDefinition, NotFound, UnsafeHostConfig
from virtnet.hostcfg import (
    MODES,
    BondSettings,
    HostView,
    Link,
    LinkKind,
    check_view,
    parse_mode,
    read_files,
    read_sysfs,
)
from virtnet.hostcfg.files import MAX_FILE_BYTES


def _bridge_on_bond(mode: int, *, miimon: int = 100, arp: int = 0) -> HostView:
    links = {
        "eth1": Link("eth1", LinkKind.ETHERNET),
        "eth2": Link("eth2", LinkKind.ETHERNET),
        "bond0": Link(
            "bond0",
            LinkKind.BOND,
            "up",
            ("eth1", "eth2"),
            bond=BondSettings(MODES[mode], miimon, arp),
        ),
        "br0": Link("br0", LinkKind.BRIDGE, "up", ("bond0",)),
    }
    return HostView(links, source="test")


@pytest.mark.parametrize("number", range(7))
def test_mode_names_round_trip(number: int) -> None:
    m = MODES[number]
    assert m.number == number
    for spelling in (m.name, str(number), f"{m.name} {number}", m.proc_name, number):
        assert parse_mode(spelling) is m


@pytest.mark.parametrize("bad", ["balance", "7", "active-backup 2", "", "-1"])
def test_unknown_modes_are_refused_with_the_list(bad: str) -> None:
    with pytest.raises(InvalidDefinition) as exc:
        parse_mode(bad)
    assert exc.value.hint and "active-backup (1)" in exc.value.hint


@pytest.mark.parametrize(
    "number,why",
    [
        (0, "MAC flapping"),
        (3, "duplicated"),
        (5, "MAC addresses get lost"),
        (6, "rewrites the source MAC of ARP replies"),
    ],
)
def test_unsafe_mode_error_names_bond_mode_reason_and_fix(number: int, why: str) -> None:
    report = check_view(_bridge_on_bond(number), ["br0"])
    with pytest.raises(UnsafeHostConfig) as exc:
        report.raise_if_refused()
    err = exc.value
    text = str(err)
    assert err.exit_status == 9
    assert err.element == "bridge br0"
    assert f"bond bond0 under bridge br0 uses mode {number} ({MODES[number].name})" in text
    assert why in text
    assert "use mode 1 (active-backup), 2 (balance-xor) or 4" in text and "miimon=100" in text
    assert "--force" in text


@pytest.mark.parametrize("number", [1, 2, 4])
def test_safe_modes_with_mii_pass(number: int) -> None:
    report = check_view(_bridge_on_bond(number), ["br0"])
    assert report.ok and not report.warnings
    assert report.uplinks("br0") == ["bond0"]
    report.raise_if_refused()  # nothing raised


@pytest.mark.parametrize("number", [1, 2])
def test_arp_monitoring_is_refused_even_in_good_modes(number: int) -> None:
    report = check_view(_bridge_on_bond(number, miimon=0, arp=500), ["br0"])
    assert [v.code for v in report.refused] == ["arp-monitoring"]
    assert "arp_interval=500" in report.refused[0].message
    assert report.refused[0].fix == "on bond0 set arp_interval=0 and miimon=100 (MII monitoring)"


def test_arp_in_modes_the_kernel_refuses_says_so() -> None:
    v = check_view(_bridge_on_bond(4, miimon=0, arp=500), ["br0"]).refused[0]
    assert "kernel refuses ARP monitoring in mode 4 (802.3ad)" in v.message


def test_no_monitoring_is_refused() -> None:
    report = check_view(_bridge_on_bond(1, miimon=0), ["br0"])
    assert [v.code for v in report.refused] == ["no-miimon"]


def test_standalone_bond_is_checked_when_no_bridge_is_named() -> None:
    view = HostView(
        {"bond0": Link("bond0", LinkKind.BOND, ports=(), bond=BondSettings(MODES[3], 100))},
        source="test",
    )
    report = check_view(view)
    assert [(v.bridge, v.code) for v in report.refused] == [(None, "bond-mode")]
    assert "(under no bridge)" in report.refused[0].message


def test_ignored_ports_are_not_uplinks() -> None:
    view = _bridge_on_bond(1)
    from virtnet.hostcfg import check_bridge

    verdicts = check_bridge(view, "br0", ignore_ports=["bond0"])
    assert [v.code for v in verdicts] == ["no-uplink"]


def test_report_json_shape() -> None:
    d = check_view(_bridge_on_bond(0), ["br0"]).to_dict()
    assert d["ok"] is False
    assert d["verdicts"][0]["severity"] == "refused"
    assert d["verdicts"][0]["code"] == "bond-mode"


# --- file readers: every bad input is a clear error -------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        read_files([tmp_path / "nope.nmconnection"])


def test_keyfile_without_connection_section(tmp_path: Path) -> None:
    p = tmp_path / "x.nmconnection"
    p.write_text("[bond]\nmode=1\n")
    with pytest.raises(InvalidDefinition, match=r"no \[connection\] section"):
        read_files([p])


def test_keyfile_bad_miimon(tmp_path: Path) -> None:
    p = tmp_path / "bond0.nmconnection"
    p.write_text("[connection]\ntype=bond\ninterface-name=bond0\n[bond]\nmode=1\nmiimon=fast\n")
    with pytest.raises(InvalidDefinition) as exc:
        read_files([p])
    assert "miimon='fast' is not a number" in str(exc.value)
    assert str(p) in str(exc.value)


def test_keyfile_unknown_mode(tmp_path: Path) -> None:
    p = tmp_path / "bond0.nmconnection"
    p.write_text("[connection]\ntype=bond\ninterface-name=bond0\n[bond]\nmode=round-robin\n")
    with pytest.raises(InvalidDefinition, match="unknown bond mode 'round-robin'"):
        read_files([p])


def test_keyfile_controller_not_given(tmp_path: Path) -> None:
    p = tmp_path / "eth1.nmconnection"
    p.write_text("[connection]\ntype=ethernet\ninterface-name=eth1\nmaster=br9\n")
    with pytest.raises(InvalidDefinition, match="controller 'br9' is not among these files"):
        read_files([p])


def test_interface_defined_twice(tmp_path: Path) -> None:
    a, b = tmp_path / "a.nmconnection", tmp_path / "b.nmconnection"
    for p in (a, b):
        p.write_text("[connection]\ntype=bridge\ninterface-name=br0\n")
    with pytest.raises(InvalidDefinition, match="defined twice"):
        read_files([a, b])


@pytest.mark.parametrize(
    "text,match",
    [
        ("interfaces: [\n", "not valid YAML"),
        ("routes: {}\n", "no 'interfaces:' list"),
        ("interfaces:\n- type: bond\n", "without a name"),
        ("interfaces:\n- {name: b, type: bond, link-aggregation: {mode: 9}}\n", "does not exist"),
    ],
)
def test_nmstate_errors(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "host.yml"
    p.write_text(text)
    with pytest.raises(InvalidDefinition, match=match):
        read_files([p])


def test_huge_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "big.yml"
    p.write_text("#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(HostileInput):
        read_files([p])


def test_nmstate_absent_interfaces_are_ignored(tmp_path: Path) -> None:
    p = tmp_path / "host.yml"
    p.write_text(
        "interfaces:\n- {name: bond0, type: bond, state: absent}\n"
        "- {name: br0, type: linux-bridge, bridge: {port: [{name: eth1}]}}\n"
        "- {name: eth1, type: ethernet}\n"
    )
    view = read_files([p])
    assert set(view.links) == {"br0", "eth1"}
    assert check_view(view).ok


def test_sysfs_root_without_sysfs(tmp_path: Path) -> None:
    from virtnet.errors import HostError

    with pytest.raises(HostError, match="sys/class/net does not exist"):
        read_sysfs(tmp_path)


def test_garbled_sysfs_value(tmp_path: Path) -> None:
    from virtnet.errors import HostError

    b = tmp_path / "sys/class/net/bond0/bonding"
    b.mkdir(parents=True)
    (b / "mode").write_text("active-backup 1\n")
    (b / "miimon").write_text("lots\n")
    with pytest.raises(HostError, match="miimon: expected a number"):
        read_sysfs(tmp_path)
