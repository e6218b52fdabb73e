"""``virtnet guard`` against real breakage in a namespace: a flushed ruleset, a deleted rule, a
deleted bridge, a killed dnsmasq; and it never brings back a network the user stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import require_root
from tests.guardlab import ROOT, GuardProc
from tests.hostlab import OUTSIDE, Lab, nat_network, sh
from virtnet import firewall

pytestmark = pytest.mark.host
PORT = 7411
StartGuard = Callable[..., GuardProc]


@pytest.fixture
def lab(unique_name: str) -> Iterator[Lab]:
    require_root()
    lab = Lab(unique_name)
    try:
        yield lab.build()
    finally:
        lab.close()


@pytest.fixture
def start_guard(lab: Lab) -> Iterator[StartGuard]:
    """Start guards on LAB; each is killed (by its Popen, never a reaped PID) afterwards."""
    procs: list[GuardProc] = []

    def start(**kwargs: float) -> GuardProc:
        procs.append(GuardProc(lab, **kwargs))
        return procs[-1]

    yield start
    for g in procs:
        g.close()


def _start(lab: Lab, third: int) -> tuple[str, str]:
    bridge = f"{lab.mark}b"
    lab.engine.start(nat_network("g", bridge, third))
    return "g", bridge


def _in_sync(lab: Lab) -> bool:
    nets = [lab.engine.definition(n) for n in lab.engine.active()]
    return firewall.drift(lab.host, nets) == []


def test_flushed_ruleset_and_deleted_rule_are_restored(lab: Lab, start_guard: StartGuard) -> None:
    name, _ = _start(lab, 41)
    vm = lab.vm(name)
    lab.listen(lab.outside, PORT)
    assert lab.tcp(vm.ns, OUTSIDE, PORT)
    guard = start_guard()

    mark = len(guard.log)
    sh(lab.host, "nft", "flush", "ruleset")
    entry = guard.wait_for(lambda e: e["event"] == "repair", start=mark)
    assert "table inet virtnet restored" in entry["repairs"][0]
    assert any("delete table inet virtnet" in c and "by nft" in c for c in entry["cause"])
    assert _in_sync(lab)
    assert lab.tcp(vm.ns, OUTSIDE, PORT)  # NAT works again: masquerade and forward rules back

    mark = len(guard.log)
    sh(lab.host, "nft", "flush", "chain", "inet", "virtnet", "masq_ports_1024_65535")
    entry = guard.wait_for(lambda e: e["event"] == "repair", start=mark)
    assert "rule missing" in entry["repairs"][0]
    assert any("delete rule inet virtnet masq_ports_1024_65535" in c for c in entry["cause"])
    assert _in_sync(lab)
    assert lab.tcp(vm.ns, OUTSIDE, PORT)
    assert guard.terminate() == 0
    assert guard.log[-1]["event"] == "stop"


def test_deleted_bridge_comes_back_with_its_dnsmasq_and_port(
    lab: Lab, start_guard: StartGuard
) -> None:
    name, bridge = _start(lab, 42)
    vm = lab.vm(name)
    old = lab.dnsmasq_pids()
    guard = start_guard()
    mark = len(guard.log)
    sh(lab.host, "ip", "link", "del", bridge)
    entry = guard.wait_for(
        lambda e: e["event"] == "repair" and any("recreated" in r for r in e["repairs"]),
        start=mark)
    assert f"bridge {bridge} deleted" in entry["cause"]
    assert any(r.startswith("dnsmasq restarted") for r in entry["repairs"])
    assert any(r == f"port {vm.port} re-attached" for r in entry["repairs"])
    new = lab.dnsmasq_pids()
    assert len(new) == 1 and new != old
    assert f"master {bridge}" in sh(lab.host, "ip", "-o", "link", "show", vm.port)
    again = lab.dhcp(vm)  # a real lease from the restarted dnsmasq over the new bridge
    assert again.ip.startswith("10.77.42.") and lab.ping(vm.ns, "10.77.42.1")
    guard.terminate()


def test_killed_dnsmasq_is_restarted(lab: Lab, start_guard: StartGuard) -> None:
    name, _ = _start(lab, 43)
    guard = start_guard()
    (pid,) = lab.dnsmasq_pids()
    mark = len(guard.log)
    os.kill(pid, signal.SIGKILL)
    entry = guard.wait_for(lambda e: e["event"] == "repair", start=mark)
    assert entry["network"] == name
    assert f"dnsmasq (pid {pid}) exited" in entry["cause"]
    (new,) = lab.dnsmasq_pids()
    assert new != pid and entry["repairs"] == [f"dnsmasq restarted (pid {new})"]
    vm = lab.vm(name)  # the restarted dnsmasq hands out leases
    assert vm.ip.startswith("10.77.43.")
    # and it is watched in turn: a second kill is repaired too
    mark = len(guard.log)
    os.kill(new, signal.SIGKILL)
    guard.wait_for(lambda e: e["event"] == "repair" and f"(pid {new})" in str(e["cause"]),
                   start=mark)
    assert len(lab.dnsmasq_pids()) == 1
    guard.terminate(signal.SIGINT)
    assert guard.proc.returncode == 0


def test_stopped_network_is_not_brought_back(lab: Lab, start_guard: StartGuard) -> None:
    name, bridge = _start(lab, 44)
    lab.engine.start(nat_network("keep", f"{lab.mark}k", 45))
    guard = start_guard()
    mark = len(guard.log)
    lab.engine.stop(name)  # the user's explicit stop
    guard.settle(0.6)
    assert bridge not in lab.links()
    assert not [e for e in guard.repairs(mark) if e.get("network") == name]
    assert name not in lab.engine.active()
    # the other network is still guarded, and its repair does not revive the stopped one
    sh(lab.host, "nft", "flush", "ruleset")
    guard.wait_for(lambda e: e["event"] == "repair", start=mark)
    guard.settle(0.3)
    assert bridge not in lab.links()
    assert "10.77.44." not in lab.ruleset() and "10.77.45." in lab.ruleset()
    assert len(lab.dnsmasq_pids()) == 1
    # a network started after the guard is picked up and guarded too
    lab.engine.start(nat_network("late", f"{lab.mark}l", 46))
    guard.settle(0.2)
    mark = len(guard.log)
    sh(lab.host, "ip", "link", "del", f"{lab.mark}l")
    entry = guard.wait_for(lambda e: e["event"] == "repair" and e.get("network") == "late",
                           start=mark)
    assert f"bridge {lab.mark}l recreated" in entry["repairs"]
    guard.terminate()


def test_once_reports_repairs_and_foreign_drops(lab: Lab) -> None:
    _, bridge = _start(lab, 47)
    sh(lab.host, "nft", "flush", "ruleset")
    sh(lab.host, "nft", "add table ip filter; add chain ip filter FORWARD "
       "{ type filter hook forward priority 0; policy drop; }")
    sh(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=0")  # sends no event: --once finds it
    argv = [sys.executable, "-c", "from virtnet.cli.main import main; main()",
            "--netns", lab.host, "--state-dir", str(lab.state_dir), "-o", "json",
            "guard", "--once"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert any("table inet virtnet restored" in r for r in report["repairs"])
    assert "g: sysctl net.ipv4.ip_forward=1 restored" in report["repairs"]
    assert any("table ip filter, chain FORWARD" in w for w in report["warnings"])
    assert "table ip filter" in lab.ruleset()  # another tool's table: reported, never touched
    assert _in_sync(lab)


def test_guard_refuses_a_missing_namespace(lab: Lab) -> None:
    argv = [sys.executable, "-c", "from virtnet.cli.main import main; main()",
            "--netns", f"{lab.mark}none", "--state-dir", str(lab.state_dir), "guard", "--once"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 4 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_repair_latency_is_event_driven(lab: Lab, start_guard: StartGuard) -> None:
    """With a 30 s safety-net interval, repairs still land within a fraction of a second."""
    _start(lab, 48)
    guard = start_guard(interval=30)
    mark = len(guard.log)
    t0 = time.monotonic()
    sh(lab.host, "nft", "flush", "ruleset")
    guard.wait_for(lambda e: e["event"] == "repair", start=mark, timeout=2)
    assert time.monotonic() - t0 < 2
    assert _in_sync(lab)
    guard.terminate()


def test_foreign_drop_appearing_is_reported_once_and_left_alone(
    lab: Lab, start_guard: StartGuard
) -> None:
    _, bridge = _start(lab, 49)
    guard = start_guard()
    mark = len(guard.log)
    sh(lab.host, "nft", "add table ip filter; add chain ip filter FORWARD "
       "{ type filter hook forward priority 0; policy drop; }")
    warning = guard.wait_for(lambda e: e["event"] == "warning", start=mark)
    assert "table ip filter, chain FORWARD (hook forward, policy drop)" in warning["message"]
    assert f'iifname "{bridge}" accept' in warning["message"]
    sh(lab.host, "nft", "add rule ip filter FORWARD counter")  # more changes: no repeat
    guard.settle(0.3)
    assert len([e for e in guard.log[mark:] if e["event"] == "warning"]) == 1
    assert not guard.repairs(mark)
    assert "policy drop" in sh(lab.host, "nft", "list", "table", "ip", "filter")
    guard.terminate()


def test_something_breaking_the_table_in_a_loop_is_named(
    lab: Lab, start_guard: StartGuard
) -> None:
    from virtnet.guard import FIGHT_REPAIRS

    _start(lab, 50)
    guard = start_guard()
    mark = len(guard.log)
    for _ in range(FIGHT_REPAIRS):
        start = len(guard.log)
        sh(lab.host, "nft", "flush", "ruleset")
        guard.wait_for(lambda e: e["event"] == "repair", start=start)
    warning = guard.wait_for(lambda e: e["event"] == "warning", start=mark)
    assert f"repaired {FIGHT_REPAIRS} times" in warning["message"]
    assert "keeps breaking it" in warning["message"] and "by nft (pid" in warning["message"]
    assert _in_sync(lab)  # still repaired every time
    guard.terminate()
