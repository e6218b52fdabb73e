"""The library the CLI calls: virsh's network operations over the Store and the Engine.

Definitions (persistent and transient) live in the Store as libvirt XML; what runs lives in the
Engine's runtime records, one namespace at a time. The semantics follow libvirt's network
driver: a persistent network can be defined while it runs (the new definition applies at the
next start), undefining a running network makes it transient, destroying a transient network
forgets it, and ``net-update`` touches the live state, the persistent config, or both.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from virtnet import netupdate
from virtnet.engine import Engine, Port, StartReport
from virtnet.errors import Conflict, InvalidDefinition, NotFound, NotSupported, VirtnetError
from virtnet.host import dnsmasq as dnsmasq_proc
from virtnet.host import netns as netns_mod
from virtnet.host import record as rec_mod
from virtnet.host.leases import DhcpLease
from virtnet.libvirtxml import format_network, parse_network
from virtnet.model.defaults import fill_defaults
from virtnet.model.network import Bridge, Network
from virtnet.model.validate import validate
from virtnet.plan import plan_network, read_mark
from virtnet.store import Store, StoredDefinition

Log = Callable[[str], None]

DEFAULT_NAME = "default"
DEFAULT_META = "default-network"


@dataclass(frozen=True)
class NetworkInfo:
    """One line of ``net-list`` / the body of ``net-info``."""

    name: str
    uuid: str
    active: bool
    persistent: bool
    autostart: bool
    bridge: str | None
    mode: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uuid": self.uuid,
            "state": "active" if self.active else "inactive",
            "autostart": self.autostart,
            "persistent": self.persistent,
            "bridge": self.bridge,
            "mode": self.mode,
        }


@dataclass(frozen=True)
class UpdateResult:
    live: bool  # the running network was changed
    config: bool  # the persistent definition was changed
    effect: str  # what the live change needed: none | dhcp-hosts (SIGHUP) | dnsmasq (restart)


class Service:
    """virsh-style operations on networks in namespace NETNS, state under STATE_DIR."""

    def __init__(self, state_dir: Path | str, netns: str | None, *, log: Log | None = None):
        self.state_dir = Path(state_dir)
        self.netns = netns or None
        self.log: Log = log or (lambda msg: None)
        self.detailed = log is not None  # --verbose: also list the host operations
        self.engine = Engine(self.state_dir, self.netns)
        self.store: Store = self.engine.store
        self._marked: dict[str, Any] | None = None  # marked_bridges, read once per service

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups -------------------------------------------------------------------------

    def _stored(self, name: str) -> StoredDefinition | None:
        found = self.store.get_definition(name)
        if found is None and _looks_like_uuid(name):
            found = self.store.get_definition_by_uuid(name)
        return found

    def _active_names(self) -> set[str]:
        return set(self.engine.active())

    def resolve(self, name: str) -> str:
        """The network's name, given its name or UUID (as virsh accepts both)."""
        stored = self._stored(name)
        if stored is not None:
            return stored.name
        if name in self._active_names():
            return name
        raise NotFound(
            f"network not found: no network with matching name '{name}'",
            hint="'virtnet net-list --all' lists the defined networks",
        )

    def config(self, name: str) -> Network:
        """The stored (persistent or transient) definition of NAME."""
        stored = self._stored(name)
        if stored is None:
            raise NotFound(
                f"network not found: no network with matching name '{name}'",
                hint="'virtnet net-list --all' lists the defined networks",
            )
        return stored_network(stored)

    def definition(self, name: str, *, inactive: bool = False) -> Network:
        """What ``net-dumpxml`` shows: the running definition of an active network, else (or
        with INACTIVE) the stored one."""
        name = self.resolve(name)
        if not inactive and self.engine.is_active(name):
            return self.engine.definition(name)
        stored = self.store.get_definition(name)
        if (stored is None or (inactive and not stored.persistent)) and self.engine.is_active(
            name
        ):
            return self.engine.definition(name)
        return self.config(name)

    def dumpxml(self, name: str, *, inactive: bool = False) -> str:
        return format_network(self.definition(name, inactive=inactive), inactive=inactive)

    def info(self, name: str) -> NetworkInfo:
        name = self.resolve(name)
        stored = self.store.get_definition(name)
        active = self.engine.is_active(name)
        net = self.engine.definition(name) if active else self.config(name)
        return NetworkInfo(
            name=name,
            uuid=net.uuid or (stored.uuid if stored else ""),
            active=active,
            persistent=bool(stored and stored.persistent),
            autostart=bool(stored and stored.autostart),
            bridge=net.bridge_name,
            mode=net.mode.value,
        )

    def list_networks(self) -> list[NetworkInfo]:
        """Every defined network plus any active one whose definition is gone, by name."""
        # One read of the runtime records: a network that stops meanwhile is listed as it
        # was, never an error (reading them one by one raced with concurrent starts/stops).
        running = self.engine.running_definitions()
        out: dict[str, NetworkInfo] = {}
        for d in self.store.list_definitions():
            is_active = d.name in running
            net = running[d.name] if is_active else stored_network(d)
            out[d.name] = NetworkInfo(d.name, d.uuid, is_active, d.persistent, d.autostart,
                                      net.bridge_name, net.mode.value)
        for name in running.keys() - out.keys():
            net = running[name]
            out[name] = NetworkInfo(name, net.uuid or "", True, False, False, net.bridge_name,
                                    net.mode.value)
        return [out[k] for k in sorted(out)]

    # -- define / undefine ---------------------------------------------------------------

    def others(self, name: str, *, exclude: Sequence[str] = ()) -> list[Network]:
        """The other defined networks (their stored definitions), for validation."""
        skip = {name, *exclude}
        return [stored_network(d) for d in self.store.list_definitions() if d.name not in skip]

    def prepare(self, net: Network, *, others: Sequence[Network] | None = None,
                previous: Network | None = None, extra_taken: Collection[str] = (),
                links: Collection[str] | None = None) -> Network:
        """NET completed (uuid, bridge, MAC) and validated against the other networks.

        Values libvirt generated for an earlier definition of the same network (uuid, bridge
        name, bridge MAC) are kept when the new one leaves them out, so redefining the same
        file changes nothing. LINKS: the namespace's device names, when the caller
        already has them (preparing many networks at once).
        """
        if others is None:
            others = self.others(net.name)
        if previous is None:
            stored = self.store.get_definition(net.name)
            try:
                previous = stored_network(stored) if stored else None
            except InvalidDefinition:
                previous = None  # being replaced because it could not be read
        if previous is not None:
            net = carry_over(net, previous)
        else:
            # Running but forgotten (a lost database): keep the bridge and MAC it runs with,
            # so taking it back changes nothing under its VMs.
            running = self.marked_bridges().get(net.name)
            if running is not None:
                net = carry_over(net, replace(net, uuid=None, mac=running.mac,
                                              bridge=replace(net.bridge or Bridge(),
                                                             name=running.name)))
        if links is None:
            links = self.host_links()
        taken = {o.bridge_name for o in others if o.bridge_name} | set(links)
        taken |= set(extra_taken)
        net = fill_defaults(net, taken_bridges=taken)
        validate(net, others=others)
        return net

    def marked_bridges(self) -> dict[str, Any]:
        """This state directory's bridges in the namespace, by network name (their marks)."""
        if self._marked is None:
            try:
                self._marked = {m.network: link for m, link in self.engine.nl.marked_bridges()
                                if m.owned_by(self.engine.owner)}
            except (VirtnetError, OSError):
                self._marked = {}
        return self._marked

    def host_links(self) -> set[str]:
        """Device names already in the namespace (generated bridge names avoid them)."""
        try:
            return {link.name for link in self.engine.nl.links()}
        except (VirtnetError, OSError):
            return set()  # not root / no namespace: nothing to avoid that we can see

    def define(self, net: Network, *, origin: str = "define") -> Network:
        """Store NET as a persistent definition (replacing one of the same name)."""
        with self.store.host_lock(self.netns):
            stored = self.store.get_definition(net.name)
            if stored is not None and net.uuid and net.uuid.lower() != stored.uuid.lower():
                raise Conflict(
                    f"network '{net.name}' is already defined with uuid {stored.uuid}",
                    element="uuid",
                    hint="remove the <uuid> element (or give the existing one), or choose "
                    "another name",
                )
            net = self.prepare(net)
            self.store.put_definition(
                net.name, net.uuid or "", format_network(net, inactive=True), persistent=True,
                autostart=bool(stored and stored.autostart),
                origin=stored.origin if stored and stored.persistent else origin,
            )
            self.log(f"stored definition of network {net.name} (uuid {net.uuid})")
        return net

    def undefine(self, name: str) -> bool:
        """Forget NAME's persistent definition. A running network keeps running as a
        transient one (libvirt's behaviour); returns whether it was running."""
        name = self.resolve(name)
        with self.store.host_lock(self.netns):
            stored = self.store.get_definition(name)
            if stored is None or not stored.persistent:
                raise Conflict(
                    f"network '{name}' is transient: there is no persistent definition",
                    hint=f"stop it with 'virtnet net-destroy {name}' (that also forgets it)",
                )
            if self.engine.is_active(name):
                self.store.put_definition(name, stored.uuid, stored.xml, persistent=False,
                                          autostart=False, origin=stored.origin)
                self.log(f"network {name} is running: kept as a transient network")
                return True
            self.store.delete_definition(name)
            self.log(f"deleted definition of network {name}")
            return False

    # -- lifecycle -----------------------------------------------------------------------

    def create(self, net: Network) -> StartReport:
        """Start NET as a transient network (gone once destroyed)."""
        with self.store.host_lock(self.netns):
            stored = self.store.get_definition(net.name)
            if stored is not None:
                active = self.engine.is_active(net.name)
                raise Conflict(
                    f"network '{net.name}' is already "
                    + ("active" if active else "defined"),
                    hint="choose another name" if active
                    else f"start the defined one with 'virtnet net-start {net.name}'",
                )
            net = self.prepare(net, previous=None)
            self.store.put_definition(net.name, net.uuid or "", format_network(net),
                                      persistent=False, origin="create")
            try:
                report = self._start(net)
            except BaseException:
                self.store.delete_definition(net.name)
                raise
        return report

    def start(self, name: str, *, force: bool = False) -> StartReport:
        """FORCE: start a bridged network even if its host bridge fails the bonding rules."""
        name = self.resolve(name)
        with self.store.host_lock(self.netns):
            notes = self.recover(name)
            if self.engine.is_active(name) and any("rebuilt" in n for n in notes):
                # It was running all along; its status is back, nothing to start.
                info = self.engine.definition(name)
                return StartReport(name, info.bridge_name or "", False, tuple(notes))
            if self.engine.is_active(name):
                raise Conflict(f"network '{name}' is already active",
                               hint=f"'virtnet net-destroy {name}' stops it")
            net = self.config(name)
            # Networks defined in other namespaces' runs may clash with this host's devices.
            validate(net, others=[self.engine.definition(n) for n in self.engine.active()])
            report = self._start(net, force=force)
            return replace(report, messages=(*notes, *report.messages)) if notes else report

    def _start(self, net: Network, *, force: bool = False) -> StartReport:
        self.log(f"starting network {net.name}: bridge {net.bridge_name}, mode {net.mode.value}"
                 + (f", namespace {self.netns}" if self.netns else ""))
        if self.detailed:
            with contextlib.suppress(VirtnetError):
                for change in self.engine.plan([net]).changes or ():
                    self.log(f"  {change}")
        report = self.engine.start(net, force=force)
        self.log(f"network {net.name} started in {report.seconds * 1000:.0f} ms")
        blocked = unsearchable_dir(self.state_dir) if net.needs_dnsmasq else None
        if blocked is not None:
            report = replace(report, messages=(*report.messages, (
                f"warning: {blocked} is not searchable by other users, so dnsmasq (running "
                f"as '{dnsmasq_proc.run_user()}') cannot re-read network {net.name}'s host "
                f"files: live DHCP host changes (net-update --live) will not reach it; "
                f"fix: chmod o+x {blocked}")))
        return report

    def destroy(self, name: str) -> None:
        name = self.resolve(name)
        with self.store.host_lock(self.netns):
            if self.store.get_runtime(self.netns, name) is None:
                raise Conflict(f"network '{name}' is not active",
                               hint=f"'virtnet net-start {name}' starts it")
            self.log(f"stopping network {name}")
            if self.detailed:
                rec = self.store.get_runtime(self.netns, name) or {}
                self.log(f"  - bridge {rec.get('bridge')} (and the ports on it)")
                if rec.get("firewall"):
                    self.log(f"  - nftables: network {name}'s elements in table inet virtnet")
                if rec.get("dnsmasq"):
                    self.log(f"  - dnsmasq pid {rec['dnsmasq'].get('pid')} and its files")
            self.engine.stop(name)
            stored = self.store.get_definition(name)
            if stored is not None and not stored.persistent:
                self.store.delete_definition(name)
                self.log(f"transient network {name} forgotten")

    def recover(self, name: str) -> list[str]:
        """Rebuild NAME's runtime status when it was lost or is unreadable while the network's
        pieces are still on the host, from virtnet's own marks: the bridge's alias
        ``virtnet:NAME`` and a dnsmasq running with NAME's config file. Missing pieces are then
        repaired by ``engine.reconcile``. A dnsmasq left running without its bridge is
        stopped (it would keep the network's address busy). Returns what was done."""
        notes: list[str] = []
        if self.store.runtime_unreadable(self.netns, name) is not None:
            self.store.delete_runtime(self.netns, name)
            notes.append(f"network {name}: its unreadable runtime status was dropped")
        elif self.store.get_runtime(self.netns, name) is not None:
            return notes
        stored = self.store.get_definition(name)
        if stored is None:
            return notes
        net = stored_network(stored)
        if not net.mode.has_own_bridge or not net.bridge_name:
            return notes
        try:
            plan = plan_network(net, self.state_dir)
            link = self.engine.nl.get(net.bridge_name)
        except VirtnetError:
            return notes
        dm = plan.dnsmasq
        pids: list[int] = []
        if dm is not None:
            # Its pid file may be gone with the record: look for the config file too.
            first = dnsmasq_proc.read_pid(dm.pidfile)
            pids = sorted(({first} if first else set()) | set(dnsmasq_proc.find(dm.conf)))
            pids = [p for p in pids if dnsmasq_proc.is_ours(p, dm.conf)]
        mark = read_mark(link.alias) if link is not None else None
        if link is None or mark is None or mark.network != name or not mark.owned_by(
                self.engine.owner):
            for orphan in pids:
                assert dm is not None
                dnsmasq_proc.stop(orphan, dm.conf)
                notes.append(f"network {name}: stopped dnsmasq (pid {orphan}) left running "
                             "without its network")
            for n in notes:
                self.log(n)
            return notes
        pid = pids[0] if pids else None
        for extra in pids[1:]:
            assert dm is not None
            dnsmasq_proc.stop(extra, dm.conf)
        # The same record the engine writes when it starts a network (virtnet.host.record).
        rec: dict[str, Any] = {
            "state": rec_mod.ACTIVE,
            "definition": rec_mod.network_to_json(net),
            "bridge": link.name,
            "firewall": plan.firewall,
            "dnsmasq": None if dm is None else {
                "conf": str(dm.conf), "pidfile": str(dm.pidfile), "pid": pid,
                "leasefile": str(dm.leasefile),
                "files": [str(p) for p, _ in dm.files]
                + [str(dm.pidfile), str(dm.leasefile), str(dm.logfile)],
            },
            "ports": True,  # unknown: stop then looks for ports on the bridge
            "started": time.time(),
            "rebuilt": True,
        }
        self.store.put_runtime(self.netns, name, rec)
        notes.append(f"network {name}: runtime status rebuilt from the host (bridge "
                     f"{link.name}" + (f", dnsmasq pid {pid}" if pid else "") + ")")
        notes += [f"network {r}" for r in self.engine.reconcile([name])]
        for n in notes:
            self.log(n)
        return notes

    def set_autostart(self, name: str, enabled: bool) -> None:
        name = self.resolve(name)
        stored = self.store.get_definition(name)
        if stored is None or not stored.persistent:
            raise Conflict(f"cannot set autostart for transient network '{name}'",
                           hint="define it (net-define) to make it persistent first")
        self.store.set_autostart(name, enabled)
        self.log(f"network {name}: autostart {'on' if enabled else 'off'}")

    def autostart_all(self) -> list[tuple[str, str | None]]:
        """Start every autostart network that is not running: [(name, error or None)]."""
        results: list[tuple[str, str | None]] = []
        active = self._active_names()
        for d in self.store.list_definitions():
            if not (d.persistent and d.autostart) or d.name in active:
                continue
            try:
                self.start(d.name)
                results.append((d.name, None))
            except VirtnetError as exc:
                results.append((d.name, str(exc)))
        return results

    # -- leases and ports ----------------------------------------------------------------

    def leases(self, name: str, mac: str | None = None) -> list[DhcpLease]:
        """The network's current DHCP leases (expired ones left out, as libvirt does)."""
        name = self.resolve(name)
        if not self.engine.is_active(name):
            return []
        now = time.time()
        out = []
        for lease in self.engine.leases(name):
            if lease.expiry and lease.expiry < now:
                continue
            if mac is not None and (lease.mac or "").lower() != mac.lower():
                continue
            out.append(lease)
        return out

    def _active(self, network: str) -> str:
        """NETWORK's name; a defined network that is not running is a conflict (exit 5, as
        virsh's "network is not active"), an unknown one not found (exit 4)."""
        name = self.resolve(network)
        if not self.engine.is_active(name):
            raise Conflict(f"network {name!r} is not active",
                           hint=f"start it first (virtnet net-start {name})")
        return name

    def add_port(self, network: str, **kwargs: Any) -> Port:
        network = self._active(network)
        port = self.engine.add_port(network, **kwargs)
        self.log(f"port {port.name} ({port.kind}) attached to bridge {port.bridge}")
        return port

    def list_ports(self, network: str) -> list[Port]:
        return self.engine.list_ports(self._active(network))

    def delete_port(self, network: str, port: str) -> None:
        self.engine.delete_port(self._active(network), port)
        self.log(f"port {port} deleted")

    # -- net-update ----------------------------------------------------------------------

    def update(
        self,
        name: str,
        command: str,
        section: str,
        xml: str,
        *,
        parent_index: int = -1,
        live: bool = False,
        config: bool = False,
    ) -> UpdateResult:
        """libvirt's networkUpdate. Neither LIVE nor CONFIG means "current": the running
        network when it is active, else the persistent definition."""
        name = self.resolve(name)
        with self.store.host_lock(self.netns):
            active = self.engine.is_active(name)
            stored = self.store.get_definition(name)
            if not live and not config:
                live, config = (True, False) if active else (False, True)
            if config and (stored is None or not stored.persistent):
                raise Conflict(
                    f"cannot change persistent config of a transient network '{name}'",
                    hint="use --live (or define the network first)",
                )
            if live and not active:
                raise Conflict(f"network '{name}' is not running: --live needs an active "
                               "network", hint="use --config to change its definition")
            new_config = new_live = None
            if config:
                new_config = netupdate.update(self.config(name), command, section, xml,
                                              parent_index=parent_index)
                validate(new_config, others=self.others(name))
            if live:
                new_live = netupdate.update(self.engine.definition(name), command, section, xml,
                                            parent_index=parent_index)
                validate(new_live, others=[self.engine.definition(n)
                                           for n in self.engine.active() if n != name])
            effect = netupdate.live_effect(section)
            if new_live is not None:
                effect = self._update_live(new_live, effect)
            if new_config is not None and stored is not None:
                self.store.put_definition(name, stored.uuid,
                                          format_network(new_config, inactive=True),
                                          persistent=True, autostart=stored.autostart,
                                          origin=stored.origin)
                self.log(f"stored updated definition of network {name}")
            if new_live is not None and stored is not None and not stored.persistent:
                # A transient network's only definition is its live one.
                self.store.put_definition(name, stored.uuid, format_network(new_live),
                                          persistent=False, origin=stored.origin)
        return UpdateResult(live=new_live is not None, config=new_config is not None,
                            effect=effect.value)

    def _update_live(self, net: Network, effect: netupdate.LiveEffect) -> netupdate.LiveEffect:
        if effect is netupdate.LiveEffect.DHCP_HOSTS:
            try:
                self.engine.update_dhcp_hosts(net)
                self.log(f"network {net.name}: DHCP hosts rewritten, dnsmasq sent SIGHUP")
                return effect
            except Conflict:
                effect = netupdate.LiveEffect.DNSMASQ  # its configuration changed too
        self.replace_running_definition(net)
        if effect is netupdate.LiveEffect.DNSMASQ:
            repairs = self.engine.reconcile([net.name])
            for r in repairs:
                self.log(r)
        return effect

    def replace_running_definition(self, net: Network) -> None:
        """Record NET as the definition the running network has; host changes are then made
        by ``engine.reconcile`` (it repairs towards the recorded definition)."""
        with self.store.host_lock(self.netns):
            rec = self.store.get_runtime(self.netns, net.name)
            if rec is None or rec.get("state") != rec_mod.ACTIVE:
                raise Conflict(f"network '{net.name}' is not running")
            old = rec_mod.network_from_json(rec["definition"])
            if old.bridge_name != net.bridge_name or (
                bool(rec.get("dnsmasq")) != net.needs_dnsmasq
            ):
                raise NotSupported(
                    f"network '{net.name}': this change cannot be made to the running network",
                    hint=f"change the definition (--config) and restart it (net-destroy "
                    f"{net.name}; net-start {net.name})",
                )
            rec["definition"] = rec_mod.network_to_json(net)
            self.store.put_runtime(self.netns, net.name, rec)

    # -- the default network -------------------------------------------------------------

    def ensure_default_network(self) -> str | None:
        """On first use of a state directory, define libvirt's ``default`` network (NAT,
        virbr0, 192.168.122.0/24) and mark it autostart. Returns what was done, for the
        user, or None when nothing was (it is offered once; undefining it is respected)."""
        if self.store.get_meta(DEFAULT_META) is not None:
            return None
        with self.store.host_lock(self.netns):
            if self.store.get_meta(DEFAULT_META) is not None:
                return None
            if self.store.get_definition(DEFAULT_NAME) is not None:
                self.store.set_meta(DEFAULT_META, "existing")
                return None
            others = self.others(DEFAULT_NAME)
            used = self._used_subnets(others)
            third = next((n for n in range(122, 255)
                          if not any(ipaddress.ip_network(f"192.168.{n}.0/24").overlaps(u)
                                     for u in used)), None)
            if third is None:
                self.store.set_meta(DEFAULT_META, "no-free-subnet")
                return ("no 'default' network was defined: every 192.168.N.0/24 from N=122 "
                        "is in use here")
            taken = {o.bridge_name for o in others} | self.host_links()
            net = parse_network(default_network_xml(third))
            if "virbr0" in taken:
                net = replace(net, bridge=Bridge(stp=True, delay=0))
            net = self.prepare(net, others=others, previous=None)
            self.store.put_definition(net.name, net.uuid or "",
                                      format_network(net, inactive=True), persistent=True,
                                      autostart=True, origin="default")
            self.store.set_meta(DEFAULT_META, "defined")
        subnet = f"192.168.{third}.0/24"
        if third == 122:
            return (f"defined network 'default' (NAT, bridge {net.bridge_name}, {subnet}), "
                    "marked autostart")
        return (f"defined network 'default' (NAT, bridge {net.bridge_name}) on {subnet}: "
                f"192.168.122.0/24 is already in use on this host; marked autostart")

    def _used_subnets(self, others: Sequence[Network]) -> list[ipaddress.IPv4Network]:
        used: list[ipaddress.IPv4Network] = []
        for o in others:
            for ip in o.ipv4:
                used.append(ipaddress.IPv4Network(ip.network))
        for argv in (["ip", "-j", "-4", "addr", "show"], ["ip", "-j", "-4", "route", "show"]):
            try:
                data = json.loads(netns_mod.run(self.netns, argv).stdout or "[]")
            except (VirtnetError, ValueError):
                continue
            for item in data:
                for addr in item.get("addr_info", []):
                    if addr.get("local") and addr.get("prefixlen") is not None:
                        used.append(ipaddress.IPv4Interface(
                            f"{addr['local']}/{addr['prefixlen']}").network)
                dst = item.get("dst")
                if dst and dst != "default":
                    with contextlib.suppress(ValueError):
                        used.append(ipaddress.IPv4Network(dst, strict=False))
        # A default route says nothing about which private subnets are taken.
        return [u for u in used if u.prefixlen > 0]


def stored_network(d: StoredDefinition) -> Network:
    """A stored definition as a Network; one this virtnet can no longer read (written by
    another version) is an error that names it and says how to fix it."""
    try:
        return parse_network(d.xml)
    except InvalidDefinition as exc:
        raise InvalidDefinition(
            f"the stored definition of network '{d.name}' cannot be read: {exc.message}",
            element=exc.element,
            hint=f"'virtnet net-edit {d.name}' to correct it, or 'virtnet net-undefine "
            f"{d.name}' and define it again",
        ) from None


def unsearchable_dir(path: Path) -> Path | None:
    """The first directory on PATH's way that other users cannot enter (dnsmasq drops root
    and re-reads its host files on SIGHUP as an unprivileged user), or None."""
    p = path.resolve()
    for d in [*reversed(p.parents), p]:
        try:
            if not d.stat().st_mode & 0o001:
                return d
        except OSError:
            return None
    return None


def default_network_xml(third: int = 122) -> str:
    """libvirt's default network (its networks/default.xml), on 192.168.THIRD.0/24."""
    return f"""<network>
  <name>{DEFAULT_NAME}</name>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <ip address='192.168.{third}.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.{third}.2' end='192.168.{third}.254'/>
    </dhcp>
  </ip>
</network>
"""


def carry_over(new: Network, old: Network) -> Network:
    """Keep what libvirt generated for OLD (uuid, bridge name, MAC) when NEW leaves it out."""
    changes: dict[str, Any] = {}
    if not new.uuid and old.uuid:
        changes["uuid"] = old.uuid
    if new.mode.has_own_bridge and old.mode.has_own_bridge:
        if (new.bridge is None or new.bridge.name is None) and old.bridge_name:
            changes["bridge"] = replace(new.bridge or Bridge(), name=old.bridge_name)
        if not new.mac and old.mac:
            changes["mac"] = old.mac
    return replace(new, **changes) if changes else new


def _looks_like_uuid(text: str) -> bool:
    digits = text.replace("-", "")
    return len(digits) == 32 and all(c in "0123456789abcdefABCDEF" for c in digits)

