"""Bridged mode's start check: pure on iproute2 JSON, and live in real namespaces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_root
from virtnet.bridged import check_bridged, recheck, runtime_record, start_bridged
from virtnet.errors import NotFound, NotSupported, UnsafeHostConfig
from virtnet.host import netns
from virtnet.hostcfg import LinkKind
from virtnet.hostcfg.iplink import parse_ip_link, read_live
from virtnet.model.network import Bridge, Forward, ForwardMode, Network


def _net(bridge: str = "br0", mode: ForwardMode = ForwardMode.BRIDGE) -> Network:
    return Network(name="lan", forward=Forward(mode=mode), bridge=Bridge(name=bridge))


def _entry(
    name: str,
    *,
    kind: str | None = None,
    master: str | None = None,
    up: bool = True,
    data: dict[str, Any] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "ifname": name,
        "flags": ["BROADCAST", "MULTICAST"] + ["UP"] * up,
        "link_type": "ether",
        "operstate": "UP" if up else "DOWN",
        **kw,
    }
    if master:
        e["master"] = master
    if kind:
        e["linkinfo"] = {"info_kind": kind, **({"info_data": data} if data else {})}
    return e


def _bond_host(mode: str, miimon: int = 100, arp: int = 0) -> list[dict[str, Any]]:
    # the shape iproute2's iplink_bond.c prints: mode by name, numbers, targets as a list
    data = {"mode": mode, "miimon": miimon, "arp_interval": arp, "updelay": 0,
            "arp_ip_target": ["192.0.2.1"] if arp else []}  # fmt: skip
    return [
        _entry("eth1", master="bond0"),
        _entry("eth2", master="bond0"),
        _entry("bond0", kind="bond", master="br0", data=data),
        _entry("br0", kind="bridge"),
    ]


@pytest.mark.parametrize(
    "mode,ok", [("balance-rr", False), ("active-backup", True), ("balance-xor", True),
                ("broadcast", False), ("802.3ad", True), ("balance-tlb", False),
                ("balance-alb", False)],
)  # fmt: skip
def test_bond_modes_from_ip_json(mode: str, ok: bool) -> None:
    view = parse_ip_link(_bond_host(mode))
    assert view.links["br0"].ports == ("bond0",)
    assert view.links["bond0"].ports == ("eth1", "eth2")
    if ok:
        started = check_bridged(_net(), view)
        assert started.uplinks == ("bond0",)
        assert "uplinks: bond0 (mode" in started.messages[0]
    else:
        with pytest.raises(
            UnsafeHostConfig, match=f"bond bond0 under bridge br0 uses mode \\d \\({mode}\\)"
        ):
            check_bridged(_net(), view)
        forced = check_bridged(_net(), view, force=True)
        assert any(m.startswith("warning: bond bond0") for m in forced.messages)


def test_arp_from_ip_json_refused() -> None:
    with pytest.raises(UnsafeHostConfig, match="arp_interval=500"):
        check_bridged(_net(), parse_ip_link(_bond_host("active-backup", 0, 500)))


def test_wifi_and_virtnet_ports() -> None:
    entries = [
        _entry("wlan0", master="br0"),
        _entry("vnet1", master="br0", ifalias="virtnet-port:lan kind=veth peer=- mac=-"),
        _entry("br0", kind="bridge"),
    ]
    view = parse_ip_link(entries, wireless={"wlan0"})
    assert view.links["wlan0"].kind is LinkKind.WIRELESS
    with pytest.raises(UnsafeHostConfig, match="Wi-Fi"):
        check_bridged(_net(), view)
    # virtnet's own port is not an uplink: without the Wi-Fi one, there is no uplink at all
    started = check_bridged(_net(), parse_ip_link(entries[1:]))
    assert started.uplinks == ()
    assert any("has no uplink" in m for m in started.messages)


def test_not_a_host_bridge_network() -> None:
    with pytest.raises(NotSupported):
        check_bridged(_net(mode=ForwardMode.NAT), parse_ip_link([]))


def test_runtime_record_marks_the_bridge_as_the_hosts() -> None:
    started = check_bridged(_net(), parse_ip_link(_bond_host("802.3ad")))
    rec = runtime_record(_net(), started, {"name": "lan"})
    assert rec["host_bridge"] is True and rec["bridge"] == "br0"
    assert rec["firewall"] is False and rec["dnsmasq"] is None
    json.dumps(rec)  # storable as is


# --- live, in real namespaces --------------------------------------------------------


@pytest.fixture
def host_ns(unique_name: str) -> Iterator[tuple[str, str]]:
    require_root()
    host, lan = unique_name + "h", unique_name + "l"
    try:
        netns.create(host)
        netns.create(lan)
        for argv in (
            ["ip", "link", "add", "br0", "type", "bridge"],
            ["ip", "link", "add", "up0", "type", "veth", "peer", "name", "lan0", "netns", lan],
            ["ip", "link", "set", "up0", "master", "br0"],
            ["ip", "link", "set", "up0", "up"],
            ["ip", "link", "set", "br0", "up"],
            ["ip", "tuntap", "add", "dev", "vnet9", "mode", "tap"],
            ["ip", "link", "set", "vnet9", "master", "br0"],
        ):
            netns.run(host, argv)
        yield host, lan
    finally:
        netns.delete(host)
        netns.delete(lan)


def test_live_bridge_with_veth_uplink(host_ns: tuple[str, str]) -> None:
    host, _ = host_ns
    view = read_live(host)
    assert view.links["br0"].kind is LinkKind.BRIDGE
    assert view.links["br0"].ports == ("up0", "vnet9")
    assert view.links["vnet9"].kind is LinkKind.TAP
    started = start_bridged(_net(), netns=host)
    assert started.uplinks == ("up0",)  # the tap is a VM's port, not an uplink
    assert recheck(_net(), netns=host) == []


def test_live_bridge_down_refused_then_forced(host_ns: tuple[str, str]) -> None:
    host, _ = host_ns
    netns.run(host, ["ip", "link", "set", "br0", "down"])
    with pytest.raises(UnsafeHostConfig, match="bridge br0 is down"):
        start_bridged(_net(), netns=host)
    started = start_bridged(_net(), netns=host, force=True)
    assert any("br0 is down" in m for m in started.messages)
    assert recheck(_net(), netns=host)[0].startswith("bridge br0 is down")


def test_live_missing_bridge(host_ns: tuple[str, str]) -> None:
    host, _ = host_ns
    with pytest.raises(NotFound, match="bridge br7 does not exist"):
        start_bridged(_net("br7"), netns=host)
    assert recheck(_net("br7"), netns=host) == [
        "host bridge br7 is gone: its VMs have no connection (recreate it)"
    ]
