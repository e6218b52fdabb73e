"""Every virsh-style verb end to end against a namespace-contained host (real bridges,
nftables, dnsmasq, DHCP), through the real command line."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_env import CliHost, cli_host, dhcp_lease, dnsmasq_pids, net_xml
from tests.conftest import require_root
from virtnet.cli.main import cli
from virtnet.host import netns

pytestmark = pytest.mark.host

UUID_A = "0b2f7c7e-9a55-4c7e-9d3e-111111111111"


@pytest.fixture
def host(tmp_path: Path, unique_name: str) -> Iterator[CliHost]:
    require_root()
    with cli_host(tmp_path, unique_name) as h:
        yield h


def test_define_start_info_dumpxml_destroy_undefine(host: CliHost) -> None:
    br = host.mark + "a"
    f = host.write("a.xml", net_xml("neta", br, 61, uuid=UUID_A))
    r = host.run("net-define", str(f))
    assert r.stdout == f"Network neta defined from {f}\n\n"
    assert "defined network 'default'" in r.stderr  # first use of this state dir
    assert host.run("net-list").stdout.splitlines()[2:] == [""]  # nothing active yet
    listing = host.run("net-list", "--all").stdout
    assert " neta      inactive   no          yes" in listing
    assert " default   inactive   yes         yes" in listing

    assert host.run("net-start", "neta").stdout == "Network neta started\n\n"
    assert br in host.links()
    assert len(dnsmasq_pids(host.state)) == 1
    info = host.run("net-info", "neta").stdout
    assert info == (f"Name:           neta\nUUID:           {UUID_A}\nActive:         yes\n"
                    f"Persistent:     yes\nAutostart:      no\nBridge:         {br}\n\n")
    assert host.run("net-uuid", "neta").stdout == f"{UUID_A}\n\n"
    assert host.run("net-name", UUID_A).stdout == "neta\n\n"
    # virsh also accepts the UUID wherever a network is named.
    assert host.json("net-info", UUID_A)["name"] == "neta"  # type: ignore[index]
    xml = host.run("net-dumpxml", "neta").stdout
    assert f"<uuid>{UUID_A}</uuid>" in xml and f"<bridge name='{br}'" in xml
    assert "<mac address='52:54:00:" in xml  # generated at define, kept
    assert host.run("net-dumpxml", "--inactive", "neta").stdout == xml

    assert host.run("net-autostart", "neta").stdout == "Network neta marked as autostarted\n\n"
    assert [n["name"] for n in host.json("net-list", "--autostart")] == ["neta"]  # type: ignore[union-attr,index]
    assert {n["name"] for n in host.json("net-list", "--all", "--autostart")} == {  # type: ignore[union-attr,index]
        "neta", "default"}
    host.run("net-autostart", "--disable", "neta")
    assert not host.json("net-info", "neta")["autostart"]  # type: ignore[index]

    assert host.run("net-destroy", "neta").stdout == "Network neta destroyed\n\n"
    assert br not in host.links()
    assert dnsmasq_pids(host.state) == []
    assert host.run("net-undefine", "neta").stdout == "Network neta has been undefined\n\n"
    assert [n["name"] for n in host.json("net-list", "--all")] == ["default"]  # type: ignore[union-attr,index]


def test_yaml_definition_and_redefine_keeps_generated_values(host: CliHost) -> None:
    br = host.mark + "y"
    f = host.write("y.yaml", f"name: nety\nmode: route\nbridge: {{name: {br}, stp: false}}\n"
                   "ips:\n  - address: 10.62.0.1\n    prefix: 24\n")
    host.run("net-define", str(f))
    first = host.json("net-info", "nety")
    host.run("net-define", str(f))  # same file again: same uuid, same MAC
    assert host.json("net-info", "nety") == first
    xml1 = host.run("net-dumpxml", "nety").stdout
    r = host.run("net-start", "nety")
    assert "need the route 10.62.0.0/24" in r.stdout + r.stderr
    # Redefining a running network changes the stored definition only.
    f.write_text(f.read_text().replace("10.62.0.1", "10.62.1.1"))
    host.run("net-define", str(f))
    assert "10.62.0.1" in host.run("net-dumpxml", "nety").stdout
    assert "10.62.1.1" in host.run("net-dumpxml", "--inactive", "nety").stdout
    assert xml1 != host.run("net-dumpxml", "--inactive", "nety").stdout


def test_transient_networks(host: CliHost) -> None:
    br = host.mark + "t"
    f = host.write("t.xml", net_xml("nett", br, 63))
    assert host.run("net-create", str(f)).stdout == f"Network nett created from {f}\n\n"
    row = [n for n in host.json("net-list") if n["name"] == "nett"][0]  # type: ignore[union-attr,index]
    assert row["state"] == "active" and row["persistent"] is False
    assert host.json("net-list", "--transient")[0]["name"] == "nett"  # type: ignore[index]
    r = host.run("net-autostart", "nett", ok=False)
    assert r.exit_code == 5 and "transient" in r.stderr
    host.run("net-destroy", "nett")
    assert "nett" not in {n["name"] for n in host.json("net-list", "--all")}  # type: ignore[union-attr,index]
    assert br not in host.links()
    # Undefining a running persistent network leaves it running as a transient one.
    host.run("net-define", str(f))
    host.run("net-start", "nett")
    host.run("net-undefine", "nett")
    info = host.json("net-info", "nett")
    assert info["state"] == "active" and info["persistent"] is False  # type: ignore[index]
    host.run("net-destroy", "nett")
    assert host.run("net-info", "nett", ok=False).exit_code == 4


def test_errors_have_stable_exit_codes_and_fixes(host: CliHost) -> None:
    f = host.write("e.xml", net_xml("nete", host.mark + "e", 64))
    host.run("net-define", str(f))
    cases = [
        (("net-start", "nope"), 4, "no network with matching name 'nope'"),
        (("net-destroy", "nete"), 5, "is not active"),
        (("net-define", str(host.tmp / "missing.xml")), 4, "does not exist"),
        (("net-define", str(host.write("bad.xml", "<network><name>x</name"))), 2,
         "not well-formed"),
        (("net-define", str(host.write("ovl.xml", net_xml("ovl", host.mark + "o", 64)))), 2,
         "overlaps"),
        (("net-update", "nete", "add", "ip-dhcp-host", "<host name='x'/>", "--config"), 2,
         "Missing IP address"),
        (("net-update", "nete", "add", "ip-dhcp-host",
          "<host mac='52:54:00:00:00:01' ip='10.64.0.5'/>", "--live"), 5, "not running"),
    ]
    for args, code, text in cases:
        r = host.run(*args, ok=False)
        assert r.exit_code == code, (args, r.output)
        assert text in r.stderr and r.stderr.startswith("error: "), (args, r.stderr)
        assert "Traceback" not in r.output
    host.run("net-start", "nete")
    r = host.run("net-start", "nete", ok=False)
    assert r.exit_code == 5 and "already active" in r.stderr and "fix:" in r.stderr


def test_default_network_moves_off_a_used_subnet(host: CliHost) -> None:
    netns.run(host.ns, ["ip", "addr", "add", "192.168.122.5/24", "dev", "lo"])
    r = host.run("net-list", "--all")
    assert "192.168.123.0/24" in r.stderr and "already in use" in r.stderr
    xml = host.run("net-dumpxml", "default").stdout
    assert "<ip address='192.168.123.1' netmask='255.255.255.0'>" in xml
    assert "<range start='192.168.123.2' end='192.168.123.254'/>" in xml
    # Offered once: undefining it is respected.
    host.run("net-undefine", "default")
    r = host.run("net-list", "--all")
    assert r.stderr == "" and "default" not in r.stdout


def test_autostart_command_starts_marked_networks(host: CliHost) -> None:
    host.run("net-undefine", "default")  # keep the test to the networks it defines
    for i, (name, third) in enumerate([("as1", 65), ("as2", 66)]):
        host.run("net-define", str(host.write(f"{name}.xml",
                                              net_xml(name, host.mark + str(i), third))))
    host.run("net-autostart", "as1")
    r = host.run("autostart")
    assert r.stdout == "Network as1 started\n"
    assert [n["name"] for n in host.json("net-list")] == ["as1"]  # type: ignore[union-attr,index]
    assert host.run("autostart").stdout == "No autostart network to start\n"


def test_dhcp_leases_and_live_host_update_without_restart(host: CliHost) -> None:
    br = host.mark + "d"
    host.run("net-define", str(host.write("d.xml", net_xml("netd", br, 67))))
    host.run("net-start", "netd")
    client = host.new_ns("c")
    mac = "52:54:00:aa:bb:01"
    r = host.run("port-add", "netd", "--peer-netns", client, "--mac", mac)
    port = r.stdout.split()[1]
    ports = host.json("port-list", "netd")
    assert ports == [{"name": port, "network": "netd", "kind": "veth", "bridge": br,  # type: ignore[comparison-overlap]
                      "mac": mac, "peer_netns": client, "peer_name": "eth0",
                      "owner": None, "group": None}]

    # A fixed address for this MAC, added live: dnsmasq gets a SIGHUP, not a restart.
    pid_before = dnsmasq_pids(host.state)
    r = host.run("net-update", "netd", "add-last", "ip-dhcp-host",
                 f"<host mac='{mac}' name='vm1' ip='10.67.0.50'/>", "--live", "--config")
    assert r.stdout == "Updated network netd live state and persistent config\n\n"
    assert dnsmasq_pids(host.state) == pid_before
    assert host.json("net-update", "netd", "add", "dns-txt", "<txt name='k' value='v'/>",
                     "--config")["effect"] == "dnsmasq"  # type: ignore[index]
    assert "<txt" not in host.run("net-dumpxml", "netd").stdout  # --config only
    assert "<txt name='k' value='v'/>" in host.run("net-dumpxml", "--inactive", "netd").stdout

    assert dhcp_lease(client) == "10.67.0.50"
    leases = host.json("net-dhcp-leases", "netd")
    assert len(leases) == 1  # type: ignore[arg-type]
    lease = leases[0]  # type: ignore[index]
    assert (lease["mac"], lease["ip"], lease["prefix"], lease["protocol"]) == (
        mac, "10.67.0.50", 24, "ipv4")
    assert lease["expiry"] > time.time()
    table = host.run("net-dhcp-leases", "netd").stdout.splitlines()
    assert table[0].split() == ["Expiry", "Time", "MAC", "address", "Protocol", "IP", "address",
                                "Hostname", "Client", "ID", "or", "DUID"]
    assert f"{mac}   ipv4       10.67.0.50/24" in table[2]
    assert host.json("net-dhcp-leases", "netd", "--mac", "52:54:00:00:00:99") == []
    assert len(host.json("net-dhcp-leases", "netd", "--mac", mac.upper())) == 1  # type: ignore[arg-type]

    # Deleting the host entry live is refused when it is not there.
    r = host.run("net-update", "netd", "delete", "ip-dhcp-host", "<host ip='10.67.0.99'/>",
                 ok=False)
    assert r.exit_code == 4 and "couldn't locate a matching dhcp host" in r.stderr
    host.run("net-update", "netd", "delete", "ip-dhcp-host", f"<host mac='{mac}'/>")
    assert "10.67.0.50" not in (host.state / "dnsmasq" / "netd.hostsfile").read_text()

    host.run("port-delete", "netd", port)
    assert host.json("port-list", "netd") == []
    assert port not in host.links()


def test_live_range_update_restarts_only_dnsmasq(host: CliHost) -> None:
    br = host.mark + "r"
    host.run("net-define", str(host.write("r.xml", net_xml("netr", br, 68))))
    host.run("net-start", "netr")
    client = host.new_ns("c")
    host.run("port-add", "netr", "--peer-netns", client, "--name", host.mark + "p")
    r = host.json("net-update", "netr", "add", "ip-dhcp-range",
                  "<range start='10.68.0.100' end='10.68.0.110'/>")
    assert r == {"name": "netr", "live": True, "config": False, "effect": "dnsmasq"}
    conf = (host.state / "dnsmasq" / "netr.conf").read_text()
    assert "dhcp-range=10.68.0.100,10.68.0.110" in conf
    assert host.mark + "p" in host.links()  # the port survived: the network was not restarted
    refused = [
        ("add", "<range start='10.68.0.100' end='10.68.0.110'/>", 5),
        ("add", "<range start='10.69.0.1' end='10.69.0.5'/>", 2),
        ("modify", "<range start='10.68.0.100' end='10.68.0.110'/>", 3),
        ("delete", "<range start='10.68.0.120' end='10.68.0.130'/>", 4),
    ]
    for command, xml, code in refused:
        assert host.run("net-update", "netr", command, "ip-dhcp-range", xml,
                        ok=False).exit_code == code


def test_net_edit_validates_and_reopens(host: CliHost) -> None:
    br = host.mark + "x"
    host.run("net-define", str(host.write("x.xml", net_xml("netx", br, 69))))
    # An "editor" that breaks the XML the first time and fixes it (new range end) after.
    editor = host.write("editor.py", f"""import re, sys, pathlib
p = pathlib.Path(sys.argv[1]); n = pathlib.Path({str(host.tmp / "count")!r})
k = int(n.read_text()) if n.exists() else 0; n.write_text(str(k + 1))
t = p.read_text()
if k == 0:
    t = t.replace("</network>", "</netw>")
else:
    t = re.sub("end='10[.]69[.]0[.][0-9]+'", "end='10.69.0.30'", t.replace("</netw>", "</network>"))
p.write_text(t)
""")
    env = {"EDITOR": f"{sys.executable} {editor}", "VISUAL": ""}
    r = host.run("net-edit", "netx", input="y\n", env=env)
    assert "Network netx XML configuration edited." in r.stdout
    assert "not well-formed" in r.stderr and "Try again?" in r.stderr
    assert "end='10.69.0.30'" in host.run("net-dumpxml", "netx").stdout
    # Refusing to retry leaves the definition alone and fails.
    (host.tmp / "count").write_text("0")
    r = host.run("net-edit", "netx", input="n\n", env=env, ok=False)
    assert r.exit_code == 2 and "nothing changed" in r.stderr
    assert "end='10.69.0.30'" in host.run("net-dumpxml", "netx").stdout


def _fork_cli(args: list[str], errfile: Path) -> int:
    """The virtnet command in a child process forked from this (already imported) one, so
    20 of them start at once without paying interpreter start-up 20 times."""
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 70
        try:
            fd = os.open(errfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 2)
            os.dup2(fd, 1)
            cli.main(args=args, prog_name="virtnet", standalone_mode=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            os._exit(code)
    return pid


def test_twenty_concurrent_commands(host: CliHost) -> None:
    """20 virtnet processes at once on one state dir and namespace: 10 start networks, 10
    define others. None fails or is lost; the host ends with exactly the 10 started."""
    d = host.tmp / "pre"
    d.mkdir()
    for i in range(10):
        (d / f"s{i}.xml").write_text(net_xml(f"s{i}", f"{host.mark}s{i}", 100 + i))
    host.run("apply", "-f", str(d))
    for i in range(10):
        host.run("net-destroy", f"s{i}")
    files = [host.write(f"c{i}.xml", net_xml(f"c{i}", f"{host.mark}c{i}", 120 + i))
             for i in range(10)]
    base = ["--netns", host.ns, "--state-dir", str(host.state)]
    commands = [[*base, "net-start", f"s{i}"] for i in range(10)]
    commands += [[*base, "net-define", str(f)] for f in files]
    t0 = time.monotonic()
    pids = [_fork_cli(c, host.tmp / f"err{i}") for i, c in enumerate(commands)]
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    elapsed = time.monotonic() - t0
    for i, code in enumerate(codes):
        assert code == 0, (commands[i], (host.tmp / f"err{i}").read_text())
    listing = {n["name"]: n for n in host.json("net-list", "--all")}  # type: ignore[union-attr,index]
    assert listing.keys() == {f"s{i}" for i in range(10)} | {f"c{i}" for i in range(10)} | {
        "default"}
    assert {n for n, v in listing.items() if v["state"] == "active"} == {
        f"s{i}" for i in range(10)}
    assert len({v["bridge"] for v in listing.values()}) == 21
    assert {f"{host.mark}s{i}" for i in range(10)} <= host.links()
    assert len(dnsmasq_pids(host.state)) == 10
    print(f"20 concurrent commands: {elapsed:.2f}s")


def test_help_for_every_verb_and_completion() -> None:
    from click.testing import CliRunner

    runner = CliRunner()
    verbs = ["net-define", "net-undefine", "net-create", "net-start", "net-destroy", "net-list",
             "net-info", "net-uuid", "net-name", "net-dumpxml", "net-edit", "net-autostart",
             "net-dhcp-leases", "net-update", "port-add", "port-list", "port-delete",
             "autostart", "completion", "apply", "plan", "import"]
    for verb in verbs:
        r = runner.invoke(cli, [verb, "--help"])
        assert r.exit_code == 0 and "Example:" in r.output, verb
        assert f"virtnet {verb}" in r.output.split("Example:")[1], verb
    bash = runner.invoke(cli, ["completion", "bash"])
    assert bash.exit_code == 0 and "_VIRTNET_COMPLETE=bash_complete" in bash.output
    zsh = runner.invoke(cli, ["completion", "zsh"])
    assert zsh.exit_code == 0 and "#compdef virtnet" in zsh.output
    docs = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    for verb in verbs:
        assert f"virtnet {verb}" in docs, f"docs/cli.md lacks an example of {verb}"


def test_completion_of_network_names(host: CliHost) -> None:
    host.run("net-list")
    env = {"_VIRTNET_COMPLETE": "bash_complete", "COMP_WORDS":
           f"virtnet --state-dir {host.state} net-start de", "COMP_CWORD": "4"}
    from click.testing import CliRunner

    r = CliRunner().invoke(cli, [], env=env, prog_name="virtnet")
    assert "plain,default" in r.output


def test_live_update_of_dns_portgroup_and_transient(host: CliHost) -> None:
    br = host.mark + "u"
    host.run("net-create", str(host.write("u.xml", net_xml("netu", br, 70))))
    # DNS host live: dnsmasq restarted with the new addn-hosts; the bridge stays.
    r = host.json("net-update", "netu", "add", "dns-host",
                  "<host ip='10.70.0.5'><hostname>db</hostname></host>")
    assert r == {"name": "netu", "live": True, "config": False, "effect": "dnsmasq"}
    assert "10.70.0.5\tdb" in (host.state / "dnsmasq" / "netu.addnhosts").read_text()
    assert len(dnsmasq_pids(host.state)) == 1
    # A transient network's definition is its live one: it survives in net-dumpxml.
    assert "<hostname>db</hostname>" in host.run("net-dumpxml", "netu").stdout
    r = host.run("net-update", "netu", "add", "dns-txt", "<txt name='a' value='b'/>",
                 "--config", ok=False)
    assert r.exit_code == 5 and "transient" in r.stderr
    # Port groups change only the definition.
    r = host.json("net-update", "netu", "add", "portgroup",
                  "<portgroup name='web' default='yes'/>")
    assert r["effect"] == "none"  # type: ignore[index]
    assert "<portgroup name='web' default='yes'" in host.run("net-dumpxml", "netu").stdout
    assert host.run("net-update", "netu", "add", "portgroup", "<portgroup name='db' "
                    "default='yes'/>", ok=False).exit_code == 5
    # XML from a file, as virsh accepts.
    f = host.write("srv.xml", "<srv service='ldap' protocol='tcp'/>")
    host.run("net-update", "netu", "add", "dns-srv", str(f))
    assert "srv-host=_ldap._tcp" in (host.state / "dnsmasq" / "netu.conf").read_text()
    assert host.run("net-update", "netu", "delete", "dns-srv", str(f)).exit_code == 0
    assert host.run("net-update", "netu", "delete", "dns-srv", str(f), ok=False).exit_code == 4


def test_verbose_shows_the_operations(host: CliHost) -> None:
    br = host.mark + "v"
    host.run("net-define", str(host.write("v.xml", net_xml("netv", br, 73))))
    err = host.run("-v", "net-start", "netv").stderr
    assert "+ starting network netv" in err
    assert f"+   + bridge {br}: alias virtnet:netv" in err
    assert "+   + dnsmasq netv" in err
    assert "started in" in err
    err = host.run("-v", "net-destroy", "netv").stderr
    assert f"+   - bridge {br}" in err and "+   - dnsmasq pid" in err
    assert host.run("net-start", "netv").stderr == ""  # quiet without -v


def test_lost_or_unreadable_runtime_status_is_rebuilt(host: CliHost) -> None:
    import sqlite3

    br = host.mark + "l"
    host.run("net-define", str(host.write("l.xml", net_xml("netl", br, 74))))
    host.run("net-start", "netl")
    client = host.new_ns("c")
    host.run("port-add", "netl", "--peer-netns", client, "--name", host.mark + "p")
    pid = dnsmasq_pids(host.state)

    def damage(sql: str) -> None:
        con = sqlite3.connect(host.state / "virtnet.db")
        con.execute(sql)
        con.commit()
        con.close()

    # Lost: the network still runs, virtnet forgot it. net-start finds it by its marks.
    damage("DELETE FROM runtime")
    assert host.json("net-info", "netl")["state"] == "inactive"  # type: ignore[index]
    out = host.run("net-start", "netl").output
    assert f"runtime status rebuilt from the host (bridge {br}, dnsmasq pid {pid[0]})" in out
    assert host.json("net-info", "netl")["state"] == "active"  # type: ignore[index]
    assert dnsmasq_pids(host.state) == pid  # the same dnsmasq, no second one
    assert host.mark + "p" in host.links()  # the VM's port is still there

    # Unreadable: every command still works; net-start drops it and rebuilds.
    damage("UPDATE runtime SET record = 'not json'")
    assert host.json("net-info", "netl")["state"] == "inactive"  # type: ignore[index]
    out = host.run("net-start", "netl").output
    assert "unreadable runtime status was dropped" in out and "rebuilt" in out
    host.run("net-destroy", "netl")
    assert dnsmasq_pids(host.state) == [] and br not in host.links()

    # Lost, and the bridge gone too: the orphan dnsmasq is stopped, the network started anew.
    host.run("net-start", "netl")
    old = dnsmasq_pids(host.state)
    damage("DELETE FROM runtime")
    netns.run(host.ns, ["ip", "link", "del", br])
    out = host.run("net-start", "netl").output
    assert f"stopped dnsmasq (pid {old[0]}) left running without its network" in out
    new = dnsmasq_pids(host.state)
    assert len(new) == 1 and new != old and br in host.links()


def test_missing_namespace_is_a_clear_error_not_an_empty_list(tmp_path: Path) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(
        cli, ["--netns", "vt-no-such-ns", "--state-dir", str(tmp_path), "net-list", "--all"]
    )
    assert result.exit_code == 4
    assert "network namespace 'vt-no-such-ns' does not exist" in result.output
    assert "ip netns add vt-no-such-ns" in result.output


def test_errors_are_json_when_json_is_asked_for(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    result = CliRunner().invoke(
        cli, ["-o", "json", "--netns", "vt-no-such-ns", "--state-dir", str(tmp_path), "net-list"]
    )
    assert result.exit_code == 4
    assert result.stdout == ""
    err = json.loads(result.stderr)["error"]
    assert err["code"] == "not-found" and err["exit_status"] == 4
    assert err["element"] == "--netns" and "ip netns add" in err["hint"]
