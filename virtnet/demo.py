"""``virtnet demo``: the seed's comparison table, proven with packets.

Builds a lab with one network of each connection type virtnet can start, verifies every pair
of endpoints with ICMP and TCP, prints the observed table beside the seed's, and tears the lab
down whatever happens (failure, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from virtnet.lab import bed
from virtnet.lab.spec import LabSpec, shorthand_network
from virtnet.model.network import ForwardMode
from virtnet.reach import render
from virtnet.reach.table import COLUMNS, MODE_ROWS, SEED_TABLE, YES, Row, matches_seed
from virtnet.reach.verify import Report, verify

DEMO_MODES = ("bridge", "nat", "route", "isolated", "open")
BRIDGED_PENDING = "not built yet: bridged mode arrives with issue 6"  # when a lab leaves it out


@dataclass
class DemoResult:
    mark: str
    report: Report
    timings: dict[str, float] = field(default_factory=dict)
    bridged: str = BRIDGED_PENDING

    @property
    def observed(self) -> list[Row]:
        return self.report.observed_rows()

    @property
    def expected(self) -> list[Row]:
        return self.report.expected_rows()

    def seed_agreement(self) -> dict[str, list[bool]]:
        exp = {r.network: r for r in self.expected}
        return {r.label: matches_seed(r, exp[r.network]) for r in self.observed}

    @property
    def ok(self) -> bool:
        return not self.report.differences and all(
            all(cells) for cells in self.seed_agreement().values())


def demo_spec(*, ipv6: bool = False, vms: int = 2) -> LabSpec:
    nets = []
    for i, mode in enumerate(DEMO_MODES):
        v6 = f"2001:db8:{0x10 + i:x}::/64" if ipv6 and mode != "bridge" else None
        nets.append(shorthand_network(mode, i, ipv6=v6))
    return LabSpec(networks=tuple(nets), vms_per_network=vms, outside_hosts=1)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM tears the lab down like Ctrl-C does."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(state_dir: Path, *, progress: Callable[[str], None], ipv6: bool = False,
        vms: int = 2) -> DemoResult:
    t0 = time.monotonic()
    spec = demo_spec(ipv6=ipv6, vms=vms)
    timings: dict[str, float] = {}
    with _sigterm_as_interrupt():
        progress(f"demo: building a lab with {', '.join(DEMO_MODES)} networks, "
                 f"{vms} VMs each, one outside host routing every VM subnet via the host, "
                 "the LAN's own DHCP server for bridged VMs")
        st = bed.up(spec, state_dir, progress=progress)
        timings["build"] = round(time.monotonic() - t0, 3)
        try:
            progress(f"demo: probing every pair (ICMP and TCP) in lab {st.mark}")
            t1 = time.monotonic()
            report = verify(st)
            timings["verify"] = round(time.monotonic() - t1, 3)
            progress(f"demo: {report.probes} probes in {report.seconds:.2f} s, "
                     f"{len(report.differences)} differences")
        finally:
            t2 = time.monotonic()
            progress(f"demo: tearing down lab {st.mark}")
            bed.down(st)
            timings["teardown"] = round(time.monotonic() - t2, 3)
    timings["total"] = round(time.monotonic() - t0, 3)
    return DemoResult(st.mark, report, timings)


def text(result: DemoResult) -> str:
    """The observed table beside the seed's, then any difference, then the verdict."""
    agree = result.seed_agreement()
    observed = {r.label: r for r in result.observed}
    body = []
    for label, seed in SEED_TABLE.items():
        row = observed.get(label)
        seed_cells = [_short(c) for c in seed]
        if row is None:
            missing = result.bridged if label == MODE_ROWS[ForwardMode.BRIDGE] else "-"
            body.append([label, *seed_cells, missing, "", "", "", ""])
            continue
        ok = agree[label]
        mark = "= seed" if all(ok) else "DIFFERS"
        if label == "Open mode" and all(ok):
            mark = "= seed (host has no firewall rules: forwarding decides)"
        body.append([label, *seed_cells, *(_short(c) for c in row.cells), mark])
    cols = ("host", "VMs", "outside", "visible")
    head = ("connection type", *cols, *cols, "")
    table = render.grid(head, body)
    # A line above the column names that says which four are the seed's and which observed.
    widths = [len(c) for c in table.splitlines()[1].split("  ")]
    seed_w = sum(widths[1:5]) + 2 * 3
    obs_w = sum(widths[5:9]) + 2 * 3
    groups = (" " * widths[0] + "  " + "seed (RHEL 16.2.6)".center(seed_w, "-") + "  "
              + "observed".center(obs_w, "-"))
    out = [groups, table, ""]
    out.append("columns: " + "; ".join(COLUMNS))
    diffs = result.report.differences
    if diffs:
        out.append("")
        out.append(f"{len(diffs)} difference(s) between expected and observed:")
        out += [f"  {d.key}: expected {_v(d.expected.reachable)} ({d.expected.rule}), "
                f"observed {d.observed.detail}" for d in diffs]
    t = result.timings
    out.append("")
    out.append(f"lab {result.mark}: {result.report.probes} probes; build {t.get('build', 0):.2f} s,"
               f" verify {t.get('verify', 0):.2f} s, teardown {t.get('teardown', 0):.2f} s, "
               f"total {t.get('total', 0):.2f} s")
    out.append("result: the observed table is the seed's" if result.ok
               else "result: DIFFERENT from the seed")
    return "\n".join(out) + "\n"


def _short(cell: str) -> str:
    return "depends" if cell.startswith("Depends") else cell


def _v(r: bool | None) -> str:
    return {True: YES, False: "no", None: "depends"}[r]


def to_json(result: DemoResult) -> dict[str, Any]:
    return {
        "lab": result.mark,
        "ok": result.ok,
        "seed": render.seed_json(),
        "expected": render.rows_json(result.expected),
        "observed": render.rows_json(result.observed),
        "bridged_pending": None if any(r.mode is ForwardMode.BRIDGE for r in result.observed)
        else result.bridged,
        "differences": [
            {"pair": str(d.key), "expected": d.expected.reachable, "rule": d.expected.rule,
             "observed": d.observed.detail} for d in result.report.differences
        ],
        "probes": result.report.probes,
        "timings": result.timings,
    }
