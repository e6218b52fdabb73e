"""``virtnet guard``: keep the running networks right while other tools break them.

libvirt re-adds its rules only when firewalld says so on D-Bus; a ``nft flush ruleset``, a
firewall service reload, someone deleting a bridge or a crashed dnsmasq break its networks
silently. The guard waits, in one ``selectors`` loop without threads, on:

- the namespace's nftables notifications (``NftEvents``): any change to table inet virtnet;
- its link/address notifications (``LinkEvents``): a bridge of an active network deleted,
  renamed, set down, or an address taken off;
- a pidfd per network's dnsmasq (``ProcessWatch``): it exited;
- a self-pipe that SIGTERM/SIGINT write to (``stop()``), so it exits between repairs.

Events are debounced (50 ms of quiet, at most 500 ms) and then ``Engine.reconcile`` runs for
the networks they concern (the table alone: ``reconcile([])``); a slow periodic full reconcile
is the safety net for what sends no event (a sysctl, a rewritten dnsmasq file). Each repair is
logged with the events that preceded it: what broke it, and which process.

What the guard never does: touch a network the store does not record as active (a user's
``net-destroy`` removes the record under the host lock, so the guard sees no network to
repair), or change another tool's table (a foreign table that drops virtnet's traffic is
reported, once, as a warning with the fix; see ``virtnet doctor``).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virtnet import firewall
from virtnet.engine import Engine
from virtnet.errors import NotFound, VirtnetError
from virtnet.firewall.schema import TABLE
from virtnet.guard_events import LinkEvents, NftChange, NftEvents, ProcessWatch
from virtnet.host import dnsmasq as dnsmasq_proc
from virtnet.host import netns as netns_mod
from virtnet.host import record as rec_mod

DEBOUNCE = 0.05  # seconds of quiet after the last event before repairing
MAX_DELAY = 0.5  # repair at the latest this long after the first event, even if events go on
DEFAULT_INTERVAL = 30.0  # the periodic full reconcile
TABLE_KEY = ""  # pending key for "the shared table" (no single network)
FIGHT_REPAIRS, FIGHT_WINDOW = 10, 30.0  # this many repairs of one thing in this many seconds

Log = Callable[[dict[str, Any]], None]


@dataclass
class _Pending:
    """Events waiting for the debounce: network (or TABLE_KEY) -> what happened."""

    causes: dict[str, list[str]] = field(default_factory=dict)
    first: float = 0.0
    last: float = 0.0
    full: bool = False  # events were lost (socket overrun): reconcile everything

    def add(self, key: str, cause: str, now: float) -> None:
        if not self.causes and not self.full:
            self.first = now
        self.last = now
        seen = self.causes.setdefault(key, [])
        if cause and cause not in seen:
            seen.append(cause)

    def __bool__(self) -> bool:
        return bool(self.causes) or self.full

    def due(self, now: float) -> float:
        """When to act on these events."""
        return min(self.last + DEBOUNCE, self.first + MAX_DELAY)


@dataclass(frozen=True)
class _Watched:
    """What the store says is active, as the event sources see it."""

    bridges: dict[str, str]  # bridge name -> network (networks with a bridge of their own)
    dnsmasq: dict[str, tuple[int, str]]  # network -> (dnsmasq pid, its conf file)
    host_bridge: frozenset[str]  # bridged networks (the host's bridge: never repaired)


def _summarize_nft(batch: list[NftChange]) -> str:
    """One transaction on our table in a line, biggest object first:
    'delete table inet virtnet (+70 more) by nft (pid 7)'."""
    rank = {"table": 0, "chain": 1, "set": 2, "rule": 3}
    ours = sorted((c for c in batch if c.op != "generation"), key=lambda c: rank.get(c.kind, 4))
    by = next((str(c) for c in batch if c.op == "generation"), "")
    head = ", ".join(str(c) for c in ours[:2])
    more = f" (+{len(ours) - 2} more)" if len(ours) > 2 else ""
    return f"{head}{more} {by}".strip()


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, VirtnetError) else f"{type(exc).__name__}: {exc}"


class Guard:
    """Watch namespace NETNS (state in STATE_DIR) and repair what drifts; ``run()`` until
    ``stop()``. LOG receives one dict per thing worth telling (see docs/guard-and-doctor.md)."""

    def __init__(
        self,
        state_dir: Path | str,
        netns: str | None,
        *,
        interval: float = DEFAULT_INTERVAL,
        log: Log | None = None,
    ) -> None:
        if interval <= 0:
            raise VirtnetError(f"--interval must be positive, not {interval}",
                               hint="give the seconds between full checks, e.g. --interval 30")
        if netns is not None and not netns_mod.exists(netns):
            raise NotFound(f"network namespace {netns!r} does not exist",
                           hint="pass an existing --netns")
        self.netns = netns
        self.interval = interval
        self.log: Log = log or (lambda entry: None)
        self.engine = Engine(state_dir, netns)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = False
        self._warned: set[str] = set()  # foreign-table and bridged-mode warnings already shown
        self._nft_batch: list[NftChange] = []
        self._watched = _Watched({}, {}, frozenset())
        self._index: dict[int, str] = {}  # ifindex -> bridge name, for address events
        self._procs: dict[str, ProcessWatch] = {}
        self._pending = _Pending()
        self._foreign_changed = False
        self._last_error: str | None = None
        self._repaired: dict[str, list[float]] = {}  # network -> times of recent repairs
        self._fight_warned: dict[str, float] = {}
        self.repairs_made = 0

    # -- public -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run()`` to return after the repair in progress (signal-handler safe)."""
        self._stopping = True
        if self._wake_w >= 0:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_w, b"x")

    def close(self) -> None:
        for w in self._procs.values():
            w.close()
        self._procs.clear()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1  # a late stop() must not write to a reused fd
        self.engine.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def once(self) -> dict[str, Any]:
        """One full reconcile: the repairs made and what virtnet may not repair."""
        t0 = time.monotonic()
        repairs = self.engine.reconcile()
        return {
            "repairs": repairs,
            "warnings": self._foreign_warnings(),
            "seconds": round(time.monotonic() - t0, 4),
        }

    def run(self) -> None:
        """Watch and repair until ``stop()``. The event sources are subscribed before the
        first reconcile, so nothing that happens after it can go unnoticed."""
        nft = NftEvents(self.netns)
        links = LinkEvents(self.netns)
        sel = selectors.DefaultSelector()
        try:
            sel.register(nft, selectors.EVENT_READ, "nft")
            sel.register(links, selectors.EVENT_READ, "link")
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
            pending = self._pending
            self._full(sel, "guard started", pending)
            self._emit("start", active=self.engine.active(), interval=self.interval)
            for warning in self._foreign_warnings():
                self._emit("warning", message=warning)
            next_full = time.monotonic() + self.interval
            retry_at: float | None = None
            while not self._stopping:
                now = time.monotonic()
                deadlines = [next_full]
                if pending:
                    deadlines.append(max(pending.due(now), retry_at or 0.0))
                timeout = max(0.0, min(deadlines) - now)
                for key, _ in sel.select(timeout):
                    self._on_ready(sel, key.data, key.fileobj, pending)
                if self._stopping:
                    break
                now = time.monotonic()
                if now >= next_full:
                    self._full(sel, "periodic check", pending)
                    next_full = time.monotonic() + self.interval
                    retry_at = None
                elif pending and now >= pending.due(now) and (retry_at is None or now >= retry_at):
                    ok = self._targeted(sel, pending)
                    retry_at = None if ok else time.monotonic() + min(5.0, self.interval)
        finally:
            for key in list(sel.get_map().values()):
                sel.unregister(key.fileobj)
            sel.close()
            nft.close()
            links.close()
            self._emit("stop", repairs=self.repairs_made)

    # -- events -------------------------------------------------------------------------

    def _on_ready(self, sel: selectors.BaseSelector, kind: str, obj: Any,
                  pending: _Pending) -> None:
        now = time.monotonic()
        if kind == "wake":
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 64)
        elif kind == "nft":
            self._on_nft(obj, pending, now)
        elif kind == "link":
            self._on_links(obj, pending, now)
        elif kind.startswith("dnsmasq:"):
            net = kind.split(":", 1)[1]
            watch = self._procs.pop(net, None)
            if watch is not None:
                sel.unregister(watch)
                watch.close()
                pending.add(net, f"dnsmasq (pid {watch.pid}) exited", now)

    def _on_nft(self, nft: NftEvents, pending: _Pending, now: float) -> None:
        for change in nft.changes():
            self._nft_batch.append(change)
            if change.op != "generation":
                continue
            batch, self._nft_batch = self._nft_batch, []
            ours = [c for c in batch if (c.family, c.table) == TABLE]
            if ours:
                pending.add(TABLE_KEY, _summarize_nft(ours + batch[-1:]), now)
            foreign = [c for c in batch if c.op != "generation" and (c.family, c.table) != TABLE
                       and c.kind in ("table", "chain", "rule")]
            if foreign:  # another tool changed its rules: may now drop our traffic
                pending.add(TABLE_KEY, "", now)
                self._foreign_changed = True
        if nft.overrun:
            nft.overrun = False
            pending.add(TABLE_KEY, "nftables notifications were lost (too many at once)", now)
            pending.full = True

    def _on_links(self, links: LinkEvents, pending: _Pending, now: float) -> None:
        changes = links.changes()
        if links.overrun:
            links.overrun = False
            pending.add(TABLE_KEY, "link notifications were lost (too many at once)", now)
            pending.full = True
        refreshed = False
        for ch in changes:
            if ch.kind == "link":
                net = self._watched.bridges.get(ch.name)
                old = self._index.get(ch.index)
                if net is None and old is None and ch.op == "new" and not refreshed:
                    self._refresh_links()  # a network started after us? learn its bridge
                    refreshed = True
                    net = self._watched.bridges.get(ch.name)
                if old is not None and old != ch.name and ch.op == "new":
                    net = self._watched.bridges.get(old)
                    if net is not None:
                        pending.add(net, f"bridge {old} renamed to {ch.name}", now)
                    continue
                if net is None or net in self._watched.host_bridge:
                    continue
                if ch.op == "delete":
                    pending.add(net, f"bridge {ch.name} deleted", now)
                elif not ch.up:
                    pending.add(net, f"bridge {ch.name} set down", now)
                elif ch.index not in self._index:
                    self._index[ch.index] = ch.name
            else:
                name = self._index.get(ch.index)
                net = self._watched.bridges.get(name) if name else None
                if net is None or net in self._watched.host_bridge:
                    continue
                if ch.address.startswith("fe80:"):
                    continue  # the kernel's own link-local address comes and goes with "up"
                what = "removed from" if ch.op == "delete" else "added to"
                pending.add(net, f"address {ch.address} {what} {name}", now)

    # -- repairs ------------------------------------------------------------------------

    def _targeted(self, sel: selectors.BaseSelector, pending: _Pending) -> bool:
        if pending.full:
            self._full(sel, "events were lost", pending)
            return True
        active = set(self.engine.active())
        names = sorted(k for k in pending.causes if k != TABLE_KEY and k in active)
        causes = [c for cs in pending.causes.values() for c in cs]
        t_first = pending.first
        try:
            try:
                repairs = self.engine.reconcile(names)
            except NotFound:  # stopped meanwhile: never bring it back
                active = set(self.engine.active())
                names = [n for n in names if n in active]
                repairs = self.engine.reconcile(names)
        except Exception as exc:  # a daemon: report, keep guarding, retry later
            self._error(f"repair failed: {_describe(exc)}", causes)
            self._after(sel)
            return False
        self._last_error = None
        self._report(repairs, causes, t_first)
        pending.causes.clear()
        pending.full = False
        self._after(sel)
        return True

    def _full(self, sel: selectors.BaseSelector, why: str, pending: _Pending) -> None:
        if self.netns is not None and not netns_mod.exists(self.netns):
            self._stopping = True
            raise NotFound(f"network namespace {self.netns!r} was deleted: nothing to guard",
                           hint="start the guard again once the namespace exists")
        causes = [c for cs in pending.causes.values() for c in cs] or [why]
        t_first = pending.first if pending else time.monotonic()
        try:
            repairs = self.engine.reconcile()
        except Exception as exc:
            self._error(f"full check failed: {_describe(exc)}", causes)
            self._after(sel)
            return
        self._last_error = None
        self._report(repairs, causes, t_first)
        pending.causes.clear()
        pending.full = False
        self._after(sel)

    def _error(self, message: str, causes: list[str]) -> None:
        """Log a failed repair; the same failure again (retries) only once."""
        if message != self._last_error:
            self._emit("error", message=message, cause=causes)
        self._last_error = message

    def _report(self, repairs: Iterable[str], causes: list[str], t_first: float) -> None:
        """Log repairs grouped by network; bridged-mode findings (never repaired) once."""
        by_net: dict[str, list[str]] = {}
        for r in repairs:
            net, _, what = r.partition(": ")
            by_net.setdefault(net, []).append(what)
        seconds = round(time.monotonic() - t_first, 4)
        for net, items in by_net.items():
            if net in self._watched.host_bridge:
                for item in items:
                    if f"{net}: {item}" not in self._warned:
                        self._warned.add(f"{net}: {item}")
                        self._emit("warning", network=net, message=item)
                continue
            self.repairs_made += len(items)
            self._emit("repair", network=None if net == "nftables" else net, repairs=items,
                       cause=causes or ["unknown"], seconds=seconds)
            self._fighting(net, causes)
        if self._foreign_changed:
            self._foreign_changed = False
            for warning in self._foreign_warnings():
                self._emit("warning", message=warning)

    def _fighting(self, net: str, causes: list[str]) -> None:
        """Say so when something keeps breaking the same thing: the guard still repairs it
        each time, but the cause should be found (a firewall script in a loop, a second
        manager of the same namespace)."""
        now = time.monotonic()
        times = [t for t in self._repaired.get(net, []) if now - t < FIGHT_WINDOW] + [now]
        self._repaired[net] = times
        if len(times) >= FIGHT_REPAIRS and now - self._fight_warned.get(net, -1e9) > 60:
            self._fight_warned[net] = now
            self._emit("warning", network=None if net == "nftables" else net,
                       message=f"repaired {len(times)} times in {FIGHT_WINDOW:g} s: something "
                       f"keeps breaking it (last: {'; '.join(causes) or 'unknown'}); find and "
                       "stop it, 'virtnet doctor' may name it")

    def _foreign_warnings(self) -> list[str]:
        """New findings of other tables dropping our traffic (each reported once)."""
        bridges = [b for b, n in self._watched.bridges.items()
                   if n not in self._watched.host_bridge]
        if not bridges:
            self._refresh_links()
            bridges = [b for b, n in self._watched.bridges.items()
                       if n not in self._watched.host_bridge]
        if not bridges:
            return []
        try:
            found = firewall.foreign_drops(self.netns, bridges=bridges)
        except VirtnetError:
            return []
        new = [f"not repaired (another tool's table): {f}" for f in found
               if f not in self._warned]
        self._warned.update(found)
        self._warned -= {w for w in self._warned if w.startswith("table ") and w not in found}
        return new

    def _after(self, sel: selectors.BaseSelector) -> None:
        """Re-read what is active and re-arm the dnsmasq watches (pids change on restart)."""
        self._refresh_links()
        for net in list(self._procs):
            watch = self._procs[net]
            if self._watched.dnsmasq.get(net, (None,))[0] != watch.pid:
                sel.unregister(watch)
                watch.close()
                del self._procs[net]
        now = time.monotonic()
        for net, (pid, conf) in self._watched.dnsmasq.items():
            if net in self._procs:
                continue
            watch = ProcessWatch(pid)
            if watch.gone or not dnsmasq_proc.is_ours(pid, Path(conf)):
                # died before we could watch it (or the pid is another process now)
                watch.close()
                self._pending.add(net, f"dnsmasq (pid {pid}) is not running", now)
                continue
            self._procs[net] = watch
            sel.register(watch, selectors.EVENT_READ, f"dnsmasq:{net}")

    def _refresh_links(self) -> None:
        bridges: dict[str, str] = {}
        dnsmasq: dict[str, tuple[int, str]] = {}
        host: set[str] = set()
        for name, rec in self.engine.store.list_runtime(self.netns).items():
            if rec.get("state") != rec_mod.ACTIVE:
                continue
            if rec.get("host_bridge"):
                host.add(name)
            elif rec.get("bridge"):
                bridges[rec["bridge"]] = name
            dm = rec.get("dnsmasq")
            if dm and dm.get("pid"):
                dnsmasq[name] = (int(dm["pid"]), str(dm["conf"]))
        self._watched = _Watched(bridges, dnsmasq, frozenset(host))
        self._index = {}
        for link in self.engine.nl.links():
            if link.name in bridges:
                self._index[link.index] = link.name

    def _emit(self, event: str, **fields: Any) -> None:
        self.log({"time": time.time(), "event": event,
                  **{k: v for k, v in fields.items() if v is not None}})
