"""Bridged mode: ``<forward mode='bridge'/>`` with ``<bridge name='br0'/>``.

VMs join a bridge the host already has and appear on its LAN like any other machine, taking
addresses from the LAN's own DHCP server. virtnet creates no bridge, no firewall rules and no
dnsmasq for such a network: starting it checks that the bridge exists and is up and that its
uplinks carry VM traffic (the rules in ``virtnet.hostcfg.rules``: bond modes 1, 2, 4 with MII
monitoring, no Wi-Fi), refusing otherwise unless forced; ports then attach to that bridge.

The engine calls ``start_bridged`` for such networks and stores ``runtime_record``; the record's
``host_bridge: true`` tells stop and reconcile that the bridge is the host's, never to delete or
recreate it (``recheck`` re-runs the checks instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from virtnet.errors import NotFound, NotSupported
from virtnet.hostcfg.facts import HostView, LinkKind
from virtnet.hostcfg.iplink import read_live
from virtnet.hostcfg.rules import CheckReport, Severity, check_bridge
from virtnet.model.network import ForwardMode, Network

PORT_ALIAS = "virtnet-port:"  # as virtnet.host.links marks the ports virtnet attached


def is_host_bridge(net: Network) -> bool:
    """Bridge mode on a named host bridge (bridge mode with an <interface> pool is macvtap)."""
    return net.mode is ForwardMode.BRIDGE and bool(net.bridge_name)


@dataclass(frozen=True)
class BridgedStart:
    network: str
    bridge: str
    uplinks: tuple[str, ...]
    report: CheckReport
    messages: tuple[str, ...]


def _summary(view: HostView, bridge: str, report: CheckReport) -> str:
    parts = []
    for up in report.uplinks(bridge):
        link = view.get(up)
        if link is not None and link.bond is not None:
            b = link.bond
            mon = f"miimon {b.miimon}" if b.miimon else f"arp_interval {b.arp_interval}"
            parts.append(f"{up} ({b.mode.label}, {mon}, ports {', '.join(link.ports) or 'none'})")
        elif link is not None:
            parts.append(f"{up} ({link.kind})")
        else:
            parts.append(up)
    return ", ".join(parts) or "none"


def check_bridged(net: Network, view: HostView, *, force: bool = False) -> BridgedStart:
    """Pure: the checks for starting NET on the host VIEW shows. Raises NotFound when the
    bridge does not exist, UnsafeHostConfig when a rule refuses (and not FORCE)."""
    if not is_host_bridge(net):
        raise NotSupported(
            f"network {net.name!r} is not a bridged network on a host bridge",
            element="forward",
            hint="bridged mode is <forward mode='bridge'/> with <bridge name='br0'/>",
        )
    bridge = net.bridge_name
    assert bridge is not None
    if net.virtualport is not None and net.virtualport.type == "openvswitch":
        raise NotSupported(
            f"network {net.name!r}: Open vSwitch bridges are not supported",
            element="virtualport",
            hint="use a Linux bridge, or attach VMs to OVS with ovs-vsctl",
        )
    ours = [link.name for link in view if (link.alias or "").startswith(PORT_ALIAS)]
    verdicts = tuple(check_bridge(view, bridge, force=force, ignore_ports=ours))
    report = CheckReport(verdicts, source=view.source, forced=force)
    missing = [v for v in report.refused if v.code == "bridge-missing"]
    if missing:
        raise NotFound(
            f"network {net.name!r}: {missing[0].message}",
            element=f"bridge[name='{bridge}']",
            hint=missing[0].fix,
        )
    report.raise_if_refused()
    messages = [
        f"bridged network {net.name!r}: VMs join host bridge {bridge}; uplinks: "
        f"{_summary(view, bridge, report)}; addresses come from the LAN's DHCP server"
    ]
    for v in report.warnings:
        messages.append(f"warning: {v.message}" + (f" (fix: {v.fix})" if v.fix else ""))
    return BridgedStart(net.name, bridge, tuple(report.uplinks(bridge)), report, tuple(messages))


def start_bridged(net: Network, *, netns: str | None, force: bool = False) -> BridgedStart:
    """Check the live bridge in NETNS for NET. Changes nothing on the host: ports attach to
    the existing bridge later, one by one."""
    return check_bridged(net, read_live(netns), force=force)


def runtime_record(net: Network, started: BridgedStart, definition_json: Any) -> dict[str, Any]:
    """The engine's runtime record for a bridged network: no bridge, rules or dnsmasq of its
    own; ``host_bridge`` keeps stop/reconcile from deleting or recreating the host's bridge."""
    return {
        "state": "active",
        "definition": definition_json,
        "bridge": started.bridge,
        "host_bridge": True,
        "firewall": False,
        "dnsmasq": None,
        "ports": False,
        "uplinks": list(started.uplinks),
        "forced": started.report.forced,
    }


def recheck(net: Network, *, netns: str | None) -> list[str]:
    """For reconcile: what is wrong with an active bridged network's host bridge now
    (virtnet never repairs the host's bridge; it reports)."""
    view = read_live(netns)
    bridge = net.bridge_name or ""
    link = view.get(bridge)
    if link is None or link.kind is not LinkKind.BRIDGE:
        return [f"host bridge {bridge} is gone: its VMs have no connection (recreate it)"]
    ours = [x.name for x in view if (x.alias or "").startswith(PORT_ALIAS)]
    return [
        f"{v.message} (fix: {v.fix})"
        for v in check_bridge(view, bridge, ignore_ports=ours)
        if v.severity is not Severity.OK
    ]
