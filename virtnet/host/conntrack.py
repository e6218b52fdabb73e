"""Forget the connections a damaged ruleset let through, after the ruleset is repaired.

While virtnet's table is flushed or lacks an element, connections it refuses can be opened:
from outside into a NAT network, into or out of an isolated one. Their conntrack entries
would keep them working after the repair (replies and established traffic are accepted), so
a repair deletes every entry whose original destination is a subnet that refuses new inbound
connections, or whose original source is a subnet that forwards nothing. Host<->VM flows
among them are not forwarded: the kernel picks them up again as new flows that the input and
output hooks accept. A NAT network's own outbound flows start inside its subnet and are kept.

One ``conntrack -L`` per family inside the namespace; ``conntrack -D`` only for subnets that
really have such entries (usually none).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from virtnet.host.nsenter import entered
from virtnet.model.network import Network
from virtnet.modes.traits import forwards_nothing, refuses_new_inbound

Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network
_FIRST_TUPLE = re.compile(r"\bsrc=(\S+) dst=(\S+)")


@dataclass(frozen=True)
class Forgotten:
    """Flows deleted for one subnet: ``direction`` is 'to' (inbound) or 'from' (outbound)."""

    subnet: str
    direction: str
    flows: int


def guarded(nets: Sequence[Network]) -> list[tuple[Subnet, str]]:
    """(subnet, 'to'|'from') pairs whose flows a repair must forget. Pure."""
    out: list[tuple[Subnet, str]] = []
    for net in nets:
        nothing_out = forwards_nothing(net)
        for ip in net.ips:
            fam = "ipv6" if ip.is_ipv6 else "ipv4"
            if refuses_new_inbound(net, fam):
                out.append((ip.network, "to"))
            if nothing_out:
                out.append((ip.network, "from"))
    return out


def _flows(family: str) -> list[tuple[str, str]]:
    proc = subprocess.run(["conntrack", "-L", "-f", family], capture_output=True, text=True)
    pairs = []
    for line in proc.stdout.splitlines():
        m = _FIRST_TUPLE.search(line)  # the first src/dst pair is the original direction
        if m:
            pairs.append((m.group(1), m.group(2)))
    return pairs


def available() -> bool:
    return shutil.which("conntrack") is not None


def forget_admitted(netns: str | None, nets: Sequence[Network]) -> list[Forgotten]:
    """Delete the flows into/out of NETS' guarded subnets; what was deleted, per subnet."""
    todo = guarded(nets)
    if not todo or not available():
        return []
    done: list[Forgotten] = []
    with entered(netns):
        for family, version in (("ipv4", 4), ("ipv6", 6)):
            mine = [(s, d) for s, d in todo if s.version == version]
            if not mine:
                continue
            flows = _flows(family)
            for subnet, direction in mine:
                hits = sum(
                    1 for src, dst in flows
                    if ipaddress.ip_address(dst if direction == "to" else src) in subnet
                )
                if not hits:
                    continue
                flag = "-d" if direction == "to" else "-s"
                subprocess.run(["conntrack", "-D", "-f", family, flag, str(subnet)],
                               capture_output=True, text=True)
                done.append(Forgotten(str(subnet), direction, hits))
    return done
