"""``virtnet demo --backend ovn``: the seed's table on OVN, across two chassis.

Builds an OVN lab (virtnet.lab.ovn_bed) with one network of each connection type OVN carries
(nat, route, isolated, open), VMs spread over the chassis, verifies the seed's four columns
with packets (virtnet.lab.ovn_verify), prints the observed table beside the seed's, and
tears the lab down whatever happens (failure, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from virtnet.demo import DemoResult
from virtnet.lab import ovn_bed, ovn_verify
from virtnet.lab.spec import shorthand_network

OVN_DEMO_MODES = ("nat", "route", "isolated", "open")
NOT_ON_OVN = "not on OVN: VMs on host devices stay with the host backend"


def demo_spec(*, chassis: int = 2, vms: int = 2) -> ovn_bed.OvnLabSpec:
    nets = tuple(shorthand_network(m, i) for i, m in enumerate(OVN_DEMO_MODES))
    return ovn_bed.OvnLabSpec(networks=nets, chassis=chassis, vms_per_network=vms)


def run(state_dir: Path, *, progress: Callable[[str], None], chassis: int = 2,
        vms: int = 2) -> DemoResult:
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    with ovn_bed.signals_interrupt():
        progress(f"demo: an OVN lab with {', '.join(OVN_DEMO_MODES)} networks, {vms} VMs "
                 f"each spread over {chassis} chassis (userspace OVS, geneve), a gateway "
                 "chassis on an outside LAN whose host routes every VM subnet via the gateway")
        lab = ovn_bed.up(demo_spec(chassis=chassis, vms=vms), state_dir, progress=progress)
        timings["build"] = round(time.monotonic() - t0, 3)
        timings.update({f"lab_{k}": v for k, v in lab.st.timings.items()})
        try:
            progress(f"demo: probing the seed's columns (ICMP and TCP) in lab {lab.st.mark}")
            t1 = time.monotonic()
            report = ovn_verify.verify(lab.st)
            timings["verify"] = round(time.monotonic() - t1, 3)
            progress(f"demo: {report.probes} probes in {report.seconds:.2f} s, "
                     f"{len(report.differences)} differences")
        finally:
            t2 = time.monotonic()
            progress(f"demo: tearing down OVN lab {lab.st.mark}")
            lab.down()
            timings["teardown"] = round(time.monotonic() - t2, 3)
    timings["total"] = round(time.monotonic() - t0, 3)
    return DemoResult(lab.st.mark, report, timings, bridged=NOT_ON_OVN)


def text(result: DemoResult) -> str:
    """demo's table beside the seed's; open is carried as routed on OVN (no host firewall)."""
    from virtnet import demo

    return demo.text(result).replace(
        "= seed (host has no firewall rules: forwarding decides)",
        "= seed (OVN carries open as routed: no host firewall decides)")
