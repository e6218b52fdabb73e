#!/usr/bin/env python3
"""Guard benchmark: how long a network stays broken while ``virtnet guard`` runs.

- flush: from ``nft flush ruleset`` (returned) to table inet virtnet back and in sync, seen
  by this script's own nftables notification socket (not the guard's log);
- dnsmasq: from ``kill -9`` of a network's dnsmasq to the new dnsmasq running (the guard
  logs its pid; this script checks it is alive);
- bridge: from ``ip link del BRIDGE`` to the guard's repair line (bridge, port, dnsmasq back).

Median of N (default 15) each, with NETWORKS NAT networks running (default 1, try 20).
The guard debounces events for 50 ms before it repairs: that is part of every figure.

Run as root from the repository: ``.venv/bin/python bench/bench_guard.py [-n 15]
[--networks 20]``. Everything happens in namespaces this script creates (vgb<hex>) and removes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from virtnet import firewall  # noqa: E402
from virtnet.engine import Engine  # noqa: E402
from virtnet.guard_events import NftEvents  # noqa: E402
from virtnet.host import netns  # noqa: E402
from virtnet.model.network import (  # noqa: E402
    DHCP,
    DNS,
    Bridge,
    DHCPRange,
    DNSForwarder,
    Forward,
    ForwardMode,
    IPDef,
    Network,
)


def network(i: int, mark: str) -> Network:
    sub = f"10.{120 + i // 256}.{i % 256}"
    return Network(
        name=f"g{i}",
        forward=Forward(mode=ForwardMode.NAT),
        bridge=Bridge(name=f"{mark}b{i}", stp=False, delay=0),
        ips=(IPDef(address=f"{sub}.1", netmask="255.255.255.0",
                   dhcp=DHCP(ranges=(DHCPRange(f"{sub}.2", f"{sub}.254"),))),),
        dns=DNS(forwarders=(DNSForwarder(addr="192.0.2.53"),)),
        dnsmasq_options=("no-ping",),
    )


class GuardLog:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.out = proc.stdout
        os.set_blocking(self.out.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.out, selectors.EVENT_READ)
        self.buf = ""

    def next(self, match: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while "\n" in self.buf:
                line, self.buf = self.buf.split("\n", 1)
                entry = json.loads(line)
                if match(entry):
                    return entry
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit("the guard did not log the repair in time")
            if self.sel.select(left):
                self.buf += self.out.read() or ""


def sh(ns: str, *argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, capture_output=True)


def summary(label: str, xs: list[float]) -> str:
    ms = sorted(x * 1000 for x in xs)
    return (f"{label:<34} median {statistics.median(ms):6.1f} ms   "
            f"min {ms[0]:6.1f}   max {ms[-1]:6.1f}   (n={len(ms)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=15, help="repetitions of each breakage")
    ap.add_argument("--networks", type=int, default=1, help="NAT networks running")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    mark = "vgb" + secrets.token_hex(2)
    ns = mark + "h"
    state = Path(tempfile.mkdtemp(prefix=f"{mark}-"))
    state.chmod(0o755)
    guard: subprocess.Popen[str] | None = None
    engine: Engine | None = None
    netns.create(ns)
    try:
        engine = Engine(state, ns)
        nets = [network(i, mark) for i in range(args.networks)]
        for net in nets:
            engine.start(net)
        guard = subprocess.Popen(
            [sys.executable, "-c", "from virtnet.cli.main import main; main()", "--netns", ns,
             "--state-dir", str(state), "-o", "json", "guard", "--interval", "300"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        log = GuardLog(guard)
        log.next(lambda e: e["event"] == "start", timeout=30)
        events = NftEvents(ns)
        sel = selectors.DefaultSelector()
        sel.register(events, selectors.EVENT_READ)

        flush: list[float] = []
        for _ in range(args.n):
            sh(ns, "nft", "flush", "ruleset")
            t0 = time.perf_counter()
            events.changes()  # the flush itself
            while True:  # until a transaction re-creates our table
                if not sel.select(10):
                    raise SystemExit("the table did not come back")
                if any(c.op == "add" and c.kind == "table" and c.table == "virtnet"
                       for c in events.changes()):
                    break
            flush.append(time.perf_counter() - t0)
            assert firewall.drift(ns, nets) == [], "table back but not in sync"
            log.next(lambda e: e["event"] == "repair")
            time.sleep(0.1)  # let the guard's own follow-up check settle
        kill: list[float] = []
        for _ in range(args.n):
            rec = engine.store.get_runtime(ns, "g0")
            assert rec is not None
            pid = rec["dnsmasq"]["pid"]
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            entry = log.next(lambda e: e["event"] == "repair" and e.get("network") == "g0")
            kill.append(time.perf_counter() - t0)
            new = int(entry["repairs"][-1].split("pid ")[1].rstrip(")"))
            assert new != pid and Path(f"/proc/{new}").exists()
            time.sleep(0.1)
        bridge: list[float] = []
        for _ in range(args.n):
            t0 = time.perf_counter()
            sh(ns, "ip", "link", "del", f"{mark}b0")
            log.next(lambda e: e["event"] == "repair" and e.get("network") == "g0"
                     and any("recreated" in r for r in e["repairs"]))
            bridge.append(time.perf_counter() - t0)
            time.sleep(0.1)
        events.close()
        print(f"virtnet guard, {args.networks} NAT network(s) with DHCP, namespace {ns}")
        print(summary("nft flush ruleset -> table back", flush))
        print(summary("kill -9 dnsmasq -> new dnsmasq", kill))
        print(summary("ip link del bridge -> repaired", bridge))
    finally:
        if guard is not None:
            guard.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                guard.wait(timeout=10)
            if guard.poll() is None:
                guard.kill()
                guard.wait()
        if engine is not None:
            for name in list(engine.store.list_runtime(ns)):
                with contextlib.suppress(Exception):
                    engine.stop(name)
            engine.close()
        netns.delete(ns)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
