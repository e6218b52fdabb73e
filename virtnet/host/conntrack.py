"""Forget the connections a damaged ruleset let through, after the ruleset is repaired.

While virtnet's table is flushed or lacks an element, connections it refuses can be opened:
from outside into a NAT network, into or out of an isolated one. Their conntrack entries
would keep them working after the repair (replies and established traffic are accepted), so
a repair deletes every entry whose original destination is a subnet that refuses new inbound
connections, or whose original source is a subnet that forwards nothing. Host<->VM flows
among them are not forwarded: the kernel picks them up again as new flows that the input and
output hooks accept. A NAT network's own outbound flows start inside its subnet and are kept.

Flows whose other end is inside the same subnet or an address of the host itself (its DHCP
replies, an admin's ssh) passed no forward rule and are kept. One ``conntrack -L`` per
family inside the namespace; ``conntrack -D`` only for subnets that really have such
entries (usually none), one per pair of addresses.
"""

from __future__ import annotations

import ipaddress
import json
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


def _in(addr: str, subnet: Subnet) -> bool:
    try:
        return ipaddress.ip_address(addr) in subnet
    except ValueError:
        return False


def _local_addresses() -> set[str]:
    """The addresses of the namespace the calling thread is in."""
    proc = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True)
    try:
        links = json.loads(proc.stdout or "[]")
    except ValueError:
        return set()
    return {str(ipaddress.ip_address(a["local"])) for link in links
            for a in link.get("addr_info", []) if "local" in a}


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
            local: set[str] | None = None
            for subnet, direction in mine:
                hits = [(src, dst) for src, dst in flows if _in(dst if direction == "to"
                                                               else src, subnet)]
                if hits and local is None:
                    local = _local_addresses()
                # The other end inside the subnet (VM<->VM, VM<->gateway) or the host itself
                # (its DHCP replies, an admin's ssh): never forwarded, never a hole.
                hits = [(src, dst) for src, dst in hits
                        if not _in(src if direction == "to" else dst, subnet)
                        and (src if direction == "to" else dst) not in (local or set())]
                if not hits:
                    continue
                for src, dst in sorted(set(hits)):
                    subprocess.run(["conntrack", "-D", "-f", family, "-s", src, "-d", dst],
                                   capture_output=True, text=True)
                done.append(Forgotten(str(subnet), direction, len(hits)))
    return done
