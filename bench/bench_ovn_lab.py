#!/usr/bin/env python3
"""Benchmark the OVN multi-host lab: build, apply, first lease, verify, teardown, iperf3.

Run (root, scripts/setup.sh done): ``.venv/bin/python bench/bench_ovn_lab.py [RUNS]``
(default 3). Each run builds the lab of ``virtnet demo --backend ovn`` (nat, route,
isolated, open; 2 VMs each over 2 chassis; userspace OVS; geneve over a 1500-byte
underlay), verifies the seed's columns, measures bulk TCP between the routed network's VMs
on the two chassis (iperf3, 3 s) at the MTU OVN's DHCP gave them, and once with the VMs
forced to 1500 bytes (what ``<mtu>``-less networks got before the MTU fix), then tears down.
Prints the median and range of each figure.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from virtnet.lab import ovn_bed, ovn_demo, ovn_verify  # noqa: E402


def iperf(st: ovn_bed.OvnLabState, a: dict[str, object], b: dict[str, object]) -> float:
    """Mbit/s received from A to B over 3 s (0 when nothing gets through)."""
    server = subprocess.Popen(["ip", "netns", "exec", str(b["netns"]), "iperf3", "-s", "-1",
                               "-p", "5298"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = subprocess.run(["ip", "netns", "exec", str(a["netns"]), "iperf3", "-c",
                              str(b["ipv4"]), "-p", "5298", "-t", "3", "-J"],
                             capture_output=True, text=True, timeout=40)
    finally:
        server.kill()
        server.wait()
    try:
        return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e6
    except (ValueError, KeyError):
        return 0.0


def one(state: Path) -> dict[str, float]:
    t0 = time.monotonic()
    lab = ovn_bed.up(ovn_demo.demo_spec(), state)
    fig = {k: float(v) for k, v in lab.st.timings.items()}
    try:
        t1 = time.monotonic()
        report = ovn_verify.verify(lab.st)
        fig["verify"] = time.monotonic() - t1
        assert not report.differences, [str(d.key) for d in report.differences]
        a, b = (next(v for v in lab.st.vms if v["id"] == i) for i in ("route/vm1", "route/vm2"))
        fig["mtu"] = float(ovn_bed.mtu_of(str(a["netns"])))
        fig["iperf3_mbit"] = iperf(lab.st, a, b)
        for v in (a, b):
            subprocess.run(["ip", "-n", str(v["netns"]), "link", "set", "eth0", "mtu", "1500"],
                           check=True)
        fig["iperf3_mbit_at_1500"] = iperf(lab.st, a, b)
    finally:
        t2 = time.monotonic()
        lab.down()
        fig["down"] = time.monotonic() - t2
    fig["total"] = time.monotonic() - t0
    return fig


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    figs = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(runs):
            figs.append(one(Path(d)))
    print(f"OVN lab, {runs} run(s): 4 networks, 8 VMs, 2 chassis, geneve, 1500-byte underlay")
    for key in ("up", "apply", "first_lease", "leases", "build", "verify", "down", "total",
                "mtu", "iperf3_mbit", "iperf3_mbit_at_1500"):
        vals = [f[key] for f in figs]
        unit = "" if key.startswith(("iperf3", "mtu")) else " s"
        print(f"  {key:<20} median {statistics.median(vals):8.3f}{unit}  "
              f"({min(vals):.3f}-{max(vals):.3f})")


if __name__ == "__main__":
    main()
