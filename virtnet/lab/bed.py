"""Build and tear down a lab: namespaces, the LAN, virtnet's networks, VMs with real leases.

Layout (every namespace name starts with the lab's mark, ``vl`` + 4 hex digits)::

    MARK-lan   bridge lan0 (the physical LAN, 203.0.113.0/24 and 2001:db8:ff::/64)
      |- MARK-host  eth0 203.0.113.1: the VM host; virtnet's networks run here (Engine)
      |               |- vnbrN bridges -- veth ports --> MARK-nNvI  (VM I of network N)
      |- MARK-out1  eth0 203.0.113.10, routes to every VM subnet via 203.0.113.1
      |- MARK-host  eth1.. (macvtap pools): one more veth each, no address, macvlan VMs on
                    them (and on eth0); the LAN's dnsmasq leases them addresses

Bridged and macvtap VMs are LAN stations: the LAN namespace runs their DHCP server (dnsmasq on
lan0, 203.0.113.100-150, router 203.0.113.254 that forwards nothing). With ``lan_hairpin``
the LAN ports facing the host's macvtap interfaces reflect frames back (802.1Qbg reflective
relay), which is what lets vepa VMs, and the host and its own macvtap VMs, reach each other.

The state file ``STATE/labs/MARK.json`` is written before anything is created and lists
every namespace, ``/etc/netns`` directory and process the lab may own, so ``down`` (or
``down --all`` after a crash) removes exactly those, whatever stage the build reached.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virtnet.errors import Conflict, HostError, NotFound, VirtnetError
from virtnet.host import netns as netns_mod
from virtnet.lab.spec import (
    HOST_LAN_V4,
    HOST_LAN_V6,
    HOST_UPLINK,
    LAN_BRIDGE,
    LAN_V4,
    LAN_V6,
    LabSpec,
    extra_uplinks,
    host_uplink,
    is_host_bridge,
    macvtap_interfaces,
    on_lan,
)
from virtnet.lab.spec import LAN_DHCP as LAN_DHCP  # re-exported: callers read bed.LAN_DHCP
from virtnet.model.network import ForwardMode, Network

MARK_RE = re.compile(r"^vl[0-9a-f]{4}$")
NS_RE = re.compile(r"^(vl[0-9a-f]{4})-(host|lan|out\d+|n\d+v\d+)$")
ETC_NETNS = Path("/etc/netns")
# Which state dir each live lab belongs to (tmpfs: goes with the namespaces at reboot), so
# `down --all` of one state dir never mistakes another state dir's live lab for a leftover.
REGISTRY = Path("/run/virtnet/labs")
UDHCPC_SCRIPT = "/etc/udhcpc/default.script"
# The LAN's router and DHCP server (bridged VMs' leases); it forwards nothing anywhere.
LAN_GATEWAY_V4 = str(LAN_V4.network_address + 254)

Progress = Callable[[str], None]
_VM_SYSCTLS = {
    "net/ipv6/conf/default/accept_dad": "0",
    "net/ipv6/conf/all/accept_dad": "0",
    "net/ipv6/conf/default/router_solicitation_delay": "0",
    "net/ipv6/conf/default/router_solicitation_interval": "1",
}


def _quiet(_: str) -> None:
    pass


@dataclass
class VmInfo:
    id: str  # NET/vmI, as in the reach matrix
    network: str
    netns: str
    port: str = ""
    mac: str = ""
    ipv4: str | None = None
    ipv6: str | None = None


@dataclass
class LabState:
    mark: str
    state_dir: str
    status: str = "building"  # building | up | failed | down
    networks: list[str] = field(default_factory=list)  # XML of each network, in order
    namespaces: list[str] = field(default_factory=list)
    etc_dirs: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    vms: list[dict[str, Any]] = field(default_factory=list)
    outside: list[dict[str, Any]] = field(default_factory=list)
    vms_per_network: int = 2
    outside_routes: bool = True
    lan_hairpin: bool = False
    created: float = 0.0
    build_seconds: float = 0.0

    @property
    def host_ns(self) -> str:
        return f"{self.mark}-host"

    @property
    def lan_ns(self) -> str:
        return f"{self.mark}-lan"

    @property
    def engine_dir(self) -> Path:
        return Path(self.state_dir) / "labs" / self.mark

    def network_defs(self) -> list[Network]:
        from virtnet.libvirtxml import parse_network

        return [parse_network(x) for x in self.networks]

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def labs_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "labs"


def state_path(state_dir: Path, mark: str) -> Path:
    return labs_dir(state_dir) / f"{mark}.json"


def save(state: LabState) -> None:
    path = state_path(Path(state.state_dir), state.mark)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=1))
    os.replace(tmp, path)
    REGISTRY.mkdir(parents=True, exist_ok=True)
    (REGISTRY / state.mark).write_text(str(Path(state.state_dir).resolve()))


def owner(mark: str) -> Path | None:
    """The state dir of live lab MARK, if it is registered and its state file exists."""
    try:
        state_dir = Path((REGISTRY / mark).read_text().strip())
    except (FileNotFoundError, OSError):
        return None
    return state_dir if state_path(state_dir, mark).exists() else None


def load(state_dir: Path, mark: str) -> LabState:
    path = state_path(state_dir, mark)
    try:
        return LabState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise NotFound(f"no lab {mark!r} in {labs_dir(state_dir)}",
                       hint="'virtnet lab list' shows the labs") from None
    except (ValueError, TypeError) as exc:
        raise HostError(f"lab state file {path} is unreadable: {exc}",
                        hint=f"'virtnet lab down --all' removes lab {mark}'s leftovers") from None


def list_labs(state_dir: Path) -> list[LabState]:
    out = []
    d = labs_dir(state_dir)
    for p in sorted(d.glob("vl*.json")) if d.is_dir() else []:
        with contextlib.suppress(VirtnetError):
            out.append(load(state_dir, p.stem))
    return out


def new_mark() -> str:
    while True:
        mark = "vl" + secrets.token_hex(2)
        if not any(n.startswith(mark + "-") for n in netns_mod.list_names()):
            return mark


# -- building ------------------------------------------------------------------------------


def up(spec: LabSpec, state_dir: Path, *, progress: Progress = _quiet,
       mark: str | None = None) -> LabState:
    """Build the lab; on any failure tear down what was built and re-raise."""
    from virtnet.libvirtxml import format_network

    _require_root()
    mark = mark or new_mark()
    if not MARK_RE.match(mark):
        raise Conflict(f"lab mark {mark!r} is not of the form vlXXXX (4 hex digits)")
    if state_path(state_dir, mark).exists():
        raise Conflict(f"lab {mark} already exists", hint=f"'virtnet lab down {mark}' first")
    t0 = time.monotonic()
    st = LabState(mark=mark, state_dir=str(state_dir), created=time.time(),
                  networks=[format_network(n) for n in spec.networks],
                  vms_per_network=spec.vms_per_network, outside_routes=spec.outside_routes,
                  lan_hairpin=spec.lan_hairpin)
    st.namespaces = [st.host_ns, st.lan_ns]
    st.namespaces += [f"{mark}-out{i}" for i in range(1, spec.outside_hosts + 1)]
    vms = [
        VmInfo(f"{net.name}/vm{i}", net.name, f"{mark}-n{j}v{i}")
        for j, net in enumerate(spec.networks) for i in range(1, spec.vms_per_network + 1)
    ]
    st.namespaces += [v.netns for v in vms]
    st.etc_dirs = [str(ETC_NETNS / v.netns) for v in vms]
    save(st)  # the intent: from here on, down() can remove all of it
    try:
        progress(f"lab {mark}: {len(st.namespaces)} namespaces")
        _parallel([lambda n=n: _make_ns(n) for n in st.namespaces])  # type: ignore[misc]
        _build_lan(st, spec)
        progress(f"lab {mark}: starting {len(spec.networks)} networks in {st.host_ns}")
        _start_networks(st, spec, vms)
        progress(f"lab {mark}: {len(vms)} VMs taking DHCP leases")
        _leases(st, spec, vms)
        st.vms = [v.__dict__ for v in vms]
        st.status = "up"
        st.build_seconds = round(time.monotonic() - t0, 3)
        save(st)
        return st
    except BaseException:
        st.status = "failed"
        st.vms = [v.__dict__ for v in vms]
        save(st)
        with contextlib.suppress(Exception):
            down(st, progress=progress)
        raise


def _require_root() -> None:
    if os.geteuid() != 0:
        raise HostError("a lab creates network namespaces, which needs root",
                        hint="run as root (sudo virtnet lab up ...)")


def _make_ns(name: str) -> None:
    netns_mod.create(name)


def _parallel(jobs: Sequence[Callable[[], object]], workers: int = 16) -> list[object]:
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = [pool.submit(j) for j in jobs]
        return [f.result() for f in futures]


def _batch(netns: str, lines: Sequence[str]) -> None:
    """One `ip -batch` in NETNS (~0.3 ms per operation instead of a process each)."""
    proc = subprocess.run(["ip", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise HostError(f"building the lab in {netns} failed: {proc.stderr.strip()}")


def _sysctls(netns: str, values: dict[str, str]) -> None:
    from virtnet.host.nsenter import entered

    with entered(netns):
        for key, value in values.items():
            with open(f"/proc/sys/{key}", "w") as fh:
                fh.write(value)


def _all_subnets(spec: LabSpec, version: int) -> list[str]:
    out = []
    for net in spec.networks:
        if on_lan(net):
            continue
        out += [str(ip.network) for ip in net.ips if ip.network.version == version]
    return out


def _build_lan(st: LabState, spec: LabSpec) -> None:
    lan = ["link add lan0 type bridge stp_state 0 forward_delay 0", "link set lan0 up",
           f"link add up0 type veth peer name eth0 netns {st.host_ns}",
           "link set up0 master lan0", "link set up0 up"]
    outs = [n for n in st.namespaces if "-out" in n]
    for i, ns in enumerate(outs, 1):
        lan += [f"link add o{i} type veth peer name eth0 netns {ns}",
                f"link set o{i} master lan0", f"link set o{i} up"]
    # The host's further LAN interfaces, named as the macvtap pools name them (LAN side hN).
    extra = extra_uplinks(spec.networks)
    for i, dev in enumerate(extra, 1):
        lan += [f"link add h{i} type veth peer name {dev} netns {st.host_ns}",
                f"link set h{i} master lan0", f"link set h{i} up"]
    if spec.lan_hairpin:
        # Hairpin only where macvtap devices sit: elsewhere it would reflect the host's (or a
        # bridged VM's) own frames back to it.
        ports = [f"h{i}" for i in range(1, len(extra) + 1)]
        ports += ["up0"] if HOST_UPLINK in macvtap_interfaces(spec.networks) else []
        lan += [f"link set {p} type bridge_slave hairpin on" for p in ports]
    _sysctls(st.lan_ns, {"net/ipv6/conf/default/accept_dad": "0",
                         "net/ipv6/conf/all/accept_dad": "0"})
    _batch(st.lan_ns, lan)
    # The host answers every rejected probe at once: no ICMP error rate limit in the lab.
    host_sysctls = {"net/ipv4/icmp_ratelimit": "0", "net/ipv6/icmp/ratelimit": "0"}
    if any(n.mode is ForwardMode.PASSTHROUGH for n in spec.networks):
        # Passthrough gives a LAN interface the VM's MAC; with arp_ignore=0 the host would
        # answer ARP for its own address there too, claiming it at the VM's MAC (ARP flux,
        # docs/direct-modes.md). 1: answer only on the interface holding the address.
        host_sysctls["net/ipv4/conf/all/arp_ignore"] = "1"
    _sysctls(st.host_ns, host_sysctls)
    jobs: list[Callable[[], object]] = []
    bridged = any(is_host_bridge(n) for n in spec.networks)
    # Bridged mode wants the host's LAN address on a bridge that enslaves the uplink.
    up = host_uplink(spec)
    host = [f"link add {LAN_BRIDGE} type bridge stp_state 0 forward_delay 0",
            f"link set eth0 master {LAN_BRIDGE}", f"link set {LAN_BRIDGE} up"] if bridged else []
    host += [f"addr add {HOST_LAN_V4}/{LAN_V4.prefixlen} dev {up}",
             f"addr add {HOST_LAN_V6}/{LAN_V6.prefixlen} dev {up} nodad", "link set eth0 up",
             f"route add default via {LAN_GATEWAY_V4}"]
    host += [f"link set {dev} up" for dev in extra]
    if any(on_lan(n) for n in spec.networks):
        _batch(st.lan_ns, [f"addr add {LAN_GATEWAY_V4}/{LAN_V4.prefixlen} dev lan0"])
        jobs.append(lambda: _lan_dhcp(st))
    jobs.append(lambda: _batch(st.host_ns, host))
    st.outside = []
    for i, ns in enumerate(outs, 1):
        v4, v6 = spec.outside_address(i), spec.outside_address(i, "ipv6")
        cmds = [f"addr add {v4}/{LAN_V4.prefixlen} dev eth0",
                f"addr add {v6}/{LAN_V6.prefixlen} dev eth0 nodad", "link set eth0 up"]
        if spec.outside_routes:
            cmds += [f"route add {s} via {HOST_LAN_V4}" for s in _all_subnets(spec, 4)]
            cmds += [f"route add {s} via {HOST_LAN_V6}" for s in _all_subnets(spec, 6)]
        st.outside.append({"id": f"outside{i}", "netns": ns, "ipv4": v4, "ipv6": v6})
        jobs.append(lambda ns=ns, cmds=cmds: _batch(ns, cmds))  # type: ignore[misc]
    _parallel(jobs)
    save(st)


def _lan_dhcp(st: LabState) -> None:
    """The LAN's own DHCP server (a dnsmasq in the LAN namespace) for bridged and macvtap
    VMs."""
    st.engine_dir.mkdir(parents=True, exist_ok=True)
    pidfile = st.engine_dir / "lan-dhcp.pid"
    argv = ["ip", "netns", "exec", st.lan_ns, "dnsmasq", "--conf-file=/dev/null", "--port=0",
            "--user=root", "--interface=lan0", "--bind-interfaces", "--no-ping",
            f"--dhcp-range={LAN_DHCP[0]},{LAN_DHCP[1]},255.255.255.0,1h",
            "--dhcp-authoritative", f"--dhcp-option=3,{LAN_GATEWAY_V4}",
            f"--dhcp-leasefile={st.engine_dir / 'lan-dhcp.leases'}", f"--pid-file={pidfile}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise HostError(f"the lab LAN's DHCP server did not start: {proc.stderr.strip()}")


def lan_leases(st: LabState) -> str:
    path = st.engine_dir / "lan-dhcp.leases"
    return path.read_text() if path.exists() else ""


def engine_for(st: LabState) -> Any:
    from virtnet.engine import Engine

    st.engine_dir.mkdir(parents=True, exist_ok=True)
    return Engine(st.engine_dir, st.host_ns)


def _start_networks(st: LabState, spec: LabSpec, vms: list[VmInfo]) -> None:
    eng = engine_for(st)
    try:
        for net in spec.networks:
            eng.start(net)
        st.pids = _dnsmasq_pids(st)
        save(st)
        # VM namespaces: no IPv6 DAD wait, router solicitations every second (default 4 s:
        # a lost first one cost 4 s of SLAAC), then their veth from the network's bridge.
        _parallel([lambda v=v: _sysctls(v.netns, _VM_SYSCTLS) for v in vms])  # type: ignore[misc]
        for v in vms:
            port = eng.add_port(v.network, kind="veth", peer_netns=v.netns, peer_name="eth0")
            v.port, v.mac = port.name, port.mac or ""
    finally:
        eng.close()


def _dnsmasq_pids(st: LabState) -> list[int]:
    proc = subprocess.run(["ip", "netns", "pids", st.host_ns], capture_output=True, text=True)
    return [int(p) for p in proc.stdout.split()]


def _leases(st: LabState, spec: LabSpec, vms: list[VmInfo]) -> None:
    by_name = {n.name: n for n in spec.networks}
    _parallel([lambda v=v: _lease_one(v, by_name[v.network]) for v in vms])  # type: ignore[misc]


def _lease_one(vm: VmInfo, net: Network) -> None:
    """udhcpc in the VM, as the safety rules say: under unshare --uts, own resolv.conf."""
    etc = ETC_NETNS / vm.netns
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text("# virtnet lab VM: udhcpc writes here\n")
    _batch(vm.netns, ["link set eth0 up"])
    vm.mac = vm.mac or _mac(vm.netns)
    if net.ipv4 or on_lan(net):
        argv = ["ip", "netns", "exec", vm.netns, "unshare", "--uts", "udhcpc", "-i", "eth0",
                "-f", "-q", "-n", "-t", "6", "-T", "1", "-A", "1", "-s", UDHCPC_SCRIPT]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        vm.ipv4 = _address(vm.netns, 4)
        if proc.returncode != 0 or vm.ipv4 is None:
            raise HostError(f"VM {vm.id} got no DHCP lease from network {net.name!r}: "
                            f"{(proc.stderr or proc.stdout).strip()[-300:]}",
                            hint="check the network's dnsmasq log in the lab's state dir")
    if net.ipv6_defs:
        deadline = time.monotonic() + 8
        while vm.ipv6 is None and time.monotonic() < deadline:
            time.sleep(0.05)
            vm.ipv6 = _address(vm.netns, 6)
        if vm.ipv6 is None:
            raise HostError(f"VM {vm.id} got no IPv6 address (SLAAC) on network {net.name!r}",
                            hint="dnsmasq sends router advertisements for an IPv6 /64")


def _mac(netns: str) -> str:
    proc = subprocess.run(["ip", "-n", netns, "-j", "link", "show", "dev", "eth0"],
                          capture_output=True, text=True)
    with contextlib.suppress(ValueError, IndexError, KeyError):
        return str(json.loads(proc.stdout)[0]["address"])
    return ""


def _address(netns: str, version: int) -> str | None:
    proc = subprocess.run(["ip", "-n", netns, "-j", f"-{version}", "addr", "show", "dev", "eth0",
                           "scope", "global"], capture_output=True, text=True)
    with contextlib.suppress(ValueError, IndexError, KeyError):
        for item in json.loads(proc.stdout or "[]"):
            for a in item.get("addr_info", []):
                if not a.get("tentative"):
                    return str(a["local"])
    return None


# -- tearing down --------------------------------------------------------------------------


def down(st: LabState, *, progress: Progress = _quiet) -> list[str]:
    """Remove everything the lab lists, whatever stage it reached. Returns what was removed."""
    removed: list[str] = []
    if netns_mod.exists(st.host_ns):
        with contextlib.suppress(Exception):
            eng = engine_for(st)
            try:
                for name in eng.active():
                    eng.stop(name)
            finally:
                eng.close()
    for ns in st.namespaces:
        removed += _kill_in(ns)
    for pid in st.pids:
        if _kill_pid(pid, st.host_ns):
            removed.append(f"process {pid}")
    for ns in st.namespaces:
        if netns_mod.exists(ns):
            try:
                netns_mod.delete(ns)
            except VirtnetError:
                # A namespace still being set up by a worker of an interrupted build can
                # refuse once; the second try finds it complete.
                time.sleep(0.2)
                try:
                    netns_mod.delete(ns)
                except VirtnetError as exc:
                    progress(f"lab {st.mark}: could not remove {ns}: {exc}")
                    continue
            removed.append(f"netns {ns}")
    for d in st.etc_dirs:
        p = Path(d)
        if p.parent == ETC_NETNS and NS_RE.match(p.name) and p.exists():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(f"dir {p}")
    shutil.rmtree(st.engine_dir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        state_path(Path(st.state_dir), st.mark).unlink()
    with contextlib.suppress(FileNotFoundError):
        (REGISTRY / st.mark).unlink()
    progress(f"lab {st.mark}: down ({len(removed)} things removed)")
    return removed


def _kill_in(netns: str) -> list[str]:
    """End every process inside one of the lab's own namespaces (by PID)."""
    if not netns_mod.exists(netns):
        return []
    proc = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    pids = [int(p) for p in proc.stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 2
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return [f"process {p} (in {netns})" for p in pids]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _kill_pid(pid: int, netns: str) -> bool:
    """A recorded PID is ended only if it still runs inside the lab's namespace."""
    try:
        ns_of_pid = os.readlink(f"/proc/{pid}/ns/net")
        target = os.stat(os.path.join(netns_mod.NETNS_DIR, netns))
        if ns_of_pid != f"net:[{target.st_ino}]":
            return False
        os.kill(pid, signal.SIGTERM)
        return True
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


def down_all(state_dir: Path, *, progress: Progress = _quiet,
             only: set[str] | None = None) -> dict[str, list[str]]:
    """Every lab in the state dir, plus leftovers of crashed labs found by their marks
    (ONLY: just these marks)."""
    out: dict[str, list[str]] = {}
    for st in list_labs(state_dir):
        if only is None or st.mark in only:
            out[st.mark] = down(st, progress=progress)
    marks: dict[str, set[str]] = {}
    for name in netns_mod.list_names():
        m = NS_RE.match(name)
        if m and (only is None or m.group(1) in only):
            marks.setdefault(m.group(1), set()).add(name)
    if ETC_NETNS.is_dir():
        for p in ETC_NETNS.iterdir():
            m = NS_RE.match(p.name)
            if m and (only is None or m.group(1) in only):
                marks.setdefault(m.group(1), set())
    here = Path(state_dir).resolve()
    for mark, names in marks.items():
        other = owner(mark)
        if other is not None and other != here:
            progress(f"lab {mark}: kept, it is a live lab of state dir {other}")
            continue
        ghost = LabState(mark=mark, state_dir=str(state_dir), namespaces=sorted(names),
                         etc_dirs=[str(p) for p in ETC_NETNS.glob(f"{mark}-*")])
        out.setdefault(mark, []).extend(down(ghost, progress=progress))
    return out


def addresses(st: LabState) -> dict[str, dict[str, str]]:
    """Every endpoint's probe addresses: {id: {"ipv4": ..., "ipv6": ..., "netns": ...}}."""
    out: dict[str, dict[str, str]] = {}
    for v in st.vms:
        out[v["id"]] = {k: v[k] for k in ("ipv4", "ipv6", "netns") if v.get(k)}
    for o in st.outside:
        out[o["id"]] = {k: o[k] for k in ("ipv4", "ipv6", "netns")}
    out["host"] = {"ipv4": HOST_LAN_V4, "ipv6": HOST_LAN_V6, "netns": st.host_ns}
    return out


def host_address_on(net: Network, version: int) -> str | None:
    for ip in net.ips:
        if ip.network.version == version:
            return str(ipaddress.ip_interface(f"{ip.address}/{ip.prefixlen}").ip)
    return None
