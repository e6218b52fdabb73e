#!/usr/bin/env python3
"""Engine benchmark: start/stop of 1, 10, 100, 1000 NAT networks with DHCP, 1000 ports on one
network, and iperf3 VM->outside through NAT with 1 and with 1000 networks running.

Run as root from the repository: ``.venv/bin/python bench/bench_engine.py [--max 1000]``.
Everything happens in namespaces this script creates (named vnb<hex>...) and removes.
Times are wall-clock inside the process around Engine.start/stop: virtnet's own work plus
the kernel calls, nft and dnsmasq start-up it waits for (no interpreter start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from virtnet.engine import Engine  # noqa: E402
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

OUTSIDE = "203.0.113.2"


def network(i: int) -> Network:
    sub = f"10.{100 + i // 256}.{i % 256}"
    return Network(
        name=f"bench{i}",
        forward=Forward(mode=ForwardMode.NAT),
        bridge=Bridge(name=f"vnb{i}", stp=False, delay=0),
        ips=(IPDef(address=f"{sub}.1", netmask="255.255.255.0",
                   dhcp=DHCP(ranges=(DHCPRange(f"{sub}.2", f"{sub}.254"),))),),
        # An explicit forwarder (TEST-NET, never reached): dnsmasq then reads no resolv.conf
        # and needs no inotify instance, of which the kernel allows 128 per user by default.
        dns=DNS(forwarders=(DNSForwarder(addr="192.0.2.53"),)),
        dnsmasq_options=("no-ping",),
    )


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "ip", *args], check=True)


def fmt_ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(len(xs) * 0.95))]
    return (f"median {statistics.median(xs) * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  "
            f"max {xs[-1] * 1000:6.1f} ms")


def cpu() -> tuple[float, float]:
    """CPU seconds of this process and of its waited-for children (nft, dnsmasq's parent)."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def start_stop(
    engine: Engine, n: int, between: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Start N networks one by one, run BETWEEN (not timed), stop them one by one."""
    starts, stops = [], []
    c0 = cpu()
    t0 = time.perf_counter()
    step = n // 10 if n >= 200 else 0
    for i in range(n):
        t = time.perf_counter()
        engine.start(network(i))
        starts.append(time.perf_counter() - t)
        if step and (i + 1) % step == 0:  # the growth: mean start time per block
            print(f"{'':15s}starts {i + 2 - step:4d}-{i + 1:4d}: mean "
                  f"{statistics.mean(starts[-step:]) * 1000:6.1f} ms", flush=True)
    total_start = time.perf_counter() - t0
    c1 = cpu()
    dns_cpu = dnsmasq_cpu(engine)
    if between is not None:
        between()
    c1b = cpu()
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        engine.stop(f"bench{i}")
        stops.append(time.perf_counter() - t)
        if step and (i + 1) % step == 0:
            print(f"{'':15s}stops  {i + 2 - step:4d}-{i + 1:4d}: mean "
                  f"{statistics.mean(stops[-step:]) * 1000:6.1f} ms", flush=True)
    total_stop = time.perf_counter() - t0
    c2 = cpu()
    print(f"{n:5d} networks  start total {total_start:7.2f} s  per network {fmt_ms(starts)}  "
          f"cpu/network {(c1[0] - c0[0]) / n * 1000:.1f} ms + children "
          f"{(c1[1] - c0[1]) / n * 1000:.1f} ms; the {n} dnsmasq used {dns_cpu:.2f} s CPU")
    print(f"{'':15s}stop  total {total_stop:7.2f} s  per network {fmt_ms(stops)}  "
          f"cpu/network {(c2[0] - c1b[0]) / n * 1000:.1f} ms + children "
          f"{(c2[1] - c1b[1]) / n * 1000:.1f} ms")
    return total_start, total_stop


def batch(engine: Engine, n: int, between: Callable[[], None] | None = None) -> None:
    """Start N networks with one start_many and stop them with one stop_many."""
    nets = [network(i) for i in range(n)]
    c0 = cpu()
    t = time.perf_counter()
    engine.start_many(nets)
    start = time.perf_counter() - t
    c1 = cpu()
    dns_cpu = dnsmasq_cpu(engine)
    if between is not None:
        between()
    c2 = cpu()
    t = time.perf_counter()
    engine.stop_many([x.name for x in nets])
    stop = time.perf_counter() - t
    c3 = cpu()
    print(f"{n:5d} networks  start_many {start:6.2f} s ({start / n * 1000:5.1f} ms each, cpu "
          f"{(c1[0] - c0[0]) / n * 1000:.1f} + children {(c1[1] - c0[1]) / n * 1000:.1f} ms; "
          f"the {n} dnsmasq used {dns_cpu:.2f} s CPU)")
    print(f"{'':15s}stop_many  {stop:6.2f} s ({stop / n * 1000:5.1f} ms each, cpu "
          f"{(c3[0] - c2[0]) / n * 1000:.1f} + children {(c3[1] - c2[1]) / n * 1000:.1f} ms)")


def dnsmasq_cpu(engine: Engine) -> float:
    """CPU seconds used so far by the dnsmasq processes of this benchmark's state directory
    (each one wakes on every address/route change in the namespace)."""
    needle = f"--conf-file={engine.state_dir}/".encode()
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if not any(a.startswith(needle) for a in fh.read().split(b"\0")):
                    continue
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def kernel_floor(host: str, n: int = 20) -> None:
    """What the kernel alone takes to create and delete bare bridges here (no virtnet, no
    dnsmasq, no rules): one at a time, and N in one request (a link group), which is the
    floor for stop and stop_many."""
    from virtnet.host import rtnl
    from virtnet.host.links import Netlink

    adds, dels = [], []
    with Netlink(host) as nl:
        for i in range(n):
            t = time.perf_counter()
            nl.rtnl.check([rtnl.new_bridge(f"vnbf{i}", mac=None, mtu=None, stp=False, delay=0)])
            adds.append(time.perf_counter() - t)
        for i in range(n):
            t = time.perf_counter()
            nl.rtnl.check([rtnl.del_link(f"vnbf{i}")])
            dels.append(time.perf_counter() - t)
        for i in range(n):
            nl.rtnl.check([rtnl.new_bridge(f"vnbf{i}", mac=None, mtu=None, stp=False, delay=0)])
        t = time.perf_counter()
        left = nl.delete_many([f"vnbf{i}" for i in range(n)])
        group = time.perf_counter() - t
        assert not left, left
    print(f"kernel alone, bare bridge: create {fmt_ms(adds)}; delete one at a time "
          f"{fmt_ms(dels)} (x100 = {statistics.median(dels) * 100:.2f} s); {n} in one "
          f"request {group * 1000:.0f} ms = {group / n * 1000:.1f} ms each "
          f"(x100 = {group / n * 100:.2f} s)")


def iperf(engine: Engine, host: str, vm: str, outside: str, runs: int) -> list[float]:
    """RUNS iperf3 runs of 2 s, VM -> outside through NAT; Gbit/s each."""
    port = engine.add_port("bench0", kind="veth", peer_netns=vm, peer_name="eth0")
    ip(vm, "addr", "flush", "dev", "eth0")
    ip(vm, "addr", "add", "10.100.0.50/24", "dev", "eth0")
    ip(vm, "link", "set", "eth0", "up")
    ip(vm, "route", "replace", "default", "via", "10.100.0.1")
    server = subprocess.Popen(["ip", "netns", "exec", outside, "iperf3", "-s"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out_runs: list[float] = []
    try:
        time.sleep(0.3)
        for _ in range(runs):  # several: other work on the machine adds noise
            out = subprocess.run(
                ["ip", "netns", "exec", vm, "iperf3", "-c", OUTSIDE, "-t", "2", "-J"],
                capture_output=True, text=True, check=True,
            ).stdout
            out_runs.append(json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9)
    finally:
        server.kill()
        server.wait()
    engine.delete_port("bench0", port.name)
    return out_runs


def spread(xs: list[float]) -> str:
    return (f"median {statistics.median(xs):.2f} Gbit/s (min {min(xs):.2f}, max {max(xs):.2f}, "
            f"{len(xs)} runs)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1,10,100,1000",
                    help="network counts to start and stop, comma-separated (default "
                    "1,10,100,1000); iperf3 runs with the last count running")
    ap.add_argument("--seq-max", type=int, default=1000,
                    help="largest count also started one network at a time (default 1000; "
                    "the biggest counts run last, once: N dnsmasq processes each rescanning "
                    "on every new address load the machine)")
    ap.add_argument("--iperf-runs", type=int, default=5)
    ap.add_argument("--ports", type=int, default=1000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_engine: needs root (it creates network namespaces)")
    mark = "vnb" + secrets.token_hex(2)
    host, outside, vm, peers = mark + "h", mark + "o", mark + "v", mark + "p"
    state = Path(tempfile.mkdtemp(prefix="virtnet-bench-"))
    os.chmod(state, 0o755)
    made: list[str] = []
    engine: Engine | None = None
    try:
        for ns in (host, outside, vm, peers):
            netns.create(ns)
            made.append(ns)
        ip(host, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0",
           "netns", outside)
        ip(host, "addr", "add", "203.0.113.1/24", "dev", "uplink")
        ip(host, "link", "set", "uplink", "up")
        ip(outside, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        ip(outside, "link", "set", "eth0", "up")
        ip(host, "route", "add", "default", "via", OUTSIDE)
        engine = Engine(state, host)
        print(f"namespace {host}, state {state}")
        engine.start(network(0))  # warm-up (imports, socket), not counted
        engine.stop("bench0")
        print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores: figures above ~1 "
              "are inflated by other work)")
        kernel_floor(host)

        # ports first, while the namespace holds one network only
        engine.start(network(0))
        adds = []
        t0 = time.perf_counter()
        for i in range(args.ports):
            t = time.perf_counter()
            engine.add_port("bench0", kind="veth", peer_netns=peers, peer_name=f"p{i}")
            adds.append(time.perf_counter() - t)
        total = time.perf_counter() - t0
        t = time.perf_counter()
        listed = len(engine.list_ports("bench0"))
        lt = time.perf_counter() - t
        if args.ports:
            print(f"{args.ports:5d} ports on one network  add total {total:6.2f} s  per port "
                  f"{fmt_ms(adds)}; list_ports {lt * 1000:.0f} ms ({listed} ports)")
        netns.delete(peers)  # the kernel tears the veths down with the namespace
        made.remove(peers)
        one = iperf(engine, host, vm, outside, args.iperf_runs)
        engine.stop("bench0")

        counts = [int(c) for c in args.counts.split(",")]
        small, big = [n for n in counts if n <= 100], [n for n in counts if n > 100]
        results: dict[int, tuple[float, float]] = {}
        print("one network at a time (start, stop):")
        for n in small:
            if n <= args.seq_max:
                results[n] = start_stop(engine, n)
        print("all at once (start_many, stop_many):")
        for n in small:
            batch(engine, n)
        for n in big:  # once each, at the end: the heavy part
            def with_many(n: int = n) -> None:
                time.sleep(3)  # let the just-started dnsmasq processes settle
                many = iperf(engine, host, vm, outside, args.iperf_runs)
                print(f"iperf3 VM->outside through NAT: with 1 network {spread(one)}; with {n} "
                      f"networks {spread(many)} "
                      f"({(statistics.median(many) / statistics.median(one) - 1) * 100:+.1f} %)")
            print("all at once (start_many, stop_many):")
            batch(engine, n, with_many)
            if n <= args.seq_max:
                print("one network at a time (start, stop):")
                results[n] = start_stop(engine, n)
        print("per-network cost by count, one at a time (start / stop):  " + "   ".join(
            f"{n}: {s / n * 1000:.1f}/{t / n * 1000:.1f} ms" for n, (s, t) in results.items()))
    finally:
        if engine is not None:
            for name in engine.active():
                try:
                    engine.stop(name)
                except Exception as exc:  # keep cleaning up
                    print(f"cleanup: {exc}", file=sys.stderr)
            engine.close()
        for ns in made:
            netns.delete(ns)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
