"""``plan`` / ``apply -f``: desired state from files, all-or-nothing, safe after a kill."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_env import CliHost, cli_host, dnsmasq_pids, net_xml
from tests.conftest import require_root
from virtnet.firewall import read_table
from virtnet.host import netns
from virtnet.store import Store

pytestmark = pytest.mark.host

BAD_OPTION = ("<dnsmasq:options xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>"
              "<dnsmasq:option value='no-such-option=1'/></dnsmasq:options>")


@pytest.fixture
def host(tmp_path: Path, unique_name: str) -> Iterator[CliHost]:
    require_root()
    with cli_host(tmp_path, unique_name) as h:
        yield h


def nets_dir(host: CliHost, name: str = "nets") -> Path:
    d = host.tmp / name
    d.mkdir(exist_ok=True)
    (d / "a.xml").write_text(net_xml("a", host.mark + "a", 81))
    (d / "b.yaml").write_text(
        f"name: b\nmode: isolated\nbridge: {{name: {host.mark}b, stp: false}}\n"
        "ips:\n  - address: 10.82.0.1\n    prefix: 24\n    dhcp:\n"
        "      ranges: [{start: 10.82.0.10, end: 10.82.0.20}]\n")
    (d / "README.txt").write_text("not a definition: ignored\n")
    return d


def definitions(host: CliHost) -> dict[str, str]:
    with Store(host.state) as st:
        return {d.name: d.xml for d in st.list_definitions()}


def test_plan_changes_nothing(host: CliHost) -> None:
    d = nets_dir(host)
    out = host.run("plan", "-f", str(d)).stdout
    assert "+ network a: add (new network)" in out
    assert "+ network b: add (new network)" in out
    assert f"+ bridge {host.mark}a" in out and "+ dnsmasq a" in out
    assert "Plan: 2 to add, 0 to change" in out
    plan = host.json("plan", "-f", str(d))
    assert plan["summary"]["add"] == 2  # type: ignore[index]
    assert host.links() == {"lo"}
    assert read_table(host.ns) is None
    assert definitions(host) == {}  # not even the default network
    assert dnsmasq_pids(host.state) == []


def test_apply_reapply_change_drift_prune(host: CliHost) -> None:
    d = nets_dir(host)
    r = host.json("apply", "-f", str(d))
    assert r["networks"] == [{"name": "a", "result": "started"},  # type: ignore[index]
                             {"name": "b", "result": "started"}]
    listing = {n["name"]: n for n in host.json("net-list", "--all")}  # type: ignore[union-attr,index]
    assert listing["a"]["state"] == listing["b"]["state"] == "active"
    assert listing["a"]["autostart"] and listing["a"]["persistent"]
    assert {host.mark + "a", host.mark + "b"} <= host.links()
    assert len(dnsmasq_pids(host.state)) == 2

    # Again: nothing to do.
    assert "Plan: 0 to add, 0 to change, 0 to start, 0 to repair, 0 to remove, 2 unchanged." in \
        host.run("plan", "-f", str(d)).stdout
    pids = sorted(dnsmasq_pids(host.state))
    assert host.json("apply", "-f", str(d))["summary"]["unchanged"] == 2  # type: ignore[index]
    assert sorted(dnsmasq_pids(host.state)) == pids

    # A changed DHCP range on a running network with a VM port: changed in place.
    client = host.new_ns("c")
    host.run("port-add", "a", "--peer-netns", client, "--name", host.mark + "p")
    (d / "a.xml").write_text(net_xml("a", host.mark + "a", 81).replace("10.81.0.20",
                                                                       "10.81.0.40"))
    plan = host.run("plan", "-f", str(d)).stdout
    assert "~ network a: change (definition: ips; running with: ips)" in plan
    assert "a.conf: content differs" in plan
    assert host.json("apply", "-f", str(d))["networks"][0] == {  # type: ignore[index]
        "name": "a", "result": "changed in place"}
    assert "dhcp-range=10.81.0.10,10.81.0.40" in (host.state / "dnsmasq" / "a.conf").read_text()
    assert host.mark + "p" in host.links()  # the VM's port survived

    # Drift: the bridge of b removed behind virtnet's back; plan shows it, apply repairs.
    netns.run(host.ns, ["ip", "link", "del", host.mark + "b"])
    plan = host.run("plan", "-f", str(d)).stdout
    assert "! network b: repair (the host differs)" in plan
    assert f"+ bridge {host.mark}b" in plan
    assert host.json("apply", "-f", str(d))["networks"][1]["result"] == "repaired"  # type: ignore[index]
    assert host.mark + "b" in host.links()

    # --prune removes what apply made and the files no longer name, nothing else.
    host.run("net-define", str(host.write("own.xml", net_xml("own", host.mark + "o", 83))))
    (d / "b.yaml").unlink()
    plan = host.run("plan", "--prune", "-f", str(d)).stdout
    assert "- network b: remove" in plan and "own" not in plan and "default" not in plan
    assert f"    - bridge {host.mark}b: and the ports on it" in plan
    assert "    - dnsmasq b: pid" in plan
    host.run("apply", "--prune", "-f", str(d))
    names = {n["name"] for n in host.json("net-list", "--all")}  # type: ignore[union-attr,index]
    assert names == {"a", "own", "default"}
    assert host.mark + "b" not in host.links()
    assert len(dnsmasq_pids(host.state)) == 1


def test_failed_apply_leaves_the_others_as_they_were(host: CliHost) -> None:
    d = host.tmp / "nets"
    d.mkdir()
    (d / "a.xml").write_text(net_xml("a", host.mark + "a", 84))
    host.run("apply", "-f", str(d))
    before_defs = definitions(host)
    before_conf = (host.state / "dnsmasq" / "a.conf").read_text()
    before_pids = sorted(dnsmasq_pids(host.state))
    before_links = host.links()
    before_nft = read_table(host.ns)

    # a changes, b is new, c fails only when its dnsmasq starts (after a and b are done).
    (d / "a.xml").write_text(net_xml("a", host.mark + "a", 84).replace("10.84.0.20",
                                                                       "10.84.0.30"))
    (d / "b.xml").write_text(net_xml("b", host.mark + "b", 85))
    (d / "c.xml").write_text(net_xml("c", host.mark + "c", 86, extra=BAD_OPTION))
    r = host.run("apply", "-f", str(d), ok=False)
    assert r.exit_code == 6
    assert "apply failed at network 'c'" in r.stderr
    assert "the other networks were left as they were" in r.stderr

    assert definitions(host) == before_defs
    assert (host.state / "dnsmasq" / "a.conf").read_text() == before_conf
    assert host.links() == before_links
    assert read_table(host.ns) == before_nft
    assert [n["name"] for n in host.json("net-list")] == ["a"]  # type: ignore[union-attr,index]
    assert len(dnsmasq_pids(host.state)) == len(before_pids)


def test_bad_input_is_refused_before_anything_changes(host: CliHost) -> None:
    d = host.tmp / "nets"
    d.mkdir()
    (d / "a.xml").write_text(net_xml("a", host.mark + "a", 87))
    (d / "b.xml").write_text(net_xml("a", host.mark + "b", 88))  # same name again
    r = host.run("apply", "-f", str(d), ok=False)
    assert r.exit_code == 2 and "defined twice" in r.stderr
    (d / "b.xml").write_text(net_xml("b", host.mark + "b", 87))  # overlaps a's subnet
    r = host.run("apply", "-f", str(d), ok=False)
    assert r.exit_code == 2 and "overlaps" in r.stderr
    (d / "b.xml").write_text("<network><name>b</name>")
    r = host.run("apply", "-f", str(d), ok=False)
    assert r.exit_code == 2 and "b.xml" in r.stderr
    (d / "b.xml").write_text(net_xml("b", host.mark + "b", 88))
    netns.run(host.ns, ["ip", "link", "add", host.mark + "b", "type", "veth", "peer", "name",
                        host.mark + "q"])
    r = host.run("apply", "-f", str(d), ok=False)
    assert r.exit_code == 5 and "nothing was changed" in r.stderr
    assert host.run("apply", "-f", str(host.tmp / "missing"), ok=False).exit_code == 4
    assert {k for k in definitions(host) if k != "default"} == set()
    assert host.links() == {"lo", host.mark + "b", host.mark + "q"}
    assert dnsmasq_pids(host.state) == []


@pytest.mark.parametrize("step", ["bridge", "sysctl", "dnsmasq", "active", "after-first"])
def test_killed_apply_leaves_store_and_host_consistent(host: CliHost, step: str) -> None:
    """kill -9 of an apply: inside a network's start (the engine's crash hook at STEP), or
    from outside once the first network is up (so the second is cut off part-way)."""
    d = nets_dir(host)
    if step == "after-first":
        proc = _kill_when_first_is_active(host, d)
    else:
        done = host.subprocess("apply", "-f", str(d), env={"VIRTNET_TEST_CRASH_AT": step})
        assert done.returncode == -signal.SIGKILL, done.stderr
    # The store is readable and says what is defined; nothing claims to run that does not.
    with Store(host.state) as st:
        assert st.check() == []
        running = {n for n, r in st.list_runtime(host.ns).items() if r.get("state") == "active"}
    listing = {n["name"]: n for n in host.json("net-list", "--all")}  # type: ignore[union-attr,index]
    assert {"a", "b"} <= listing.keys()
    assert {n for n, v in listing.items() if v["state"] == "active"} == running
    for name in running:
        assert host.mark + name in host.links()
    # The next apply clears the leftovers and completes.
    r = host.run("apply", "-f", str(d))
    assert "network a:" in r.stdout and "network b:" in r.stdout
    assert {host.mark + "a", host.mark + "b"} <= host.links()
    assert len(dnsmasq_pids(host.state)) == 2
    assert "Plan: 0 to add, 0 to change, 0 to start, 0 to repair" in host.run(
        "plan", "-f", str(d)).stdout
    if step == "after-first":
        assert proc in (0, -signal.SIGKILL)


def _kill_when_first_is_active(host: CliHost, d: Path) -> int:
    import subprocess
    import sys
    import time

    argv = [sys.executable, "-c", "from virtnet.cli.main import main; main()", "--netns",
            host.ns, "--state-dir", str(host.state), "apply", "-f", str(d)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if (host.state / "virtnet.db").exists():
                with Store(host.state) as st:
                    rec = st.get_runtime(host.ns, "a")
                if rec is not None and rec.get("state") == "active":
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.002)
    finally:
        rc = proc.wait(timeout=30)
    return rc


def test_generated_values_are_stable_across_applies(host: CliHost) -> None:
    """A file without uuid, bridge name or MAC: the values generated at the first apply are
    kept, so applying the same file again changes nothing."""
    d = host.tmp / "nets"
    d.mkdir()
    (d / "g.yaml").write_text("name: gen\nmode: nat\nips:\n  - address: 10.89.0.1\n"
                              "    prefix: 24\n")
    host.run("net-undefine", "default")
    host.run("apply", "-f", str(d))
    first = host.run("net-dumpxml", "--inactive", "gen").stdout
    assert "<uuid>" in first and "<bridge name='virbr0'" in first and "<mac address=" in first
    out = host.run("plan", "-f", str(d)).stdout
    assert "= network gen: unchanged" in out
    assert host.json("apply", "-f", str(d))["networks"] == [  # type: ignore[index]
        {"name": "gen", "result": "unchanged"}]
    assert host.run("net-dumpxml", "--inactive", "gen").stdout == first
