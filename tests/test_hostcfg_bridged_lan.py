"""The seed's bridged row, with packets: VMs on a bridged network take their addresses from
the LAN's own DHCP server, reach the host, each other and the LAN, and a machine on the LAN
opens a TCP connection to a VM. All in namespaces this test creates:

    LAN    bridge lan0, 198.51.100.1, dnsmasq: DHCP 198.51.100.100-150 (the LAN's server)
     |- OUT   eth0 198.51.100.10       (a second machine on the LAN)
     |- HOST  up0 -> br0 198.51.100.2  (the VM host: its address lives on the bridge)
                br0 -- virtnet ports --> VM1, VM2 (udhcpc)
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_root
from virtnet.engine import Engine
from virtnet.host import netns
from virtnet.model.network import Bridge, Forward, ForwardMode, Network

ETC_NETNS = Path("/etc/netns")
LAN_NET = ipaddress.ip_network("198.51.100.0/24")
HOST_IP, OUT_IP = "198.51.100.2", "198.51.100.10"
NET = Network(name="lan", forward=Forward(mode=ForwardMode.BRIDGE), bridge=Bridge(name="br0"))


@dataclass
class Bed:
    engine: Engine
    host: str
    lan: str
    out: str
    vms: list[str]
    leasefile: Path


def _ip(ns: str, *args: str) -> None:
    netns.run(ns, ["ip", *args])


def _ipv4(ns: str) -> str | None:
    out = netns.run(ns, ["ip", "-j", "-4", "addr", "show", "dev", "eth0"]).stdout
    for item in json.loads(out or "[]"):
        for a in item.get("addr_info", []):
            return str(a["local"])
    return None


@pytest.fixture
def bed(unique_name: str, tmp_path: Path) -> Iterator[Bed]:
    require_root()
    if shutil.which("udhcpc") is None or shutil.which("dnsmasq") is None:
        pytest.skip("needs udhcpc and dnsmasq")
    host, lan, out = unique_name + "h", unique_name + "l", unique_name + "o"
    vms = [unique_name + "a", unique_name + "b"]
    spaces = [host, lan, out, *vms]
    dnsmasq: subprocess.Popen[bytes] | None = None
    engine: Engine | None = None
    try:
        for ns in spaces:
            netns.create(ns)
        _ip(lan, "link", "add", "lan0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        _ip(lan, "addr", "add", "198.51.100.1/24", "dev", "lan0")
        _ip(lan, "link", "set", "lan0", "up")
        for ns, port in ((out, "p-out"), (host, "p-host")):
            peer = "eth0" if ns == out else "up0"
            _ip(lan, "link", "add", port, "type", "veth", "peer", "name", peer, "netns", ns)
            _ip(lan, "link", "set", port, "master", "lan0")
            _ip(lan, "link", "set", port, "up")
        _ip(out, "addr", "add", f"{OUT_IP}/24", "dev", "eth0")
        _ip(out, "link", "set", "eth0", "up")
        # the VM host as bridged mode wants it: uplink in br0, the host's address on br0
        _ip(host, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        _ip(host, "link", "set", "up0", "master", "br0")
        _ip(host, "link", "set", "up0", "up")
        _ip(host, "addr", "add", f"{HOST_IP}/24", "dev", "br0")
        _ip(host, "link", "set", "br0", "up")
        leasefile = tmp_path / "lan.leases"
        dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", lan, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
             "--port=0", "--user=root", "--interface=lan0", "--bind-interfaces", "--no-ping",
             "--dhcp-range=198.51.100.100,198.51.100.150,255.255.255.0,1h",
             "--dhcp-authoritative", f"--dhcp-leasefile={leasefile}",
             f"--pid-file={tmp_path / 'lan.pid'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        engine = Engine(tmp_path / "state", host)
        yield Bed(engine, host, lan, out, vms, leasefile)
    finally:
        if engine is not None:
            engine.close()
        if dnsmasq is not None:
            dnsmasq.send_signal(signal.SIGTERM)
            dnsmasq.wait(timeout=10)
        for ns in spaces:
            netns.delete(ns)
            shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)


def _lease(vm: str) -> str:
    """udhcpc in the VM, under unshare --uts and with its own resolv.conf."""
    etc = ETC_NETNS / vm
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text("# test VM\n")
    _ip(vm, "link", "set", "eth0", "up")
    subprocess.run(
        ["ip", "netns", "exec", vm, "unshare", "--uts", "udhcpc", "-i", "eth0", "-f", "-q", "-n",
         "-t", "6", "-T", "1", "-A", "1", "-s", "/etc/udhcpc/default.script"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    addr = _ipv4(vm)
    assert addr is not None
    return addr


def test_bridged_row_of_the_seed(bed: Bed) -> None:
    report = bed.engine.start(NET)
    assert "uplinks: up0 (ethernet)" in report.messages[0]
    addrs = []
    for vm in bed.vms:
        bed.engine.add_port("lan", peer_netns=vm, peer_name="eth0")
        addrs.append(_lease(vm))
    # the addresses came from the LAN's DHCP server (its lease file), on the LAN's subnet
    leases = bed.leasefile.read_text()
    for a in addrs:
        assert ipaddress.ip_address(a) in LAN_NET
        assert f" {a} " in leases
    vm1, vm2 = bed.vms
    ping = ["ping", "-c", "1", "-W", "2"]
    netns.run(vm1, [*ping, HOST_IP])  # connection to the host
    netns.run(vm1, [*ping, addrs[1]])  # to other VMs on the host
    netns.run(vm1, [*ping, OUT_IP])  # to outside locations
    # visible to outside: the LAN machine opens a TCP connection to the VM
    server = subprocess.Popen(
        ["ip", "netns", "exec", vm1, "python3", "-c",
         "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
         "s.bind(('0.0.0.0',8080))\ns.listen(1)\nprint('ready',flush=True)\n"
         "c,a=s.accept()\nc.sendall(a[0].encode())\nc.close()"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        got = netns.run(
            bed.out,
            ["python3", "-c", "import socket,sys\nc=socket.create_connection((sys.argv[1],8080),3)"
             "\nprint(c.recv(64).decode())", addrs[0]],
        ).stdout.strip()  # fmt: skip
        assert got == OUT_IP  # the VM saw the LAN machine's own address: no NAT in between
    finally:
        server.kill()
        server.wait(timeout=5)
    bed.engine.stop("lan")
    assert "br0" in netns.run(bed.host, ["ip", "-o", "link", "show", "dev", "br0"]).stdout
