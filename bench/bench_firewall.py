#!/usr/bin/env python3
"""Benchmark virtnet's nftables table: incremental vs full applies, and the packet path.

Run as root: ``.venv/bin/python bench/bench_firewall.py [N]`` (N networks, default 1000).
Works only inside a namespace it creates (``vnbench<pid>``) and removes at the end.
Prints: time of render_add+apply for network #1, #100, #N (each one ``nft -f`` process on
a table already holding the previous ones; median of 7), render+apply of the whole table for N
networks, render_remove for one network, drift check of N networks, and the number of
rules in the table (and on a packet's path) with 1 and with N networks.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from virtnet.firewall import (
    apply_script,
    drift,
    path_rule_count,
    read_table,
    render_add,
    render_remove,
    render_table,
)
from virtnet.firewall.live import parse_chains
from virtnet.host import netns
from virtnet.model.network import Bridge, Forward, ForwardMode, IPDef, Network


def make(i: int) -> Network:
    mode = (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.ISOLATED)[i % 3]
    forward = Forward(mode=mode) if mode != ForwardMode.ISOLATED else None
    ip = IPDef(address=f"10.{i // 250}.{i % 250}.1", prefix=24)
    return Network(name=f"n{i}", forward=forward, bridge=Bridge(name=f"vb{i}"), ips=(ip,))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def rules_in(ns: str) -> int:
    text = read_table(ns) or ""
    return sum(len(rules) for _base, rules in parse_chains(text).values())


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root (it creates a network namespace)")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    nets = [make(i) for i in range(1, n + 1)]
    ns = f"vnbench{os.getpid()}"
    netns.create(ns)
    try:
        apply_script(ns, render_table([]))
        marks = {1, 100, n}
        for i, net in enumerate(nets, 1):
            script = render_add(net)
            apply_script(ns, script)
            if i in marks:
                # Median of 7 remove+add cycles at this table size (one sample is noisy).
                samples = []
                for _ in range(7):
                    apply_script(ns, render_remove(net))
                    t0 = time.perf_counter()
                    apply_script(ns, render_add(net))
                    samples.append(time.perf_counter() - t0)
                dt = statistics.median(samples)
                print(f"render_add+apply network #{i:<5}        {ms(dt)}  ({len(script)} bytes)")
        rules_n = rules_in(ns)

        t0 = time.perf_counter()
        script = render_table(nets)
        t1 = time.perf_counter()
        apply_script(ns, script)
        t2 = time.perf_counter()
        print(f"render_table, {n} networks            {ms(t1 - t0)}  ({len(script)} bytes)")
        print(f"apply (one nft -f), {n} networks      {ms(t2 - t1)}")

        t0 = time.perf_counter()
        problems = drift(ns, nets)
        dt = time.perf_counter() - t0
        print(f"drift check, {n} networks             {ms(dt)}  ({len(problems)} problems)")

        mid = nets[len(nets) // 2]
        t0 = time.perf_counter()
        apply_script(ns, render_remove(mid))
        print(f"render_remove+apply one network       {ms(time.perf_counter() - t0)}")

        apply_script(ns, render_table(nets[:1]))
        rules_1 = rules_in(ns)
        print(f"rules in table with 1 network: {rules_1}; with {n} networks: {rules_n}")
        counts = path_rule_count()
        path = ("filter_forward", "forward_established", "nat_postrouting",
                "masq_ports_1024_65535", "mangle_postrouting")  # fmt: skip
        print(
            f"rules a forwarded packet can meet at most ({' + '.join(path)}): "
            f"{sum(counts[c] for c in path)}, the same for 1 and {n} networks "
            "(set/map lookups are hashes or interval trees)"
        )
    finally:
        netns.delete(ns)


if __name__ == "__main__":
    main()
