"""Nobody in where they don't belong: isolated forwards nothing, and NAT's "not visible" fails
closed — a missing set element keeps it shut, and a repair forgets what a hole let in.

Each VM namespace counts, with its own nft counter, every packet that arrives from the
probing VM's subnet: "nothing delivered" is read from the receiver, not inferred from a
missing reply.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.conftest import require_root
from tests.hostlab import OUTSIDE, Lab, Vm, nat_network, sh
from virtnet.model.network import ForwardMode, IPDef

pytestmark = pytest.mark.host

PORT = 7011


@pytest.fixture
def lab(unique_name: str) -> Iterator[Lab]:
    require_root()
    lab = Lab(unique_name)
    try:
        yield lab.build()
    finally:
        lab.close()


def _dual(lab: Lab, name: str, third: int, mode: ForwardMode) -> str:
    base = nat_network(name, f"{lab.mark}{third}", third, mode)
    v6 = IPDef(address=f"fd00:77:{third}::1", family="ipv6", prefix=64)
    lab.engine.start(replace(base, ips=(*base.ips, v6)))
    return name


def _v6(vm: Vm, third: int, host: int = 50) -> str:
    addr = f"fd00:77:{third}::{host}"
    sh(vm.ns, "ip", "-6", "addr", "add", f"{addr}/64", "dev", "eth0", "nodad")
    sh(vm.ns, "ip", "-6", "route", "replace", "default", "via", f"fd00:77:{third}::1")
    return addr


def _count_from(ns: str, v4: str, v6: str) -> None:
    script = (
        "table inet probe {\n chain in {\n  type filter hook input priority -10;\n"
        f"  ip saddr {v4} counter\n  ip6 saddr {v6} counter\n }}\n}}\n"
    )
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, text=True,
                   check=True)


def _counted(ns: str) -> list[int]:
    out = sh(ns, "nft", "list", "chain", "inet", "probe", "in")
    return [int(w) for line in out.splitlines() if "counter" in line
            for i, w in enumerate(line.split()) if line.split()[i - 1] == "packets"]


def _udp(ns: str, addr: str, port: int) -> None:
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET,"
            "socket.SOCK_DGRAM)\n"
            "for _ in range(3): s.sendto(b'x',(sys.argv[1],int(sys.argv[2])))\n")
    sh(ns, "python3", "-c", code, addr, str(port), check=False)


def test_isolated_vm_with_its_own_route_reaches_only_the_host(lab: Lab) -> None:
    """An isolated VM that routes via the host gets nothing delivered to VMs of any other
    network — routed, NAT (whose IPv6 is routed), open — in IPv4 or IPv6, by TCP, UDP or
    ICMP; it still reaches the host."""
    others = {1: ForwardMode.NAT, 2: ForwardMode.ROUTE, 4: ForwardMode.OPEN}
    for third, mode in others.items():
        _dual(lab, f"o{third}", third, mode)
    _dual(lab, "iso", 3, ForwardMode.ISOLATED)
    iso = lab.vm("iso")
    assert iso.router == ""  # isolated: no default route handed out
    sh(iso.ns, "ip", "route", "replace", "default", "via", "10.77.3.1")
    _v6(iso, 3)
    targets = []
    for third in others:
        vm = lab.vm(f"o{third}")
        targets.append((vm, vm.ip, _v6(vm, third)))
        _count_from(vm.ns, "10.77.3.0/24", "fd00:77:3::/64")
        lab.listen(vm.ns, PORT, "::")  # dual-stack: IPv4 too
    # reaches the host
    assert lab.ping(iso.ns, "10.77.3.1")
    for vm, v4, v6 in targets:
        for addr in (v4, v6):
            assert not lab.ping(iso.ns, addr, wait=0.3), addr
            assert not lab.tcp(iso.ns, addr, PORT, timeout=0.3), addr
            _udp(iso.ns, addr, PORT)
        assert _counted(vm.ns) == [0, 0], f"packets from the isolated VM reached {vm.ns}"


def _outside_sees_nat_vm(lab: Lab, vm: Vm) -> bool:
    return lab.ping(lab.outside, vm.ip, wait=0.3) or lab.tcp(lab.outside, vm.ip, PORT,
                                                             timeout=0.3)


@pytest.mark.parametrize("element", ["bridges", "in4"])
def test_nat_stays_invisible_with_one_element_missing(lab: Lab, element: str) -> None:
    net = nat_network("n", f"{lab.mark}b", 1)
    lab.engine.start(net)
    vm = lab.vm("n")
    lab.listen(vm.ns, PORT)
    lab.route_on_outside("10.77.1.0/24")
    assert not _outside_sees_nat_vm(lab, vm)
    br = f"{lab.mark}b"
    elem = f'"{br}"' if element == "bridges" else f'"{br}" . 10.77.1.0/24'
    sh(lab.host, "nft", "delete", "element", "inet", "virtnet", element, "{", elem, "}")
    kind = "set" if element == "bridges" else "map"
    assert f'"{br}"' not in sh(lab.host, "nft", "list", kind, "inet", "virtnet", element)
    assert not _outside_sees_nat_vm(lab, vm)
    if element == "bridges":  # the VM's own way out is untouched (without in4, so are its
        lab.listen(lab.outside, PORT)  # replies: fail closed, the network breaks, not opens)
        assert lab.tcp(vm.ns, OUTSIDE, PORT)


ECHO_SERVER = (
    "import socket,sys\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen(4);print('ready',flush=True)\n"
    "while True:\n"
    "  c,_=s.accept()\n"
    "  while True:\n"
    "    d=c.recv(64)\n"
    "    if not d: break\n"
    "    c.sendall(d)\n"
)

# Connects once, then for each line on stdin sends it and prints the echo (or 'dead').
HELD_CLIENT = (
    "import socket,sys\n"
    "c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\n"
    "print('connected',flush=True)\n"
    "for line in sys.stdin:\n"
    "  try:\n"
    "    c.settimeout(1.5);c.sendall(line.encode());print(c.recv(64).decode().strip() or "
    "'dead',flush=True)\n"
    "  except OSError as e:\n"
    "    print('dead',flush=True)\n"
)


def test_connection_opened_through_a_flush_is_gone_after_the_repair(lab: Lab) -> None:
    net = nat_network("n", f"{lab.mark}b", 1)
    lab.engine.start(net)
    vm = lab.vm("n")
    server = subprocess.Popen(["ip", "netns", "exec", vm.ns, "python3", "-c", ECHO_SERVER,
                               str(PORT)], stdout=subprocess.PIPE, text=True)
    lab.pids.append(server.pid)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    lab.route_on_outside("10.77.1.0/24")
    sh(lab.host, "nft", "flush", "ruleset")  # the lab's VM host namespace only
    client = subprocess.Popen(
        ["ip", "netns", "exec", lab.outside, "python3", "-c", HELD_CLIENT, vm.ip, str(PORT)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lab.pids.append(client.pid)
    assert client.stdin is not None and client.stdout is not None
    assert client.stdout.readline().strip() == "connected"  # the hole is real
    client.stdin.write("one\n")
    client.stdin.flush()
    assert client.stdout.readline().strip() == "one"

    repairs = lab.engine.reconcile()
    assert any("table inet virtnet restored" in r for r in repairs)
    assert any(r.startswith("conntrack:") and "to 10.77.1.0/24" in r for r in repairs), repairs
    client.stdin.write("two\n")
    client.stdin.flush()
    t0 = time.monotonic()
    assert client.stdout.readline().strip() == "dead"
    assert time.monotonic() - t0 < 5
    # and a new attempt is refused again
    assert not _outside_sees_nat_vm(lab, vm)
