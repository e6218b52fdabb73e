"""A disposable test bed in namespaces: a VM host, an outside host on TEST-NET, VM endpoints.

    outside (OUT)  eth0 203.0.113.2/24 ──veth── uplink 203.0.113.1/24  VM host (HOST)
                                                   default via 203.0.113.2
    VM endpoints (V1, V2, ...): a veth port of a network, far end "eth0" in the VM's
    namespace, addressed by a real DHCP client (udhcpc) from the network's dnsmasq.

Everything is named with the run mark and removed in ``close()`` even after a failure;
processes are started and stopped by PID only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path

from virtnet.engine import Engine
from virtnet.host import netns
from virtnet.model.network import (
    DHCP,
    Bridge,
    DHCPRange,
    Forward,
    ForwardMode,
    IPDef,
    Network,
)

UPLINK_HOST = "203.0.113.1"
OUTSIDE = "203.0.113.2"

UDHCPC_SCRIPT = textwrap.dedent("""\
    #!/bin/sh
    # udhcpc event script: apply the lease with ip(8) and note it for the test.
    case "$1" in
      deconfig)
        ip link set "$interface" up
        ip -4 addr flush dev "$interface"
        ;;
      bound|renew)
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        if [ -n "$router" ]; then
          for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
        fi
        echo "ip=$ip mask=$mask router=$router dns=$dns mtu=$mtu" > "$LEASE_OUT"
        ;;
    esac
    exit 0
    """)

TCP_SERVER = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
    "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(16)\n"
    "print('ready',flush=True)\n"
    "while True:\n"
    "  c,_=s.accept();c.sendall(b'virtnet-ok');c.close()\n"
)

TCP_CLIENT = (
    "import socket,sys\n"
    "c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=float(sys.argv[3]))\n"
    "sys.exit(0 if c.recv(16)==b'virtnet-ok' else 1)\n"
)


def sh(ns: str | None, *argv: str, check: bool = True, timeout: float = 20) -> str:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    assert ns, "tests never run commands in the root namespace"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {proc.stderr or proc.stdout}")
    return proc.stdout


@dataclass
class Vm:
    ns: str
    port: str
    ip: str
    router: str
    lease: str


def nat_network(name: str, bridge: str, third: int, mode: ForwardMode = ForwardMode.NAT,
                stp: bool = False) -> Network:
    """A test network 10.77.THIRD.0/24 with DHCP, STP off and dnsmasq no-ping (fast leases)."""
    sub = f"10.77.{third}"
    fwd = None if mode is ForwardMode.ISOLATED else Forward(mode=mode)
    return Network(
        name=name,
        uuid=f"00000000-0000-4000-8000-{third:012d}",
        forward=fwd,
        bridge=Bridge(name=bridge, stp=stp, delay=0),
        ips=(IPDef(address=f"{sub}.1", netmask="255.255.255.0",
                   dhcp=DHCP(ranges=(DHCPRange(f"{sub}.10", f"{sub}.99"),))),),
        dnsmasq_options=("no-ping",),
    )


class Lab:
    def __init__(self, mark: str) -> None:
        self.mark = mark
        self.host = f"{mark}h"
        self.outside = f"{mark}o"
        self.namespaces: list[str] = []
        self.pids: list[int] = []
        self.vms: list[Vm] = []
        # Traversable by dnsmasq's unprivileged user (it re-reads host files on SIGHUP).
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"virtnet-{mark}-"))
        os.chmod(self.state_dir, 0o755)
        self.script = self.state_dir / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)
        self._engine: Engine | None = None

    # -- set-up -------------------------------------------------------------------------

    def add_ns(self, name: str) -> str:
        netns.create(name)
        self.namespaces.append(name)
        return name

    def build(self, *, outside: bool = True) -> Lab:
        self.add_ns(self.host)
        if outside:
            self.add_ns(self.outside)
            sh(self.host, "ip", "link", "add", "uplink", "type", "veth", "peer", "name", "eth0",
               "netns", self.outside)
            sh(self.host, "ip", "addr", "add", f"{UPLINK_HOST}/24", "dev", "uplink")
            sh(self.host, "ip", "link", "set", "uplink", "up")
            sh(self.outside, "ip", "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
            sh(self.outside, "ip", "link", "set", "eth0", "up")
            sh(self.host, "ip", "route", "add", "default", "via", OUTSIDE)
        return self

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.state_dir, self.host)
        return self._engine

    def vm(self, network: str, *, mac: str | None = None, dhcp: bool = True) -> Vm:
        """A VM endpoint on NETWORK: its own namespace, a veth port, a real DHCP lease."""
        ns = self.add_ns(f"{self.mark}v{len(self.vms)}")
        port = self.engine.add_port(network, kind="veth", peer_netns=ns, mac=mac)
        vm = Vm(ns=ns, port=port.name, ip="", router="", lease="")
        if dhcp:
            vm = self.dhcp(vm)
        self.vms.append(vm)
        return vm

    def dhcp(self, vm: Vm, *, timeout: float = 10) -> Vm:
        """Run udhcpc in VM's namespace (own UTS namespace and resolv.conf) until it binds."""
        etc = Path("/etc/netns") / vm.ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("# virtnet test\n")
        out = self.state_dir / f"{vm.ns}.lease"
        try:
            proc = subprocess.run(
                ["ip", "netns", "exec", vm.ns, "unshare", "--uts", "udhcpc", "-i", "eth0",
                 "-n", "-q", "-f", "-t", "8", "-T", "1", "-s", str(self.script)],
                capture_output=True, text=True, timeout=timeout,
                env={**os.environ, "LEASE_OUT": str(out)},
            )
        finally:
            shutil.rmtree(etc, ignore_errors=True)
        if proc.returncode != 0 or not out.exists():
            raise AssertionError(f"udhcpc in {vm.ns} got no lease: {proc.stderr[-500:]}")
        fields = dict(kv.split("=", 1) for kv in out.read_text().split() if "=" in kv)
        return replace(vm, ip=fields.get("ip", ""), router=fields.get("router", ""),
                       lease=out.read_text().strip())

    # -- probes -------------------------------------------------------------------------

    def ping(self, ns: str, addr: str, *, wait: float = 1.0) -> bool:
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W", str(wait), addr],
            capture_output=True, text=True, timeout=wait + 5,
        )
        return proc.returncode == 0

    def listen(self, ns: str, port: int, addr: str = "0.0.0.0") -> int:
        """A TCP server in NS answering 'virtnet-ok'; returns its PID (stopped in close())."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "python3", "-c", TCP_SERVER, addr, str(port)],
            stdout=subprocess.PIPE, text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        self.pids.append(proc.pid)
        return proc.pid

    def tcp(self, ns: str, addr: str, port: int, *, timeout: float = 1.0) -> bool:
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, "python3", "-c", TCP_CLIENT, addr, str(port),
             str(timeout)],
            capture_output=True, text=True, timeout=timeout + 10,
        )
        return proc.returncode == 0

    def route_on_outside(self, subnet: str) -> None:
        sh(self.outside, "ip", "route", "replace", subnet, "via", UPLINK_HOST)

    # -- inspection ---------------------------------------------------------------------

    def links(self, ns: str | None = None) -> str:
        return sh(ns or self.host, "ip", "-o", "link", "show")

    def ruleset(self, ns: str | None = None) -> str:
        return sh(ns or self.host, "nft", "list", "ruleset")

    def dnsmasq_pids(self) -> list[int]:
        """dnsmasq processes started with a configuration from this lab's state directory."""
        needle = f"--conf-file={self.state_dir}/".encode()
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as fh:
                        args = fh.read().split(b"\0")
                    with open(f"/proc/{entry}/stat", "rb") as fh:
                        if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                            continue
                except OSError:
                    continue
                if any(a.startswith(needle) for a in args):
                    found.append(int(entry))
        return found

    def state_files(self) -> list[str]:
        d = self.state_dir / "dnsmasq"
        return sorted(p.name for p in d.iterdir()) if d.exists() else []

    # -- tear-down ----------------------------------------------------------------------

    def close(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if self._engine is not None:
            try:
                for name in self._engine.store.list_runtime(self.host):
                    with contextlib.suppress(Exception):
                        self._engine.stop(name)
            finally:
                self._engine.close()
        for pid in self.dnsmasq_pids():  # only ours: matched by this lab's state directory
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for ns in reversed(self.namespaces):
            netns.delete(ns)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        deadline = time.monotonic() + 2
        while self.dnsmasq_pids() and time.monotonic() < deadline:
            time.sleep(0.02)
        shutil.rmtree(self.state_dir, ignore_errors=True)
