"""Verify a lab: the expected matrix beside the observed one, every difference named.

The expectation is computed from the lab's definitions plus what the host really has where
the mode leaves it to the host (open mode): the lab host's nftables ruleset outside virtnet's
table and its forwarding sysctls are read first.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field

from virtnet.host.nsenter import entered
from virtnet.lab.bed import LabState, addresses, host_address_on
from virtnet.lab.spec import host_uplink, on_lan
from virtnet.reach import hostfw, probe
from virtnet.reach.expected import Matrix, PairKey, Verdict, expected
from virtnet.reach.table import Row, rows
from virtnet.reach.topology import Kind, Outside, Topology


@dataclass(frozen=True)
class Result:
    key: PairKey
    expected: Verdict
    observed: probe.Observation
    seen_as: str | None  # "host" / "itself" / an address (TCP only)

    @property
    def differs(self) -> bool:
        if self.expected.reachable is None:
            return False  # nothing to compare with: reported as "depends"
        if self.observed.ok != self.expected.reachable:
            return True
        return bool(self.observed.ok and self.key.proto == "tcp" and self.seen_as is not None
                    and (self.expected.seen_as or "itself") != self.seen_as)


@dataclass
class Report:
    matrix: Matrix
    results: list[Result]
    seconds: float
    probes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def differences(self) -> list[Result]:
        return [r for r in self.results if r.differs]

    @property
    def observed(self) -> dict[PairKey, bool]:
        return {r.key: r.observed.ok for r in self.results}

    def observed_rows(self) -> list[Row]:
        return rows(self.matrix, self.observed)

    def expected_rows(self) -> list[Row]:
        return rows(self.matrix)


def lab_topology(st: LabState) -> Topology:
    """The lab as the reach model sees it, with the host's real rules and sysctls."""
    ruleset = hostfw.read_ruleset(st.host_ns)
    with entered(st.host_ns):
        fwd4 = _read("/proc/sys/net/ipv4/ip_forward") == "1"
        fwd6 = _read("/proc/sys/net/ipv6/conf/all/forwarding") == "1"
    nets = tuple(st.network_defs())
    return Topology(
        networks=nets,
        vms_per_network=st.vms_per_network,
        outside=tuple(Outside(o["id"], routes_to_vms=st.outside_routes) for o in st.outside),
        ip_forward=fwd4,
        ip6_forward=fwd6,
        host_ruleset=ruleset,
        uplink=host_uplink(nets),
        lan_hairpin=st.lan_hairpin,
    )


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read().strip()


def plan_probes(st: LabState, m: Matrix) -> list[probe.Probe]:
    """One probe per pair of the matrix whose two ends have addresses in the lab."""
    addrs = addresses(st)
    nets = {n.name: n for n in m.topology.networks}
    out = []
    for key in m.pairs:
        src, dst = m.endpoint(key.src), m.endpoint(key.dst)
        if key.src not in addrs or key.dst not in addrs:
            continue
        version = 4 if key.family == "ipv4" else 6
        if dst.kind is Kind.HOST and src.kind is Kind.VM and src.network:
            net = nets[src.network]
            # bridged and macvtap VMs: the host's address on the LAN
            daddr = (addrs["host"].get(key.family) if on_lan(net)
                     else host_address_on(net, version))
        else:
            daddr = addrs[key.dst].get(key.family)
        if daddr is None or addrs[key.src].get(key.family) is None and src.kind is Kind.VM:
            continue
        out.append(probe.Probe(key, addrs[key.src]["netns"], daddr))
    return out


def _classify(seen: str | None, src_addr: str | None, host_addrs: set[str],
              src_is_host: bool) -> str | None:
    if seen is None:
        return None
    if src_addr is not None and seen == src_addr or src_is_host and seen in host_addrs:
        return "itself"
    if seen in host_addrs:
        return "host"
    return seen


def verify(st: LabState, *, timeout: float = 1.0) -> Report:
    t0 = time.monotonic()
    topo = lab_topology(st)
    m = expected(topo)
    probes = plan_probes(st, m)
    addrs = addresses(st)
    host_addrs = {a for a in (addrs["host"].get("ipv4"), addrs["host"].get("ipv6")) if a}
    for net in topo.networks:
        host_addrs |= {str(ipaddress.ip_interface(f"{ip.address}/{ip.prefixlen}").ip)
                       for ip in net.ips}
    namespaces = {a["netns"] for a in addrs.values()}
    with probe.listening(namespaces) as lst:
        observed = probe.run(probes, lst, timeout=timeout)
    results = []
    for p in probes:
        obs = observed[p.key]
        src_addr = addrs[p.key.src].get(p.key.family)
        results.append(Result(p.key, m.pairs[p.key], obs,
                              _classify(obs.seen_from, src_addr, host_addrs,
                                        p.key.src == "host")))
    return Report(m, results, round(time.monotonic() - t0, 3), probes=len(probes))
