"""The comparison table of the seed (section 16.2.6): one row per network, four columns.

A cell summarises the matrix over the network's VMs (IPv4, ICMP and TCP): "YES" when every
probe in it is reachable, "no" when none is, "partly" when some are, and "Depends on the host's
firewall rules" when the answer needs rules virtnet does not own. ``seed_style`` prints open
mode the way the seed does, whatever the host's rules are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from virtnet.direct import is_direct
from virtnet.model.network import ForwardMode
from virtnet.reach.expected import Matrix, PairKey, Verdict
from virtnet.reach.topology import Kind

COLUMNS = (
    "Connection to the host",
    "Connection to other VMs on the host",
    "Connection to outside locations",
    "Visible to outside locations",
)
YES, NO, DEPENDS, PARTLY = "YES", "no", "Depends on the host's firewall rules", "partly"

MODE_ROWS = {
    ForwardMode.BRIDGE: "Bridged mode",
    ForwardMode.NAT: "NAT",
    ForwardMode.ROUTE: "Routed mode",
    ForwardMode.ISOLATED: "Isolated mode",
    ForwardMode.OPEN: "Open mode",
}

# Section 16.2.6 of shared/seed/network-connection-types.txt, row by row (tests compare this
# with the file itself).
SEED_TABLE: dict[str, tuple[str, str, str, str]] = {
    "Bridged mode": (YES, YES, YES, YES),
    "NAT": (YES, YES, YES, NO),
    "Routed mode": (YES, YES, YES, YES),
    "Isolated mode": (YES, YES, NO, NO),
    "Open mode": (DEPENDS, DEPENDS, DEPENDS, DEPENDS),
}


@dataclass(frozen=True)
class Row:
    network: str
    mode: ForwardMode
    cells: tuple[str, str, str, str]
    rules: tuple[str, str, str, str]  # the deciding rule of each cell (first probe's)
    macvtap: bool = False  # VMs on macvtap devices (libvirt's direct modes)

    @property
    def label(self) -> str:
        if self.macvtap:  # <forward mode='bridge'> without a bridge is macvtap, not bridged
            return f"macvtap {self.mode.value}"
        return MODE_ROWS.get(self.mode, self.mode.value)


def summarise(verdicts: Iterable[bool | None]) -> str:
    vals = list(verdicts)
    if not vals:
        return "-"
    if any(v is None for v in vals):
        return DEPENDS
    if all(vals):
        return YES
    if not any(vals):
        return NO
    return PARTLY


def rows(
    matrix: Matrix,
    observed: Mapping[PairKey, bool] | None = None,
    *,
    seed_style: bool = False,
    family: str = "ipv4",
) -> list[Row]:
    """The table for every network of the matrix; from OBSERVED results when given."""
    topo = matrix.topology
    out: list[Row] = []
    for net in topo.networks:
        vms = [e.id for e in matrix.endpoints if e.kind is Kind.VM and e.network == net.name]
        outs = [e.id for e in matrix.endpoints if e.kind is Kind.OUTSIDE
                and topo.outside_host(e.id).routes_to_vms]
        groups: list[Callable[[PairKey], bool]] = [
            lambda k, vms=vms: k.src in vms and k.dst == "host",  # type: ignore[misc]
            lambda k, vms=vms: k.src in vms and k.dst in vms,  # type: ignore[misc]
            lambda k, vms=vms, outs=outs: k.src in vms and k.dst in outs,  # type: ignore[misc]
            lambda k, vms=vms, outs=outs: k.src in outs and k.dst in vms,  # type: ignore[misc]
        ]
        cells: list[str] = []
        rules: list[str] = []
        for pick in groups:
            keys = [k for k in matrix.pairs if k.family == family and pick(k)]
            if observed is not None:
                keys = [k for k in keys if k in observed]
                cells.append(summarise(observed[k] for k in keys))
            else:
                cells.append(summarise(matrix.pairs[k].reachable for k in keys))
            rules.append(matrix.pairs[keys[0]].rule if keys else "")
        if seed_style and net.mode is ForwardMode.OPEN:
            cells = [DEPENDS] * 4
        out.append(Row(net.name, net.mode, tuple(cells), tuple(rules),  # type: ignore[arg-type]
                       macvtap=is_direct(net)))
    return out


def matches_seed(row: Row, expected_row: Row | None = None) -> list[bool]:
    """Per cell: does this (observed) row agree with the seed? For open mode the seed says
    "depends", so the cell agrees when it equals what the host's actual rules give."""
    seed = SEED_TABLE.get(row.label)
    if seed is None:
        return [False] * 4
    out = []
    for i, cell in enumerate(row.cells):
        if seed[i] == DEPENDS:
            out.append(expected_row is not None and cell == expected_row.cells[i])
        else:
            out.append(cell == seed[i])
    return out


def verdict_text(v: Verdict | bool | None) -> str:
    if isinstance(v, Verdict):
        v = v.reachable
    return {True: YES, False: NO, None: "depends"}[v]
