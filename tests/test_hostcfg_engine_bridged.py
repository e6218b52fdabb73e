"""The engine starts a bridged network on a host bridge: checks it, records it, attaches VM
ports to it, and on stop removes only its ports, never the host's bridge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root
from virtnet.engine import Engine
from virtnet.errors import NotFound, UnsafeHostConfig
from virtnet.host import netns
from virtnet.model.network import Bridge, Forward, ForwardMode, Network

LAN = Network(name="lan", forward=Forward(mode=ForwardMode.BRIDGE), bridge=Bridge(name="br0"))


@pytest.fixture
def bed(unique_name: str, tmp_path: Path) -> Iterator[tuple[Engine, str, str, str]]:
    """A VM host whose br0 has a veth uplink to a 'LAN' namespace (192.0.2.1), and an
    empty namespace for a VM."""
    require_root()
    host, lan, vm = unique_name + "h", unique_name + "l", unique_name + "v"
    engine = None
    try:
        for ns in (host, lan, vm):
            netns.create(ns)
        for argv in (
            ["ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"],
            ["ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", lan],
            ["ip", "link", "set", "up0", "master", "br0"],
            ["ip", "link", "set", "up0", "up"],
            ["ip", "link", "set", "br0", "up"],
        ):
            netns.run(host, argv)
        netns.run(lan, ["ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"])
        netns.run(lan, ["ip", "link", "set", "eth0", "up"])
        engine = Engine(tmp_path / "state", host)
        yield engine, host, lan, vm
    finally:
        if engine is not None:
            engine.close()
        for ns in (host, lan, vm):
            netns.delete(ns)


def test_bridged_start_port_traffic_stop(bed: tuple[Engine, str, str, str]) -> None:
    engine, host, _, vm = bed
    report = engine.start(LAN)
    assert report.changed and report.bridge == "br0"
    assert "VMs join host bridge br0; uplinks: up0 (ethernet)" in report.messages[0]
    assert engine.is_active("lan")
    assert not engine.start(LAN).changed  # idempotent
    port = engine.add_port("lan", peer_netns=vm, peer_name="eth0")
    assert port.bridge == "br0"
    netns.run(vm, ["ip", "addr", "add", "192.0.2.20/24", "dev", "eth0"])
    netns.run(vm, ["ip", "link", "set", "eth0", "up"])
    # the VM is on the LAN itself: it reaches the LAN host directly, no routing, no NAT
    netns.run(vm, ["ping", "-c", "1", "-W", "2", "192.0.2.1"])
    # virtnet created no bridge, rules or dnsmasq, and reconcile adds none
    assert engine.reconcile(["lan"]) == []
    assert engine.reconcile() == []
    assert "virtnet" not in netns.run(host, ["nft", "list", "tables"]).stdout
    assert not (engine.state_dir / "dnsmasq").exists() or not any(
        (engine.state_dir / "dnsmasq").iterdir()
    )
    engine.stop("lan")
    links = netns.run(host, ["ip", "-o", "link", "show"]).stdout
    assert " br0:" in links and " up0@" in links  # the host's bridge and uplink stay
    assert port.name not in links  # the VM's port is gone
    assert not engine.is_active("lan")


def test_bridged_start_refused_leaves_nothing(bed: tuple[Engine, str, str, str]) -> None:
    engine, host, _, _ = bed
    netns.run(host, ["ip", "link", "set", "br0", "down"])
    with pytest.raises(UnsafeHostConfig, match="bridge br0 is down"):
        engine.start(LAN)
    assert not engine.is_active("lan")
    report = engine.start(LAN, force=True)
    assert any("warning: bridge br0 is down" in m for m in report.messages)
    assert engine.is_active("lan")
    # reconcile reports the host bridge's state but does not touch it
    assert any("br0 is down" in r for r in engine.reconcile(["lan"]))
    engine.stop("lan")


def test_bridged_start_missing_bridge(bed: tuple[Engine, str, str, str]) -> None:
    engine, _, _, _ = bed
    net = Network(name="lan2", forward=Forward(mode=ForwardMode.BRIDGE), bridge=Bridge(name="br5"))
    with pytest.raises(NotFound, match="bridge br5 does not exist"):
        engine.start(net)
    assert engine.active() == []
