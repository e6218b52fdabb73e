#!/usr/bin/env python3
"""macvtap benchmark: start a macvtap bridge-mode network, add N macvlan ports into N VM
namespaces, stop it (which deletes them); R rounds, medians.

Run as root from the repository: ``.venv/bin/python bench/bench_direct.py [--ports 20]``.
Everything happens in namespaces this script creates (named vnd<hex>...) and removes.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from virtnet.engine import Engine  # noqa: E402
from virtnet.host import netns  # noqa: E402
from virtnet.model.network import Forward, ForwardMode, Network  # noqa: E402


def _ms(xs: list[float]) -> str:
    return (f"median {statistics.median(xs) * 1000:.1f} ms "
            f"(min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f}, n={len(xs)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    mark = "vnd" + secrets.token_hex(2)
    host = mark + "h"
    vms = [f"{mark}v{i}" for i in range(args.ports)]
    starts: list[float] = []
    ports: list[float] = []
    stops: list[float] = []
    try:
        for ns in (host, *vms):
            netns.create(ns)
        netns.run(host, ["ip", "-batch", "-"],
                  input="link add eth1 type veth peer name lp\nlink set eth1 up\n"
                  "link set lp up\n")
        with Engine(Path(tempfile.mkdtemp()), host) as eng:
            net = Network(name="mv", forward=Forward(mode=ForwardMode.BRIDGE, dev="eth1"))
            for _ in range(args.rounds):
                t = time.perf_counter()
                eng.start(net)
                starts.append(time.perf_counter() - t)
                for vm in vms:
                    t = time.perf_counter()
                    eng.add_port("mv", peer_netns=vm)
                    ports.append(time.perf_counter() - t)
                t = time.perf_counter()
                eng.stop("mv")
                stops.append(time.perf_counter() - t)
    finally:
        for ns in (host, *vms):
            netns.delete(ns)
    print(f"start: {_ms(starts)}")
    print(f"add_port (macvlan into a namespace): {_ms(ports)}")
    print(f"stop with {args.ports} ports: {_ms(stops)}")


if __name__ == "__main__":
    main()
