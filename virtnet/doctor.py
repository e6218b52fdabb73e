"""``virtnet doctor``: why a network does not work, and the exact fix.

Each check looks at the live namespace (read only: nothing is changed) and reports a
``Finding`` with a severity, what is wrong, why it breaks VMs and the fix. The cases are the
ones users of libvirt-style networks fight with (docs/field-notes.md): "network 'default' is
not active"; ``ip_forward`` off; another table's drop policy (Docker's FORWARD) or a
distribution firewall's input chain killing forwarded traffic or DHCP/DNS; another DNS/DHCP
server on the bridge's port 53/67; a dead dnsmasq; flushed or edited rules in virtnet's table;
bridged mode over Wi-Fi or a bond mode that breaks bridges; STP delaying a new port's
first DHCP.

Severities: ``error`` (VMs are broken now), ``warning`` (broken in some cases or soon),
``info`` (worth knowing; not counted as unhealthy).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from virtnet import bridged, firewall
from virtnet.errors import NotFound, VirtnetError
from virtnet.host import dnsmasq as dnsmasq_proc
from virtnet.host import netns as netns_mod
from virtnet.host import record as rec_mod
from virtnet.host import sysctl
from virtnet.host.nsenter import entered
from virtnet.hostcfg.facts import HostView
from virtnet.hostcfg.iplink import read_live
from virtnet.hostcfg.rules import Severity, check_bridge
from virtnet.libvirtxml import parse_network
from virtnet.model.network import ForwardMode, Network
from virtnet.plan.marks import owner_id, read_mark
from virtnet.store import Store

ERROR, WARNING, INFO = "error", "warning", "info"
_RANK = {ERROR: 0, WARNING: 1, INFO: 2}
PORTS = {53: "DNS", 67: "DHCP", 547: "DHCPv6"}
_WHERE = re.compile(r"^table (\S+) (\S+), chain (\S+) \(hook (\w+)")


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning | info
    code: str  # stable identifier, e.g. "not-active", "foreign-forward-drop"
    network: str | None  # None: the namespace as a whole
    what: str
    why: str
    fix: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        who = f" [{self.network}]" if self.network else ""
        return (f"{self.severity}{who} {self.code}: {self.what}\n"
                f"  why: {self.why}\n  fix: {self.fix}")


def exit_status(findings: Sequence[Finding]) -> int:
    """0 healthy (info at most), 1 warnings, 2 errors."""
    if any(f.severity == ERROR for f in findings):
        return 2
    return 1 if any(f.severity == WARNING for f in findings) else 0


def _ns_text(netns: str | None) -> str:
    return f"namespace {netns}" if netns else "the root namespace"


def _g(netns: str | None) -> str:
    """The global option a fix command needs to act where doctor looked."""
    return f"--netns {netns} " if netns else ""


class Doctor:
    """Diagnose networks in NETNS with state in STATE_DIR (read only)."""

    def __init__(self, state_dir: Path | str, netns: str | None) -> None:
        if netns is not None and not netns_mod.exists(netns):
            raise NotFound(f"network namespace {netns!r} does not exist",
                           hint="pass an existing --netns")
        self.netns = netns
        self.state_dir = Path(state_dir)
        self.store = Store(state_dir)
        self.g = _g(netns)
        self._confs: list[Path] = []

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Doctor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- entry ----------------------------------------------------------------------------

    def diagnose(self, names: Sequence[str] = ()) -> list[Finding]:
        defs = {d.name: d for d in self.store.list_definitions()}
        runtime = self.store.list_runtime(self.netns)
        unknown = [n for n in names if n not in defs and n not in runtime]
        if unknown:
            raise NotFound(
                f"network not found: {', '.join(repr(n) for n in unknown)}",
                hint="'virtnet net-list --all' lists the defined networks",
            )
        targets = list(names) or sorted(set(defs) | set(runtime))
        active: dict[str, tuple[Network, dict[str, Any]]] = {
            n: (rec_mod.network_from_json(r["definition"]), r)
            for n, r in runtime.items() if r.get("state") == rec_mod.ACTIVE
        }
        # every virtnet dnsmasq here: another network's is not a port conflict
        self._confs = [Path(r["dnsmasq"]["conf"]) for _, r in active.values() if r.get("dnsmasq")]
        out: list[Finding] = []
        links = _Links(self.netns)
        for name in targets:
            if name in active:
                net, rec = active[name]
                d = defs.get(name)
                if d is not None and d.persistent and not d.autostart:
                    out.append(self._autostart_off(name))
                out += self._active(net, rec, links)
            else:
                out += self._inactive(name, defs.get(name), runtime.get(name), bool(names),
                                      links)
        out += self._owners(links, runtime, defs)
        chosen = {n: v for n, v in active.items() if n in targets}
        out += self._forwarding(chosen)
        out += self._firewall(active, chosen)
        return sorted(out, key=lambda f: (_RANK[f.severity], f.network or "", f.code))

    # -- who owns what -------------------------------------------------------------------

    def _owners(self, links: _Links, runtime: dict[str, Any],
                defs: dict[str, Any]) -> list[Finding]:
        """Bridges of another state directory (two owners in one namespace), and this one's
        bridges that run without a record (a lost database)."""
        me = owner_id(self.state_dir)
        foreign: dict[str, list[str]] = {}
        out: list[Finding] = []
        for name, link in links.all_links().items():
            mark = read_mark(link.get("ifalias")) if link.get("linkinfo", {}).get(
                "info_kind") == "bridge" else None
            if mark is None:
                continue
            if not mark.owned_by(me):
                foreign.setdefault(str(mark.owner), []).append(f"{mark.network} ({name})")
            elif mark.network not in runtime:
                known = mark.network in defs
                out.append(Finding(
                    WARNING, "running-without-record", mark.network,
                    f"bridge {name} of network '{mark.network}' runs, but this state "
                    "directory has no record of it",
                    "its runtime record was lost (a lost or damaged database); virtnet left "
                    "it running for its VMs",
                    f"virtnet {self.g}net-start {mark.network} takes it back as it runs"
                    if known else
                    f"virtnet {self.g}net-define FILE (its definition) then net-start "
                    f"{mark.network} takes it back; or virtnet {self.g}reconcile "
                    "--remove-orphans removes it"))
        for owner, nets in sorted(foreign.items()):
            out.append(Finding(
                ERROR, "other-owner", None,
                f"{_ns_text(self.netns)} has networks of another virtnet state directory "
                f"(owner id {owner}): {', '.join(sorted(nets))}",
                f"a namespace's networks have one owner; this state directory "
                f"({self.state_dir}, owner id {me}) refuses to start, stop or repair "
                "anything here, so it cannot tear them down by mistake",
                "run virtnet with the --state-dir that started them (an owner id is the "
                "first 12 hex digits of the SHA-256 of the directory's absolute path)"))
        return out

    # -- not running ----------------------------------------------------------------------

    def _autostart_off(self, name: str) -> Finding:
        return Finding(
            INFO, "autostart-off", name,
            f"network '{name}' runs but autostart is off",
            "after a reboot it is not started, and VMs using it fail with \"network "
            f"'{name}' is not active\"",
            f"virtnet {self.g}net-autostart {name}",
        )

    def _inactive(self, name: str, stored: Any, rec: dict[str, Any] | None, named: bool,
                  links: _Links) -> list[Finding]:
        if rec is not None:  # a record in 'starting'/'stopping': a command was killed
            return [Finding(
                ERROR, "interrupted", name,
                f"network '{name}' was left half-started or half-stopped "
                f"(state {rec.get('state')!r})",
                "the command that started or stopped it was killed before it finished; "
                "part of the network may exist",
                f"virtnet {self.g}reconcile (removes the leftovers), then "
                f"virtnet {self.g}net-start {name}",
            )]
        out = []
        autostart = bool(stored and stored.autostart)
        persistent = bool(stored and stored.persistent)
        why = "it was never started in " + _ns_text(self.netns) + ", or it was stopped"
        fix = f"virtnet {self.g}net-start {name}"
        if persistent and not autostart:
            why += "; autostart is off, so it is not started at boot either"
            fix += f"; to start it at boot: virtnet {self.g}net-autostart {name}"
        elif autostart:
            why += "; autostart is on, yet it is not running (did 'virtnet autostart' fail?)"
        out.append(Finding(
            ERROR if (named or autostart) else WARNING, "not-active", name,
            f"network '{name}' is not active",
            why + ": VMs that use it fail to start (\"network '" + name + "' is not active\")",
            fix,
        ))
        if stored is not None:
            try:
                net = parse_network(stored.xml)
            except VirtnetError:
                return out
            if bridged.is_host_bridge(net):
                out += self._bridged(net, links)
            else:
                out += self._clashes(net, links, running=False)
        return out

    def _clashes(self, net: Network, links: _Links, *, running: bool) -> list[Finding]:
        """Another interface with the network's bridge name or an address in its subnets:
        libvirt refuses to start such a network ("network is already in use by interface")
        and, when it runs anyway, replies to VMs leave through the other interface."""
        out = []
        br = net.bridge_name
        link = links.get(br) if br else None
        if link is not None and not running and not (link.get("ifalias") or "").startswith(
                "virtnet:"):
            out.append(Finding(
                ERROR, "bridge-taken", net.name,
                f"interface {br} already exists in {_ns_text(self.netns)}",
                f"network '{net.name}' creates its own bridge {br}: it cannot start while "
                "another interface has that name",
                f"give the network another <bridge name=...> (virtnet {self.g}net-edit "
                f"{net.name}) or remove that interface",
            ))
        for ip in net.ips:
            if not ip.address:
                continue
            subnet = ip.network
            for ifname, cidr in links.all_addresses():
                if ifname == br:
                    continue
                other = ipaddress.ip_interface(cidr)
                if other.version != subnet.version or other.ip.is_link_local:
                    continue
                if other.network.overlaps(subnet):
                    out.append(Finding(
                        ERROR, "subnet-in-use", net.name,
                        f"subnet {subnet} of network '{net.name}' overlaps {cidr} on "
                        f"interface {ifname}",
                        "two interfaces with overlapping subnets make the host route VM "
                        "traffic out of the wrong one" + ("" if running else
                        "; libvirt refuses to start it (\"network is already in use by "
                        "interface\")"),
                        f"give network '{net.name}' a subnet nothing else here uses "
                        f"(virtnet {self.g}net-edit {net.name}), or move {ifname} elsewhere",
                    ))
        return out

    # -- running --------------------------------------------------------------------------

    def _active(self, net: Network, rec: dict[str, Any], links: _Links) -> list[Finding]:
        if rec.get("host_bridge"):
            return self._bridged(net, links)
        out: list[Finding] = []
        br = rec["bridge"]
        link = links.get(br)
        if link is None:
            out.append(Finding(
                ERROR, "bridge-missing", net.name,
                f"bridge {br} of network '{net.name}' does not exist",
                "someone deleted it (or a tool reset the links): its VMs have no network",
                f"virtnet {self.g}reconcile {net.name} (recreates it and re-attaches ports), "
                f"or keep 'virtnet {self.g}guard' running to repair this as it happens",
            ))
        else:
            if "UP" not in link.get("flags", []):
                out.append(Finding(
                    ERROR, "bridge-down", net.name, f"bridge {br} is down",
                    "a bridge that is down forwards nothing: VMs are cut off",
                    f"virtnet {self.g}reconcile {net.name}",
                ))
            out += self._stp(net.name, br, link, ours=True)
        out += self._clashes(net, links, running=True)
        dm = rec.get("dnsmasq")
        if dm:
            out += self._dnsmasq(net, br, dm)
            out += self._ports(net, br, dm, links)
        return out

    def _stp(self, name: str, br: str, link: dict[str, Any], *, ours: bool) -> list[Finding]:
        data = (link.get("linkinfo") or {}).get("info_data") or {}
        if not data.get("stp_state"):
            return []
        delay = int(data.get("forward_delay", 0)) / 100
        if delay < 2:
            return []
        fix = (f"turn STP off in the definition: <bridge name='{br}' stp='off'/> "
               f"(virtnet {self.g}net-edit {name}, then restart the network); a VM host's "
               "own bridge needs no STP"
               if ours else
               f"turn STP off on the host bridge (nmcli connection modify {br} bridge.stp no, "
               f"or 'ip link set {br} type bridge stp_state 0') unless it joins several "
               "switches; or set bridge.forward-delay to 2 (the least the kernel allows)")
        return [Finding(
            WARNING, "stp-delay", name,
            f"bridge {br} has STP on with a forward delay of {delay:g} s",
            f"a new VM port forwards only after listening and learning ({2 * delay:g} s): "
            "DHCP clients time out on their first try and boot slowly or without an address",
            fix,
        )]

    def _dnsmasq(self, net: Network, br: str, dm: dict[str, Any]) -> list[Finding]:
        conf = Path(dm["conf"])
        pid = dm.get("pid")
        if pid and dnsmasq_proc.is_ours(int(pid), conf):
            return []
        logs = [f for f in dm.get("files", []) if str(f).endswith(".log")]
        tail = _log_tail(Path(logs[0])) if logs else ""
        return [Finding(
            ERROR, "dnsmasq-dead", net.name,
            f"dnsmasq of network '{net.name}' (pid {pid}) is not running",
            f"VMs on {br} get no DHCP lease and no DNS; new VMs come up without an address"
            + (f"; its log ends: {tail}" if tail else ""),
            f"virtnet {self.g}reconcile {net.name} (restarts it), or keep "
            f"'virtnet {self.g}guard' running to restart it as it dies",
        )]

    def _ports(self, net: Network, br: str, dm: dict[str, Any],
               links: _Links) -> list[Finding]:
        """Someone else listening on DNS/DHCP ports where our dnsmasq must answer."""
        conf = Path(dm["conf"])
        addrs = {a.split("/")[0] for a in links.addresses(br)}
        addrs |= {ip.address for ip in net.ips if ip.address}
        # one finding per process and address:port (its UDP and TCP sockets together)
        found: dict[tuple[int | None, str, str | None, int], list[str]] = {}
        for sock in _listeners(self.netns):
            if sock.port not in PORTS or sock.pid is not None and any(
                    dnsmasq_proc.is_ours(sock.pid, c) for c in (conf, *self._confs)):
                continue
            exact = sock.addr in addrs
            wildcard = sock.addr in ("0.0.0.0", "*", "::") and sock.dev in (None, br)
            if exact or wildcard:
                found.setdefault((sock.pid, sock.addr, sock.dev, sock.port), []).append(
                    f"{sock.proto}:{sock.comm}")
        out = []
        for (pid, addr, dev, port), socks in found.items():
            comm = socks[0].split(":", 1)[1]
            exact = addr in addrs
            who = f"{comm} (pid {pid})" if pid is not None else "a process virtnet cannot see"
            protos = "+".join(sorted({s.split(":", 1)[0] for s in socks}))
            where = f"{addr}{'%' + dev if dev else ''}:{port}/{protos}"
            service = PORTS[port]
            why = (f"virtnet's dnsmasq for '{net.name}' must answer {service} on {br}: "
                   + ("it cannot bind this address while the other server holds it, or the "
                      "other server takes the queries" if exact else
                      "a server bound to all addresses keeps it from binding the bridge's "
                      "address (\"failed to create listening socket ... Address already in "
                      "use\") unless both use address-specific sockets"))
            fix = (f"make {comm or 'the other server'} listen only where it should: for "
                   f"dnsmasq add 'bind-interfaces' and 'except-interface={br}' (or "
                   "'listen-address=' its own addresses) to its configuration and restart it; "
                   f"for systemd-resolved or another DNS server, stop it listening on "
                   f"{'the address ' + addr if exact else 'all addresses'}; then virtnet "
                   f"{self.g}reconcile {net.name}")
            out.append(Finding(ERROR if exact else WARNING, "port-conflict", net.name,
                               f"{who} listens on {where}, {service} on bridge {br}", why, fix))
        return out

    def _bridged(self, net: Network, links: _Links) -> list[Finding]:
        try:
            view = read_live(self.netns)
        except VirtnetError:
            return []
        out = bridged_findings(net, view)
        link = links.get(net.bridge_name or "")
        if link is not None:
            out += self._stp(net.name, net.bridge_name or "", link, ours=False)
        return out

    # -- the namespace --------------------------------------------------------------------

    def _forwarding(self, active: dict[str, tuple[Network, dict[str, Any]]]) -> list[Finding]:
        out = []
        for family, path in (("IPv4", "net/ipv4/ip_forward"),
                             ("IPv6", "net/ipv6/conf/all/forwarding")):
            needing = sorted(
                n for n, (net, rec) in active.items()
                if net.mode in (ForwardMode.NAT, ForwardMode.ROUTE) and not rec.get("host_bridge")
                and any(ip.is_ipv6 == (family == "IPv6") for ip in net.ips)
            )
            if not needing:
                continue
            with entered(self.netns):
                value = sysctl.read(path)
            if value == "1":
                continue
            key = path.replace("/", ".")
            out.append(Finding(
                ERROR, "ip-forward-off", ", ".join(needing),
                f"{key} is {value} in {_ns_text(self.netns)}",
                f"{family} forwarding is off, so the host routes nothing between the VMs of "
                f"{', '.join(needing)} and the outside (NAT and routed networks need it); "
                "some firewall services and sysctl.d files turn it off on reload",
                f"virtnet {self.g}reconcile (turns it back on); to keep it on: "
                f"echo '{key} = 1' > /etc/sysctl.d/90-virtnet.conf and find what turned it off",
            ))
        return out

    def _firewall(self, active: dict[str, tuple[Network, dict[str, Any]]],
                  chosen: dict[str, tuple[Network, dict[str, Any]]]) -> list[Finding]:
        out: list[Finding] = []
        ruled = [net for net, rec in active.values() if not rec.get("host_bridge")]
        if any(rec.get("firewall") for _, rec in active.values()):
            try:
                drift = firewall.drift(self.netns, ruled)
            except VirtnetError as exc:
                drift = [str(exc)]
            if drift:
                shown = "; ".join(drift[:4]) + (f" (+{len(drift) - 4} more)"
                                                if len(drift) > 4 else "")
                out.append(Finding(
                    ERROR, "nft-drift", None,
                    f"virtnet's table inet virtnet differs from its running networks: {shown}",
                    "a firewall reload, 'nft flush ruleset' or a third-party firewall removed "
                    "or changed rules: NAT, DHCP replies or VM isolation stop working",
                    f"virtnet {self.g}reconcile (restores the table in one transaction); "
                    f"'virtnet {self.g}guard' repairs it as it happens",
                ))
        bridges = {rec["bridge"]: name for name, (net, rec) in chosen.items()
                   if rec.get("firewall") and not rec.get("host_bridge")}
        if not bridges:
            return out
        try:
            drops = firewall.foreign_drops(self.netns, bridges=sorted(bridges))
        except VirtnetError:
            return out
        docker_user = _chains(self.netns)
        for line in drops:
            out.append(_foreign_finding(line, sorted(bridges), docker_user))
        return out


_BRIDGED_WHY = {
    "wireless": "an access point accepts frames only from its client's own MAC address, so "
                "the VMs' frames are dropped",
    "bond-mode": "this bond mode sends VMs' frames over several ports or rewrites MACs: the "
                 "switch learns VM MACs on the wrong port",
    "arp-monitoring": "ARP link monitoring does not work behind a bridge",
    "no-miimon": "without link monitoring a dead port keeps receiving traffic",
    "bridge-missing": "bridged mode attaches VMs to an existing host bridge",
    "bridge-down": "a bridge that is down forwards nothing",
}


def bridged_findings(net: Network, view: HostView) -> list[Finding]:
    """Bridged mode's rules (virtnet.hostcfg) on NET's host bridge as findings: Wi-Fi
    uplink, bond modes that break bridges, ARP monitoring, no uplink, no bridge."""
    br = net.bridge_name or ""
    ours = [x.name for x in view if (x.alias or "").startswith(bridged.PORT_ALIAS)]
    out = []
    for v in check_bridge(view, br, ignore_ports=ours):
        if v.severity is Severity.OK:
            continue
        sev = ERROR if v.severity is Severity.REFUSED else WARNING
        out.append(Finding(sev, f"bridged-{v.code}", net.name, v.message,
                           _BRIDGED_WHY.get(v.code, "VMs on this bridge lose their connection"),
                           v.fix or "see docs/bridged-mode.md"))
    return out


def _foreign_finding(line: str, bridges: Sequence[str],
                     chains: set[tuple[str, str, str]]) -> Finding:
    m = _WHERE.match(line)
    family, table, chain, hook = m.groups() if m else ("?", "?", "?", "forward")
    policy = "policy drop" in line.split(":", 1)[0]
    where = f"table {family} {table}, chain {chain} (hook {hook})"
    if hook == "input":
        code = "foreign-input-drop"
        why = ("DHCP and DNS from VMs reach the host's dnsmasq through the input hook; a drop "
               "there in any table is final, whatever virtnet's table accepts: VMs get no "
               "address or name resolution")
        lines = [f"nft insert rule {family} {table} {chain} iifname \"{br}\" "
                 f"meta l4proto {{ tcp, udp }} th dport {{ 53, 67, 547 }} accept"
                 for br in bridges]
    else:
        code = "foreign-forward-drop"
        why = ("in nftables every table's chain at the forward hook sees the packet and a drop "
               "in any of them is final, so virtnet's accept cannot save it: VMs reach nothing "
               "beyond the host (Docker sets this policy: moby#39439, docker/for-linux#949)")
        lines = [f"nft insert rule {family} {table} {chain} {side} \"{br}\" accept"
                 for br in bridges for side in ("iifname", "oifname")]
        if (family, table, "DOCKER-USER") in chains:
            lines = [f"iptables -I DOCKER-USER {opt} {br} -j ACCEPT"
                     for br in bridges for opt in ("-i", "-o")] + lines
    if policy:
        what = f"{where} has policy drop and does not accept virtnet's bridges"
        fix = "accept virtnet's bridges there (another tool's table: virtnet never edits it): " + \
              "; ".join(lines)
        if hook != "input":
            fix += ("; Docker recreates its chains on restart: put the accepts in DOCKER-USER "
                    "(iptables -I DOCKER-USER ...) or a systemd drop-in that runs after it")
        return Finding(ERROR, code, None, what, why, fix)
    detail = line.split("): ", 1)[-1]
    what = f"{where}: {detail.split('; check', 1)[0]}"
    return Finding(WARNING, code, None, what, why,
                   "check the rule does not match virtnet's bridges or subnets; if it does, "
                   "insert before it: " + "; ".join(lines))


def _chains(netns: str | None) -> set[tuple[str, str, str]]:
    proc = netns_mod.run(netns, ["nft", "-j", "list", "chains"], check=False)
    out: set[tuple[str, str, str]] = set()
    if proc.returncode != 0:
        return out
    for obj in json.loads(proc.stdout or "{}").get("nftables", []):
        c = obj.get("chain")
        if c:
            out.add((c["family"], c["table"], c["name"]))
    return out


def _log_tail(path: Path, lines: int = 2) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(t.strip() for t in text[-lines:])


# --- live reads ----------------------------------------------------------------------------


class _Links:
    """``ip -d -j link`` and ``ip -j addr`` of the namespace, read once."""

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self._links: dict[str, dict[str, Any]] | None = None
        self._addrs: dict[str, list[str]] | None = None

    def get(self, name: str) -> dict[str, Any] | None:
        if self._links is None:
            proc = netns_mod.run(self.netns, ["ip", "-d", "-j", "link", "show"])
            self._links = {e["ifname"]: e for e in json.loads(proc.stdout or "[]")}
        return self._links.get(name)

    def all_links(self) -> dict[str, dict[str, Any]]:
        self.get("")
        assert self._links is not None
        return self._links

    def addresses(self, name: str) -> list[str]:
        if self._addrs is None:
            proc = netns_mod.run(self.netns, ["ip", "-j", "addr", "show"])
            self._addrs = {
                e["ifname"]: [f"{a['local']}/{a['prefixlen']}" for a in e.get("addr_info", [])]
                for e in json.loads(proc.stdout or "[]")
            }
        return self._addrs.get(name, [])

    def all_addresses(self) -> list[tuple[str, str]]:
        """(interface, CIDR) for every address in the namespace."""
        self.addresses("")
        assert self._addrs is not None
        return [(name, a) for name, addrs in self._addrs.items() for a in addrs]


@dataclass(frozen=True)
class Listener:
    proto: str  # udp | tcp
    addr: str  # "0.0.0.0", "10.0.0.1", "::", "*"
    dev: str | None  # bound device (SO_BINDTODEVICE), from "addr%dev"
    port: int
    pid: int | None
    comm: str


_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')


def parse_ss(text: str, proto: str) -> list[Listener]:
    """Listening sockets from ``ss -H -ln{u,t}p`` output."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        local = parts[3]
        addr, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        dev = None
        if "%" in addr:
            addr, dev = addr.split("%", 1)
        addr = addr.strip("[]")
        m = _USERS.search(line)
        out.append(Listener(proto, addr, dev, int(port),
                            int(m.group(2)) if m else None, m.group(1) if m else ""))
    return out


def _listeners(netns: str | None) -> list[Listener]:
    out: list[Listener] = []
    for proto, flag in (("udp", "-lnup"), ("tcp", "-lntp")):
        proc = netns_mod.run(netns, ["ss", "-H", flag], check=False)
        if proc.returncode == 0:
            out += parse_ss(proc.stdout, proto)
    return out
