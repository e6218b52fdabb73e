"""The engine with macvtap networks in namespaces: start checks, ports (macvlan in a VM's
namespace, macvtap with its /dev/tapN for QEMU), libvirt's device choice on real devices,
stop/crash/reconcile touching only the devices virtnet made, and the refusals (hostdev,
a <pf> without VFs, a bridge port as the device)."""

from __future__ import annotations

import os
import select
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_root
from virtnet import direct
from virtnet.engine import Engine
from virtnet.errors import Conflict, NotFound, NotSupported, UnsafeHostConfig
from virtnet.host import netns
from virtnet.host.links import Netlink
from virtnet.libvirtxml import parse_network
from virtnet.model.network import Forward, ForwardMode, Network

LAN_ADDR = "203.0.113.254"


@dataclass
class Bed:
    host: str
    lan: str
    vm1: str
    vm2: str
    engine: Engine


@pytest.fixture
def bed(unique_name: str, tmp_path: Path) -> Iterator[Bed]:
    """A VM host with eth1 and eth2, veths into a LAN namespace's bridge (203.0.113.254)."""
    require_root()
    host, lan, vm1, vm2 = (unique_name + s for s in ("h", "l", "a", "b"))
    engine = None
    try:
        for ns in (host, lan, vm1, vm2):
            netns.create(ns)
        netns.run(lan, ["ip", "-batch", "-"], input="\n".join([
            "link add lan0 type bridge stp_state 0 forward_delay 0",
            f"addr add {LAN_ADDR}/24 dev lan0", "link set lan0 up",
            f"link add p1 type veth peer name eth1 netns {host}",
            f"link add p2 type veth peer name eth2 netns {host}",
            "link set p1 master lan0", "link set p2 master lan0",
            "link set p1 up", "link set p2 up"]) + "\n")
        netns.run(host, ["ip", "-batch", "-"],
                  input="link set eth1 up\nlink set eth2 up\n")
        engine = Engine(tmp_path / "state", host)
        yield Bed(host, lan, vm1, vm2, engine)
    finally:
        if engine is not None:
            engine.close()
        for ns in (host, lan, vm1, vm2):
            netns.delete(ns)


def links(ns: str) -> str:
    return netns.run(ns, ["ip", "-o", "-d", "link", "show"]).stdout


def mv(name: str, mode: ForwardMode, *devs: str) -> Network:
    return Network(name=name, forward=Forward(mode=mode, interfaces=devs))


def test_start_ports_spread_over_the_pool_and_stop_removes_only_ours(bed: Bed) -> None:
    eng = bed.engine
    net = mv("mvb", ForwardMode.BRIDGE, "eth1", "eth2")
    report = eng.start(net)
    assert report.changed and report.bridge == ""
    assert "bridge mode macvtap devices on eth1, eth2" in report.messages[0]
    assert not eng.start(net).changed and eng.is_active("mvb")
    with pytest.raises(Conflict, match="already active with a different definition"):
        eng.start(mv("mvb", ForwardMode.VEPA, "eth1"))
    a = eng.add_port("mvb", peer_netns=bed.vm1, mac="52:54:00:00:aa:01")
    b = eng.add_port("mvb", peer_netns=bed.vm2)
    t = eng.add_port("mvb", kind="tap", name="mvtap0")
    assert (a.bridge, b.bridge, t.bridge) == ("eth1", "eth2", "eth1")  # least used, ties first
    assert a.kind == "macvlan" and t.kind == "macvtap" and a.mac == "52:54:00:00:aa:01"
    assert b.mac and b.mac in links(bed.vm2)  # the kernel's MAC, reported for the VM
    assert "macvlan mode bridge" in links(bed.vm1) and "link-netns" in links(bed.vm1)
    assert "macvtap mode bridge" in links(bed.host)
    assert sorted(p.name for p in eng.list_ports("mvb")) == sorted([a.name, b.name, t.name])
    # devices virtnet did not make, on the same interface and with the same name
    netns.run(bed.host, ["ip", "link", "add", "link", "eth1", "name", "other0", "type",
                         "macvlan", "mode", "bridge"])
    eng.delete_port("mvb", b.name)
    assert "eth0" not in links(bed.vm2)
    # VM1's port replaced behind virtnet's back by a device of the same name: not ours
    netns.run(bed.vm1, ["ip", "link", "del", "eth0"])
    netns.run(bed.vm1, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "x0"])
    with pytest.raises(NotFound, match="has no port"):
        eng.delete_port("mvb", "nope")
    eng.stop("mvb")
    assert "mvtap0" not in links(bed.host)
    assert "other0@eth1" in links(bed.host) and "eth0@x0" in links(bed.vm1)  # not ours: stay
    assert not eng.is_active("mvb")


def test_macvtap_port_is_a_working_tap_for_a_guest(bed: Bed) -> None:
    """What QEMU does with a macvtap port: open /dev/tap<ifindex>, write frames with a virtio
    net header in front, read the replies. An ARP request for the LAN's address is answered."""
    eng = bed.engine
    eng.start(mv("mvt", ForwardMode.BRIDGE, "eth1"))
    port = eng.add_port("mvt", kind="tap", mac="52:54:00:00:bb:01")
    with Netlink(bed.host) as nl:
        path = direct.tap_device(nl, port)
    assert path.startswith("/dev/tap")
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    try:
        mac = bytes.fromhex(port.mac.replace(":", "")) if port.mac else b""
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac,
                          socket.inet_aton("203.0.113.77"), b"\0" * 6,
                          socket.inet_aton(LAN_ADDR))
        frame = b"\xff" * 6 + mac + b"\x08\x06" + arp
        vnet_hdr = b"\0" * 10  # macvtap opens with IFF_VNET_HDR, header size 10
        reply = b""
        for _ in range(20):
            os.write(fd, vnet_hdr + frame)
            ready, _, _ = select.select([fd], [], [], 0.2)
            while ready:
                data = os.read(fd, 2048)[10:]
                if data[12:14] == b"\x08\x06" and data[20:22] == b"\x00\x02":
                    reply = data
                    break
                ready, _, _ = select.select([fd], [], [], 0.05)
            if reply:
                break
        assert reply, "no ARP reply through the macvtap device"
        assert reply[0:6] == mac and socket.inet_ntoa(reply[28:32]) == LAN_ADDR
    finally:
        os.close(fd)
    eng.stop("mvt")
    assert not os.path.exists(path) or "mvt" not in links(bed.host)


def test_crashed_record_is_cleaned_by_the_next_start_and_reconcile(bed: Bed) -> None:
    eng = bed.engine
    net = mv("mvc", ForwardMode.PRIVATE, "eth1")
    eng.start(net)
    p = eng.add_port("mvc", peer_netns=bed.vm1)
    rec = eng.store.get_runtime(bed.host, "mvc")
    assert rec is not None and rec["direct"]["ports"][0]["state"] == "active"
    rec["state"] = "starting"  # as if the process died part-way
    eng.store.put_runtime(bed.host, "mvc", rec)
    assert any("leftovers" in r for r in eng.reconcile())
    assert "eth0" not in links(bed.vm1) and not eng.is_active("mvc")
    eng.start(net)
    eng.add_port("mvc", peer_netns=bed.vm1, name=p.name)
    rec = eng.store.get_runtime(bed.host, "mvc")
    assert rec is not None
    rec["state"] = "stopping"
    eng.store.put_runtime(bed.host, "mvc", rec)
    assert eng.start(net).changed  # the leftover port removed, a fresh start
    assert "eth0" not in links(bed.vm1) and eng.list_ports("mvc") == []
    eng.stop("mvc")


def test_reconcile_releases_ports_of_deleted_vms_and_reports_the_device(bed: Bed) -> None:
    eng = bed.engine
    net = mv("mvr", ForwardMode.PASSTHROUGH, "eth1")
    eng.start(net)
    eng.add_port("mvr", peer_netns=bed.vm1)
    with pytest.raises(Conflict, match="exclusive access"):
        eng.add_port("mvr", peer_netns=bed.vm2)
    netns.delete(bed.vm1)  # the VM is gone, and its macvlan with it
    repairs = eng.reconcile(["mvr"])
    assert any("is gone: released its place on eth1" in r for r in repairs)
    eng.add_port("mvr", peer_netns=bed.vm2)  # eth1 is free again
    netns.run(bed.host, ["ip", "link", "set", "eth1", "down"])
    assert any("interface eth1 is down" in r for r in eng.reconcile(["mvr"]))
    eng.stop("mvr")


def test_passthrough_moves_the_vm_mac_to_the_device_and_back(bed: Bed) -> None:
    eng = bed.engine
    before = Netlink(bed.host)
    try:
        orig = before.get("eth1")
        assert orig is not None
        report = eng.start(mv("mvp", ForwardMode.PASSTHROUGH, "eth1"))
        assert any("ARP flux" in m for m in report.messages)  # this host has arp_ignore=0
        eng.add_port("mvp", peer_netns=bed.vm1, mac="52:54:00:00:cc:01")
        now = before.get("eth1")
        assert now is not None and now.mac == "52:54:00:00:cc:01"
        eng.stop("mvp")
        back = before.get("eth1")
        assert back is not None and back.mac == orig.mac
    finally:
        before.close()


def test_refusals_leave_nothing_recorded(bed: Bed) -> None:
    eng = bed.engine
    hostdev = parse_network(
        "<network><name>hd</name><forward mode='hostdev' managed='yes'>"
        "<address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x1'/>"
        "</forward></network>")
    with pytest.raises(NotSupported, match="needs SR-IOV hardware") as exc:
        eng.start(hostdev)
    assert f"namespace {bed.host} has no SR-IOV capable interface" in exc.value.message
    assert exc.value.hint and "sriov_numvfs" in exc.value.hint
    pf = parse_network("<network><name>pf</name><forward mode='passthrough'>"
                       "<pf dev='eth1'/></forward></network>")
    with pytest.raises(NotSupported, match="no usable VFs present on SR-IOV PF eth1"):
        eng.start(pf)
    # a PF name is data, never shell text (the engine may get unvalidated definitions)
    marker = Path(f"/tmp/{bed.host}-pwned")
    hostile = Network(name="pf2", forward=Forward(mode=ForwardMode.PASSTHROUGH,
                                                  pfs=(f"x;touch {marker}",)))
    with pytest.raises(NotSupported, match="no usable VFs"):
        eng.start(hostile)
    assert not marker.exists()
    netns.run(bed.host, ["ip", "-batch", "-"],
              input="link add br9 type bridge\nlink set eth2 master br9\n")
    with pytest.raises(UnsafeHostConfig, match="eth2 is a port of bridge br9"):
        eng.start(mv("mvx", ForwardMode.BRIDGE, "eth2"))
    netns.run(bed.host, ["ip", "link", "set", "eth1", "down"])
    with pytest.raises(UnsafeHostConfig, match="eth1 is down"):
        eng.start(mv("mvy", ForwardMode.VEPA, "eth1"))
    forced = eng.start(mv("mvy", ForwardMode.VEPA, "eth1"), force=True)
    assert any(m.startswith("warning (forced): interface eth1 is down") for m in forced.messages)
    eng.stop("mvy")
    assert eng.active() == [] and eng.store.list_runtime(bed.host) == {}
