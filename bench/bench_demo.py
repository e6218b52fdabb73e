#!/usr/bin/env python3
"""Benchmark: the whole `virtnet demo` — build, leases, probes, teardown. Target ≤ 10 s.

Runs as root, entirely in namespaces the lab creates (state in a temporary directory).
Usage: .venv/bin/python bench/bench_demo.py [--runs N] [--ipv6] [--vms N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from virtnet import demo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ipv6", action="store_true", help="networks get an IPv6 /64 too")
    ap.add_argument("--vms", type=int, default=2, help="VMs per network")
    args = ap.parse_args()
    totals: list[float] = []
    phases: dict[str, list[float]] = {}
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="virtnet-bench-") as tmp:
            t0 = time.monotonic()
            result = demo.run(Path(tmp), progress=lambda _m: None, ipv6=args.ipv6,
                              vms=args.vms)
            total = time.monotonic() - t0
        if not result.ok:
            print(f"run {i + 1}: the observed table differs from the seed's", file=sys.stderr)
            return 1
        totals.append(total)
        for k, v in result.timings.items():
            phases.setdefault(k, []).append(v)
        print(f"run {i + 1}: total {total:.3f} s  " + "  ".join(
            f"{k} {v:.3f}" for k, v in result.timings.items() if k != "total")
            + f"  ({result.report.probes} probes)")
    med = statistics.median(totals)
    print(f"demo ({len(demo.DEMO_MODES)} networks x {args.vms} VMs"
          f"{', IPv6' if args.ipv6 else ''}): median {med:.3f} s, min {min(totals):.3f} s, "
          f"max {max(totals):.3f} s over {args.runs} runs; target <= 10 s: "
          f"{'met' if max(totals) <= 10 else 'MISSED'}")
    for k, vals in phases.items():
        print(f"  {k:9} median {statistics.median(vals):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
