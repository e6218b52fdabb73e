"""A live host's links from ``ip -d -j link show`` (iproute2's JSON), in any namespace.

This is how the engine inspects a bridge in the namespace it works in: sysfs shows only the
namespace of whoever mounted it, while ``ip -n NS`` asks the kernel over netlink there.
Bond settings come from ``linkinfo.info_data`` (``mode`` by name, ``miimon``,
``arp_interval``, ``arp_ip_target``, as iproute2's iplink_bond.c prints them). netlink does not
say whether a device is Wi-Fi, so that still comes from sysfs (``wireless/``, ``phy80211``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from virtnet.errors import HostError
from virtnet.host import netns as netns_mod
from virtnet.hostcfg.facts import BondSettings, HostView, Link, LinkKind
from virtnet.hostcfg.modes import parse_mode

_KINDS = {
    "bond": LinkKind.BOND,
    "bridge": LinkKind.BRIDGE,
    "vlan": LinkKind.VLAN,
    "tun": LinkKind.TAP,
}


def _state(entry: dict[str, Any]) -> str:
    # A bridge whose ports are all down reports operstate DOWN (no carrier) although it is
    # up; what matters for attaching VMs is that it was set up (IFF_UP).
    if "UP" not in entry.get("flags", []):
        return "down"
    return "up"


def parse_ip_link(
    entries: Sequence[dict[str, Any]], *, wireless: Collection[str] = (), source: str = "ip link"
) -> HostView:
    """HostView from the parsed JSON list of ``ip -d -j link show``."""
    links: dict[str, Link] = {}
    members: dict[str, list[str]] = {}
    for e in entries:
        name = e.get("ifname")
        if not isinstance(name, str):
            continue
        info = e.get("linkinfo") or {}
        kind_name = info.get("info_kind")
        if name in wireless:
            kind = LinkKind.WIRELESS
        elif kind_name in _KINDS:
            kind = _KINDS[kind_name]
        elif e.get("link_type") == "ether":
            kind = LinkKind.ETHERNET
        else:
            kind = LinkKind.OTHER
        bond = None
        if kind is LinkKind.BOND:
            data = info.get("info_data") or {}
            where = f"{source}: {name}"
            try:
                bond = BondSettings(
                    parse_mode(data.get("mode", "balance-rr"), where=where),
                    int(data.get("miimon", 0)),
                    int(data.get("arp_interval", 0)),
                    tuple(str(t) for t in data.get("arp_ip_target", [])),
                )
            except (TypeError, ValueError) as exc:
                raise HostError(f"{where}: unexpected bond data from ip: {exc}") from None
        lower: tuple[str, ...] = ()
        if kind is LinkKind.VLAN and isinstance(e.get("link"), str):
            lower = (e["link"],)
        master = e.get("master")
        if isinstance(master, str):
            members.setdefault(master, []).append(name)
        alias = e.get("ifalias") if isinstance(e.get("ifalias"), str) else None
        links[name] = Link(name, kind, _state(e), (), lower, bond, source, alias)
    for master, ports in members.items():
        if master in links:
            links[master] = replace(links[master], ports=tuple(sorted(ports)))
    return HostView(links, source=source)


def _wireless_in(netns: str | None) -> set[str]:
    if netns is None:
        net = Path("/sys/class/net")
        return {
            d.name
            for d in net.iterdir()
            if (d / "wireless").is_dir() or (d / "phy80211").is_symlink()
        }
    # `ip netns exec` mounts the namespace's own sysfs for the command it runs.
    r = netns_mod.run(
        netns,
        ["sh", "-c", "cd /sys/class/net && ls -d */wireless */phy80211 2>/dev/null; true"],
    )
    return {line.split("/", 1)[0] for line in r.stdout.split() if "/" in line}


def read_live(netns: str | None) -> HostView:
    """The links of NETNS (None: the root namespace) as the rules see them."""
    r = netns_mod.run(netns, ["ip", "-d", "-j", "link", "show"])
    try:
        entries = json.loads(r.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise HostError(f"'ip -d -j link show' printed something that is not JSON: {exc}") from None
    where = f"namespace {netns}" if netns else "the root namespace"
    return parse_ip_link(entries, wireless=_wireless_in(netns), source=f"ip link in {where}")
