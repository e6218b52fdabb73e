"""Nothing lost when state is: a namespace's networks have one owner, and a network that
still runs after its database is lost is taken back as it runs — never torn down.

"Kept" is read from the host: the same bridge (ifindex), MAC, dnsmasq PID, the VM's port
still on the bridge, and the VM still reaching its gateway with its lease.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli_env import CliHost, cli_host, dhcp_lease, dnsmasq_pids
from tests.conftest import require_root
from tests.hostlab import nat_network
from virtnet.cli.main import cli
from virtnet.engine import Engine
from virtnet.errors import Conflict
from virtnet.host import netns

pytestmark = pytest.mark.host


@pytest.fixture
def host(tmp_path: Path, unique_name: str) -> Iterator[CliHost]:
    require_root()
    with cli_host(tmp_path, unique_name) as h:
        yield h


def _xml(name: str, third: int, *, bridge: str | None = None) -> str:
    """A NAT network; without BRIDGE the definition names no bridge and no MAC (generated)."""
    br = f"<bridge name='{bridge}' stp='off' delay='0'/>" if bridge else \
        "<bridge stp='off' delay='0'/>"
    return textwrap.dedent(f"""\
        <network>
          <name>{name}</name>
          <forward mode='nat'/>
          {br}
          <ip address='10.{third}.0.1' prefix='24'>
            <dhcp><range start='10.{third}.0.10' end='10.{third}.0.20'/></dhcp>
          </ip>
        </network>
        """)


def _bridge(host: CliHost, name: str) -> dict[str, object]:
    out = netns.run(host.ns, ["ip", "-j", "-d", "link", "show", name]).stdout
    link = json.loads(out)[0]
    return {"ifindex": link["ifindex"], "mac": link["address"]}


def _reaches(ns: str, addr: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr],
                          capture_output=True).returncode == 0


def _running(host: CliHost, third: int) -> tuple[str, dict[str, object], list[int], str]:
    """Start network 'keep' from a file (no bridge name, no MAC), attach a VM, get a lease."""
    d = host.tmp / "defs"
    d.mkdir(exist_ok=True)
    (d / "keep.xml").write_text(_xml("keep", third))
    host.run("apply", "-f", str(d))
    br = host.json("net-info", "keep")["bridge"]  # type: ignore[index]
    vm = host.new_ns("v")
    host.run("port-add", "keep", "--peer-netns", vm, "--name", host.mark + "p",
             "--mac", "52:54:00:77:00:01")
    assert dhcp_lease(vm) is not None
    assert _reaches(vm, f"10.{third}.0.1")
    return br, _bridge(host, br), dnsmasq_pids(host.state), vm  # type: ignore[return-value]


def _lose_database(host: CliHost) -> None:
    for suffix in ("", "-wal", "-shm"):
        (host.state / f"virtnet.db{suffix}").unlink(missing_ok=True)


def _kept(host: CliHost, br: str, before: dict[str, object], pids: list[int], vm: str,
          third: int) -> None:
    assert _bridge(host, br) == before  # same bridge index and MAC
    assert dnsmasq_pids(host.state) == pids  # the same dnsmasq
    master = netns.run(host.ns, ["ip", "-j", "link", "show", host.mark + "p"]).stdout
    assert json.loads(master)[0].get("master") == br  # the VM's port still on it
    assert _reaches(vm, f"10.{third}.0.1")
    assert "virtnet" in netns.run(host.ns, ["nft", "list", "tables"]).stdout


def test_apply_after_losing_the_database_takes_the_network_back(host: CliHost) -> None:
    br, before, pids, vm = _running(host, 171)
    _lose_database(host)
    result = host.run("apply", "-f", str(host.tmp / "defs"))
    assert "taken back from the host" in result.output, result.output
    _kept(host, br, before, pids, vm, 171)
    assert host.json("net-info", "keep")["state"] == "active"  # type: ignore[index]
    assert host.run("reconcile").output == "nothing to repair\n"


def test_reconcile_after_losing_the_database_leaves_the_network_running(
        host: CliHost) -> None:
    br, before, pids, vm = _running(host, 172)
    _lose_database(host)
    out = host.run("reconcile").output
    assert "runs without a record or definition: left running" in out
    assert "removed" not in out
    _kept(host, br, before, pids, vm, 172)
    # and once the definition is back, define + start takes it back as it runs
    host.run("net-define", str(host.tmp / "defs" / "keep.xml"))
    started = host.run("net-start", "keep").output
    assert "rebuilt" in started or "taken back" in started, started
    _kept(host, br, before, pids, vm, 172)


def test_define_and_start_after_losing_the_database_keep_bridge_and_mac(
        host: CliHost) -> None:
    br, before, pids, vm = _running(host, 173)
    _lose_database(host)
    host.run("net-define", str(host.tmp / "defs" / "keep.xml"))  # no bridge name, no MAC in it
    info = host.json("net-info", "keep")
    assert info["bridge"] == br  # type: ignore[index]  # not a second virbrN
    host.run("net-start", "keep")
    _kept(host, br, before, pids, vm, 173)


def test_lost_runtime_records_are_taken_back_by_reconcile(host: CliHost) -> None:
    import sqlite3

    br, before, pids, vm = _running(host, 174)
    con = sqlite3.connect(host.state / "virtnet.db")
    con.execute("DELETE FROM runtime")
    con.commit()
    con.close()
    out = host.run("reconcile").output
    assert "keep: taken back from the host" in out, out
    _kept(host, br, before, pids, vm, 174)


def test_another_state_directory_cannot_tear_down_the_first_ones_networks(
        host: CliHost, tmp_path: Path) -> None:
    br, before, pids, vm = _running(host, 175)
    other = tmp_path / "other-state"
    for args in (["reconcile"], ["guard", "--once"]):
        result = CliRunner().invoke(cli, ["--netns", host.ns, "--state-dir", str(other), *args])
        assert result.exit_code == 5, (args, result.output)
        assert "managed by another virtnet state directory" in result.output
        assert str(other) in result.output
        _kept(host, br, before, pids, vm, 175)
    with Engine(other, host.ns) as eng, pytest.raises(Conflict) as err:
        eng.start(nat_network("intruder", host.mark + "x", 176))
    assert "owner id" in str(err.value)
    assert host.mark + "x" not in host.links()
    _kept(host, br, before, pids, vm, 175)


def test_doctor_names_two_owners_and_a_network_running_without_record(
        host: CliHost, tmp_path: Path) -> None:
    br, *_ = _running(host, 177)
    other = tmp_path / "other-state"
    result = CliRunner().invoke(cli, ["--netns", host.ns, "--state-dir", str(other), "-o",
                                      "json", "doctor"])
    found = {f["code"]: f for f in json.loads(result.stdout)["findings"]}
    assert "other-owner" in found, result.output
    assert f"keep ({br})" in found["other-owner"]["what"]
    assert str(other) in found["other-owner"]["why"]
    _lose_database(host)
    doc = CliRunner().invoke(cli, ["--netns", host.ns, "--state-dir", str(host.state), "-o",
                                   "json", "doctor"])
    mine = {f["code"]: f for f in json.loads(doc.stdout)["findings"]}
    assert mine["running-without-record"]["network"] == "keep"
    assert "other-owner" not in mine
