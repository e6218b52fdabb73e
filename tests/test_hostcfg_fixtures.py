"""Every fixture case (sysfs trees, keyfiles, nmstate files) gets its expected verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from virtnet.hostcfg import (
    CheckReport,
    LinkKind,
    Severity,
    check_view,
    parse_proc_bonding,
    read_files,
    read_sysfs,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hostcfg"


def _cases(kind: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / kind).iterdir() if (p / "expected.json").exists())


def _assert_expected(report: CheckReport, case: Path) -> None:
    exp = json.loads((case / "expected.json").read_text())
    codes = sorted(v.code for v in report.verdicts if v.severity is not Severity.OK)
    assert codes == exp["codes"], [v.message for v in report.verdicts]
    assert bool(report.refused) is exp["refused"]
    text = "\n".join(f"{v.message} {v.fix or ''}" for v in report.verdicts)
    for word in exp["mentions"]:
        assert word in text, f"{word!r} not in:\n{text}"


@pytest.mark.parametrize("case", _cases("sysfs"), ids=lambda p: p.name)
def test_sysfs_case(case: Path) -> None:
    view = read_sysfs(case)
    _assert_expected(check_view(view, ["br0"]), case)


@pytest.mark.parametrize("case", _cases("keyfile"), ids=lambda p: p.name)
def test_keyfile_case(case: Path) -> None:
    view = read_files(sorted(case.glob("*.nmconnection")))
    _assert_expected(check_view(view, ["br0"]), case)


@pytest.mark.parametrize("case", _cases("nmstate"), ids=lambda p: p.name)
def test_nmstate_case(case: Path) -> None:
    view = read_files([case / "host.yml"])
    _assert_expected(check_view(view, ["br0"]), case)


def test_every_mode_and_monitor_is_covered() -> None:
    """The brief's matrix: each mode 0-6 with MII and with ARP, in every source that can
    express it (the kernel refuses ARP in modes 4-6, so sysfs has 'nomon' there instead)."""
    for kind in ("keyfile", "nmstate"):
        names = {p.name for p in _cases(kind)}
        assert {f"mode{n}-{m}" for n in range(7) for m in ("mii", "arp")} <= names
    names = {p.name for p in _cases("sysfs")}
    assert {f"mode{n}-mii" for n in range(7)} <= names
    assert {f"mode{n}-arp" for n in range(4)} <= names
    assert {f"mode{n}-nomon" for n in range(4, 7)} <= names


@pytest.mark.parametrize(
    "case", [p for p in _cases("sysfs") if p.name.startswith("mode")], ids=lambda p: p.name
)
def test_procfs_says_what_sysfs_says(case: Path) -> None:
    """The two kernel views of one bond, parsed independently, agree."""
    sys_view = read_sysfs(case)
    bond = sys_view.links["bond0"]
    proc = parse_proc_bonding((case / "proc/net/bonding/bond0").read_text())
    assert proc.settings == bond.bond
    assert proc.slaves == bond.ports == ("eth1", "eth2")
    assert proc.mii_status == "up"


def test_sysfs_classifies_links() -> None:
    view = read_sysfs(FIXTURES / "sysfs" / "bond-wifi-port")
    kinds = {n: link.kind for n, link in view.links.items()}
    assert kinds == {
        "lo": LinkKind.OTHER,
        "eth1": LinkKind.ETHERNET,
        "wlp3s0": LinkKind.WIRELESS,
        "bond0": LinkKind.BOND,
        "br0": LinkKind.BRIDGE,
    }
    assert view.links["br0"].ports == ("bond0",)
    assert view.links["br0"].state == "up"
    tap = read_sysfs(FIXTURES / "sysfs" / "no-uplink").links["vnet0"]
    assert tap.kind is LinkKind.TAP
    vlan = read_sysfs(FIXTURES / "sysfs" / "vlan-on-bond").links["bond0.100"]
    assert (vlan.kind, vlan.lower) == (LinkKind.VLAN, ("bond0",))


def test_arp_targets_are_read() -> None:
    bond = read_sysfs(FIXTURES / "sysfs" / "mode2-arp").links["bond0"].bond
    assert bond is not None
    assert (bond.miimon, bond.arp_interval, bond.arp_ip_targets) == (0, 1000, ("192.0.2.1",))


def test_force_turns_refusals_into_warnings() -> None:
    view = read_sysfs(FIXTURES / "sysfs" / "mode0-arp")
    strict = check_view(view, ["br0"])
    forced = check_view(view, ["br0"], force=True)
    assert [v.code for v in strict.refused] == ["bond-mode", "arp-monitoring"]
    assert forced.ok and not forced.refused
    assert [(v.code, v.forced) for v in forced.warnings] == [
        ("bond-mode", True),
        ("arp-monitoring", True),
    ]


def test_force_cannot_make_a_missing_bridge() -> None:
    report = check_view(read_sysfs(FIXTURES / "sysfs" / "bridge-missing"), ["br0"], force=True)
    assert [v.code for v in report.refused] == ["bridge-missing"]
    assert not report.forceable
