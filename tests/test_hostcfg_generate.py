"""`host bridge` output passes `host check` (round trip), and bad combinations are refused
with the rules' own messages."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from virtnet.errors import InvalidDefinition, UnsafeHostConfig
from virtnet.hostcfg import (
    check_spec,
    check_view,
    make_spec,
    read_files,
    render_keyfiles,
    render_nmcli,
    render_nmstate,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hostcfg"
# A root without the uplinks in it: nothing is detected as Wi-Fi from sysfs.
NO_SYSFS = None

SPECS = [
    {"name": "br0", "uplinks": "eth1"},
    {"name": "br0", "uplinks": "eth1,eth2"},
    {"name": "br0", "uplinks": "eth1,eth2", "bond_mode": "802.3ad"},
    {"name": "br0", "uplinks": "eth1,eth2", "bond_mode": "2", "miimon": 50},
    {"name": "lan0", "uplinks": "enp1s0", "bond_mode": "active-backup", "bond_name": "bond7"},
    {"name": "br0", "uplinks": "eth1", "ipv4": "192.0.2.10/24", "gateway": "192.0.2.1"},
    {"name": "br0", "uplinks": "eth1,eth2", "ipv4": "none"},
]


def _ids(spec: dict[str, object]) -> str:
    return "-".join(f"{v}" for v in spec.values())


@pytest.mark.parametrize("kw", SPECS, ids=_ids)
def test_keyfiles_round_trip(tmp_path: Path, kw: dict[str, object]) -> None:
    spec = make_spec(**kw)  # type: ignore[arg-type]
    files = render_keyfiles(spec)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    view = read_files(sorted(tmp_path.iterdir()))
    report = check_view(view, [spec.name])
    assert report.ok and not report.warnings, report.verdicts
    bridge = view.links[spec.name]
    assert bridge.ports == (spec.bridge_port,)
    if spec.bonded:
        bond = view.links[spec.bond_name]
        assert bond.bond is not None and bond.bond.mode is spec.mode
        assert bond.bond.miimon == spec.miimon and bond.bond.arp_interval == 0
        assert bond.ports == tuple(sorted(spec.uplinks))
    assert len(files) == 1 + int(spec.bonded) + len(spec.uplinks)


@pytest.mark.parametrize("kw", SPECS, ids=_ids)
def test_nmstate_round_trip(tmp_path: Path, kw: dict[str, object]) -> None:
    spec = make_spec(**kw)  # type: ignore[arg-type]
    p = tmp_path / "host.yml"
    p.write_text(render_nmstate(spec))
    view = read_files([p])
    report = check_view(view, [spec.name])
    assert report.ok and not report.warnings, report.verdicts
    doc = yaml.safe_load(p.read_text())
    br = next(i for i in doc["interfaces"] if i["name"] == spec.name)
    assert br["bridge"]["options"]["stp"]["enabled"] is False
    if spec.gateway:
        assert doc["routes"]["config"][0]["next-hop-address"] == spec.gateway


@pytest.mark.parametrize("kw", SPECS, ids=_ids)
def test_nmcli_commands(kw: dict[str, object]) -> None:
    spec = make_spec(**kw)  # type: ignore[arg-type]
    cmds = [shlex.split(line) for line in render_nmcli(spec).splitlines() if line[:1] != "#"]
    assert all(c[:2] == ["nmcli", "connection"] for c in cmds)
    adds = [c for c in cmds if c[2] == "add"]
    assert [c[4] for c in adds] == ["bridge"] + ["bond"] * spec.bonded + ["ethernet"] * len(
        spec.uplinks
    )
    if spec.bonded:
        bond = adds[1]
        opts = dict(kv.split("=") for kv in bond[bond.index("bond.options") + 1].split(","))
        assert opts == {"mode": spec.mode.name, "miimon": str(spec.miimon)}
        assert bond[bond.index("master") + 1] == spec.name
    for port, up in zip(adds[-len(spec.uplinks) :], spec.uplinks, strict=True):
        assert port[port.index("ifname") + 1] == up
        controller = spec.bond_name if spec.bonded else spec.name
        assert port[port.index("master") + 1] == controller
    assert cmds[-1] == ["nmcli", "connection", "up", spec.name]


def test_keyfiles_are_stable() -> None:
    """Same spec, same files (uuids derive from the names), so reruns diff cleanly."""
    a = render_keyfiles(make_spec("br0", "eth1,eth2"))
    b = render_keyfiles(make_spec("br0", "eth1,eth2"))
    assert a == b
    assert sorted(a) == [
        "bond0-port-eth1.nmconnection",
        "bond0-port-eth2.nmconnection",
        "bond0.nmconnection",
        "br0.nmconnection",
    ]
    assert "[bond]\nmode=active-backup\nmiimon=100\n" in a["bond0.nmconnection"]


@pytest.mark.parametrize(
    "kw,code,words",
    [
        ({"bond_mode": "balance-rr"}, "bond-mode", ["mode 0 (balance-rr)", "MAC flapping"]),
        ({"bond_mode": "3"}, "bond-mode", ["mode 3 (broadcast)"]),
        ({"bond_mode": "balance-tlb"}, "bond-mode", ["mode 5 (balance-tlb)"]),
        ({"bond_mode": "6"}, "bond-mode", ["mode 6 (balance-alb)"]),
        ({"miimon": 0}, "no-miimon", ["miimon=0"]),
        ({"miimon": 0, "arp_interval": 1000}, "arp-monitoring", ["arp_interval=1000"]),
    ],
)
def test_unsafe_combinations_are_refused(
    kw: dict[str, object], code: str, words: list[str]
) -> None:
    spec = make_spec("br0", "eth1,eth2", **kw)  # type: ignore[arg-type]
    with pytest.raises(UnsafeHostConfig) as exc:
        check_spec(spec, sysfs_root=NO_SYSFS)
    for w in words:
        assert w in str(exc.value)


@pytest.mark.parametrize("uplink", ["wlan0", "wlp3s0", "eth1,wlo1"])
def test_wifi_uplink_by_name_is_refused(uplink: str) -> None:
    with pytest.raises(UnsafeHostConfig, match="Wi-Fi"):
        check_spec(make_spec("br0", uplink), sysfs_root=NO_SYSFS)


def test_wifi_uplink_from_sysfs_is_refused(tmp_path: Path) -> None:
    """Found by sysfs (wireless/ or phy80211), whatever the interface is called."""
    (tmp_path / "sys/class/net/uplink0/wireless").mkdir(parents=True)
    (tmp_path / "sys/class/net/uplink1").mkdir(parents=True)
    (tmp_path / "sys/class/net/uplink1/phy80211").symlink_to("../../ieee80211/phy0")
    (tmp_path / "sys/class/net/eth0").mkdir(parents=True)
    for up in ("uplink0", "uplink1"):
        with pytest.raises(UnsafeHostConfig) as exc:
            check_spec(make_spec("br1", up), sysfs_root=tmp_path)
        assert f"{up} under bridge br1 is a Wi-Fi interface" in str(exc.value)
        assert "--force" not in str(exc.value)  # host bridge has no --force
    check_spec(make_spec("br1", "eth0"), sysfs_root=tmp_path)  # wired: passes


@pytest.mark.parametrize(
    "args,kw,match",
    [
        (("br0", ""), {}, "no uplink given"),
        (("br0", "eth1,eth1"), {}, "uplink listed twice"),
        (("br0", "eth1;reboot"), {}, "not a valid interface name"),
        (("a-very-long-bridge-name", "eth1"), {}, "not a valid interface name"),
        (("br0", "br0"), {}, "need different names"),
        (("br0", "eth1,eth2"), {"bond_name": "eth1"}, "need different names"),
        (("br0", "eth1"), {"bond_mode": "fastest"}, "unknown bond mode"),
        (("br0", "eth1"), {"miimon": -5}, "not negative"),
        (("br0", "eth1"), {"ipv4": "192.0.2.300/24"}, "not dhcp, none or ADDRESS/PREFIX"),
        (("br0", "eth1"), {"ipv4": "192.0.2.3"}, "no prefix length"),
        (("br0", "eth1"), {"gateway": "192.0.2.1"}, "needs a static"),
    ],
)
def test_bad_specs(args: tuple[str, str], kw: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidDefinition, match=match):
        make_spec(*args, **kw)  # type: ignore[arg-type]
