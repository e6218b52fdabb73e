"""A multi-host OVN lab in namespaces: a central, N chassis, a geneve underlay, an outside LAN.

Layout (every namespace name starts with the lab's mark, ``vo`` + 4 hex digits)::

    MARK-central  NB and SB ovsdb-servers, ovn-northd (unix sockets in the lab's directory)
    MARK-under    bridge u0: the underlay switch, 172.31.0.0/24
    MARK-chI      chassis I: ovsdb-server, ovs-vswitchd (userspace netdev datapath),
                  ovn-controller; br-phy holds its underlay address (geneve endpoint),
                  br-int its VMs; chassis 1 is the gateway chassis: br-ex to the outside LAN
                  (ovn-bridge-mappings physnet:br-ex)
    MARK-lan      bridge lan0: the outside LAN, 203.0.113.0/24
    MARK-out1     the outside host 203.0.113.50, a route to every VM subnet via its network's
                  gateway (external) address
    MARK-nJvI     VM I of network J: eth0, a veth whose peer is a port of br-int on chassis
                  ((I-1) mod N)+1, bound to logical port NET-vmI; its address is a DHCP lease
                  from OVN (udhcpc under unshare --uts)

Every daemon runs as a child of the process that built the lab (never ``--detach``), with
its database, sockets, pid file and log under ``STATE/ovn-labs/MARK/`` (OVS_RUNDIR,
OVN_RUNDIR and friends point there: nothing touches /run/openvswitch). The state file
``STATE/ovn-labs/MARK.json`` is written before anything is created and lists every namespace,
directory and daemon (PID and start time), so ``down`` removes exactly those whatever stage
the build reached, also after a crash of the keeper.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import functools
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from virtnet.errors import Conflict, HostError, InvalidDefinition, NotFound, VirtnetError
from virtnet.host import netns as netns_mod
from virtnet.host.nsenter import entered
from virtnet.lab import daemons as dmod
from virtnet.lab.daemons import Daemons, Started
from virtnet.model.network import Network
from virtnet.modes.traits import traits

MARK_RE = re.compile(r"^vo[0-9a-f]{4}$")
NS_RE = re.compile(r"^(vo[0-9a-f]{4})-(central|under|lan|ch\d+|out\d+|n\d+v\d+)$")
ETC_NETNS = Path("/etc/netns")
UDHCPC_SCRIPT = "/etc/udhcpc/default.script"
NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
VSWITCH_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
TOOLS = ("ovsdb-server", "ovsdb-tool", "ovs-vswitchd", "ovs-vsctl", "ovn-northd",
         "ovn-controller", "ovn-nbctl", "ovn-sbctl", "udhcpc", "unshare")

UNDERLAY = ipaddress.IPv4Network("172.31.0.0/24")
OUTSIDE_LAN = ipaddress.IPv4Network("203.0.113.0/24")
OUTSIDE_HOST = "203.0.113.50"
OUTSIDE_LAN6 = ipaddress.IPv6Network("2001:db8:ff::/64")
OUTSIDE_HOST6 = "2001:db8:ff::50"
# VMs: no DAD wait, a router solicitation every second until OVN's advertisement comes.
_VM_SYSCTLS = {
    "net/ipv6/conf/default/accept_dad": "0",
    "net/ipv6/conf/all/accept_dad": "0",
    "net/ipv6/conf/default/router_solicitation_delay": "0",
    "net/ipv6/conf/default/router_solicitation_interval": "1",
    "net/ipv6/conf/default/router_solicitations": "-1",
}
PHYSNET = "physnet"
MAX_CHASSIS = 8
MAX_VMS = 8

# ethtool: struct ethtool_value {u32 cmd; u32 data} through SIOCETHTOOL.
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class OvnLabSpec:
    networks: tuple[Network, ...]
    chassis: int = 2
    vms_per_network: int = 2
    outside_hosts: int = 1
    underlay_mtu: int | None = None  # None: 1500, or what the definitions' <mtu> needs


def underlay_mtu(spec: OvnLabSpec) -> int:
    """The underlay carries every definition's MTU plus the geneve overhead (at least 1500)."""
    from virtnet.ovn.mtu import overhead

    if spec.underlay_mtu is not None:
        return spec.underlay_mtu
    need = [n.mtu + overhead("geneve") for n in spec.networks if n.mtu]
    return max([1500, *need])


def check_spec(spec: OvnLabSpec) -> OvnLabSpec:
    if not 1 <= spec.chassis <= MAX_CHASSIS:
        raise InvalidDefinition(f"an OVN lab has 1..{MAX_CHASSIS} chassis, not {spec.chassis}",
                                element="--chassis", hint="e.g. --chassis 2")
    if not 1 <= spec.vms_per_network <= MAX_VMS:
        raise InvalidDefinition(f"vms_per_network must be 1..{MAX_VMS}", element="--vms",
                                hint="e.g. 2")
    if spec.outside_hosts != 1:
        raise InvalidDefinition("an OVN lab has exactly one outside host", element="--outside",
                                hint="leave --outside at 1")
    if not spec.networks:
        raise InvalidDefinition("an OVN lab needs at least one network", element="networks",
                                hint="e.g. --network nat --network route")
    if len(spec.networks) > 40:
        raise InvalidDefinition("an OVN lab carries at most 40 networks", element="networks",
                                hint="use fewer networks")
    from virtnet.ovn.topology import translate_all

    translate_all(list(spec.networks), lab_options(spec, "vo0000"))  # refusals up front
    return spec


@dataclass
class OvnLabState:
    mark: str
    state_dir: str
    status: str = "building"  # building | up | failed | down
    backend: str = "ovn"
    networks: list[str] = field(default_factory=list)  # XML of each network, in order
    chassis: int = 2
    vms_per_network: int = 2
    underlay_mtu: int = 1500
    namespaces: list[str] = field(default_factory=list)
    etc_dirs: list[str] = field(default_factory=list)
    daemons: list[dict[str, Any]] = field(default_factory=list)
    keeper: dict[str, int] = field(default_factory=dict)  # pid, start_time
    vms: list[dict[str, Any]] = field(default_factory=list)
    outside: list[dict[str, Any]] = field(default_factory=list)
    external_ips: dict[str, str] = field(default_factory=dict)  # network -> ADDR/PLEN
    external_ipv6s: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    created: float = 0.0

    @property
    def dir(self) -> Path:
        return labs_dir(Path(self.state_dir)) / self.mark

    @property
    def central_ns(self) -> str:
        return f"{self.mark}-central"

    @property
    def under_ns(self) -> str:
        return f"{self.mark}-under"

    @property
    def lan_ns(self) -> str:
        return f"{self.mark}-lan"

    def chassis_ns(self, i: int) -> str:
        return f"{self.mark}-ch{i}"

    def chassis_name(self, i: int) -> str:
        return f"{self.mark}-ch{i}"

    @property
    def gateway_chassis(self) -> str:
        return self.chassis_name(1)

    @property
    def nb(self) -> str:
        return f"unix:{self.dir / 'central' / 'nb.sock'}"

    @property
    def sb(self) -> str:
        return f"unix:{self.dir / 'central' / 'sb.sock'}"

    def chassis_dir(self, i: int) -> Path:
        return self.dir / f"ch{i}"

    def ovs_db(self, i: int) -> str:
        return f"unix:{self.chassis_dir(i) / 'db.sock'}"

    def network_defs(self) -> list[Network]:
        from virtnet.libvirtxml import parse_network

        return [parse_network(x) for x in self.networks]

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OvnLabState:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def labs_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "ovn-labs"


def state_path(state_dir: Path, mark: str) -> Path:
    return labs_dir(state_dir) / f"{mark}.json"


def save(st: OvnLabState) -> None:
    path = state_path(Path(st.state_dir), st.mark)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(st.to_json(), indent=1))
    os.replace(tmp, path)


def load(state_dir: Path, mark: str) -> OvnLabState:
    path = state_path(state_dir, mark)
    try:
        return OvnLabState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise NotFound(f"no OVN lab {mark!r} in {labs_dir(state_dir)}",
                       hint="'virtnet lab list' shows the labs") from None
    except (ValueError, TypeError) as exc:
        raise HostError(f"OVN lab state file {path} is unreadable: {exc}",
                        hint="'virtnet lab down --all' removes its leftovers") from None


def list_labs(state_dir: Path) -> list[OvnLabState]:
    d = labs_dir(state_dir)
    out = []
    for p in sorted(d.glob("vo*.json")) if d.is_dir() else []:
        with contextlib.suppress(VirtnetError):
            out.append(load(state_dir, p.stem))
    return out


def new_mark() -> str:
    while True:
        mark = "vo" + secrets.token_hex(2)
        if not any(n.startswith(mark + "-") for n in netns_mod.list_names()):
            return mark


def require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    missing += [str(p) for p in (NB_SCHEMA, SB_SCHEMA, VSWITCH_SCHEMA) if not p.exists()]
    if missing:
        raise HostError(f"the OVN lab needs {', '.join(missing)}",
                        hint="run scripts/setup.sh (openvswitch-switch, ovn-central, ovn-host)")
    if os.geteuid() != 0:
        raise HostError("a lab creates network namespaces, which needs root",
                        hint="run as root (sudo virtnet lab up --backend ovn ...)")


def external_ip(index: int) -> str:
    return f"{OUTSIDE_LAN.network_address + 10 + index}/{OUTSIDE_LAN.prefixlen}"


def external_ipv6(index: int) -> str:
    return f"{OUTSIDE_LAN6.network_address + 0x10 + index}/{OUTSIDE_LAN6.prefixlen}"


def lab_options(spec: OvnLabSpec, mark: str) -> Any:
    """The options ``virtnet ovn apply`` gets in the lab: one external address per network
    with a gateway, the gateway chassis, the localnet on physnet, the underlay's MTU."""
    from virtnet.ovn.topology import OvnOptions

    ext = {n.name: external_ip(j) for j, n in enumerate(spec.networks)
           if traits(n).forwards_out}
    ext6 = {n.name: external_ipv6(j) for j, n in enumerate(spec.networks)
            if traits(n).forwards_out and n.ipv6_defs}
    return OvnOptions(external_ips=ext, external_ipv6s=ext6, physical_network=PHYSNET,
                      chassis=f"{mark}-ch1", underlay_mtu=underlay_mtu(spec))


# -- small host helpers ----------------------------------------------------------------------


def _batch(netns: str, lines: Sequence[str]) -> None:
    proc = subprocess.run(["ip", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise HostError(f"building the OVN lab in {netns} failed: {proc.stderr.strip()}")


def tx_csum_off(netns: str, devs: Sequence[str]) -> None:
    """Turn off tx checksum offload (``ethtool -K DEV tx off``): a veth hands the userspace
    datapath packets whose checksum was left to hardware that never fills it in."""
    with entered(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for dev in devs:
            value = array.array("I", [ETHTOOL_STXCSUM, 0])
            addr, _ = value.buffer_info()
            ifr = struct.pack("16sP", dev.encode(), addr).ljust(40, b"\0")
            try:
                fcntl.ioctl(sock, SIOCETHTOOL, ifr)
            except OSError as exc:
                raise HostError(f"cannot turn off tx checksum offload on {dev} in {netns}: "
                                f"{exc.strerror}") from None
    finally:
        sock.close()


def _run(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 20,
         what: str = "") -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise HostError(f"{what or argv[0]} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def _sock_ready(path: Path) -> Callable[[], bool]:
    def ready() -> bool:
        if not path.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(path))
            except OSError:
                return False
        return True

    return ready


def _env(d: Path) -> dict[str, str]:
    """Every OVS/OVN default directory of one daemon group: its own, under the lab's."""
    return {"OVS_RUNDIR": str(d), "OVS_LOGDIR": str(d), "OVS_DBDIR": str(d),
            "OVS_SYSCONFDIR": str(d / "etc"), "OVN_RUNDIR": str(d), "OVN_LOGDIR": str(d),
            "OVN_DBDIR": str(d), "OVN_SYSCONFDIR": str(d / "etc")}


# -- building --------------------------------------------------------------------------------


class Lab:
    """A running OVN lab and the daemons this process keeps as its children."""

    def __init__(self, st: OvnLabState, daemons: Daemons) -> None:
        self.st = st
        self.daemons = daemons
        self.removed: list[str] | None = None

    def down(self, progress: Progress = _quiet) -> list[str]:
        """Tear down (once: a second call returns what the first removed)."""
        if self.removed is None:
            self.removed = down(self.st, self.daemons, progress=progress)
        return self.removed


def up(spec: OvnLabSpec, state_dir: Path, *, progress: Progress = _quiet,
       mark: str | None = None) -> Lab:
    """Build the lab; on any failure (or Ctrl-C) tear down what was built and re-raise."""
    from virtnet.libvirtxml import format_network

    require_tools()
    check_spec(spec)
    mark = mark or new_mark()
    if not MARK_RE.match(mark):
        raise Conflict(f"OVN lab mark {mark!r} is not of the form voXXXX (4 hex digits)")
    if state_path(state_dir, mark).exists():
        raise Conflict(f"OVN lab {mark} already exists", hint=f"'virtnet lab down {mark}'")
    t0 = time.monotonic()
    st = OvnLabState(mark=mark, state_dir=str(state_dir), created=time.time(),
                     networks=[format_network(n) for n in spec.networks],
                     chassis=spec.chassis, vms_per_network=spec.vms_per_network,
                     underlay_mtu=underlay_mtu(spec),
                     keeper={"pid": os.getpid(), "start_time": dmod.start_time(os.getpid()) or 0})
    st.namespaces = [st.central_ns, st.under_ns, st.lan_ns, f"{mark}-out1"]
    st.namespaces += [st.chassis_ns(i) for i in range(1, spec.chassis + 1)]
    vms: list[dict[str, Any]] = [
        {"id": f"{n.name}/vm{i}", "network": n.name, "netns": f"{mark}-n{j}v{i}",
         "chassis": (i - 1) % spec.chassis + 1, "port": f"{n.name}-vm{i}",
         "ovs_port": f"p{j}v{i}"}
        for j, n in enumerate(spec.networks) for i in range(1, spec.vms_per_network + 1)]
    st.namespaces += [v["netns"] for v in vms]
    st.etc_dirs = [str(ETC_NETNS / v["netns"]) for v in vms]
    st.vms = vms
    save(st)  # the intent: from here on down() can remove all of it

    def record(s: Started) -> None:
        st.daemons.append(s.as_json())
        save(st)

    daemons = Daemons(on_start=record)
    lab = Lab(st, daemons)
    try:
        st.dir.mkdir(parents=True, exist_ok=True)
        progress(f"OVN lab {mark}: {len(st.namespaces)} namespaces")
        _parallel([functools.partial(netns_mod.create, ns) for ns in st.namespaces])
        _wire(st)
        progress(f"OVN lab {mark}: central (NB, SB, northd) and {spec.chassis} chassis")
        _central(st, daemons)
        for i in range(1, spec.chassis + 1):
            _chassis(st, daemons, i)
        _wait_chassis(st)
        st.timings["up"] = round(time.monotonic() - t0, 3)
        t1 = time.monotonic()
        progress(f"OVN lab {mark}: virtnet ovn apply of {len(spec.networks)} network(s)")
        apply(st)
        st.timings["apply"] = round(time.monotonic() - t1, 3)
        _outside(st)
        _vm_ports(st)
        t2 = time.monotonic()
        progress(f"OVN lab {mark}: {len(vms)} VMs taking DHCP leases from OVN")
        _leases(st, t2)
        st.timings["leases"] = round(time.monotonic() - t2, 3)
        warm_up(st)
        st.status = "up"
        st.timings["build"] = round(time.monotonic() - t0, 3)
        save(st)
        return lab
    except BaseException:
        st.status = "failed"
        with contextlib.suppress(Exception):
            save(st)
        with contextlib.suppress(Exception):
            down(st, daemons, progress=progress)
        raise


def _parallel(jobs: Sequence[Callable[[], object]]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(jobs)))) as pool:
        for f in [pool.submit(j) for j in jobs]:
            f.result()


def _wire(st: OvnLabState) -> None:
    """Underlay, outside LAN and the outside host (addresses, MTU, no tx checksum offload)."""
    mtu = st.underlay_mtu
    under = ["link add u0 type bridge stp_state 0 forward_delay 0", f"link set u0 mtu {mtu}",
             "link set u0 up"]
    for i in range(1, st.chassis + 1):
        under += [f"link add c{i} mtu {mtu} type veth peer name ul netns {st.chassis_ns(i)}",
                  f"link set c{i} master u0", f"link set c{i} up"]
    _batch(st.under_ns, under)
    lan = ["link add lan0 type bridge stp_state 0 forward_delay 0", "link set lan0 up",
           f"link add o1 type veth peer name eth0 netns {st.mark}-out1",
           "link set o1 master lan0", "link set o1 up",
           f"link add g1 type veth peer name lan netns {st.chassis_ns(1)}",
           "link set g1 master lan0", "link set g1 up"]
    _batch(st.lan_ns, lan)
    _sysctl(f"{st.mark}-out1", {"net/ipv6/conf/eth0/accept_dad": "0"})
    _batch(f"{st.mark}-out1", [f"addr add {OUTSIDE_HOST}/{OUTSIDE_LAN.prefixlen} dev eth0",
                               f"addr add {OUTSIDE_HOST6}/{OUTSIDE_LAN6.prefixlen} dev eth0 "
                               "nodad", "link set eth0 up"])
    tx_csum_off(f"{st.mark}-out1", ["eth0"])
    tx_csum_off(st.lan_ns, ["o1", "g1"])
    tx_csum_off(st.under_ns, [f"c{i}" for i in range(1, st.chassis + 1)])
    st.outside = [{"id": "outside1", "netns": f"{st.mark}-out1", "ipv4": OUTSIDE_HOST,
                   "ipv6": OUTSIDE_HOST6}]
    save(st)


def _central(st: OvnLabState, daemons: Daemons) -> None:
    d = st.dir / "central"
    d.mkdir(parents=True, exist_ok=True)
    env = _env(d)
    for name, schema in (("nb", NB_SCHEMA), ("sb", SB_SCHEMA)):
        _run(["ovsdb-tool", "create", str(d / f"{name}.db"), str(schema)], what="ovsdb-tool")
        daemons.start(
            f"ovsdb-server-{name}", st.central_ns,
            ["ovsdb-server", f"--remote=punix:{d / (name + '.sock')}",
             f"--unixctl={d / (name + '.ctl')}", f"--pidfile={d / (name + '.pid')}",
             "--no-chdir", "-vconsole:off", f"--log-file={d / (name + '.log')}",
             str(d / f"{name}.db")],
            log=d / f"{name}.out", env=env, ready=_sock_ready(d / f"{name}.sock"))
    _run(["ovn-nbctl", f"--db={st.nb}", "init"], what="ovn-nbctl init")
    _run(["ovn-sbctl", f"--db={st.sb}", "init"], what="ovn-sbctl init")
    daemons.start(
        "ovn-northd", st.central_ns,
        ["ovn-northd", f"--ovnnb-db={st.nb}", f"--ovnsb-db={st.sb}",
         f"--unixctl={d / 'northd.ctl'}", f"--pidfile={d / 'northd.pid'}", "--no-chdir",
         "-vconsole:off", f"--log-file={d / 'northd.log'}"],
        log=d / "northd.out", env=env, ready=_sock_ready(d / "northd.ctl"))


def _chassis(st: OvnLabState, daemons: Daemons, i: int) -> None:
    d = st.chassis_dir(i)
    (d / "etc").mkdir(parents=True, exist_ok=True)
    ns, env, db = st.chassis_ns(i), _env(d), st.ovs_db(i)
    _run(["ovsdb-tool", "create", str(d / "conf.db"), str(VSWITCH_SCHEMA)], what="ovsdb-tool")
    daemons.start(
        f"ovsdb-server-ch{i}", ns,
        ["ovsdb-server", f"--remote=punix:{d / 'db.sock'}", f"--unixctl={d / 'ovsdb.ctl'}",
         f"--pidfile={d / 'ovsdb.pid'}", "--no-chdir", "-vconsole:off",
         f"--log-file={d / 'ovsdb.log'}", str(d / "conf.db")],
        log=d / "ovsdb.out", env=env, ready=_sock_ready(d / "db.sock"))
    vsctl = ["ovs-vsctl", f"--db={db}", "--timeout=20"]
    underlay_ip = str(UNDERLAY.network_address + i)
    ext = {"system-id": st.chassis_name(i), "hostname": st.chassis_name(i),
           "ovn-remote": st.sb, "ovn-encap-type": "geneve", "ovn-encap-ip": underlay_ip,
           "ovn-bridge-datapath-type": "netdev"}
    if i == 1:
        ext["ovn-bridge-mappings"] = f"{PHYSNET}:br-ex"
        ext["ovn-cms-options"] = "enable-chassis-as-gw"
    _run([*vsctl, "--no-wait", "init", "--", "set", "Open_vSwitch", ".",
          *(f"external_ids:{k}={json.dumps(v)}" for k, v in ext.items())], what="ovs-vsctl")
    daemons.start(
        f"ovs-vswitchd-ch{i}", ns,
        ["ovs-vswitchd", db, f"--unixctl={d / 'vswitchd.ctl'}", f"--pidfile={d / 'vswitchd.pid'}",
         "--no-chdir", "-vconsole:off", f"--log-file={d / 'vswitchd.log'}"],
        log=d / "vswitchd.out", env=env, ready=_sock_ready(d / "vswitchd.ctl"))
    mtu = st.underlay_mtu
    cmds = ["--", "add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev",
            "fail_mode=secure", "other_config:disable-in-band=true",
            "--", "add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
            "--", "add-port", "br-phy", "ul",
            "--", "set", "Interface", "br-phy", f"mtu_request={mtu}"]
    if i == 1:
        cmds += ["--", "add-br", "br-ex", "--", "set", "Bridge", "br-ex", "datapath_type=netdev",
                 "--", "add-port", "br-ex", "lan"]
    _run([*vsctl, *cmds], what=f"ovs-vsctl on chassis {i}")
    tx_csum_off(ns, ["ul", *(["lan"] if i == 1 else [])])
    # The geneve endpoint: the userspace datapath tunnels from an address on an OVS bridge.
    _batch(ns, [f"link set ul mtu {mtu} up", *(["link set lan up"] if i == 1 else []),
                f"addr add {underlay_ip}/{UNDERLAY.prefixlen} dev br-phy",
                f"link set br-phy mtu {mtu} up"])
    daemons.start(
        f"ovn-controller-ch{i}", ns,
        ["ovn-controller", db, f"--pidfile={d / 'ovn-controller.pid'}", "--no-chdir",
         "-vconsole:off", f"--log-file={d / 'ovn-controller.log'}"],
        log=d / "ovn-controller.out", env=env)


def controller_ctl(st: OvnLabState, i: int) -> Path | None:
    """ovn-controller 23.03 has no --unixctl: its socket is OVN_RUNDIR/ovn-controller.PID.ctl."""
    for dm in st.daemons:
        if dm["name"] == f"ovn-controller-ch{i}":
            return st.chassis_dir(i) / f"ovn-controller.{dm['pid']}.ctl"
    return None


def _wait_chassis(st: OvnLabState, timeout: float = 20) -> None:
    want = {st.chassis_name(i) for i in range(1, st.chassis + 1)}
    deadline = time.monotonic() + timeout
    while True:
        out = _run(["ovn-sbctl", f"--db={st.sb}", "--bare", "--columns=name", "list",
                    "Chassis"], what="ovn-sbctl")
        have = set(out.split())
        if want <= have:
            return
        if time.monotonic() > deadline:
            raise HostError(f"chassis {', '.join(sorted(want - have))} did not register in "
                            "the southbound database", hint=f"see {st.dir}/ch*/ovn-controller.log")
        time.sleep(0.05)


def apply(st: OvnLabState) -> list[tuple[str, ...]]:
    """``virtnet ovn apply`` of the lab's networks with the lab's options."""
    from virtnet import ovn

    spec = spec_of(st)
    opts = lab_options(spec, st.mark)
    st.external_ips = dict(opts.external_ips)
    st.external_ipv6s = dict(opts.external_ipv6s)
    return ovn.apply(list(spec.networks), st.nb, opts)


def spec_of(st: OvnLabState) -> OvnLabSpec:
    return OvnLabSpec(networks=tuple(st.network_defs()), chassis=st.chassis,
                      vms_per_network=st.vms_per_network, underlay_mtu=st.underlay_mtu)


def _outside(st: OvnLabState) -> None:
    """The outside host routes every VM subnet via its network's gateway address."""
    routes = []
    for n in st.network_defs():
        ext = st.external_ips.get(n.name)
        if ext is None:
            continue  # isolated: no gateway on the outside LAN
        via = ext.split("/")[0]
        routes += [f"route add {ip.network} via {via}" for ip in n.ipv4]
        ext6 = st.external_ipv6s.get(n.name)
        if ext6 is not None:
            routes += [f"route add {ip.network} via {ext6.split('/')[0]}"
                       for ip in n.ipv6_defs]
    if routes:
        _batch(f"{st.mark}-out1", routes)


def _vm_ports(st: OvnLabState) -> None:
    from virtnet import ovn

    for v in st.vms:
        ns, ch = v["netns"], st.chassis_ns(v["chassis"])
        _sysctl(ns, _VM_SYSCTLS)
        _batch(ns, [f"link add eth0 type veth peer name {v['ovs_port']} netns {ch}",
                    "link set eth0 up"])
        _batch(ch, [f"link set {v['ovs_port']} up"])
        tx_csum_off(ns, ["eth0"])
        tx_csum_off(ch, [v["ovs_port"]])
        v["mac"] = _mac(ns)
        ovn.port_add(v["network"], v["port"], st.nb, mac=v["mac"])
        attach(st, v)
    save(st)


def attach(st: OvnLabState, v: dict[str, Any]) -> None:
    """Plug VM V's veth into br-int of its chassis, bound to its logical port (iface-id)."""
    _run(["ovs-vsctl", f"--db={st.ovs_db(v['chassis'])}", "--timeout=20", "--may-exist",
          "add-port", "br-int", v["ovs_port"], "--", "set", "Interface", v["ovs_port"],
          f"external_ids:iface-id={v['port']}"], what="ovs-vsctl add-port")


def _mac(netns: str) -> str:
    proc = subprocess.run(["ip", "-n", netns, "-j", "link", "show", "dev", "eth0"],
                          capture_output=True, text=True)
    return str(json.loads(proc.stdout)[0]["address"])


def _leases(st: OvnLabState, t0: float) -> None:
    from concurrent.futures import ThreadPoolExecutor

    first: list[float] = []

    v6nets = {n.name for n in st.network_defs() if n.ipv6_defs}

    def one(v: dict[str, Any]) -> None:
        v["ipv4"] = lease(v["netns"], v["id"])
        first.append(time.monotonic())
        if v["network"] in v6nets:
            v["ipv6"] = slaac(v["netns"], v["id"])

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(st.vms)))) as pool:
        list(pool.map(one, st.vms))
    st.timings["first_lease"] = round(min(first) - t0, 3) if first else 0.0
    save(st)


def lease(netns: str, what: str, *, tries: int = 20) -> str:
    """udhcpc in NETNS under unshare --uts with its own resolv.conf: the VM's IPv4 address."""
    etc = ETC_NETNS / netns
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text("# virtnet OVN lab VM: udhcpc writes here\n")
    argv = ["ip", "netns", "exec", netns, "unshare", "--uts", "udhcpc", "-i", "eth0", "-f",
            "-q", "-n", "-t", str(tries), "-T", "1", "-A", "1", "-O", "mtu", "-s",
            UDHCPC_SCRIPT]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=tries * 2 + 10)
    addr = address(netns)
    if proc.returncode != 0 or addr is None:
        raise HostError(f"VM {what} got no DHCP lease from OVN: "
                        f"{(proc.stderr or proc.stdout).strip()[-300:]}",
                        hint="check the chassis' ovn-controller.log in the lab's directory")
    return addr


def warm_up(st: OvnLabState, tries: int = 4) -> None:  # tries of 0.5 s
    """Let the routers and the tunnels learn their neighbours before anything is measured.

    A logical router that does not know a next hop's MAC sends an ARP request and drops the
    packet; the userspace datapath does the same for a tunnel endpoint. So the first packet
    on each path is lost, as on any real network. Each VM pings its gateway and the outside
    host, the outside host every VM, until a reply or TRIES seconds (refused paths just time
    out: nothing here is a verdict)."""
    from concurrent.futures import ThreadPoolExecutor

    from virtnet.reach.probe import icmp

    gateways = {n.name: (n.ipv4[0].address if n.ipv4 else None) for n in st.network_defs()}
    paths = []
    for v in st.vms:
        if v.get("ipv4") is None:
            continue
        if gateways.get(v["network"]):
            paths.append((v["netns"], gateways[v["network"]]))
        paths.append((v["netns"], OUTSIDE_HOST))
        paths.append((f"{st.mark}-out1", v["ipv4"]))

    def one(path: tuple[str, str]) -> None:
        for _ in range(tries):
            if icmp(path[0], path[1], timeout=0.5).ok:
                return

    with ThreadPoolExecutor(max_workers=max(1, min(32, len(paths)))) as pool:
        list(pool.map(one, paths))


def slaac(netns: str, what: str, timeout: float = 10) -> str:
    """The VM's global IPv6 address, configured from OVN's router advertisement."""
    deadline = time.monotonic() + timeout
    while (addr := address(netns, 6)) is None:
        if time.monotonic() > deadline:
            raise HostError(f"VM {what} got no IPv6 address (SLAAC) from OVN's router "
                            "advertisements", hint="check the router port's ipv6_ra_configs")
        time.sleep(0.05)
    return addr


def _sysctl(netns: str, values: dict[str, str]) -> None:
    with entered(netns):
        for key, value in values.items():
            with open(f"/proc/sys/{key}", "w") as fh:
                fh.write(value)


def address(netns: str, version: int = 4) -> str | None:
    proc = subprocess.run(["ip", "-n", netns, "-j", f"-{version}", "addr", "show", "dev", "eth0",
                           "scope", "global"], capture_output=True, text=True)
    with contextlib.suppress(ValueError, IndexError, KeyError):
        for item in json.loads(proc.stdout or "[]"):
            for a in item.get("addr_info", []):
                return str(a["local"])
    return None


def mtu_of(netns: str, dev: str = "eth0") -> int:
    proc = subprocess.run(["ip", "-n", netns, "-j", "link", "show", "dev", dev],
                          capture_output=True, text=True)
    return int(json.loads(proc.stdout)[0]["mtu"])


# -- keeping and tearing down ----------------------------------------------------------------


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) end the lab like Ctrl-C does (main thread only)."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def hold(lab: Lab, *, progress: Progress = _quiet) -> None:
    """Keep the lab's daemons (our children) until a signal or ``lab down``, then tear down."""
    try:
        with signals_interrupt():
            _watch(lab)
    except KeyboardInterrupt:
        progress(f"OVN lab {lab.st.mark}: interrupted, tearing down")
    finally:
        lab.down(progress)


def _watch(lab: Lab) -> None:
    while True:
        for s, proc in lab.daemons.procs:
            if proc.poll() is not None:
                raise HostError(f"lab daemon {s.name} (pid {s.pid}) exited",
                                hint=f"its log: {s.log}")
        time.sleep(0.2)


@contextlib.contextmanager
def _deferred_signals() -> Iterator[None]:
    """A second Ctrl-C (or SIGTERM) during teardown waits until the teardown is done: an
    interrupted teardown is what would leave daemons and namespaces behind."""
    got: list[int] = []

    def later(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    try:
        old = {s: signal.signal(s, later) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if got:
        raise KeyboardInterrupt


def down(st: OvnLabState, daemons: Daemons | None = None, *,
         progress: Progress = _quiet) -> list[str]:
    """Remove everything the lab lists, whatever stage it reached. Returns what was removed."""
    with _deferred_signals():
        return _down(st, daemons, progress)


def _down(st: OvnLabState, daemons: Daemons | None, progress: Progress) -> list[str]:
    removed: list[str] = []
    if daemons is not None:
        removed += daemons.stop()
    else:
        keeper = st.keeper
        if keeper and keeper.get("pid") != os.getpid() and dmod.is_ours(
                int(keeper["pid"]), int(keeper["start_time"])):
            removed += _stop_keeper(st)
        removed += dmod.kill_recorded(st.daemons)
    for ns in st.namespaces:
        removed += _kill_in(ns)
    for ns in st.namespaces:
        if netns_mod.exists(ns):
            try:
                netns_mod.delete(ns)
            except VirtnetError as exc:
                time.sleep(0.2)
                try:
                    netns_mod.delete(ns)
                except VirtnetError:
                    progress(f"OVN lab {st.mark}: could not remove {ns}: {exc}")
                    continue
            removed.append(f"netns {ns}")
    for d in st.etc_dirs:
        p = Path(d)
        if p.parent == ETC_NETNS and NS_RE.match(p.name) and p.exists():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(f"dir {p}")
    if MARK_RE.match(st.mark):
        shutil.rmtree(st.dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            state_path(Path(st.state_dir), st.mark).unlink()
        with contextlib.suppress(FileNotFoundError):
            state_path(Path(st.state_dir), st.mark).with_suffix(".tmp").unlink()
    progress(f"OVN lab {st.mark}: down ({len(removed)} things removed)")
    return removed


def _stop_keeper(st: OvnLabState, timeout: float = 20) -> list[str]:
    """Ask the process keeping the lab to tear it down (it reaps its own children)."""
    pid, started = int(st.keeper["pid"]), int(st.keeper["start_time"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    path = state_path(Path(st.state_dir), st.mark)
    while dmod.is_ours(pid, started) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [f"keeper {pid}"] if not path.exists() or not dmod.is_ours(pid, started) else []


def _kill_in(netns: str) -> list[str]:
    """End every process still inside one of the lab's namespaces (udhcpc, iperf3, ...)."""
    if not netns_mod.exists(netns):
        return []
    proc = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    pids = [int(p) for p in proc.stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 2
    for pid in pids:
        while dmod.start_time(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        if dmod.start_time(pid) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return [f"process {p} (in {netns})" for p in pids]


def down_all(state_dir: Path, *, progress: Progress = _quiet) -> dict[str, list[str]]:
    """Every OVN lab in the state dir, plus namespaces and /etc/netns dirs of crashed ones."""
    out: dict[str, list[str]] = {}
    for st in list_labs(state_dir):
        out[st.mark] = down(st, progress=progress)
    marks: dict[str, set[str]] = {}
    for name in netns_mod.list_names():
        m = NS_RE.match(name)
        if m:
            marks.setdefault(m.group(1), set()).add(name)
    if ETC_NETNS.is_dir():
        for p in ETC_NETNS.iterdir():
            m = NS_RE.match(p.name)
            if m:
                marks.setdefault(m.group(1), set())
    for mark, names in marks.items():
        if mark in out:
            continue
        ghost = OvnLabState(mark=mark, state_dir=str(state_dir), namespaces=sorted(names),
                            etc_dirs=[str(p) for p in ETC_NETNS.glob(f"{mark}-*")])
        out[mark] = down(ghost, progress=progress)
    return out


def addresses(st: OvnLabState) -> dict[str, dict[str, str]]:
    """Every endpoint's probe addresses: {id: {"ipv4": ..., "netns": ...}}."""
    out: dict[str, dict[str, str]] = {}
    for v in st.vms:
        out[v["id"]] = {k: v[k] for k in ("ipv4", "ipv6", "netns") if v.get(k)}
    for o in st.outside:
        out[o["id"]] = {k: o[k] for k in ("ipv4", "ipv6", "netns") if o.get(k)}
    return out
