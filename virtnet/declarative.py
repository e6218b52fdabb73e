"""``virtnet plan`` / ``virtnet apply``: make the host run exactly the networks in some files.

A multi-network apply is one transaction to the user. Everything is loaded, completed and
validated (against each other and the networks that stay) before anything changes; then,
under the namespace lock, the definitions are stored in one SQLite transaction and the
networks are started, changed or removed one by one with an undo step recorded for each. If
one fails, the undo steps run backwards and the stored definitions are put back, so the
networks that were not at fault are left exactly as they were.

If the process is killed part-way, the definitions are already stored (they are written
first) and the Engine's runtime records mark any start that did not finish; the next apply
sees those networks as not running, clears the leftovers and starts them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virtnet.errors import Conflict, HostError, InvalidDefinition, NotFound, VirtnetError
from virtnet.libvirtxml import format_network
from virtnet.loader import load_file
from virtnet.model.network import Network
from virtnet.plan import Change, Plan, read_mark
from virtnet.service import Service, stored_network

SUFFIXES = (".xml", ".yaml", ".yml")

ADD = "add"
CHANGE = "change"
START = "start"
UNCHANGED = "unchanged"
REPAIR = "repair"  # same definition, but the host has drifted from it
REMOVE = "remove"


def find_files(paths: Sequence[str | Path]) -> list[Path]:
    """The definition files named by PATHS (a directory: its *.xml, *.yaml, *.yml, sorted)."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in SUFFIXES)
            if not found:
                raise NotFound(f"directory {p} holds no definition files",
                               hint="put network definitions in *.xml or *.yaml files there")
            files += found
        elif p.is_file():
            files.append(p)
        elif p.exists():
            raise InvalidDefinition(f"{p} is neither a regular file nor a directory",
                                    hint="give a definition file or a directory of them")
        else:
            raise NotFound(f"{p} does not exist", hint="give a definition file or a directory")
    return files


def load_sources(paths: Sequence[str | Path]) -> list[tuple[Path, Network]]:
    """Every network in the files, refusing two files that define the same name."""
    out: list[tuple[Path, Network]] = []
    seen: dict[str, Path] = {}
    for f in find_files(paths):
        try:
            net = load_file(f)
        except VirtnetError as exc:
            exc.element = f"{f}: {exc.element}" if exc.element else str(f)
            raise
        if net.name in seen:
            raise InvalidDefinition(
                f"network '{net.name}' is defined twice: in {seen[net.name]} and {f}",
                hint="each network name may appear in one file only",
            )
        seen[net.name] = f
        out.append((f, net))
    return out


@dataclass(frozen=True)
class NetworkAction:
    name: str
    action: str  # add | change | start | unchanged | remove
    reasons: tuple[str, ...] = ()
    source: str | None = None
    network: Network | None = None  # the completed definition (None for remove)


@dataclass
class ApplyPlan:
    actions: list[NetworkAction]
    host: Plan | None = None
    host_groups: dict[str, list[Change]] = field(default_factory=dict)  # by network; "" shared

    def counts(self) -> dict[str, int]:
        out = {ADD: 0, CHANGE: 0, START: 0, REPAIR: 0, REMOVE: 0, UNCHANGED: 0}
        for a in self.actions:
            out[a.action] += 1
        return out

    @property
    def empty(self) -> bool:
        return all(a.action == UNCHANGED for a in self.actions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "networks": [
                {
                    "name": a.name,
                    "action": a.action,
                    "reasons": list(a.reasons),
                    "source": a.source,
                    "host_changes": [str(c) for c in self.host_groups.get(a.name, [])],
                }
                for a in self.actions
            ],
            "shared_host_changes": [str(c) for c in self.host_groups.get("", [])],
            "summary": self.counts(),
        }

    def render(self) -> str:
        marks = {ADD: "+", CHANGE: "~", START: ">", REPAIR: "!", REMOVE: "-", UNCHANGED: "="}
        lines: list[str] = []
        for a in self.actions:
            why = f" ({'; '.join(a.reasons)})" if a.reasons else ""
            lines.append(f"{marks[a.action]} network {a.name}: {a.action}{why}")
            lines += [f"    {c}" for c in self.host_groups.get(a.name, [])]
        shared = list(dict.fromkeys(self.host_groups.get("", [])))
        if shared:
            lines.append("  shared:")
            lines += [f"    {c}" for c in shared]
        c = self.counts()
        lines.append(
            f"Plan: {c[ADD]} to add, {c[CHANGE]} to change, {c[START]} to start, "
            f"{c[REPAIR]} to repair, {c[REMOVE]} to remove, {c[UNCHANGED]} unchanged."
        )
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ApplyResult:
    plan: ApplyPlan
    done: tuple[tuple[str, str], ...]  # (network, what was done)
    messages: tuple[str, ...] = ()


def _diff_fields(old: Network, new: Network) -> list[str]:
    return [f.name for f in dataclasses.fields(Network)
            if getattr(old, f.name) != getattr(new, f.name)]


class Declarative:
    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.store = svc.store
        self.engine = svc.engine

    # -- planning ------------------------------------------------------------------------

    def plan(self, sources: Sequence[tuple[Path, Network]], *, prune: bool = False,
             against_host: bool = True) -> ApplyPlan:
        stored = {d.name: d for d in self.store.list_definitions()}
        active = set(self.engine.active())
        names = {n.name for _, n in sources}
        removed = sorted(
            d.name for d in stored.values()
            if prune and d.origin == "apply" and d.persistent and d.name not in names
        )
        staying = [stored_network(d) for d in stored.values()
                   if d.name not in names and d.name not in removed]
        # Explicit bridge names in the files are reserved before any name is generated.
        explicit = {n.bridge_name for _, n in sources if n.bridge_name}
        prepared: list[Network] = []
        actions: list[NetworkAction] = []
        links = self.svc.host_links()  # once: generated bridge names avoid these
        for path, raw in sources:
            previous = stored_network(stored[raw.name]) if raw.name in stored else None
            others = staying + prepared
            net = self.svc.prepare(raw, others=others, previous=previous,
                                   extra_taken=explicit - {raw.bridge_name},
                                   links=links)
            prepared.append(net)
            actions.append(self._action(path, net, previous, stored, active))
        for name in removed:
            actions.append(NetworkAction(name, REMOVE, ("not in the files (--prune)",)))
        result = ApplyPlan(actions)
        if against_host:
            result.host = self.engine.plan(prepared)
            result.host_groups = _group(result.host, prepared, self.engine.state_dir)
            shared = bool(result.host_groups.get(""))
            result.actions = [
                dataclasses.replace(a, action=REPAIR, reasons=(
                    "the host differs" if result.host_groups.get(a.name)
                    else "shared host state differs",))
                if a.action == UNCHANGED and (result.host_groups.get(a.name) or shared) else a
                for a in result.actions
            ]
            for name in removed:
                result.host_groups[name] = self._removal(name)
        return result

    def _removal(self, name: str) -> list[Change]:
        """What stopping a network to be pruned takes away (from its runtime record)."""
        rec = self.store.get_runtime(self.svc.netns, name)
        if rec is None:
            return []
        out = [Change("-", "bridge", str(rec.get("bridge")), "and the ports on it")]
        if rec.get("firewall"):
            out.append(Change("-", "nftables", "inet virtnet", f"network {name}'s elements"))
        dm = rec.get("dnsmasq")
        if dm:
            out.append(Change("-", "dnsmasq", name, f"pid {dm.get('pid')}"))
            out += [Change("-", "file", f) for f in dm.get("files", [])]
        return out

    def _action(self, path: Path, net: Network, previous: Network | None,
                stored: dict[str, Any], active: set[str]) -> NetworkAction:
        src = str(path)
        if previous is None:
            return NetworkAction(net.name, ADD, ("new network",), src, net)
        reasons = []
        d = stored[net.name]
        if format_network(net, inactive=True) != d.xml:
            reasons.append("definition: " + ", ".join(_diff_fields(previous, net) or ["xml"]))
        if not d.persistent:
            reasons.append("transient network becomes persistent")
        if net.name in active:
            running = self.engine.definition(net.name)
            if running != net:
                reasons.append("running with: " + ", ".join(
                    _diff_fields(running, net) or ["another definition"]))
                return NetworkAction(net.name, CHANGE, tuple(reasons), src, net)
            return NetworkAction(net.name, UNCHANGED if not reasons else CHANGE,
                                 tuple(reasons), src, net)
        if reasons:
            return NetworkAction(net.name, CHANGE, (*reasons, "not running"), src, net)
        return NetworkAction(net.name, START, ("not running",), src, net)

    # -- applying ------------------------------------------------------------------------

    def apply(self, sources: Sequence[tuple[Path, Network]], *, prune: bool = False,
              log: Callable[[str], None] | None = None) -> ApplyResult:
        say = log or self.svc.log
        netns = self.svc.netns
        with self.store.host_lock(netns):
            for _, raw in sources:  # running networks whose runtime status was lost
                self.svc.recover(raw.name)  # (a lost database: the engine takes them back)
            plan = self.plan(sources, prune=prune, against_host=False)
            self._check_devices(plan)
            touched = [a.name for a in plan.actions]
            old_defs = {n: self.store.get_definition(n) for n in touched}
            was_running = {n: self.engine.definition(n) for n in touched
                           if self.engine.is_active(n)}
            undo: list[tuple[str, Callable[[], object]]] = []
            done: list[tuple[str, str]] = []
            messages: list[str] = []
            current = ""
            try:
                with self.store.transaction():
                    for a in plan.actions:
                        if a.network is not None:
                            n = a.network
                            self.store.put_definition(
                                n.name, n.uuid or "", format_network(n, inactive=True),
                                persistent=True, autostart=True, origin="apply")
                say(f"stored {sum(a.network is not None for a in plan.actions)} definition(s)")
                for a in plan.actions:
                    current = a.name
                    if a.action == REMOVE:
                        if a.name in was_running:
                            say(f"stopping network {a.name}")
                            self.engine.stop(a.name)
                            old = was_running[a.name]
                            undo.append((f"restart {a.name}", _bind(self.engine.start, old)))
                        self.store.delete_definition(a.name)
                        done.append((a.name, "removed"))
                    elif a.action in (ADD, START) or (
                        a.action == CHANGE and a.name not in was_running
                    ):
                        assert a.network is not None
                        say(f"starting network {a.name}")
                        report = self.engine.start(a.network)
                        messages += report.messages
                        undo.append((f"stop {a.name}", _bind(self.engine.stop, a.name)))
                        done.append((a.name, "started"))
                    elif a.action == CHANGE and a.name in was_running:
                        assert a.network is not None
                        how = self._change_running(a.network, was_running[a.name], say)
                        old = was_running[a.name]
                        undo.append((f"restore {a.name}",
                                     _bind(self._restore_running, a.name, old)))
                        done.append((a.name, how))
                    else:
                        done.append((a.name, "unchanged"))
                # Same definition: repair any drift on the host (apply makes the host
                # match, not only the store), all of them in one reconcile.
                same = [n for n, what in done if what == "unchanged"]
                if same:
                    current = ", ".join(same)
                    repairs = self.engine.reconcile(same)
                    for r in repairs:
                        say(r)
                    fixed = {r.split(":", 1)[0] for r in repairs}
                    done = [(n, "repaired" if what == "unchanged" and n in fixed else what)
                            for n, what in done]
            except BaseException as exc:
                left = self._rollback(undo, old_defs, say)
                if not isinstance(exc, Exception):
                    raise
                detail = str(exc)
                if isinstance(exc, VirtnetError):
                    detail = f"{exc.element}: {exc.message}" if exc.element else exc.message
                raise HostError(
                    f"apply failed at network '{current}': {detail}; "
                    + ("the other networks were left as they were" if not left
                       else "could not restore: " + "; ".join(left)),
                    hint=getattr(exc, "hint", None) or "fix the definition and apply again",
                ) from None
        return ApplyResult(plan, tuple(done), tuple(messages))

    def _check_devices(self, plan: ApplyPlan) -> None:
        """Before any change: a bridge a network will create must not be some other device
        (the most common way a start fails, caught while nothing has been touched)."""
        removed = {a.name for a in plan.actions if a.action == REMOVE}
        for a in plan.actions:
            net = a.network
            if net is None or not net.bridge_name or not net.mode.has_own_bridge:
                continue
            if self.store.get_runtime(self.svc.netns, net.name) is not None:
                continue  # running, or an interrupted start the engine clears up itself
            try:
                link = self.engine.nl.get(net.bridge_name)
            except VirtnetError:
                return  # namespace missing: the start itself reports it
            if link is None:
                continue
            mark = read_mark(link.alias)
            owner = mark.network if mark is not None else None
            if owner == net.name or owner in removed:
                continue
            raise Conflict(
                f"network '{net.name}': interface '{net.bridge_name}' already exists in "
                f"namespace {self.svc.netns or 'root'}"
                + (f" (bridge of virtnet network '{owner}')" if owner else ""),
                element="bridge",
                hint="give the network another <bridge name=...> or remove that interface; "
                "nothing was changed",
            )

    def _change_running(self, net: Network, old: Network, say: Callable[[str], None]) -> str:
        """Bring a running network to NET: in place when the bridge and dnsmasq stay (ports
        and leases survive), else by restarting it."""
        try:
            self.svc.replace_running_definition(net)
        except VirtnetError:
            pass
        else:
            say(f"changing running network {net.name} in place")
            self.engine.reconcile([net.name])
            if self.engine.plan([net]).in_sync:
                return "changed in place"
            say(f"network {net.name} did not converge in place: restarting it")
        say(f"restarting network {net.name}")
        self.engine.stop(net.name)
        self.engine.start(net)
        return "restarted"

    def _restore_running(self, name: str, old: Network) -> None:
        if self.engine.is_active(name):
            if self.engine.definition(name) == old:
                return
            self._change_running(old, old, self.svc.log)
            return
        self.engine.start(old)

    def _rollback(self, undo: list[tuple[str, Callable[[], object]]],
                  old_defs: dict[str, Any], say: Callable[[str], None]) -> list[str]:
        left: list[str] = []
        for what, fn in reversed(undo):
            try:
                say(f"rollback: {what}")
                fn()
            except Exception as exc:
                left.append(f"{what}: {exc}")
        try:
            with self.store.transaction():
                for name, d in old_defs.items():
                    if d is None:
                        self.store.delete_definition(name)
                    else:
                        self.store.put_definition(d.name, d.uuid, d.xml,
                                                  persistent=d.persistent,
                                                  autostart=d.autostart, origin=d.origin)
        except Exception as exc:
            left.append(f"stored definitions: {exc}")
        return left


def _bind(fn: Callable[..., object], *args: Any) -> Callable[[], object]:
    return lambda: fn(*args)


def _group(plan: Plan, nets: Sequence[Network], state_dir: Path) -> dict[str, list[Change]]:
    """The host changes under the network they belong to ("" for shared ones)."""
    groups: dict[str, list[Change]] = {}
    owners: list[tuple[str, set[str], set[str]]] = []
    for p in plan.desired.networks:
        files = {str(path) for path, _ in p.dnsmasq.files} if p.dnsmasq else set()
        owners.append((p.name, {p.bridge.name}, files))
    for c in plan.changes or ():
        owner = ""
        # Names in the subject and detail: sysctl paths (net.ipv6.conf.BR.x), nftables
        # elements ("BR" . 10.0.0.0/24), file paths.
        tokens = set(re.findall(r"[\w@+-]+", f"{c.subject} {c.detail}".replace(".", " ")))
        for name, bridges, files in owners:
            if (c.kind == "dnsmasq" and c.subject == name) or c.subject in files or (
                bridges & tokens
            ):
                owner = name
                break
        groups.setdefault(owner, []).append(c)
    return groups
