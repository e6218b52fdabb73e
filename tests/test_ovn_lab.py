"""OVN on a real datapath: the multi-host lab (virtnet.lab.ovn_bed) built once for the module.

Central NB/SB + northd, two chassis each with its own ovsdb-server, ovs-vswitchd (userspace
netdev datapath) and ovn-controller, geneve over a veth underlay, a gateway chassis on an
outside LAN. VMs on both chassis take real leases from OVN's DHCP. The tests run in file
order: the last ones change the lab (port-del, delete).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import require_root
from virtnet import ovn
from virtnet.lab import daemons as dmod
from virtnet.lab import ovn_bed, ovn_demo, ovn_verify
from virtnet.lab.spec import shorthand_network
from virtnet.model.network import DNS, DNSHost, Nat, Network
from virtnet.reach.table import SEED_TABLE, matches_seed

VIRTNET = [sys.executable, "-c", "from virtnet.cli.main import main; main()"]
MTU = 1500  # the routed network's <mtu>: the lab's underlay carries it plus geneve's 58


def _require() -> None:
    require_root()
    try:
        ovn_bed.require_tools()
    except Exception as exc:  # noqa: BLE001 - a skip names what is missing
        pytest.skip(str(exc))


V6_SUBNET = "2001:db8:10::/64"
DNS_NAME, DNS_IP = "files", "192.168.102.77"


def lab_networks() -> tuple[Network, ...]:
    nets = list(ovn_demo.demo_spec().networks)
    nat = nets[0]
    assert nat.forward is not None
    v6 = shorthand_network("nat", 0, ipv6=V6_SUBNET).ipv6_defs
    # nat with IPv6 masqueraded too (SLAAC from OVN's router advertisements, SNAT66)
    nets[0] = replace(nat, ips=(*nat.ips, *v6),
                      forward=replace(nat.forward, nat=Nat(ipv6=True)))
    nets[1] = replace(nets[1], mtu=MTU)  # route
    # isolated with a DNS record: answered at the gateway address (the isolated gateway port)
    nets[2] = replace(nets[2], dns=DNS(hosts=(DNSHost(ip=DNS_IP, hostnames=(DNS_NAME,)),)))
    return tuple(nets)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ovn_bed.Lab]:
    _require()
    state = tmp_path_factory.mktemp("ovnlab")
    spec = ovn_bed.OvnLabSpec(networks=lab_networks(), chassis=2, vms_per_network=2)
    lab = ovn_bed.up(spec, state)
    try:
        yield lab
    finally:
        removed = lab.down()
        print(f"\nOVN lab {lab.st.mark}: timings {lab.st.timings}; down removed {len(removed)}")
    assert_nothing_left(lab.st)


def assert_nothing_left(st: ovn_bed.OvnLabState) -> None:
    from virtnet.host import netns as netns_mod

    left_ns = [n for n in netns_mod.list_names() if n.startswith(st.mark + "-")]
    assert left_ns == []
    assert not [p for p in Path("/etc/netns").glob(f"{st.mark}-*")]
    assert not st.dir.exists()
    assert not ovn_bed.state_path(Path(st.state_dir), st.mark).exists()
    running = [d for d in st.daemons if dmod.is_ours(int(d["pid"]), int(d["start_time"]))]
    assert running == []


def nbctl(st: ovn_bed.OvnLabState, *args: str) -> str:
    return subprocess.run(["ovn-nbctl", f"--db={st.nb}", "--timeout=20", *args],
                          capture_output=True, text=True, check=True).stdout


def sbctl(st: ovn_bed.OvnLabState, *args: str) -> str:
    return subprocess.run(["ovn-sbctl", f"--db={st.sb}", "--timeout=20", *args],
                          capture_output=True, text=True, check=True).stdout


def sync_hv(st: ovn_bed.OvnLabState) -> None:
    """Until every chassis' ovn-controller has installed what the NB database now says."""
    nbctl(st, "--wait=hv", "sync")


def vm(st: ovn_bed.OvnLabState, vid: str) -> dict[str, object]:
    return next(v for v in st.vms if v["id"] == vid)


def test_vms_on_both_chassis_with_leases_from_ovn(lab: ovn_bed.Lab) -> None:
    st = lab.st
    assert {v["chassis"] for v in st.vms} == {1, 2}
    for v in st.vms:
        assert v["ipv4"], v
        port = json.loads(nbctl(st, "--format=json", "--columns=dynamic_addresses", "list",
                                "Logical_Switch_Port", str(v["port"])))
        assert str(v["ipv4"]) in json.dumps(port["data"]), (v, port)
    chassis = set(sbctl(st, "--bare", "--columns=name", "list", "Chassis").split())
    assert chassis == {st.chassis_name(1), st.chassis_name(2)}
    # every daemon's files under the lab's directory, none under the system's
    assert (st.chassis_dir(1) / "vswitchd.ctl").exists()
    assert ovn_bed.controller_ctl(st, 1) is not None
    assert ovn_bed.controller_ctl(st, 1).exists()  # type: ignore[union-attr]


def test_observed_table_equals_the_seeds(lab: ovn_bed.Lab) -> None:
    report = ovn_verify.verify(lab.st)
    assert report.probes > 40
    assert report.differences == [], [str(d.key) + " " + d.observed.detail
                                      for d in report.differences]
    expected = {r.network: r for r in report.expected_rows()}
    by_label = {r.label: r for r in report.observed_rows()}
    for label in ("NAT", "Routed mode", "Isolated mode", "Open mode"):
        row = by_label[label]
        assert all(matches_seed(row, expected[row.network])), (label, row.cells)
        if label != "Open mode":
            assert row.cells == SEED_TABLE[label]
    # open is carried as routed (docs/ovn.md)
    assert by_label["Open mode"].cells == by_label["Routed mode"].cells
    # NAT out is seen as the SNAT address; routed as itself
    seen = {(r.key.src, r.key.dst): r.seen_as for r in report.results if r.key.proto == "tcp"}
    assert seen[("nat/vm2", "outside1")] == "host"
    assert seen[("route/vm2", "outside1")] == "itself"


def _dns_a(netns: str, server: str, name: str) -> str | None:
    """One DNS A query from NETNS to SERVER; the first address of the answer."""
    import secrets
    import socket
    import struct

    from virtnet.host.nsenter import entered

    qid = secrets.randbelow(0xFFFF)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    with entered(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(2)
        sock.sendto(query, (server, 53))
        data, _ = sock.recvfrom(512)
    finally:
        sock.close()
    rid, _flags, _qd, ancount = struct.unpack("!HHHH", data[:8])
    if rid != qid or ancount == 0:
        return None
    return socket.inet_ntoa(data[-4:])  # the last answer's RDATA (one A record)


def test_isolated_gateway_answers_ping_and_dns(lab: ovn_bed.Lab) -> None:
    from virtnet.reach.probe import icmp

    st = lab.st
    for vid in ("isolated/vm1", "isolated/vm2"):  # one on each chassis
        v = vm(st, vid)
        assert icmp(str(v["netns"]), "192.168.102.1").ok
        assert _dns_a(str(v["netns"]), "192.168.102.1", DNS_NAME) == DNS_IP
    # and nothing leaves: the router has the gateway port only
    ports = nbctl(st, "lrp-list", "vn-isolated-router").split()
    assert ports[1:] == ["(vn-isolated-rtr)"]


def test_nat_inbound_is_rejected_not_dropped(lab: ovn_bed.Lab) -> None:
    report = ovn_verify.verify(lab.st)
    inbound = [r for r in report.results if r.key.src == "outside1"
               and r.key.dst.startswith("nat/")]
    assert inbound
    for r in inbound:
        assert not r.observed.ok
        # an immediate answer (RST / ICMP unreachable), as libvirt's reject gives
        assert r.observed.detail in ("refused", "unreachable") or \
            r.observed.detail.startswith("unreachable"), r.observed
        assert r.observed.ms < 500


def test_deleting_nat_acls_flips_exactly_nats_visible_cells(lab: ovn_bed.Lab) -> None:
    st = lab.st
    nbctl(st, "acl-del", "vn-nat")
    sync_hv(st)
    try:
        report = ovn_verify.verify(st)
        flipped = {(r.key.src, r.key.dst, r.key.proto) for r in report.differences}
        want = {("outside1", v["id"], proto) for v in st.vms if v["network"] == "nat"
                for proto in ("icmp", "tcp")}
        assert flipped == want
        row = next(r for r in report.observed_rows() if r.network == "nat")
        assert row.cells == ("YES", "YES", "YES", "YES")
    finally:
        ovn_bed.apply(st)
        sync_hv(st)
    report = ovn_verify.verify(st)
    assert report.differences == []
    assert next(r for r in report.observed_rows() if r.network == "nat").cells == \
        SEED_TABLE["NAT"]


def test_ipv6_slaac_from_ovn_and_snat66_out_rejected_in(lab: ovn_bed.Lab) -> None:
    import ipaddress

    from virtnet.reach import probe

    st = lab.st
    vms = [vm(st, "nat/vm1"), vm(st, "nat/vm2")]
    for v in vms:
        addr = ipaddress.IPv6Address(str(v["ipv6"]))
        assert addr in ipaddress.IPv6Network(V6_SUBNET)
        dyn = nbctl(st, "get", "Logical_Switch_Port", str(v["port"]), "dynamic_addresses")
        assert str(addr) in dyn  # northd's EUI-64 address is the one SLAAC chose
    out_ns = st.outside[0]["netns"]
    ext6 = st.external_ipv6s["nat"].split("/")[0]
    with probe.listening([out_ns, *(str(v["netns"]) for v in vms)]) as lst:
        token = b"v6-token-0123456"
        obs = probe.tcp(str(vms[1]["netns"]), ovn_bed.OUTSIDE_HOST6, token)
        assert obs.ok, obs
        lst.wait_for([token])
        assert lst.seen[token] == ext6  # SNAT66 to the gateway's IPv6 address
        inbound = probe.tcp(out_ns, str(vms[0]["ipv6"]), b"v6-token-inbound")
        assert not inbound.ok and inbound.detail in ("refused", "unreachable", "prohibited"), \
            inbound
        assert inbound.ms < 500
    assert probe.icmp(str(vms[0]["netns"]), str(vms[1]["ipv6"])).ok  # VM to VM, cross-chassis


def test_bulk_tcp_across_chassis_at_the_definitions_mtu(lab: ovn_bed.Lab) -> None:
    st = lab.st
    a, b = vm(st, "route/vm1"), vm(st, "route/vm2")
    assert a["chassis"] != b["chassis"]
    assert st.underlay_mtu == MTU + 58
    # the VMs took the definition's MTU from OVN's DHCP; those of networks without <mtu>
    # the underlay's less geneve's overhead
    assert ovn_bed.mtu_of(str(a["netns"])) == MTU
    assert ovn_bed.mtu_of(str(b["netns"])) == MTU
    assert ovn_bed.mtu_of(str(vm(st, "nat/vm1")["netns"])) == st.underlay_mtu - 58
    server = subprocess.Popen(["ip", "netns", "exec", str(b["netns"]), "iperf3", "-s", "-1",
                               "-p", "5299"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = subprocess.run(["ip", "netns", "exec", str(a["netns"]), "iperf3", "-c",
                              str(b["ipv4"]), "-p", "5299", "-t", "2", "-J"],
                             capture_output=True, text=True, timeout=30)
    finally:
        server.kill()
        server.wait()
    res = json.loads(out.stdout)
    bps = res["end"]["sum_received"]["bits_per_second"]
    mss = res["start"]["tcp_mss_default"]
    print(f"\ncross-chassis iperf3 at MTU {MTU}: {bps / 1e6:.0f} Mbit/s (MSS {mss})")
    assert MTU - 40 - 12 <= mss <= MTU - 40  # full frames (12: TCP timestamps)
    assert res["end"]["sum_received"]["bytes"] > 5_000_000, res["end"]


def test_port_del_cuts_a_vm_off(lab: ovn_bed.Lab) -> None:
    from virtnet.ovn import nbctl as nbctl_mod
    from virtnet.ovn import state

    st = lab.st
    a, b = vm(st, "route/vm1"), vm(st, "route/vm2")
    from virtnet.reach.probe import icmp

    assert icmp(str(a["netns"]), str(b["ipv4"])).ok
    nbctl_mod.run(st.nb, ovn.port_delete_commands("route", str(b["port"]), state.read(st.nb)))
    sync_hv(st)
    try:
        assert not icmp(str(a["netns"]), str(b["ipv4"])).ok
        assert not icmp(str(b["netns"]), "192.168.101.1").ok
    finally:
        ovn.port_add("route", str(b["port"]), st.nb, mac=str(b["mac"]), ip=str(b["ipv4"]))
        sync_hv(st)
    deadline = time.monotonic() + 5
    while not icmp(str(a["netns"]), str(b["ipv4"])).ok:
        assert time.monotonic() < deadline, "the re-added port did not come back"


def test_delete_leaves_nb_and_sb_empty(lab: ovn_bed.Lab) -> None:
    st = lab.st
    for n in st.network_defs():
        ovn.delete(n.name, st.nb)
    sync_hv(st)
    for table in ("Logical_Switch", "Logical_Router", "Logical_Switch_Port",
                  "Logical_Router_Port", "DHCP_Options", "DNS", "ACL", "NAT",
                  "Logical_Router_Static_Route"):
        assert nbctl(st, "--bare", "--columns=_uuid", "list", table).split() == [], table
    for table in ("Datapath_Binding", "Port_Binding", "Logical_Flow", "DNS",
                  "MAC_Binding"):
        assert sbctl(st, "--bare", "--columns=_uuid", "list", table).split() == [], table
    # the chassis stay: they are the cluster, not virtnet's objects
    assert len(sbctl(st, "--bare", "--columns=name", "list", "Chassis").split()) == 2


# -- the lab leaves nothing behind, even when interrupted -----------------------------------


def _virtnet(state: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*VIRTNET, "--state-dir", str(state),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(proc: subprocess.Popen[str], text: str, timeout: float = 30) -> str:
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not seen: {seen}")


def _state_of(state: Path) -> ovn_bed.OvnLabState:
    (path,) = list((state / "ovn-labs").glob("vo*.json"))
    return ovn_bed.OvnLabState.from_json(json.loads(path.read_text()))


@pytest.mark.parametrize("when,sig", [("central", signal.SIGINT), ("is up", signal.SIGTERM),
                                      ("is up", signal.SIGINT)])
def test_interrupted_lab_leaves_nothing(tmp_path: Path, when: str, sig: int) -> None:
    _require()
    proc = _virtnet(tmp_path, "lab", "up", "--backend", "ovn", "--network", "nat",
                    "--network", "isolated", "--vms", "1")
    try:
        _wait_for(proc, when)
        st = _state_of(tmp_path)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 or when == "is up"
    assert_nothing_left(st)
    assert not list((tmp_path / "ovn-labs").glob("vo*"))


def test_killed_keeper_then_lab_down_all_leaves_nothing(tmp_path: Path) -> None:
    _require()
    proc = _virtnet(tmp_path, "lab", "up", "--backend", "ovn", "--network", "route",
                    "--vms", "1")
    try:
        _wait_for(proc, "is up")
        st = _state_of(tmp_path)
        os.kill(proc.pid, signal.SIGKILL)  # no teardown at all: the daemons are orphans
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert any(dmod.is_ours(int(d["pid"]), int(d["start_time"])) for d in st.daemons)
    out = subprocess.run([*VIRTNET, "--state-dir", str(tmp_path),
                          "lab", "down", "--all"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert st.mark in out.stdout
    assert_nothing_left(st)


def test_lab_down_from_another_process_ends_the_keeper(tmp_path: Path) -> None:
    _require()
    proc = _virtnet(tmp_path, "lab", "up", "--backend", "ovn", "--network", "nat",
                    "--vms", "1")
    try:
        _wait_for(proc, "is up")
        st = _state_of(tmp_path)
        out = subprocess.run([*VIRTNET, "--state-dir", str(tmp_path),
                              "lab", "down", st.mark], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_nothing_left(st)


@pytest.mark.parametrize("args,element", [
    (["--network", "nat", "--outside", "2"], "--outside"),
    (["--network", "nat", "--no-outside-routes"], "--no-outside-routes"),
    (["--network", "bridge"], "forward"),
    (["--network", "nat", "--chassis", "9"], "--chassis"),
])
def test_what_the_ovn_lab_cannot_build_is_refused_before_anything_exists(
        tmp_path: Path, args: list[str], element: str) -> None:
    _require()
    out = subprocess.run([*VIRTNET, "--state-dir", str(tmp_path), "-o", "json", "lab", "up",
                          "--backend", "ovn", *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0
    err = json.loads(out.stderr)["error"]
    assert err["element"] == element, err
    assert not (tmp_path / "ovn-labs").exists() or not list((tmp_path / "ovn-labs").iterdir())
