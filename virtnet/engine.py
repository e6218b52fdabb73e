"""The engine: start, stop and reconcile virtual networks inside one network namespace.

One apply = one netlink socket (kept for the Engine's life), one atomic nftables
transaction (in-process through libnftables, see firewall/nftlib.py), then the dnsmasq
changes. Every step registers its undo with a Reverter, so a
failure part-way leaves nothing behind. Before the first host change the runtime record is
written with ``state: starting`` (the intent); after a kill -9 at any point the next start,
stop or reconcile finds that record and removes whatever part of the network exists.
All of it runs under the Store's per-namespace lock, so concurrent commands queue.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from virtnet import bridged, direct, firewall
from virtnet.dnsmasq.config import DnsmasqPaths
from virtnet.errors import Conflict, HostError, NotFound, VirtnetError
from virtnet.host import conntrack, sysctl, tapnode
from virtnet.host import dnsmasq as dnsmasq_proc
from virtnet.host import leases as leases_mod
from virtnet.host import ports as ports_mod
from virtnet.host import record as rec_mod
from virtnet.host.leases import DhcpLease
from virtnet.host.links import Netlink
from virtnet.host.nsenter import entered
from virtnet.host.ports import Port
from virtnet.host.reverter import Reverter
from virtnet.model.network import ForwardMode, Network
from virtnet.plan import (
    BridgeMark,
    NetworkPlan,
    Observed,
    Plan,
    bridge_changes,
    desired_state,
    diff,
    owner_id,
    plan_network,
    read_mark,
)
from virtnet.store import Store

__all__ = ["DhcpLease", "Engine", "Port", "StartReport"]

# Test hook: the applying process SIGKILLs itself when it reaches this step (crash tests).
CRASH_ENV = "VIRTNET_TEST_CRASH_AT"
INTERRUPT_ENV = "VIRTNET_TEST_INTERRUPT_AT"  # ... raises KeyboardInterrupt there (Ctrl-C)
START_STEPS = ("intent", "bridge", "sysctl", "address", "files", "dnsmasq", "launched",
               "firewall", "active")


@dataclass(frozen=True)
class StartReport:
    name: str
    bridge: str
    changed: bool  # False: it was already running with this definition (no-op)
    messages: tuple[str, ...] = ()
    seconds: float = 0.0


def _step(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(INTERRUPT_ENV) == name:
        raise KeyboardInterrupt(f"test interrupt at {name}")


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class Engine:
    """Virtual networks in namespace NETNS (None: the root namespace), state in STATE_DIR."""

    def __init__(self, state_dir: Path | str, netns: str | None) -> None:
        self.state_dir = Path(state_dir)
        self.netns = netns
        self.owner = owner_id(self.state_dir)  # marked on every bridge this state dir makes
        self.store = Store(self.state_dir)
        self._nl: Netlink | None = None

    # -- lifecycle of the engine object -------------------------------------------------

    def close(self) -> None:
        if self._nl is not None:
            self._nl.close()
            self._nl = None
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def nl(self) -> Netlink:
        if self._nl is None:
            self._nl = Netlink(self.netns)
        return self._nl

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return self.store.host_lock(self.netns)

    def _record(self, name: str) -> dict[str, Any] | None:
        return self.store.get_runtime(self.netns, name)

    def _put(self, name: str, rec: dict[str, Any]) -> None:
        self.store.put_runtime(self.netns, name, rec)

    # -- queries ------------------------------------------------------------------------

    def is_active(self, name: str) -> bool:
        rec = self._record(name)
        return rec is not None and rec.get("state") == rec_mod.ACTIVE

    def active(self) -> list[str]:
        return sorted(
            n for n, r in self.store.list_runtime(self.netns).items()
            if r.get("state") == rec_mod.ACTIVE
        )

    def interrupted_bridge(self, name: str) -> str | None:
        """The bridge an interrupted start or stop of NAME may have left (without its alias
        when the kill came between creating it and naming it). The next start, stop or
        reconcile removes it; a pre-check should not take it for someone else's device."""
        rec = self._record(name)
        if rec is None or rec.get("state") == rec_mod.ACTIVE or rec.get("host_bridge"):
            return None
        bridge = rec.get("bridge")
        return bridge if isinstance(bridge, str) and bridge else None

    def definition(self, name: str) -> Network:
        """The definition an active network runs with."""
        return rec_mod.network_from_json(self._active_record(name)["definition"])

    def _active_record(self, name: str) -> dict[str, Any]:
        rec = self._record(name)
        if rec is None or rec.get("state") != rec_mod.ACTIVE:
            raise NotFound(
                f"network {name!r} is not active"
                + (f" in namespace {self.netns}" if self.netns else ""),
                hint=f"start it first (virtnet net-start {name})",
            )
        return rec

    def running_definitions(self) -> dict[str, Network]:
        """Every active network's running definition, from one consistent read."""
        return self._active_networks()

    def _active_networks(self) -> dict[str, Network]:
        return {
            n: rec_mod.network_from_json(r["definition"])
            for n, r in self.store.list_runtime(self.netns).items()
            if r.get("state") == rec_mod.ACTIVE
        }

    # -- planning -----------------------------------------------------------------------

    def plan(self, nets: Sequence[Network], *, against_host: bool = True) -> Plan:
        """The desired state for NETS and, if the namespace exists, its difference there."""
        merged = dict(self._active_networks()) if against_host else {}
        merged.update({n.name: n for n in nets})
        desired = desired_state(nets, self.state_dir, table_for=list(merged.values()))
        if not against_host or (self.netns is not None and not _netns_exists(self.netns)):
            return Plan(desired)
        return Plan(desired, tuple(diff(desired, self._observe(desired.networks, merged))))

    def _observe(self, plans: Sequence[NetworkPlan], merged: dict[str, Network]) -> Observed:
        bridges = {}
        sysctls: dict[str, str | None] = {}
        files: dict[Path, str | None] = {}
        running: dict[str, bool] = {}
        for p in plans:
            seen = self.nl.observe_bridge(p.bridge.name)
            if seen is not None:
                bridges[p.bridge.name] = seen
            with entered(self.netns):
                for sc in p.sysctls:
                    sysctls[sc.path] = sysctl.read(sc.path)
            if p.dnsmasq is not None:
                for path, _ in p.dnsmasq.files:
                    files[path] = path.read_text() if path.exists() else None
                pid = dnsmasq_proc.read_pid(p.dnsmasq.pidfile)
                running[p.name] = pid is not None and dnsmasq_proc.is_ours(pid, p.dnsmasq.conf)
        drift = tuple(firewall.drift(self.netns, list(merged.values())))
        return Observed(bridges=bridges, sysctls=sysctls, files=files, dnsmasq_running=running,
                        nft_drift=drift)

    # -- start --------------------------------------------------------------------------

    def start(self, net: Network, *, force: bool = False) -> StartReport:
        """Start NET; a no-op when it already runs with this definition. FORCE: start a
        bridged network even when its host bridge's uplinks fail the bonding/Wi-Fi rules."""
        if bridged.is_host_bridge(net):
            return self._start_bridged(net, force=force)
        if direct.is_direct(net):
            return self._start_direct(net, force=force)
        return self.start_many([net])[0]

    def start_many(self, nets: Sequence[Network]) -> list[StartReport]:
        """Start several nat/route/isolated/open networks as one apply: one nft transaction
        for all, their bridges, then all their dnsmasq processes launched together. All or
        nothing: if one fails, what this call did for all of them is undone. Networks already
        running with the same definition are no-ops."""
        t0 = time.perf_counter()
        plans = [plan_network(n, self.state_dir) for n in nets]  # pure: fails before changes
        names = [p.name for p in plans]
        if len(set(names)) != len(names):
            raise Conflict("a network is named twice in one start", hint="start each once")
        bridges = [p.bridge.name for p in plans]
        if len(set(bridges)) != len(bridges):
            twice = sorted({b for b in bridges if bridges.count(b) > 1})
            raise Conflict(f"networks started together share bridge(s) {', '.join(twice)}",
                           element="bridge", hint="give each network its own <bridge name=...>")
        reports: dict[str, StartReport] = {}
        with self._lock():
            if not self.store.list_runtime(self.netns):
                # The first network here: a namespace another state directory manages is
                # not ours to add to (its table would be rewritten under it).
                self._refuse_foreign(self.nl.marked_bridges())
            todo: list[NetworkPlan] = []
            adopted: list[tuple[NetworkPlan, tuple[str, ...]]] = []
            for plan in plans:
                net = plan.network
                rec = self._record(net.name)
                if rec is not None and rec.get("state") == rec_mod.ACTIVE:
                    if rec_mod.network_from_json(rec["definition"]) != net:
                        raise Conflict(
                            f"network {net.name!r} is already active with a different "
                            "definition",
                            hint=f"stop it first (virtnet net-destroy {net.name}), then start it",
                        )
                    reports[net.name] = StartReport(net.name, plan.bridge.name, False,
                                                    self._messages(net),
                                                    time.perf_counter() - t0)
                    continue
                if rec is not None:  # an interrupted start or stop: clear its leftovers first
                    self._teardown(net.name, rec, crashed=True)
                    self.store.delete_runtime(self.netns, net.name)
                if self._check_bridge_free(plan):
                    adopted.append((plan, self._adopt(plan)))
                    continue
                todo.append(plan)
            if todo:
                self._apply_starts(todo)
        for plan in todo:
            reports[plan.name] = StartReport(plan.name, plan.bridge.name, True,
                                             self._messages(plan.network),
                                             time.perf_counter() - t0)
        for plan, notes in adopted:
            reports[plan.name] = StartReport(plan.name, plan.bridge.name, True,
                                             (*notes, *self._messages(plan.network)),
                                             time.perf_counter() - t0)
        return [reports[n] for n in names]

    def _refuse_foreign(self, marked: Sequence[tuple[BridgeMark, Any]]) -> None:
        """A namespace's networks have one owner: refuse to act where another state
        directory's bridges are, naming it, rather than take them for orphans."""
        foreign = sorted({m.owner for m, _ in marked if m.owner and not m.owned_by(self.owner)})
        if not foreign:
            return
        nets = sorted(f"{m.network} ({link.name})" for m, link in marked
                      if m.owner in foreign)
        raise Conflict(
            f"namespace {self.netns or 'root'} is managed by another virtnet state directory "
            f"(owner id {', '.join(foreign)}: networks {', '.join(nets)}); this one is "
            f"{self.state_dir} (owner id {self.owner})",
            element="--state-dir",
            hint="run virtnet with the state directory that started those networks (its "
                 "owner id is the SHA-256 of its path; 'virtnet doctor' lists the owners)",
        )

    def _adopt(self, plan: NetworkPlan) -> tuple[str, ...]:
        """Take back a network that still runs but lost its record (a lost or damaged
        database): the same bridge, its ports and MAC, its dnsmasq when its configuration is
        unchanged; then repair whatever differs from PLAN. Never delete it."""
        rec = self._intent(plan)
        rec["state"] = rec_mod.ACTIVE
        rec["ports"] = True  # unknown: stop then looks for ports on the bridge
        dm = plan.dnsmasq
        pid = None
        if dm is not None:
            pids = sorted(p for p in {*dnsmasq_proc.find(dm.conf),
                                      dnsmasq_proc.read_pid(dm.pidfile) or 0}
                          if p and dnsmasq_proc.is_ours(p, dm.conf))
            pid = pids[0] if pids else None
            for extra in pids[1:]:
                dnsmasq_proc.stop(extra, dm.conf)
            rec["dnsmasq"]["pid"] = pid
        self._put(plan.name, rec)
        notes = [f"taken back from the host: bridge {plan.bridge.name}"
                 + (f", dnsmasq pid {pid}" if pid else "")]
        notes += self._repair(plan.name, rec)
        if plan.firewall:
            self._firewall_add([plan.network])
        return tuple(notes)

    def _active_or_cleared(self, net: Network) -> dict[str, Any] | None:
        """For bridged/direct starts, under the lock: the record when NET is already active
        as defined (a no-op start); otherwise clear what an interrupted start left, None."""
        rec = self._record(net.name)
        if rec is not None and rec.get("state") == rec_mod.ACTIVE:
            if rec_mod.network_from_json(rec["definition"]) != net:
                raise Conflict(
                    f"network {net.name!r} is already active with a different definition",
                    hint=f"stop it first (virtnet net-destroy {net.name}), then start it",
                )
            return rec
        if rec is not None:
            self._teardown(net.name, rec, crashed=True)
            self.store.delete_runtime(self.netns, net.name)
        return None

    def _start_bridged(self, net: Network, *, force: bool) -> StartReport:
        """Bridged mode: check the host's bridge and its uplinks, record the network; no
        bridge, rules or dnsmasq of its own (virtnet.bridged)."""
        t0 = time.perf_counter()
        with self._lock():
            rec = self._active_or_cleared(net)
            if rec is not None:
                return StartReport(net.name, rec["bridge"], False, (), time.perf_counter() - t0)
            started = bridged.start_bridged(net, netns=self.netns, force=force)
            self._put(net.name, bridged.runtime_record(net, started, rec_mod.network_to_json(net)))
        return StartReport(net.name, started.bridge, True, started.messages,
                           time.perf_counter() - t0)

    def _start_direct(self, net: Network, *, force: bool) -> StartReport:
        """macvtap modes (and hostdev, refused): check the interface pool, record the
        network; ports become macvtap/macvlan devices one by one (virtnet.direct)."""
        t0 = time.perf_counter()
        with self._lock():
            if self._active_or_cleared(net) is not None:
                return StartReport(net.name, "", False, (), time.perf_counter() - t0)
            started = direct.start_direct(net, netns=self.netns, force=force)
            self._put(net.name, direct.runtime_record(net, started, rec_mod.network_to_json(net)))
        return StartReport(net.name, "", True, started.messages, time.perf_counter() - t0)

    def _check_bridge_free(self, plan: NetworkPlan) -> bool:
        """Whether PLAN's bridge exists already as this network's own, still running after
        its record was lost (True: take it back). Anything else there is refused."""
        link = self.nl.get_raw(plan.bridge.name)  # one raw round trip: the common case is none
        if link is None:
            return False
        mark = read_mark(link.alias)
        if mark is not None and mark.network == plan.name:
            if mark.owned_by(self.owner):
                return True
            self._refuse_foreign([(mark, link)])
        owner = (
            f"virtnet network {mark.network!r}" if mark is not None else "something else"
        )
        raise Conflict(
            f"cannot start network {plan.name!r}: interface {plan.bridge.name!r} already exists "
            f"in namespace {self.netns or 'root'} (used by {owner})",
            element="bridge",
            hint="give the network another <bridge name=...> or remove that interface",
        )

    @staticmethod
    def _intent(plan: NetworkPlan) -> dict[str, Any]:
        """The runtime record, written before any host change (state: starting)."""
        dm = plan.dnsmasq
        return {
            "state": rec_mod.STARTING,
            "definition": rec_mod.network_to_json(plan.network),
            "bridge": plan.bridge.name,
            "firewall": plan.firewall,
            "dnsmasq": None if dm is None else {
                "conf": str(dm.conf), "pidfile": str(dm.pidfile), "pid": None,
                "leasefile": str(dm.leasefile),
                "files": [str(p) for p, _ in dm.files]
                + [str(dm.pidfile), str(dm.leasefile), str(dm.logfile)],
            },
            "ports": False,
            "started": time.time(),
        }

    def _apply_starts(self, plans: Sequence[NetworkPlan]) -> None:
        """Bridges (two netlink round trips each), files, every dnsmasq launched; while they
        start up in their own processes, the rules go in (one nft transaction, in-process);
        then each dnsmasq is waited for and the networks recorded active."""
        records = {p.name: self._intent(p) for p in plans}
        _step("intent")
        rv = Reverter()
        step, current = "recording the intent", plans[0].name
        try:
            with self.store.transaction():
                for name, rec in records.items():
                    self._put(name, rec)
                    rv.add(f"runtime record {name}", _bind(self.store.delete_runtime,
                                                           self.netns, name))
            for plan in plans:
                current, spec, dm = plan.name, plan.bridge, plan.dnsmasq
                step = f"creating bridge {spec.name}"
                _step("bridge")
                index = self.nl.create_bridge(spec)
                rv.add(f"bridge {spec.name}", _bind(self.nl.delete, spec.name))
                step = "setting sysctls"
                _step("sysctl")
                self._set_sysctls(plan)
                step = f"configuring bridge {spec.name}"
                _step("address")
                self.nl.configure_bridge(index, spec)
                if dm is not None:
                    step = "writing dnsmasq files"
                    _step("files")
                    self._write_files(dm.files, atomic=False)
                    rv.add(f"dnsmasq files of {plan.name}",
                           _bind(self._remove_files, records[plan.name]["dnsmasq"]["files"]))
            # every dnsmasq launched at once, then each waited for: their start-up overlaps
            # with each other's and with the firewall transaction below
            launching = []
            for plan in plans:
                if plan.dnsmasq is not None:
                    current, step = plan.name, "starting dnsmasq"
                    _step("dnsmasq")
                    proc = dnsmasq_proc.launch(self.netns, plan.dnsmasq.conf,
                                               plan.dnsmasq.pidfile)
                    # undone even if interrupted before it is waited for (Ctrl-C)
                    rv.add(f"dnsmasq of {plan.name}",
                           _bind(dnsmasq_proc.abort, proc, plan.dnsmasq.conf,
                                 plan.dnsmasq.pidfile))
                    launching.append((plan, proc))
            _step("launched")
            walled = [p.network for p in plans if p.firewall]
            if walled:
                current, step = ", ".join(n.name for n in walled), "adding firewall rules"
                _step("firewall")
                # registered first: the undo copes with rules that never went in
                rv.add("firewall rules", _bind(self._firewall_release, walled))
                self._firewall_add(walled)
            failure: Exception | None = None
            for plan, proc in launching:
                assert plan.dnsmasq is not None
                try:
                    pid = dnsmasq_proc.finish(proc, plan.dnsmasq.conf, plan.dnsmasq.pidfile)
                except Exception as exc:  # wait for the others too, so all can be undone
                    if failure is None:
                        failure, current, step = exc, plan.name, "starting dnsmasq"
                    continue
                rv.add(f"dnsmasq {pid}", _bind(dnsmasq_proc.stop, pid, plan.dnsmasq.conf))
                records[plan.name]["dnsmasq"]["pid"] = pid
            if failure is not None:
                raise failure
            step = "recording the network as active"
            _step("active")
            with self.store.transaction():
                for name, rec in records.items():
                    rec["state"] = rec_mod.ACTIVE
                    self._put(name, rec)
            rv.success()
        except BaseException as exc:
            left = rv.revert()
            if not isinstance(exc, Exception):
                raise
            detail = (exc.message if isinstance(exc, VirtnetError)
                      else f"{type(exc).__name__}: {exc}")
            others = "" if len(plans) == 1 else f" (with {len(plans) - 1} other network(s))"
            raise HostError(
                f"starting network {current!r}{others} failed while {step}: {detail}; "
                + ("everything it had done was undone" if not left
                   else "could not undo: " + "; ".join(left)),
                hint=getattr(exc, "hint", None),
            ) from None

    def _set_sysctls(self, plan: NetworkPlan) -> list[str]:
        changed = []
        with entered(self.netns):
            for sc in plan.sysctls:
                if sysctl.read(sc.path) != sc.value:
                    sysctl.write(sc.path, sc.value)
                    changed.append(str(sc))
        return changed

    def _write_files(self, files: Sequence[tuple[Path, str]], *, atomic: bool = True) -> None:
        """Write FILES world-readable (dnsmasq re-reads host files as its unprivileged user
        on SIGHUP). ATOMIC: through a temporary file and a rename, for a running dnsmasq;
        a network being started has none yet, so it writes them in place."""
        made: set[Path] = set()
        for path, text in files:
            if path.parent not in made:
                path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                made.add(path.parent)
            target = path.with_name(path.name + ".tmp") if atomic else path
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            with open(fd, "w", closefd=True) as fh:
                os.fchmod(fd, 0o644)  # whatever the umask
                fh.write(text)
            if atomic:
                os.replace(target, path)

    def _remove_files(self, files: Sequence[str]) -> None:
        for f in files:
            _unlink(Path(f))

    # -- firewall -----------------------------------------------------------------------

    def _firewall_add(self, nets: Sequence[Network]) -> None:
        """The incremental scripts, as one transaction (cost independent of how many
        networks run); the whole table when they cannot apply (no table yet, or flushed)."""
        try:
            firewall.apply_script(self.netns, "".join(firewall.render_add(n) for n in nets))
        except VirtnetError:
            new = {n.name for n in nets}
            keep = [n for n in self._active_networks().values() if n.name not in new]
            firewall.apply_script(self.netns, firewall.render_table([*keep, *nets]))

    def _firewall_release(self, nets: Sequence[Network], *, crashed: bool = False) -> None:
        """Take NETS' rules out in one transaction; when no other network needs the table,
        it goes too, so the namespace is left as virtnet found it."""
        going = {n.name for n in nets}
        others = [n for n, r in self.store.list_runtime(self.netns).items()
                  if n not in going and r.get("firewall") and r.get("state") == rec_mod.ACTIVE]
        if not others:
            firewall.delete_table(self.netns)
        elif crashed:
            self._firewall_rebuild(exclude=going)
        else:
            try:
                firewall.apply_script(self.netns,
                                      "".join(firewall.render_remove(n) for n in nets))
            except VirtnetError:
                self._firewall_rebuild(exclude=going)

    def _firewall_rebuild(self, exclude: Collection[str] = ()) -> None:
        nets = [n for n in self._active_networks().values() if n.name not in exclude]
        firewall.apply_script(self.netns, firewall.render_table(nets))

    # -- stop ---------------------------------------------------------------------------

    def stop(self, name: str) -> None:
        """Remove everything network NAME has here (bridge, ports, rules, dnsmasq, files)."""
        self.stop_many([name])

    def stop_many(self, names: Sequence[str]) -> None:
        """Stop several networks as one apply: one nft transaction, every dnsmasq told to
        exit before any bridge goes (so none of them wakes for the others' removals)."""
        with self._lock():
            recs: dict[str, dict[str, Any]] = {}
            for name in names:
                rec = self._record(name)
                if rec is None:
                    raise NotFound(
                        f"network {name!r} is not active"
                        + (f" in namespace {self.netns}" if self.netns else ""),
                        hint="virtnet net-list --all shows which networks are running",
                    )
                recs[name] = rec
            if self.netns is not None and not _netns_exists(self.netns):
                # The namespace is gone and its links and rules with it; what can outlive
                # it is our dnsmasq (its process keeps the namespace alive) and the files.
                for name, rec in recs.items():
                    self._teardown_processes(rec)
                    self.store.delete_runtime(self.netns, name)
                return
            clean = {n: r for n, r in recs.items() if r.get("state") == rec_mod.ACTIVE
                     and r.get("direct") is None}
            with self.store.transaction():
                for name, rec in clean.items():
                    rec["state"] = rec_mod.STOPPING
                    self._put(name, rec)
            errors: list[str] = []
            if clean:
                errors += self._teardown_many(clean, crashed=False)
            for name, rec in recs.items():
                if name not in clean:  # interrupted starts and macvtap networks: one by one
                    try:
                        self._teardown(name, rec, crashed=rec.get("state") != rec_mod.ACTIVE)
                    except HostError as exc:
                        errors.append(exc.message)
                        continue
                    self.store.delete_runtime(self.netns, name)
            with self.store.transaction():
                for name in clean:
                    self.store.delete_runtime(self.netns, name)
            if errors:
                raise HostError("stopping: could not remove " + "; ".join(errors),
                                hint="run 'virtnet reconcile' to retry")

    def _teardown_processes(self, rec: dict[str, Any]) -> None:
        dm = rec.get("dnsmasq")
        if not dm:
            return
        conf = Path(dm["conf"])
        pids = {p for p in (dm.get("pid"), dnsmasq_proc.read_pid(Path(dm["pidfile"]))) if p}
        pids.update(dnsmasq_proc.find(conf))
        for pid in sorted(pids):
            dnsmasq_proc.stop(pid, conf)
        self._remove_files(dm["files"])

    def _teardown(self, name: str, rec: dict[str, Any], *, crashed: bool) -> list[str]:
        """Remove what REC says the network has. CRASHED: the record may be ahead of the host
        (an interrupted start), so missing pieces are fine and processes are searched for."""
        if rec.get("direct") is not None:  # macvtap: only the port devices it made
            return direct.teardown(self.nl, name, rec)
        errors = self._teardown_many({name: rec}, crashed=crashed)
        if errors:
            raise HostError(
                f"stopping network {name!r}: could not remove " + "; ".join(errors),
                hint="run 'virtnet reconcile' to retry",
            )
        return []

    def _teardown_many(self, recs: dict[str, dict[str, Any]], *, crashed: bool) -> list[str]:
        """Remove what the records say the networks have; returns what could not be removed.
        Order: nft in a thread meanwhile; SIGTERM to every dnsmasq; ports and bridges in one
        request; wait for the dnsmasq exits; then their files (an exiting dnsmasq may still
        write its leases)."""
        errors: list[str] = []

        def attempt(what: str, fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as exc:
                errors.append(f"{what}: {exc}")

        nets = {n: rec_mod.network_from_json(r["definition"]) for n, r in recs.items()}
        walled = [nets[n] for n, r in recs.items() if r.get("firewall")]
        fw = None
        if walled:  # in a thread, meanwhile: libnftables and the kernel release the GIL
            fw = _Background(lambda: self._firewall_release(walled, crashed=crashed))
        stopping: list[dnsmasq_proc.Stopping] = []
        for rec in recs.values():
            dm = rec.get("dnsmasq")
            if not dm:
                continue
            conf = Path(dm["conf"])
            pids = {dm["pid"]} if dm.get("pid") else set()
            pid = dnsmasq_proc.read_pid(Path(dm["pidfile"]))
            if pid:
                pids.add(pid)
            if crashed or not pids:
                pids.update(dnsmasq_proc.find(conf))
            stopping += [dnsmasq_proc.Stopping(pid, conf) for pid in sorted(pids)]
        # The links: each bridge that is ours (by alias) and the ports on them, deleted in
        # one request (links.delete_links). One network without ports: one raw lookup;
        # otherwise one dump of the namespace's links.
        bridges = {r["bridge"]: n for n, r in recs.items() if not r.get("host_bridge")}
        with_ports = {n for n, r in recs.items() if r.get("ports") or crashed}
        try:
            if len(bridges) <= 1 and not with_ports:
                present = [link for b in bridges if (link := self.nl.get_raw(b)) is not None]
            else:
                present = self.nl.rtnl.dump_links()
        except VirtnetError as exc:
            errors.append(f"links: {exc.message}")
            present = []
        doomed = [
            link for link in present
            if (owner := bridges.get(link.name)) is not None
            and (_marks(link.alias, owner) or (crashed and not link.alias))
            or ports_mod.alias_network(link.alias) in with_ports
        ]
        try:
            left = self.nl.delete_links(doomed, {link.group for link in present})
        except OSError as exc:
            left = [f"{', '.join(link.name for link in doomed)}: {exc}"]
        errors += [f"link {e}" for e in left]
        for st in stopping:
            attempt(f"dnsmasq {st.pid}", st.wait)
        if crashed:
            # A kill during a launch can leave a dnsmasq still daemonizing (its starter was
            # ours, the daemon appears a few ms later): look again until none shows up.
            confs = [Path(r["dnsmasq"]["conf"]) for r in recs.values() if r.get("dnsmasq")]
            for _ in range(3):
                time.sleep(0.03)
                late = [(pid, c) for c in confs for pid in dnsmasq_proc.find(c)]
                for pid, c in late:
                    attempt(f"dnsmasq {pid}", _bind(dnsmasq_proc.stop, pid, c))
        for rec in recs.values():
            if rec.get("dnsmasq"):
                attempt("dnsmasq files", _bind(self._remove_files, rec["dnsmasq"]["files"]))
        if fw is not None:
            attempt("firewall rules", fw.result)
        return errors

    # -- reconcile ----------------------------------------------------------------------

    def reconcile(self, names: Sequence[str] | None = None, *,
                  remove_orphans: bool = False) -> list[str]:
        """Repair drift of the active networks (all, or NAMES); returns the repairs made.

        A bridge of this state directory that runs without a record (a lost database) is
        taken back when its definition is stored, and otherwise left running and reported;
        REMOVE_ORPHANS removes such bridges (and their dnsmasq). Another state directory's
        networks are never touched: the reconcile is refused, naming the owner."""
        repairs: list[str] = []
        with self._lock():
            self._refuse_foreign(self.nl.marked_bridges())
            records = self.store.list_runtime(self.netns)
            if names is not None:
                missing = [n for n in names if n not in records]
                if missing:
                    raise NotFound(f"network(s) not active: {', '.join(missing)}")
                records = {n: records[n] for n in names}
            for name, rec in records.items():
                if rec.get("state") != rec_mod.ACTIVE:
                    self._teardown(name, rec, crashed=True)
                    self.store.delete_runtime(self.netns, name)
                    repairs.append(f"{name}: removed the leftovers of an interrupted start/stop")
                    continue
                repairs += [f"{name}: {r}" for r in self._repair(name, rec)]
            unclaimed: list[str] = []
            if names is None:
                repairs += self._claim_orphans(records, unclaimed, remove=remove_orphans)
            running = list(self._active_networks().values())
            # bridged networks have no rules of their own
            active = [n for n in running if not bridged.is_host_bridge(n)]
            if not any(r.get("firewall") for r in self.store.list_runtime(self.netns).values()):
                # No network needs the table; but a bridge still running without a record
                # may (its rules keep its VMs right), so it stays while one is there.
                if not unclaimed and firewall.read_table(self.netns) is not None:
                    firewall.delete_table(self.netns)
                    repairs.append("nftables: removed table inet virtnet (no network uses it)")
                return repairs
            drift = firewall.drift(self.netns, active)
            if drift:
                firewall.apply_script(self.netns, firewall.render_table(active))
                repairs.append("nftables: table inet virtnet restored (" + "; ".join(drift) + ")")
                # What the hole let in must not outlive it.
                for gone in conntrack.forget_admitted(self.netns, active):
                    repairs.append(f"conntrack: {gone.flows} flow(s) {gone.direction} "
                                   f"{gone.subnet} admitted while the table was damaged removed")
        return repairs

    def _claim_orphans(self, records: dict[str, Any], unclaimed: list[str], *,
                       remove: bool) -> list[str]:
        """This state directory's bridges that run without a record: take back those whose
        definition is stored; remove the rest only when asked (else report them)."""
        out: list[str] = []
        for mark, link in self.nl.marked_bridges():
            if mark.network in records or not mark.owned_by(self.owner):
                continue
            stored = self.store.get_definition(mark.network)
            if stored is not None and not remove:
                try:
                    from virtnet.libvirtxml import parse_network

                    plan = plan_network(parse_network(stored.xml), self.state_dir)
                except VirtnetError:
                    plan = None
                if plan is not None and plan.bridge.name == link.name:
                    out += [f"{mark.network}: {n}" for n in self._adopt(plan)]
                    continue
            if remove:
                conf = DnsmasqPaths.for_network(self.state_dir, mark.network).conf
                for pid in dnsmasq_proc.find(conf):
                    dnsmasq_proc.stop(pid, conf)
                self.nl.delete(link.name)
                out.append(f"{mark.network}: removed orphan bridge {link.name} (--remove-orphans)")
                continue
            unclaimed.append(mark.network)
            out.append(f"{mark.network}: bridge {link.name} runs without a record or "
                       "definition: left running (define the network and start it to take "
                       "it back, or 'virtnet reconcile --remove-orphans')")
        return out

    def _repair(self, name: str, rec: dict[str, Any]) -> list[str]:
        net = rec_mod.network_from_json(rec["definition"])
        if rec.get("host_bridge"):  # the host's bridge: report, never recreate
            return bridged.recheck(net, netns=self.netns)
        if rec.get("direct") is not None:  # the host's interfaces: report, release lost ports
            return direct.recheck(self.nl, name, rec, lambda r: self._put(name, r))
        plan = plan_network(net, self.state_dir)
        spec = plan.bridge
        out: list[str] = []
        seen = self.nl.observe_bridge(spec.name)
        recreated = False
        if seen is None:
            index = self.nl.create_bridge(spec)
            self._set_sysctls(plan)
            self.nl.configure_bridge(index, spec)
            out.append(f"bridge {spec.name} recreated")
            recreated = True
            for port in ports_mod.of_network(self.nl, name, spec.name, index):
                link = self.nl.get(port.name)
                if link is not None:
                    self.nl.set_master(link.index, index)
                    out.append(f"port {port.name} re-attached")
        else:
            changes = bridge_changes(spec, seen)
            if changes:
                link = self.nl.get(spec.name)
                assert link is not None
                self.nl.fix_bridge(link.index, spec, seen)
                out += [f"bridge: {c}" for c in changes]
        out += [f"sysctl {s} restored" for s in self._set_sysctls(plan)]
        dm = plan.dnsmasq
        if dm is not None:
            stale = [p for p, text in dm.files if not p.exists() or p.read_text() != text]
            if stale:
                self._write_files(dm.files)
                out.append("dnsmasq files rewritten: " + ", ".join(p.name for p in stale))
            pid = rec["dnsmasq"].get("pid")
            alive = pid is not None and dnsmasq_proc.is_ours(pid, dm.conf)
            if alive and (recreated or stale):
                dnsmasq_proc.stop(pid, dm.conf)  # its sockets were bound to the old bridge
                alive = False
            if not alive:
                if pid is not None:
                    dnsmasq_proc.wait_gone(pid)
                new = dnsmasq_proc.start(self.netns, dm.conf, dm.pidfile)
                rec["dnsmasq"]["pid"] = new
                self._put(name, rec)
                out.append(f"dnsmasq restarted (pid {new})")
        return out

    # -- DHCP hosts ---------------------------------------------------------------------

    def update_dhcp_hosts(self, net: Network) -> None:
        """Rewrite the host files of active network NET and SIGHUP its dnsmasq."""
        with self._lock():
            rec = self._active_record(net.name)
            plan = plan_network(net, self.state_dir)
            if plan.dnsmasq is None or not rec.get("dnsmasq"):
                raise Conflict(f"network {net.name!r} runs no dnsmasq: it has no DHCP hosts",
                               hint="add an <ip> with <dhcp> to the network")
            running = plan_network(rec_mod.network_from_json(rec["definition"]), self.state_dir)
            conf_now = (dict(running.dnsmasq.files)[running.dnsmasq.conf]
                        if running.dnsmasq is not None else None)
            conf_new = dict(plan.dnsmasq.files)[plan.dnsmasq.conf]
            if conf_new != conf_now:
                raise Conflict(
                    f"network {net.name!r}: the change needs more than new DHCP hosts",
                    hint="restart the network for changes other than <host>/<dns><host>",
                )
            self._write_files(plan.dnsmasq.files)
            pid = rec["dnsmasq"]["pid"]
            if not dnsmasq_proc.signal_pid(pid, plan.dnsmasq.conf, signal.SIGHUP):
                raise HostError(f"dnsmasq of network {net.name!r} is not running",
                                hint="run 'virtnet reconcile' to restart it")
            rec["definition"] = rec_mod.network_to_json(net)
            self._put(net.name, rec)

    def leases(self, network: str) -> list[DhcpLease]:
        rec = self._active_record(network)
        dm = rec.get("dnsmasq")
        if not dm:
            return []
        return leases_mod.read(Path(dm["leasefile"]))

    # -- ports --------------------------------------------------------------------------

    def add_port(
        self,
        network: str,
        *,
        kind: str = "veth",
        name: str | None = None,
        peer_netns: str | None = None,
        peer_name: str = "eth0",
        mac: str | None = None,
        owner: str | int | None = None,
        group: str | int | None = None,
    ) -> Port:
        """Attach a port to active NETWORK: a veth with its far end in PEER_NETNS, or a tap
        (owned by OWNER and/or GROUP; root alone when neither is given)."""
        if mac is not None:
            mac = _check_mac(mac)
        uid, gid = ports_mod.resolve_user(owner), ports_mod.resolve_group(group)
        with self._lock():
            rec = self._active_record(network)
            if mac is not None:
                self._check_mac_free(network, mac)
            if rec.get("direct") is not None:
                ports_mod.check_options("macvtap" if kind == "tap" else kind,
                                        peer_netns=peer_netns, owner=uid, group=gid)
                port = direct.add_port(
                    self.nl, rec, lambda r: self._put(network, r), network=network, kind=kind,
                    name=name, peer_netns=peer_netns, peer_name=peer_name, mac=mac,
                )
                if port.kind == "macvtap":
                    made = self.nl.get(port.name)
                    assert made is not None
                    try:
                        tapnode.own(made.index, uid, gid)
                    except (OSError, VirtnetError):
                        direct.delete_port(self.nl, network, rec,
                                           lambda r: self._put(network, r), port.name)
                        raise
                    port = replace(port, owner=0 if uid is None else uid, group=gid)
                return port
            bridge = rec["bridge"]
            link = self.nl.get(bridge)
            if link is None:
                raise HostError(f"bridge {bridge} of network {network!r} is missing",
                                hint="run 'virtnet reconcile' to recreate it")
            if not rec.get("ports"):
                rec["ports"] = True  # before the port exists: stop then looks for ports
                self._put(network, rec)
            return ports_mod.create(
                self.nl, network=network, bridge=bridge, bridge_index=link.index, kind=kind,
                name=name, peer_netns=peer_netns, peer_name=peer_name, mac=mac,
                owner=uid, group=gid,
            )

    def _check_mac_free(self, network: str, mac: str) -> None:
        """One MAC per network: a second port with it would steal the first one's traffic
        and DHCP reservation."""
        for port in self.list_ports(network):
            if port.mac and port.mac.lower() == mac.lower():
                raise Conflict(
                    f"MAC {mac} is already used by port {port.name} of network {network!r}",
                    element="port mac",
                    hint=f"give another --mac, or remove that port first "
                         f"(virtnet port-delete {network} {port.name})")

    def list_ports(self, network: str) -> list[Port]:
        rec = self._active_record(network)
        if rec.get("direct") is not None:
            out = []
            for port in direct.list_ports(self.nl, network, rec):
                made = self.nl.get(port.name) if port.kind == "macvtap" else None
                if made is not None:
                    uid, gid = tapnode.owner_of(made.index)
                    port = replace(port, owner=uid, group=gid)
                out.append(port)
            return out
        link = self.nl.get(rec["bridge"])
        return ports_mod.of_network(self.nl, network, rec["bridge"],
                                    link.index if link else None)

    def delete_port(self, network: str, port_name: str) -> None:
        with self._lock():
            rec = self._active_record(network)
            if rec.get("direct") is not None:
                direct.delete_port(self.nl, network, rec, lambda r: self._put(network, r),
                                   port_name)
                return
            link = self.nl.get(port_name)
            port = ports_mod.parse_alias(link, rec["bridge"]) if link else None
            if port is None or port.network != network:
                raise NotFound(f"network {network!r} has no port {port_name!r}",
                               hint=f"virtnet port-list {network} shows its ports")
            self.nl.delete(port_name)

    # -- messages -----------------------------------------------------------------------

    def _messages(self, net: Network) -> tuple[str, ...]:
        if net.mode is not ForwardMode.ROUTE:
            return ()
        out = []
        for ip in net.ips:
            host = self._uplink_address(6 if ip.is_ipv6 else 4)
            if host:
                out.append(f"{ip.network} via {host}")
            else:
                out.append(
                    f"{ip.network} via <this host's address on the external network> "
                    "(unknown: the host has no default route)"
                )
        return tuple(f"routed network {net.name!r}: systems on the external network need "
                     f"the route {m}" for m in out)

    def _uplink_address(self, family: int) -> str | None:
        """The host's own address on its default route's interface (its uplink)."""
        import socket

        fam = socket.AF_INET6 if family == 6 else socket.AF_INET
        try:
            for route in self.nl.ipr.route("dump", family=fam):
                if route["dst_len"] != 0 or route.get_attr("RTA_TABLE") not in (254, None):
                    continue
                src = route.get_attr("RTA_PREFSRC")
                if src:
                    return str(src)
                oif = route.get_attr("RTA_OIF")
                for addr in self.nl.ipr.addr("dump", family=fam, index=oif):
                    if addr["index"] == oif and addr["scope"] == 0:
                        return str(addr.get_attr("IFA_ADDRESS"))
        except Exception:
            return None
        return None


class _Background:
    """Run FN in a thread now; ``result()`` waits and re-raises what it raised."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self._exc: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:
            self._exc = exc

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> None:
        self._thread.join()
        if self._exc is not None:
            raise self._exc


def _marks(alias: str | None, network: str) -> bool:
    """Whether ALIAS marks a bridge of NETWORK (any owner: the caller holds its record)."""
    mark = read_mark(alias)
    return mark is not None and mark.network == network


def _bind(fn: Callable[..., object], *args: Any) -> Callable[[], object]:
    return lambda: fn(*args)


def _netns_exists(name: str) -> bool:
    from virtnet.host import netns

    return netns.exists(name)


def _check_mac(mac: str) -> str:
    from virtnet.errors import InvalidDefinition

    parts = mac.lower().split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p)
                                  for p in parts):
        raise InvalidDefinition(f"MAC address {mac!r} is not valid", element="mac",
                                hint="use six hex pairs, e.g. 52:54:00:12:34:56")
    if int(parts[0], 16) & 1:
        raise InvalidDefinition(f"MAC address {mac!r} is a multicast address", element="mac",
                                hint="the first octet must be even, e.g. 52:54:00:...")
    return ":".join(parts)
