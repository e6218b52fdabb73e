#!/usr/bin/env python3
"""Command-line benchmark: what a person or a script waits for.

- one ``virtnet net-list`` / ``net-start`` / ``net-destroy`` as a process (interpreter start-up
  included), median of several runs;
- ``virtnet apply -f DIR`` of N NAT networks with DHCP (in-process), then the no-op re-apply
  and ``plan``;
- 20 ``virtnet net-define`` processes at once on one state directory.

Run as root from the repository: ``.venv/bin/python bench/bench_cli.py [--networks 20]``.
Everything happens in a namespace this script creates (vcb<hex>) and removes.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from virtnet.cli.main import cli  # noqa: E402
from virtnet.engine import Engine  # noqa: E402
from virtnet.host import netns  # noqa: E402

CMD = [sys.executable, "-c", "from virtnet.cli.main import main; main()"]


def xml(name: str, bridge: str, third: int) -> str:
    return (f"<network><name>{name}</name><forward mode='nat'/>"
            f"<bridge name='{bridge}' stp='off'/><ip address='10.{third // 250}.{third % 250}.1'"
            f" prefix='24'><dhcp><range start='10.{third // 250}.{third % 250}.10' "
            f"end='10.{third // 250}.{third % 250}.200'/></dhcp></ip></network>")


def timed_process(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([*CMD, *args], check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    mark = "vcb" + secrets.token_hex(3)
    base = Path(tempfile.mkdtemp(prefix=mark))
    base.chmod(0o755)
    state = base / "state"
    netns.create(mark)
    g = ["--netns", mark, "--state-dir", str(state)]
    out: dict[str, float | int] = {"networks": opts.networks}
    try:
        d = base / "nets"
        d.mkdir()
        for i in range(opts.networks):
            (d / f"n{i}.xml").write_text(xml(f"n{i}", f"{mark}{i}", 10 + i))
        runner = CliRunner()

        def run(*args: str) -> None:
            r = runner.invoke(cli, [*g, *args], catch_exceptions=False)
            assert r.exit_code == 0, r.output

        t0 = time.perf_counter()
        run("apply", "-f", str(d))
        out["apply_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        t0 = time.perf_counter()
        run("apply", "-f", str(d))
        out["reapply_noop_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        t0 = time.perf_counter()
        run("plan", "-f", str(d))
        out["plan_ms"] = round((time.perf_counter() - t0) * 1000, 1)

        out["process_net_list_ms"] = round(timed_process([*g, "net-list", "--all"], opts.runs), 1)
        starts, stops = [], []
        for _ in range(opts.runs):
            t0 = time.perf_counter()
            subprocess.run([*CMD, *g, "net-destroy", "n0"], check=True, capture_output=True)
            stops.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run([*CMD, *g, "net-start", "n0"], check=True, capture_output=True)
            starts.append(time.perf_counter() - t0)
        out["process_net_start_ms"] = round(statistics.median(starts) * 1000, 1)
        out["process_net_destroy_ms"] = round(statistics.median(stops) * 1000, 1)

        defs = [base / f"c{i}.xml" for i in range(20)]
        for i, f in enumerate(defs):
            f.write_text(xml(f"c{i}", f"{mark}c{i}", 200 + i))
        t0 = time.perf_counter()
        procs = [subprocess.Popen([*CMD, *g, "net-define", str(f)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for f in defs]
        codes = [p.wait() for p in procs]
        out["concurrent_20_define_s"] = round(time.perf_counter() - t0, 2)
        out["concurrent_20_define_failures"] = sum(c != 0 for c in codes)
        out["load_average_1min"] = os.getloadavg()[0]
    finally:
        with Engine(state, mark) as eng:
            for name in eng.active():
                eng.stop(name)
        netns.delete(mark)
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
