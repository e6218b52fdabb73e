#!/usr/bin/env python3
"""Benchmark the OVN backend: N networks planned and applied as one ovn-nbctl transaction.

Run: ``.venv/bin/python bench/bench_ovn.py [N]`` (default 100, at most 320; needs
ovn-central installed, not root). Starts its own NB/SB ovsdb-servers and ovn-northd in a
temporary directory and ends them by PID. Networks cycle nat/route/isolated/open, each
with DHCP and a reserved host.
Prints: translate+plan (pure), apply on an empty database (one transaction), re-apply
(plan against the database; nothing changes), northd's compile of the result (sync), VM
port-add (one per call), and delete of every network (one call each).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ovn_central import OvnCentral  # noqa: E402
from virtnet import ovn  # noqa: E402
from virtnet.loader import load_text  # noqa: E402
from virtnet.model.network import Network  # noqa: E402
from virtnet.ovn import OvnOptions  # noqa: E402
from virtnet.ovn.nbctl import argv  # noqa: E402

MODES = ("nat", "route", "isolated", "open")


def make(i: int) -> Network:
    mode = MODES[i % 4]
    fwd = "" if mode == "isolated" else f"<forward mode='{mode}'/>"
    a, b = 10 + i // 250, i % 250
    return load_text(
        f"<network><name>n{i}</name>{fwd}<ip address='{a}.{b}.0.1' prefix='24'><dhcp>"
        f"<range start='{a}.{b}.0.100' end='{a}.{b}.0.199'/>"
        f"<host mac='52:54:00:{i // 256:02x}:{i % 256:02x}:10' name='h{i}' ip='{a}.{b}.0.10'/>"
        "</dhcp></ip></network>"
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    nets = [make(i) for i in range(n)]
    forwarding = [net.name for net in nets if net.mode.value != "isolated"]
    if len(forwarding) > 240:
        sys.exit("at most 320 networks: their external addresses come from 198.51.100.0/24")
    ext = {name: f"198.51.100.{10 + k}/24" for k, name in enumerate(forwarding)}
    opts = OvnOptions(external_ips=ext, outside_gateway="198.51.100.1")
    t = time.perf_counter()
    cmds = ovn.plan(nets, opts)
    t_plan = time.perf_counter() - t
    size = sum(len(a) + 1 for a in argv("unix:/x", cmds))
    with tempfile.TemporaryDirectory() as d:
        c = OvnCentral(Path(d)).start()
        try:
            t = time.perf_counter()
            ovn.apply(nets, c.nb, opts)
            t_apply = time.perf_counter() - t
            t = time.perf_counter()
            c.sync(timeout=300)
            t_sync = time.perf_counter() - t
            t = time.perf_counter()
            again = ovn.apply(nets, c.nb, opts)
            t_again = time.perf_counter() - t
            t = time.perf_counter()
            for net in nets[:20]:
                ovn.port_add(net.name, f"vm-{net.name}", c.nb)
            t_port = (time.perf_counter() - t) / 20
            sbctl = ["ovn-sbctl", f"--db={c.sb}", "--bare", "--columns=_uuid", "list"]
            flows = subprocess.run([*sbctl, "Logical_Flow"], capture_output=True, text=True)
            lflows = len(flows.stdout.split())
            t = time.perf_counter()
            for net in nets:
                ovn.delete(net.name, c.nb)
            t_delete = (time.perf_counter() - t) / n
            left = c.nbctl("show").strip()
        finally:
            c.stop()
    print(
        f"networks: {n} ({', '.join(MODES)} in turn), commands: {len(cmds)}, "
        f"ovn-nbctl argv: {size / 1024:.0f} KiB"
    )
    print(f"translate + plan (pure):            {ms(t_plan)}")
    print(f"apply, empty database, one txn:     {ms(t_apply)}")
    print(f"northd compile (nbctl --wait=sb sync): {ms(t_sync)}  ({lflows} logical flows)")
    print(f"re-apply (read + plan + no-op txn): {ms(t_again)}  ({len(again)} commands, no change)")
    print(f"port-add (read + one txn), each:    {ms(t_port)}")
    print(f"delete (read + one txn), each:      {ms(t_delete)}")
    print(f"left after deleting all:            {left!r}")


if __name__ == "__main__":
    main()
