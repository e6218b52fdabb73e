"""Verify an OVN lab: the seed's four columns per network, proven with packets across chassis.

The same probes as the single-host lab (virtnet.reach.probe: raw ICMP echo, TCP to a
listener that records the source address it sees) between the lab's namespaces. On OVN the
seed's "host" is the network's gateway address (the router port, or on an isolated network
the gateway port virtnet gives it): a logical router answers ARP, ICMP echo and DHCP for
its own addresses but runs no TCP listener (TCP to it is dropped), so the host column is
probed with ICMP only.

Expected verdicts come from the connection type's traits: VMs always reach their gateway
and each other (on another chassis too); ``forwards_out`` decides "to outside" (nat seen as
its SNAT address, route/open as themselves); ``inbound_new`` decides "visible" (the outside
host routes every VM subnet via its network's gateway, the hard case). Open is carried as
routed (docs/ovn.md), so it is expected to be reachable where the seed says "depends".
"""

from __future__ import annotations

import time
from typing import Any

from virtnet.lab.ovn_bed import OvnLabState, addresses
from virtnet.model.network import Network
from virtnet.modes.traits import nat_applies, traits
from virtnet.reach import probe
from virtnet.reach.expected import Matrix, PairKey, Verdict
from virtnet.reach.topology import Outside, Topology
from virtnet.reach.verify import Report, Result


def topology(st: OvnLabState) -> Topology:
    return Topology(networks=tuple(st.network_defs()), vms_per_network=st.vms_per_network,
                    outside=(Outside("outside1", routes_to_vms=True, ipv6=False),))


def gateway_of(net: Network) -> str | None:
    return net.ipv4[0].address if net.ipv4 else None


def expected(st: OvnLabState) -> tuple[Matrix, dict[PairKey, str]]:
    """The pairs of the seed's four columns, and each probe's destination address."""
    topo = topology(st)
    addrs = addresses(st)
    pairs: dict[PairKey, Verdict] = {}
    dest: dict[PairKey, str] = {}

    def add(key: PairKey, verdict: Verdict, daddr: str | None) -> None:
        if daddr is not None:
            pairs[key] = verdict
            dest[key] = daddr

    for net in topo.networks:
        t = traits(net)
        vms = [v["id"] for v in st.vms if v["network"] == net.name]
        gw = gateway_of(net)
        ext = st.external_ips.get(net.name)
        for src in vms:
            add(PairKey(src, "host", "ipv4", "icmp"),
                Verdict(True, f"{net.name}'s gateway {gw} is a router port on every chassis"),
                gw)
            for dst in vms:
                if dst == src:
                    continue
                for proto in ("icmp", "tcp"):
                    add(PairKey(src, dst, "ipv4", proto),
                        Verdict(True, f"one logical switch vn-{net.name} across chassis"),
                        addrs.get(dst, {}).get("ipv4"))
            for proto in ("icmp", "tcp"):
                if t.forwards_out:
                    seen = "host" if nat_applies(net, "ipv4") else None
                    rule = (f"SNAT to {ext} on the gateway router" if seen else
                            f"routed by the gateway router ({ext})")
                    add(PairKey(src, "outside1", "ipv4", proto), Verdict(True, rule, seen),
                        addrs["outside1"]["ipv4"])
                else:
                    add(PairKey(src, "outside1", "ipv4", proto),
                        Verdict(False, "no router port leaves the switch"),
                        addrs["outside1"]["ipv4"])
                if t.inbound_new:
                    verdict = Verdict(True, f"outside routes the subnet via {ext}; no ACLs")
                elif t.forwards_out:
                    verdict = Verdict(False, "ACL to-lport from the router: ct.new reject")
                else:
                    verdict = Verdict(False, "no gateway: the subnet is not on the outside")
                add(PairKey("outside1", src, "ipv4", proto), verdict,
                    addrs.get(src, {}).get("ipv4"))
    return Matrix(topo, tuple(topo.endpoints()), pairs), dest


def verify(st: OvnLabState, *, timeout: float = 1.0) -> Report:
    t0 = time.monotonic()
    m, dest = expected(st)
    addrs = addresses(st)
    probes = [probe.Probe(k, addrs[k.src]["netns"], dest[k]) for k in m.pairs
              if k.src in addrs and addrs[k.src].get("ipv4")]
    namespaces = {a["netns"] for a in addrs.values()}
    with probe.listening(namespaces) as lst:
        observed = probe.run(probes, lst, timeout=timeout)
    # "host" in a TCP observation: the source address was a network's SNAT address.
    snat = {e.split("/")[0] for n, e in st.external_ips.items()}
    results = []
    for p in probes:
        obs = observed[p.key]
        src = addrs[p.key.src].get("ipv4")
        seen: str | None = None
        if obs.seen_from is not None:
            seen = "itself" if obs.seen_from == src else (
                "host" if obs.seen_from in snat else obs.seen_from)
        results.append(Result(p.key, m.pairs[p.key], obs, seen))
    return Report(m, results, round(time.monotonic() - t0, 3), probes=len(probes))


def report_json(st: OvnLabState, report: Report) -> dict[str, Any]:
    from virtnet.reach import render

    return {
        "lab": st.mark,
        "backend": "ovn",
        "probes": report.probes,
        "seconds": report.seconds,
        "expected_table": render.rows_json(report.expected_rows()),
        "observed_table": render.rows_json(report.observed_rows()),
        "results": [
            {"pair": str(r.key), "expected": r.expected.reachable, "rule": r.expected.rule,
             "observed": r.observed.ok, "detail": r.observed.detail, "seen_as": r.seen_as,
             "differs": r.differs} for r in report.results
        ],
    }
