"""The macvtap modes' reachability matrix, proven with packets and checked against the reach
model (``virtnet.reach.expected``), in namespaces this module creates:

    LAN (L)   bridge lan0 203.0.113.254/24 (+ a dnsmasq DHCP server), ports p1 p2 p3 po
    host (H)  eth1 203.0.113.1/24 (the host's own address on the macvtap device), eth2, eth3
                 -- each ethN a veth to pN on lan0
    outside (O) eth0 203.0.113.10/24 on lan0
    VMs V1 V2 V3: a macvlan "eth0" of the network's mode, made by Engine.add_port

Every ordered pair of host, vm1, vm2, outside1 is probed with ICMP and TCP; the expected
verdict of each comes from the reach model given the LAN's hairpin setting, and must match.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import RUN_MARK, require_root
from virtnet.engine import Engine
from virtnet.errors import Conflict
from virtnet.host import netns
from virtnet.model.network import Forward, ForwardMode, Network
from virtnet.reach import probe
from virtnet.reach.expected import PairKey, expected
from virtnet.reach.topology import Outside, Topology

HOST_ADDR, OUTSIDE_ADDR, LAN_ADDR = "203.0.113.1", "203.0.113.10", "203.0.113.254"


@dataclass
class Lan:
    host: str
    lan: str
    out: str
    vms: tuple[str, str, str]
    engine: Engine
    state: Path

    def hairpin(self, on: bool) -> None:
        for port in ("p1", "p2", "p3"):
            netns.run(self.lan, ["bridge", "link", "set", "dev", port, "hairpin",
                                 "on" if on else "off"])


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    require_root()
    m = RUN_MARK + "m"
    names = [m + s for s in ("h", "l", "o", "1", "2", "3")]
    host, lan_ns, out, v1, v2, v3 = names
    engine = None
    try:
        for ns in names:
            netns.create(ns)
        batch = ["link add lan0 type bridge stp_state 0 forward_delay 0",
                 f"addr add {LAN_ADDR}/24 dev lan0", "link set lan0 up",
                 f"link add po type veth peer name eth0 netns {out}",
                 "link set po master lan0", "link set po up"]
        for i in (1, 2, 3):
            batch += [f"link add p{i} type veth peer name eth{i} netns {host}",
                      f"link set p{i} master lan0", f"link set p{i} up"]
        _batch(lan_ns, batch)
        _batch(host, [f"addr add {HOST_ADDR}/24 dev eth1", "link set eth1 up",
                      "link set eth2 up", "link set eth3 up"])
        _batch(out, [f"addr add {OUTSIDE_ADDR}/24 dev eth0", "link set eth0 up"])
        # The host has several interfaces on one LAN: without arp_ignore=1 it answers ARP for
        # 203.0.113.1 on eth2/eth3 too, with their MACs -- which passthrough made the VMs'
        # (ARP flux; docs/direct-modes.md). A host set up for passthrough sets this.
        netns.run(host, ["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"])
        state = tmp_path_factory.mktemp("direct")
        engine = Engine(state / "engine", host)
        yield Lan(host, lan_ns, out, (v1, v2, v3), engine, state)
    finally:
        if engine is not None:
            with contextlib.suppress(Exception):
                for name in engine.active():
                    engine.stop(name)
            engine.close()
        for ns in names:
            netns.delete(ns)


def _batch(ns: str, lines: list[str]) -> None:
    proc = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


_seq = iter(range(1, 20))


def _vm_addr(k: int, i: int) -> str:
    return f"203.0.113.{20 + 10 * k + i}"  # new addresses per test: no stale ARP entries


def _macvtap_net(name: str, mode: ForwardMode, *devs: str) -> Network:
    fw = Forward(mode=mode, dev=devs[0]) if len(devs) == 1 else Forward(mode=mode,
                                                                       interfaces=devs)
    return Network(name=name, forward=fw)


def _matrix(lan: Lan, net: Network, *, hairpin: bool) -> dict[PairKey, tuple[bool, str]]:
    """Start NET, put vm1 and vm2 on it, probe every pair; returns {key: (observed, why)}
    for pairs whose observation differs from the model, plus all observations."""
    k = next(_seq)
    lan.hairpin(hairpin)
    lan.engine.start(net)
    try:
        addrs = {"host": (lan.host, HOST_ADDR), "outside1": (lan.out, OUTSIDE_ADDR)}
        for i, vm in enumerate(lan.vms[:2], 1):
            port = lan.engine.add_port(net.name, peer_netns=vm, peer_name="eth0",
                                       mac=f"52:54:00:d1:{k:02x}:{i:02x}")
            assert port.kind == "macvlan" and port.peer_netns == vm
            _batch(vm, [f"addr add {_vm_addr(k, i)}/24 dev eth0", "link set eth0 up"])
            addrs[f"{net.name}/vm{i}"] = (vm, _vm_addr(k, i))
        topo = Topology(networks=(net,), vms_per_network=2,
                        outside=(Outside("outside1", routes_to_vms=False, ipv6=False),),
                        uplink="eth1", lan_hairpin=hairpin)
        model = expected(topo)
        probes = [probe.Probe(key, addrs[key.src][0], addrs[key.dst][1])
                  for key, _ in model if key.family == "ipv4"]
        with probe.listening({ns for ns, _ in addrs.values()}) as lst:
            seen = probe.run(probes, lst, timeout=1.0)
        out = {}
        for key, obs in seen.items():
            verdict = model.pairs[key]
            assert verdict.reachable is not None, f"{key}: the model cannot decide: {verdict}"
            out[key] = (obs.ok, verdict.rule)
            if obs.ok != verdict.reachable:
                out[key] = (obs.ok, f"MODEL SAYS {verdict.reachable}: {verdict.rule} "
                            f"({obs.detail})")
        if os.environ.get("DIRECT_DEBUG") and any("MODEL" in v[1] for v in out.values()):
            for ns in (lan.host, *lan.vms[:2]):
                print(ns, netns.run(ns, ["ip", "neigh"]).stdout,
                      netns.run(ns, ["ip", "-br", "link"]).stdout)
            print(netns.run(lan.lan, ["bridge", "fdb", "show", "br", "lan0"]).stdout)
        return out
    finally:
        lan.engine.stop(net.name)


def _ok(result: dict[PairKey, tuple[bool, str]], src: str, dst: str) -> bool:
    icmp = result[PairKey(src, dst, "ipv4", "icmp")][0]
    tcp = result[PairKey(src, dst, "ipv4", "tcp")][0]
    assert icmp == tcp, f"{src}->{dst}: icmp {icmp}, tcp {tcp}"
    return icmp


def _no_model_differences(result: dict[PairKey, tuple[bool, str]]) -> None:
    bad = {str(k): v for k, v in result.items() if v[1].startswith("MODEL SAYS")}
    assert not bad, json.dumps(bad, indent=1)


@pytest.mark.parametrize("hairpin", [False, True])
def test_bridge_mode(lan: Lan, hairpin: bool) -> None:
    r = _matrix(lan, _macvtap_net("mvb", ForwardMode.BRIDGE, "eth1"), hairpin=hairpin)
    _no_model_differences(r)
    vm1, vm2 = "mvb/vm1", "mvb/vm2"
    assert _ok(r, vm1, vm2) and _ok(r, vm2, vm1)  # switched inside the device
    assert _ok(r, vm1, "outside1") and _ok(r, "outside1", vm1)
    # the well-known limit: the host's own address on eth1 never reaches its macvtap
    # children -- unless the switch reflects the host's frames back (hairpin)
    assert _ok(r, "host", vm1) is hairpin and _ok(r, vm1, "host") is hairpin
    assert _ok(r, "host", "outside1")


@pytest.mark.parametrize("hairpin", [False, True])
def test_vepa_mode_vm_to_vm_only_through_a_hairpin_switch(lan: Lan, hairpin: bool) -> None:
    r = _matrix(lan, _macvtap_net("mvv", ForwardMode.VEPA, "eth1"), hairpin=hairpin)
    _no_model_differences(r)
    assert _ok(r, "mvv/vm1", "mvv/vm2") is hairpin
    assert _ok(r, "mvv/vm1", "outside1") and _ok(r, "outside1", "mvv/vm2")
    assert _ok(r, "host", "mvv/vm1") is hairpin


@pytest.mark.parametrize("hairpin", [False, True])
def test_private_mode_vm_to_vm_never(lan: Lan, hairpin: bool) -> None:
    r = _matrix(lan, _macvtap_net("mvp", ForwardMode.PRIVATE, "eth1"), hairpin=hairpin)
    _no_model_differences(r)
    assert not _ok(r, "mvp/vm1", "mvp/vm2") and not _ok(r, "mvp/vm2", "mvp/vm1")
    assert _ok(r, "mvp/vm1", "outside1") and _ok(r, "outside1", "mvp/vm1")


def test_passthrough_one_vm_per_interface(lan: Lan) -> None:
    """Pool eth2, eth3: vm1 takes eth2, vm2 eth3 (each whole); a third VM is refused. The
    host's address is on eth1, another interface: it reaches them through the LAN."""
    net = _macvtap_net("mvt", ForwardMode.PASSTHROUGH, "eth2", "eth3")
    lan.hairpin(False)
    r = _matrix(lan, net, hairpin=False)
    _no_model_differences(r)
    assert _ok(r, "mvt/vm1", "mvt/vm2") and _ok(r, "outside1", "mvt/vm2")
    assert _ok(r, "host", "mvt/vm1")  # eth1 -> LAN -> eth2: not the device the host is on
    lan.engine.start(net)
    try:
        p1 = lan.engine.add_port("mvt", peer_netns=lan.vms[0], mac="52:54:00:d1:ee:01")
        p2 = lan.engine.add_port("mvt", peer_netns=lan.vms[1])
        assert (p1.bridge, p2.bridge) == ("eth2", "eth3")
        with pytest.raises(Conflict, match="requires exclusive access"):
            lan.engine.add_port("mvt", peer_netns=lan.vms[2])
        lan.engine.delete_port("mvt", p1.name)
        p3 = lan.engine.add_port("mvt", peer_netns=lan.vms[2])
        assert p3.bridge == "eth2"  # freed by the delete
    finally:
        lan.engine.stop("mvt")


def test_bridge_mode_vm_takes_a_lease_from_the_lans_dhcp_server(lan: Lan) -> None:
    """The VM is a station on the LAN: the LAN's own DHCP server (dnsmasq in L) leases it an
    address through the macvlan; virtnet runs no dnsmasq for the network."""
    lan.hairpin(False)
    leases = lan.state / "lan.leases"
    dns = subprocess.Popen(
        ["ip", "netns", "exec", lan.lan, "dnsmasq", "--keep-in-foreground",
         "--conf-file=/dev/null", "--port=0", "--user=root", "--interface=lan0",
         "--bind-interfaces", "--no-ping", "--dhcp-authoritative",
         "--dhcp-range=203.0.113.100,203.0.113.150,255.255.255.0,1h",
         f"--dhcp-leasefile={leases}", f"--pid-file={lan.state / 'lan.pid'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    vm = lan.vms[2]
    etc = Path("/etc/netns") / vm
    net = _macvtap_net("mvd", ForwardMode.BRIDGE, "eth1")
    lan.engine.start(net)
    try:
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("# test VM\n")
        port = lan.engine.add_port("mvd", peer_netns=vm)
        _batch(vm, ["link set eth0 up"])
        proc = subprocess.run(
            ["ip", "netns", "exec", vm, "unshare", "--uts", "udhcpc", "-i", "eth0", "-f", "-q",
             "-n", "-t", "8", "-T", "1", "-A", "1", "-s", "/etc/udhcpc/default.script"],
            capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        got = json.loads(netns.run(vm, ["ip", "-j", "-4", "addr", "show", "dev", "eth0"])
                         .stdout)[0]["addr_info"][0]["local"]
        assert got.startswith("203.0.113.1") and 100 <= int(got.rsplit(".", 1)[1]) <= 150
        deadline = time.monotonic() + 3
        while port.mac not in (leases.read_text() if leases.exists() else ""):
            assert time.monotonic() < deadline, "the lease is not in the LAN server's file"
            time.sleep(0.05)
        assert got in leases.read_text()
        netns.run(vm, ["ping", "-c", "1", "-W", "2", OUTSIDE_ADDR])
        assert not (lan.state / "engine" / "dnsmasq").exists() or not any(
            (lan.state / "engine" / "dnsmasq").iterdir())
    finally:
        lan.engine.stop("mvd")
        os.kill(dns.pid, signal.SIGTERM)  # ours, by PID (ip netns exec execs dnsmasq)
        dns.wait(timeout=5)
        for f in etc.iterdir() if etc.exists() else ():
            f.unlink()
        with contextlib.suppress(FileNotFoundError):
            etc.rmdir()
