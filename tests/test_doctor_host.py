"""``virtnet doctor`` on each broken condition, created for real in a namespace: the finding,
its fix text, and (where a packet can show it) that the fix it prints really repairs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from click.testing import CliRunner

from tests.conftest import require_root
from tests.hostlab import OUTSIDE, Lab, nat_network, sh
from virtnet.cli.main import cli
from virtnet.doctor import Doctor, Finding, exit_status
from virtnet.libvirtxml import format_network
from virtnet.model.network import Bridge, Forward, ForwardMode, Network

pytestmark = pytest.mark.host
PORT = 7421

# "version.bind CH TXT": dnsmasq answers it itself, with no upstream server
DNS_PROBE = (
    "import socket,sys\n"
    "q=b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00'"
    "+b'\\x07version\\x04bind\\x00\\x00\\x10\\x00\\x03'\n"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(0.5)\n"
    "s.sendto(q,(sys.argv[1],53))\n"
    "try:\n  s.recvfrom(512)\nexcept OSError:\n  sys.exit(1)\n"
)


@pytest.fixture
def lab(unique_name: str) -> Iterator[Lab]:
    require_root()
    lab = Lab(unique_name)
    try:
        yield lab.build()
    finally:
        lab.close()


def diagnose(lab: Lab, *names: str) -> list[Finding]:
    with Doctor(lab.state_dir, lab.host) as doc:
        return doc.diagnose(list(names))


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings if f.severity != "info"}


def only(findings: list[Finding], code: str) -> Finding:
    found = [f for f in findings if f.code == code]
    assert len(found) == 1, findings
    return found[0]


def nft_fixes(f: Finding) -> list[str]:
    return re.findall(r"nft (insert rule [^;]+?)(?=;|$)", f.fix)


def dns_answers(lab: Lab, ns: str, server: str) -> bool:
    proc = subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", DNS_PROBE, server],
                          capture_output=True, timeout=10)
    return proc.returncode == 0


def test_healthy_network_has_no_findings_and_exits_zero(lab: Lab) -> None:
    lab.engine.start(nat_network("ok", f"{lab.mark}b", 51))
    assert codes(diagnose(lab)) == set()
    result = CliRunner().invoke(cli, ["--netns", lab.host, "--state-dir", str(lab.state_dir),
                                      "-o", "json", "doctor"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["healthy"] is True


def test_docker_forward_drop_is_found_and_its_fix_works(lab: Lab) -> None:
    bridge = f"{lab.mark}b"
    lab.engine.start(nat_network("dk", bridge, 52))
    vm = lab.vm("dk")
    lab.listen(lab.outside, PORT)
    assert lab.tcp(vm.ns, OUTSIDE, PORT)
    # what Docker's iptables-nft leaves behind: FORWARD policy drop and its DOCKER-USER chain
    sh(lab.host, "nft", "add table ip filter; add chain ip filter DOCKER-USER; "
       "add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }")
    assert not lab.tcp(vm.ns, OUTSIDE, PORT)  # the real breakage
    findings = diagnose(lab)
    f = only(findings, "foreign-forward-drop")
    assert f.severity == "error" and "table ip filter, chain FORWARD" in f.what
    assert f"iptables -I DOCKER-USER -i {bridge} -j ACCEPT" in f.fix
    assert f"iptables -I DOCKER-USER -o {bridge} -j ACCEPT" in f.fix
    fixes = nft_fixes(f)
    assert fixes == [f'insert rule ip filter FORWARD iifname "{bridge}" accept',
                     f'insert rule ip filter FORWARD oifname "{bridge}" accept']
    assert "ip filter" in lab.ruleset()  # doctor changed nothing
    for cmd in fixes:
        sh(lab.host, "nft", cmd)
    assert lab.tcp(vm.ns, OUTSIDE, PORT)  # the printed fix is the fix
    assert "foreign-forward-drop" not in codes(diagnose(lab))


def test_input_drop_blocking_dhcp_and_dns_is_found_and_its_fix_works(lab: Lab) -> None:
    bridge = f"{lab.mark}b"
    lab.engine.start(nat_network("inp", bridge, 53))
    vm = lab.vm("inp")
    assert dns_answers(lab, vm.ns, "10.77.53.1")
    sh(lab.host, "nft", "add table inet distro; add chain inet distro input "
       "{ type filter hook input priority 0; policy drop; }")
    assert not dns_answers(lab, vm.ns, "10.77.53.1")
    f = only(diagnose(lab), "foreign-input-drop")
    assert "table inet distro, chain input (hook input)" in f.what
    (fix,) = nft_fixes(f)
    assert fix.startswith(f'insert rule inet distro input iifname "{bridge}"')
    sh(lab.host, "nft", fix)
    assert dns_answers(lab, vm.ns, "10.77.53.1")
    assert lab.dhcp(vm).ip.startswith("10.77.53.")  # DHCP through the fixed chain too
    assert "foreign-input-drop" not in codes(diagnose(lab))


def test_ip_forward_off(lab: Lab) -> None:
    lab.engine.start(nat_network("fw", f"{lab.mark}b", 54))
    sh(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    f = only(diagnose(lab), "ip-forward-off")
    assert f.severity == "error" and f.network == "fw"
    assert "net.ipv4.ip_forward is 0" in f.what and "reconcile" in f.fix
    # isolated networks do not forward: no finding for them
    lab.engine.stop("fw")
    lab.engine.start(nat_network("iso", f"{lab.mark}i", 55, mode=ForwardMode.ISOLATED))
    sh(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    assert "ip-forward-off" not in codes(diagnose(lab))


def test_foreign_dnsmasq_on_port_53_and_our_dead_dnsmasq(lab: Lab) -> None:
    bridge = f"{lab.mark}b"
    lab.engine.start(nat_network("pc", bridge, 56))
    (ours,) = lab.dnsmasq_pids()
    os.kill(ours, signal.SIGKILL)
    # Gone means its sockets are gone too: the kernel releases them a moment after the
    # process has left /proc, and the other server below must find the port free.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
            lab.dnsmasq_pids() or "10.77.56.1:53 " in sh(lab.host, "ss", "-H", "-lntu")):
        time.sleep(0.02)
    # a host-wide dnsmasq that grabbed the bridge address (no except-interface for it)
    other = subprocess.Popen(
        ["ip", "netns", "exec", lab.host, "dnsmasq", "-k", "--conf-file=/dev/null",
         "--bind-interfaces", "--listen-address=10.77.56.1", "--port=53", "--pid-file=",
         "--user=nobody"], stderr=subprocess.PIPE)
    lab.pids.append(other.pid)
    # Wait until the other server holds port 53 over UDP and TCP (its start-up can lag under
    # load); if it never does, say why instead of diagnosing a host without the conflict.
    def holds_port() -> bool:
        out = sh(lab.host, "ss", "-H", "-lntup")
        return sum(f"pid={other.pid}," in line and ":53 " in line
                   for line in out.splitlines()) >= 2

    deadline = time.monotonic() + 5
    while not holds_port() and other.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not holds_port():
        other.kill()
        _, err = other.communicate()
        raise AssertionError(f"the other dnsmasq did not take port 53: {err.decode()!r}"
                             + sh(lab.host, "ss", "-H", "-lntup"))
    findings = diagnose(lab, "pc")
    dead = only(findings, "dnsmasq-dead")
    assert dead.network == "pc" and f"(pid {ours})" in dead.what and "reconcile pc" in dead.fix
    clash = only(findings, "port-conflict")
    assert clash.severity == "error"
    assert f"dnsmasq (pid {other.pid}) listens on 10.77.56.1:53/tcp+udp" in clash.what
    assert f"except-interface={bridge}" in clash.fix and "bind-interfaces" in clash.fix
    # the conflict is real: our dnsmasq cannot come back while the other one holds the port
    with pytest.raises(Exception, match="in use|Address already"):
        lab.engine.reconcile(["pc"])
    other.kill()
    other.wait()
    assert any("dnsmasq restarted" in r for r in lab.engine.reconcile(["pc"]))
    assert codes(diagnose(lab, "pc")) == set()


def test_stopped_network_and_autostart(lab: Lab) -> None:
    net = nat_network("default", f"{lab.mark}d", 57)
    lab.engine.store.put_definition("default", net.uuid or "", format_network(net),
                                    persistent=True, autostart=False)
    f = only(diagnose(lab), "not-active")
    assert f.what == "network 'default' is not active"
    assert "autostart is off" in f.why
    assert "net-start default" in f.fix and "net-autostart default" in f.fix
    runner = CliRunner()
    base = ["--netns", lab.host, "--state-dir", str(lab.state_dir)]
    result = runner.invoke(cli, [*base, "doctor", "default"])
    assert result.exit_code == 2 and "network 'default' is not active" in result.output
    result = runner.invoke(cli, [*base, "doctor", "nosuch"])
    assert result.exit_code == 4 and "not found" in result.output
    lab.engine.start(net)
    findings = diagnose(lab)
    assert codes(findings) == set()
    assert only(findings, "autostart-off").severity == "info"  # running; off at next boot
    lab.engine.store.set_autostart("default", True)
    lab.engine.stop("default")
    f = only(diagnose(lab), "not-active")
    assert f.severity == "error" and "autostart is on, yet it is not running" in f.why


def test_drift_in_our_table(lab: Lab) -> None:
    lab.engine.start(nat_network("dr", f"{lab.mark}b", 58))
    sh(lab.host, "nft", "flush", "chain", "inet", "virtnet", "masq_ports_1024_65535")
    f = only(diagnose(lab), "nft-drift")
    assert "rule missing" in f.what and "reconcile" in f.fix
    sh(lab.host, "nft", "flush", "ruleset")
    assert "table inet virtnet is missing" in only(diagnose(lab), "nft-drift").what
    lab.engine.reconcile()
    assert codes(diagnose(lab)) == set()


def test_stp_forward_delay_and_missing_bridge(lab: Lab) -> None:
    bridge = f"{lab.mark}b"
    lab.engine.start(nat_network("stp", bridge, 59, stp=True))
    f = only(diagnose(lab), "stp-delay")
    assert f.severity == "warning" and "forward delay of 2 s" in f.what
    assert "stp='off'" in f.fix
    sh(lab.host, "ip", "link", "del", bridge)
    findings = diagnose(lab)
    assert only(findings, "bridge-missing").network == "stp"
    assert exit_status(findings) == 2


def test_bridged_network_on_a_host_bridge(lab: Lab) -> None:
    br = f"{lab.mark}h"
    net = Network(name="lan", uuid="00000000-0000-4000-8000-000000000060",
                  forward=Forward(mode=ForwardMode.BRIDGE), bridge=Bridge(name=br))
    lab.engine.store.put_definition("lan", net.uuid or "", format_network(net),
                                    persistent=True)
    findings = diagnose(lab, "lan")
    assert {f.code for f in findings} >= {"not-active", "bridged-bridge-missing"}
    sh(lab.host, "ip", "link", "add", br, "type", "bridge", "stp_state", "1")
    sh(lab.host, "ip", "link", "set", br, "up")
    findings = diagnose(lab, "lan")
    no_uplink = only(findings, "bridged-no-uplink")
    assert no_uplink.severity == "warning" and "no uplink" in no_uplink.what
    stp = only(findings, "stp-delay")
    assert "nmcli connection modify" in stp.fix
    sh(lab.host, "ip", "link", "set", "uplink", "master", br)  # a wired uplink: fine
    lab.engine.start(replace(net))
    assert "bridged-no-uplink" not in codes(diagnose(lab, "lan"))


def test_bridge_name_taken_and_subnet_in_use(lab: Lab) -> None:
    net = nat_network("cl", f"{lab.mark}c", 61)
    lab.engine.store.put_definition("cl", net.uuid or "", format_network(net), persistent=True)
    sh(lab.host, "ip", "link", "add", f"{lab.mark}c", "type", "bridge")  # not ours
    sh(lab.host, "ip", "link", "add", f"{lab.mark}x", "type", "bridge")
    sh(lab.host, "ip", "addr", "add", "10.77.61.200/25", "dev", f"{lab.mark}x")
    findings = diagnose(lab, "cl")
    taken = only(findings, "bridge-taken")
    assert f"interface {lab.mark}c already exists" in taken.what
    clash = only(findings, "subnet-in-use")
    assert (f"subnet 10.77.61.0/24 of network 'cl' overlaps 10.77.61.200/25 on interface "
            f"{lab.mark}x") == clash.what
    assert "already in use by interface" in clash.why
    # both are real: the start is refused for the name
    with pytest.raises(Exception, match="already exists"):
        lab.engine.start(net)
    sh(lab.host, "ip", "link", "del", f"{lab.mark}c")
    lab.engine.start(net)  # virtnet does not refuse the overlap; doctor still reports it
    findings = diagnose(lab, "cl")
    assert codes(findings) == {"subnet-in-use"}
    sh(lab.host, "ip", "link", "del", f"{lab.mark}x")
    assert codes(diagnose(lab, "cl")) == set()
