"""Idempotence, drift repair, crash safety and clean stop, on real namespaces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.hostlab import OUTSIDE, Lab, nat_network, sh
from virtnet.engine import CRASH_ENV, START_STEPS, Engine
from virtnet.errors import Conflict, HostError, NotFound
from virtnet.host import netns, record
from virtnet.model.network import ForwardMode

pytestmark = pytest.mark.host
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def lab(unique_name: str) -> Iterator[Lab]:
    require_root()
    lab = Lab(unique_name)
    try:
        yield lab.build()
    finally:
        lab.close()


def bridges(lab: Lab) -> list[str]:
    return [line.split(":")[1].strip().split("@")[0] for line in lab.links().splitlines()
            if "virtnet:" in sh(lab.host, "ip", "-d", "link", "show",
                                line.split(":")[1].strip().split("@")[0])]


def test_start_is_idempotent_and_plan_in_sync(lab: Lab) -> None:
    net = nat_network("idem", f"{lab.mark}b", 11)
    assert lab.engine.start(net).changed
    pid = lab.dnsmasq_pids()
    table = lab.ruleset()
    again = lab.engine.start(net)
    assert not again.changed
    assert lab.dnsmasq_pids() == pid
    assert lab.ruleset() == table
    assert lab.engine.reconcile() == []
    plan = lab.engine.plan([net])
    assert plan.in_sync, str(plan)
    assert lab.engine.active() == ["idem"] and lab.engine.is_active("idem")
    # a different definition under the same name is refused, not silently applied
    with pytest.raises(Conflict):
        lab.engine.start(nat_network("idem", f"{lab.mark}b", 12))


def test_plan_against_host_shows_only_the_difference(lab: Lab) -> None:
    from dataclasses import replace

    net = replace(nat_network("pl", f"{lab.mark}b", 13), mtu=1450)
    before = lab.engine.plan([net])
    text = str(before)
    assert f"+ bridge {lab.mark}b" in text and "+ dnsmasq pl" in text
    assert lab.links().count(f"{lab.mark}b") == 0  # planning touched nothing
    lab.engine.start(net)
    assert lab.engine.plan([net]).in_sync
    sh(lab.host, "ip", "link", "set", "mtu", "1400", "dev", f"{lab.mark}b")
    sh(lab.host, "ip", "addr", "flush", "dev", f"{lab.mark}b")
    after = lab.engine.plan([net])
    assert [str(c) for c in after.changes or ()] == [
        f"~ link {lab.mark}b: mtu 1400 -> 1450",
        f"+ address 10.77.13.1/24 dev {lab.mark}b",
    ]
    assert sorted(lab.engine.reconcile()) == [
        f"pl: bridge: + address 10.77.13.1/24 dev {lab.mark}b",
        f"pl: bridge: ~ link {lab.mark}b: mtu 1400 -> 1450",
    ]
    assert lab.engine.plan([net]).in_sync


def test_bridge_name_taken_by_foreign_link_is_refused_untouched(lab: Lab) -> None:
    sh(lab.host, "ip", "link", "add", f"{lab.mark}b", "type", "bridge")
    with pytest.raises(Conflict, match="already exists"):
        lab.engine.start(nat_network("clash", f"{lab.mark}b", 14))
    assert f"{lab.mark}b" in lab.links()  # not ours: left alone
    assert not lab.engine.is_active("clash")


def test_failure_midway_undoes_everything(lab: Lab) -> None:
    # dnsmasq refuses an unknown option: the start fails at its last step
    from dataclasses import replace

    net = replace(nat_network("bad", f"{lab.mark}b", 15), dnsmasq_options=("no-such-option",))
    with pytest.raises(HostError, match="starting dnsmasq.*undone"):
        lab.engine.start(net)
    assert f"{lab.mark}b" not in lab.links()
    assert "virtnet" not in lab.ruleset()
    assert lab.dnsmasq_pids() == [] and lab.state_files() == []
    assert lab.engine.active() == [] and lab.engine.store.list_runtime(lab.host) == {}


def test_reconcile_repairs_drift(lab: Lab) -> None:
    net = nat_network("drift", f"{lab.mark}b", 16)
    lab.engine.start(net)
    vm = lab.vm("drift")
    lab.listen(lab.outside, 7002)
    assert lab.tcp(vm.ns, OUTSIDE, 7002)

    # someone flushes the ruleset (firewalld reload, a third-party firewall)
    sh(lab.host, "nft", "flush", "ruleset")
    repairs = lab.engine.reconcile()
    assert any("nftables" in r for r in repairs), repairs
    assert lab.tcp(vm.ns, OUTSIDE, 7002)

    # one rule deleted: the masquerade chain emptied
    sh(lab.host, "nft", "flush", "chain", "inet", "virtnet", "masq_ports_1024_65535")
    assert any("nftables" in r for r in lab.engine.reconcile())
    assert lab.engine.reconcile() == []

    # dnsmasq killed
    (pid,) = lab.dnsmasq_pids()
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    repairs = lab.engine.reconcile()
    assert any("dnsmasq restarted" in r for r in repairs), repairs
    assert len(lab.dnsmasq_pids()) == 1
    assert lab.vm("drift").ip  # it serves leases again

    # the bridge removed: recreated, ports re-attached, dnsmasq rebound
    sh(lab.host, "ip", "link", "del", f"{lab.mark}b")
    repairs = lab.engine.reconcile()
    assert any("recreated" in r for r in repairs), repairs
    assert any(f"port {vm.port} re-attached" in r for r in repairs), repairs
    assert lab.ping(vm.ns, "10.77.16.1")
    assert lab.tcp(vm.ns, OUTSIDE, 7002)
    assert lab.dhcp(vm).ip
    assert lab.engine.reconcile() == []


def wait_dead(pid: int) -> None:
    """Until PID is gone or a zombie (a SIGKILL takes effect asynchronously)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.005)


CRASH_SCRIPT = """
import json, sys
from virtnet.engine import Engine
from virtnet.host import netns, record
net = record.network_from_json(json.loads(sys.argv[3]))
Engine(sys.argv[1], sys.argv[2]).start(net)
"""


@pytest.mark.parametrize("step", START_STEPS)
def test_kill_during_start_then_start_converges(lab: Lab, step: str) -> None:
    keep = nat_network("keep", f"{lab.mark}k", 17)
    lab.engine.start(keep)
    keep_rules = lab.ruleset()
    net = nat_network("crash", f"{lab.mark}b", 18, ForwardMode.NAT)
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(lab.state_dir), lab.host,
         json.dumps(record.network_to_json(net))],
        env={**os.environ, CRASH_ENV: step}, cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not lab.engine.is_active("crash")
    # the record of the interrupted start names the bridge it may have left, even one the
    # kill caught before it got its alias (steps sysctl, address)
    assert lab.engine.interrupted_bridge("crash") == (None if step == "intent"
                                                      else f"{lab.mark}b")
    if step in ("sysctl", "address"):
        assert "alias" not in sh(lab.host, "ip", "-d", "link", "show", f"{lab.mark}b")

    lab.engine.start(net)  # converges
    assert lab.engine.active() == ["crash", "keep"]
    assert lab.links().count(f"{lab.mark}b:") == 1
    assert len(lab.dnsmasq_pids()) == 2
    vm = lab.vm("crash")
    assert vm.ip.startswith("10.77.18.")
    assert lab.engine.reconcile() == []

    lab.engine.stop("crash")  # and stop leaves exactly what was there before
    assert f"{lab.mark}b:" not in lab.links()
    assert lab.ruleset() == keep_rules
    assert len(lab.dnsmasq_pids()) == 1
    assert sorted(lab.state_files()) == sorted(
        f"keep.{s}" for s in ("conf", "hostsfile", "addnhosts", "pid", "leases", "log"))


def test_kill_during_start_then_stop_or_reconcile_cleans_up(lab: Lab) -> None:
    net = nat_network("crash2", f"{lab.mark}b", 19)
    for finish in ("stop", "reconcile"):
        proc = subprocess.run(
            [sys.executable, "-c", CRASH_SCRIPT, str(lab.state_dir), lab.host,
             json.dumps(record.network_to_json(net))],
            env={**os.environ, CRASH_ENV: "active"}, cwd=ROOT, capture_output=True, text=True,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert len(lab.dnsmasq_pids()) == 1  # the orphan exists...
        if finish == "stop":
            lab.engine.stop("crash2")
        else:
            assert lab.engine.reconcile()
        assert lab.dnsmasq_pids() == []  # ...and is gone, with everything else
        assert f"{lab.mark}b" not in lab.links()
        assert "virtnet" not in lab.ruleset()
        assert lab.state_files() == []


def test_stop_unknown_network_is_a_clear_error(lab: Lab) -> None:
    with pytest.raises(NotFound, match="not active"):
        lab.engine.stop("nosuch")


def test_engine_refuses_missing_namespace(tmp_path: Path) -> None:
    require_root()
    with pytest.raises(NotFound, match="does not exist"):
        Engine(tmp_path, "virtnet-no-such-ns").start(nat_network("x", "vtnone0", 20))


def test_cli_reconcile_reports_repairs(lab: Lab) -> None:
    from click.testing import CliRunner

    from virtnet.cli.main import cli

    lab.engine.start(nat_network("cli", f"{lab.mark}b", 21))
    (pid,) = lab.dnsmasq_pids()
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    args = ["--state-dir", str(lab.state_dir), "--netns", lab.host, "reconcile"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "repaired cli: dnsmasq restarted" in first.output
    again = CliRunner().invoke(cli, [*args, "cli"])
    assert again.exit_code == 0 and again.output == "nothing to repair\n"
    missing = CliRunner().invoke(cli, [*args, "nosuch"])
    assert missing.exit_code == NotFound.exit_status and "not active" in missing.output


def test_bridge_attributes_stp_mtu_mac(lab: Lab) -> None:
    from dataclasses import replace

    from virtnet.model.network import Bridge

    net = replace(nat_network("attrs", f"{lab.mark}b", 22), mtu=1400, mac="52:54:00:12:34:56",
                  bridge=Bridge(name=f"{lab.mark}b", stp=True, delay=0))
    lab.engine.start(net)
    detail = sh(lab.host, "ip", "-d", "link", "show", f"{lab.mark}b")
    assert "mtu 1400" in detail and "52:54:00:12:34:56" in detail
    assert "stp_state 1" in detail
    assert "forward_delay 200" in detail  # the kernel's minimum with STP on: 2 s, not 0
    assert "alias virtnet:attrs" in detail
    sysctl = sh(lab.host, "sysctl", "-n", f"net.ipv6.conf.{lab.mark}b.disable_ipv6",
                "net.ipv4.ip_forward")
    assert sysctl.split() == ["1", "1"]


def test_routed_message_without_default_route(unique_name: str) -> None:
    require_root()
    lab = Lab(unique_name)
    try:
        lab.build(outside=False)
        report = lab.engine.start(nat_network("r", f"{lab.mark}b", 23, ForwardMode.ROUTE))
        assert len(report.messages) == 1
        assert "10.77.23.0/24 via <this host's address" in report.messages[0]
        assert "no default route" in report.messages[0]
    finally:
        lab.close()


def test_stop_after_the_namespace_was_deleted(lab: Lab) -> None:
    lab.engine.start(nat_network("gone", f"{lab.mark}b", 24))
    assert len(lab.dnsmasq_pids()) == 1
    netns.delete(lab.host)  # dnsmasq's process keeps the namespace itself alive
    lab.engine.stop("gone")
    assert lab.dnsmasq_pids() == [] and lab.state_files() == []
    assert lab.engine.store.list_runtime(lab.host) == {}


def test_start_many_is_one_apply_all_or_nothing(lab: Lab) -> None:
    from dataclasses import replace

    nets = [nat_network(f"many{i}", f"{lab.mark}{i}", 40 + i) for i in range(3)]
    bad = replace(nat_network("many-bad", f"{lab.mark}x", 49), dnsmasq_options=("bogus-opt",))
    with pytest.raises(HostError, match="'many-bad'.*2 other.*starting dnsmasq.*undone"):
        lab.engine.start_many([*nets[:2], bad])
    assert lab.engine.store.list_runtime(lab.host) == {}
    assert all(f"{lab.mark}{i}:" not in lab.links() for i in range(3))
    assert "virtnet" not in lab.ruleset()
    assert lab.dnsmasq_pids() == [] and lab.state_files() == []

    reports = lab.engine.start_many(nets)
    assert [r.changed for r in reports] == [True, True, True]
    assert lab.engine.active() == ["many0", "many1", "many2"]
    assert len(lab.dnsmasq_pids()) == 3
    assert lab.vm("many2").ip.startswith("10.77.42.")
    again = lab.engine.start_many(nets)
    assert [r.changed for r in again] == [False, False, False]
    assert lab.engine.reconcile() == []
    keep = nat_network("keep", f"{lab.mark}k", 48)
    lab.engine.start(keep)
    keep_rules_with = lab.ruleset()
    lab.engine.stop_many(["many0", "many1", "many2"])
    assert lab.engine.active() == ["keep"]
    assert all(f"{lab.mark}{i}:" not in lab.links() for i in range(3))
    rules = lab.ruleset()
    assert all(f"10.77.4{i}.0/24" not in rules for i in range(3)) and "10.77.48.0/24" in rules
    assert lab.ruleset() != keep_rules_with
    assert len(lab.dnsmasq_pids()) == 1
    assert sorted(lab.state_files()) == sorted(
        f"keep.{s}" for s in ("conf", "hostsfile", "addnhosts", "pid", "leases", "log"))
    with pytest.raises(NotFound):
        lab.engine.stop_many(["keep", "nosuch"])
    assert lab.engine.active() == ["keep"]  # nothing stopped when one name is unknown


@pytest.mark.parametrize("step", ["launched", "active"])
def test_ctrl_c_during_start_undoes_everything(
    lab: Lab, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from virtnet.engine import INTERRUPT_ENV

    nets = [nat_network(f"int{i}", f"{lab.mark}{i}", 50 + i) for i in range(2)]
    monkeypatch.setenv(INTERRUPT_ENV, step)
    with pytest.raises(KeyboardInterrupt):
        lab.engine.start_many(nets)
    monkeypatch.delenv(INTERRUPT_ENV)
    assert lab.engine.store.list_runtime(lab.host) == {}
    assert f"{lab.mark}0:" not in lab.links() and f"{lab.mark}1:" not in lab.links()
    assert "virtnet" not in lab.ruleset()
    assert lab.dnsmasq_pids() == [] and lab.state_files() == []
