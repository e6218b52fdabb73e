"""The bridged-mode rules: which bridges, bonds and uplinks carry VM traffic correctly.

From the seed (RHEL guide, "Bridged network bonding") and the field notes: under a bridge with
VMs, bond modes 1, 2 and 4 work and 0, 3, 5, 6 break the connection; link monitoring must be MII
(miimon > 0) because ARP monitoring (arp_interval > 0) does not work behind a bridge; a Wi-Fi
uplink drops frames with foreign (VM) source MACs. Each finding is a ``Verdict``; ``force``
turns refusals into warnings, except for what no force can fix (a bridge that does not exist).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from virtnet.errors import UnsafeHostConfig
from virtnet.hostcfg.facts import HostView, Link, LinkKind
from virtnet.hostcfg.modes import GOOD_MODES_FIX

# Refusals no --force can override: there is nothing to attach to.
UNFORCEABLE = frozenset({"bridge-missing"})


class Severity(StrEnum):
    OK = "ok"
    WARNING = "warning"
    REFUSED = "refused"


@dataclass(frozen=True)
class Verdict:
    """One finding about one uplink (or the bridge itself, then ``uplink`` is the bridge)."""

    bridge: str | None  # None: a bond checked on its own, under no bridge
    uplink: str
    severity: Severity
    code: str  # stable: ok, bond-mode, arp-monitoring, no-miimon, wireless, bridge-missing, ...
    message: str
    fix: str | None = None
    forced: bool = False  # a refusal that force turned into a warning

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = str(self.severity)
        return d


@dataclass(frozen=True)
class CheckReport:
    verdicts: tuple[Verdict, ...]
    source: str = ""
    forced: bool = False

    @property
    def refused(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.severity is Severity.REFUSED]

    @property
    def warnings(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def forceable(self) -> bool:
        """Would --force let this through? Not when a bridge is missing."""
        return all(v.code not in UNFORCEABLE for v in self.refused)

    def uplinks(self, bridge: str) -> list[str]:
        """The uplinks found under BRIDGE (a bond counts once, not its ports)."""
        seen: list[str] = []
        for v in self.verdicts:
            if v.bridge == bridge and v.uplink != bridge and v.uplink not in seen:
                seen.append(v.uplink)
        return seen

    def raise_if_refused(self, *, can_force: bool = True) -> None:
        """UnsafeHostConfig naming every refusal and its fix; nothing when all passed."""
        refused = self.refused
        if not refused:
            return
        first = refused[0]
        lines = [v.message for v in refused]
        fixes = list(dict.fromkeys(v.fix for v in refused if v.fix))
        raise UnsafeHostConfig(
            "\n  ".join(lines),
            element=f"bridge {first.bridge}" if first.bridge else f"bond {first.uplink}",
            hint="; ".join(fixes)
            + ("; or pass --force to go ahead anyway" if can_force and self.forceable else ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "forced": self.forced,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def _refuse(
    bridge: str | None, uplink: str, code: str, message: str, fix: str, *, force: bool
) -> Verdict:
    if force:
        return Verdict(bridge, uplink, Severity.WARNING, code, message, fix, forced=True)
    return Verdict(bridge, uplink, Severity.REFUSED, code, message, fix)


def _where(bridge: str | None) -> str:
    return f"under bridge {bridge}" if bridge else "(under no bridge)"


def check_bond(link: Link, bridge: str | None, *, force: bool = False) -> list[Verdict]:
    """Mode and link monitoring of one bond that carries (or will carry) a bridge's traffic."""
    assert link.bond is not None
    s = link.bond
    name, where = link.name, _where(bridge)
    out: list[Verdict] = []
    if not s.mode.bridge_safe:
        out.append(
            _refuse(
                bridge,
                name,
                "bond-mode",
                f"bond {name} {where} uses {s.mode.label}, which breaks VM traffic behind a "
                f"bridge: {s.mode.why}",
                f"{GOOD_MODES_FIX} on {name}",
                force=force,
            )
        )
    if s.arp_interval > 0:
        out.append(
            _refuse(
                bridge,
                name,
                "arp-monitoring",
                f"bond {name} {where}, in {s.mode.label}, uses ARP link monitoring "
                f"(arp_interval={s.arp_interval}), which does not work behind a bridge: the "
                "ARP probes and replies that decide whether a port is up get mixed with the "
                "VMs' traffic through the bridge, so ports are wrongly marked down or up"
                + (
                    f" (the kernel refuses ARP monitoring in {s.mode.label} outright, so this "
                    "bond would not even be created)"
                    if s.mode.number in (4, 5, 6)
                    else ""
                ),
                f"on {name} set arp_interval=0 and miimon=100 (MII monitoring)",
                force=force,
            )
        )
    elif s.miimon <= 0:
        out.append(
            _refuse(
                bridge,
                name,
                "no-miimon",
                f"bond {name} {where}, in {s.mode.label}, has no link monitoring (miimon=0, "
                "arp_interval=0): a failed port keeps receiving its share of traffic and VMs "
                "lose their connection",
                f"on {name} set miimon=100 (MII monitoring)",
                force=force,
            )
        )
    if not out:
        out.append(
            Verdict(
                bridge,
                name,
                Severity.OK,
                "ok",
                f"bond {name} {where}: {s.mode.label} with MII monitoring (miimon={s.miimon}) "
                f"over {', '.join(link.ports) or 'no ports yet'}",
            )
        )
    return out


def _wireless(bridge: str | None, name: str, via: str | None, *, force: bool) -> Verdict:
    through = f" (a port of {via})" if via else ""
    return _refuse(
        bridge,
        via or name,
        "wireless",
        f"{name}{through} {_where(bridge)} is a Wi-Fi interface: a Wi-Fi client station may "
        "only send frames with its own MAC address, so the access point drops the VMs' frames "
        "(foreign source MACs) and bridged VMs get no connection",
        f"use a wired interface as the uplink of {bridge or 'the bridge'}, or give the VMs a NAT "
        "or routed network instead of bridged mode",
        force=force,
    )


def _check_uplink(
    view: HostView, bridge: str | None, name: str, *, force: bool, seen: set[str]
) -> list[Verdict]:
    if name in seen:  # a loop in a hand-written file; report each device once
        return []
    seen.add(name)
    link = view.get(name) or Link(name, LinkKind.UNKNOWN)
    if link.kind is LinkKind.WIRELESS:
        return [_wireless(bridge, name, None, force=force)]
    if link.kind is LinkKind.BOND and link.bond is not None:
        out = check_bond(link, bridge, force=force)
        for port in link.ports:
            p = view.get(port)
            if p is not None and p.kind is LinkKind.WIRELESS:
                out.append(_wireless(bridge, port, name, force=force))
        return out
    if link.kind is LinkKind.VLAN and link.lower:
        out = []
        for lower in link.lower:
            out.extend(_check_uplink(view, bridge, lower, force=force, seen=seen))
        return out
    kind = "interface" if link.kind is LinkKind.UNKNOWN else f"{link.kind} interface"
    return [Verdict(bridge, name, Severity.OK, "ok", f"{name} {_where(bridge)}: {kind}")]


def check_bridge(
    view: HostView,
    bridge: str,
    *,
    force: bool = False,
    require_up: bool = True,
    ignore_ports: Iterable[str] = (),
) -> list[Verdict]:
    """All verdicts for one bridge: it exists (and is up), and each uplink passes.

    Ports that are VMs' taps, or listed in ``ignore_ports`` (ports virtnet attached itself),
    are not uplinks and are not checked.
    """
    link = view.get(bridge)
    if link is None or link.kind is not LinkKind.BRIDGE:
        what = "does not exist" if link is None else f"is a {link.kind} interface, not a bridge"
        return [
            Verdict(
                bridge,
                bridge,
                Severity.REFUSED,
                "bridge-missing",
                f"bridge {bridge} {what} ({view.source})",
                f"create the bridge first, e.g. 'virtnet host bridge --name {bridge} "
                "--uplink IFACE --format nmcli', or name an existing bridge in <bridge name=...>",
            )
        ]
    out: list[Verdict] = []
    if require_up and link.state is not None and link.state not in ("up", "unknown"):
        out.append(
            _refuse(
                bridge,
                bridge,
                "bridge-down",
                f"bridge {bridge} is {link.state}: VMs attached to it have no connection",
                f"bring it up: 'ip link set {bridge} up' (or 'nmcli connection up {bridge}')",
                force=force,
            )
        )
    skip = set(ignore_ports)
    uplinks = [
        p
        for p in link.ports
        if p not in skip and (view.get(p) is None or view.links[p].kind is not LinkKind.TAP)
    ]
    if not uplinks:
        out.append(
            Verdict(
                bridge,
                bridge,
                Severity.WARNING,
                "no-uplink",
                f"bridge {bridge} has no uplink: VMs on it reach the host and each other but "
                "not the LAN, and the LAN cannot see them",
                f"add the physical interface (or a bond) to {bridge} as a port",
            )
        )
    seen: set[str] = set()
    for port in uplinks:
        out.extend(_check_uplink(view, bridge, port, force=force, seen=seen))
    return out


def check_view(
    view: HostView,
    bridges: Sequence[str] | None = None,
    *,
    force: bool = False,
    require_up: bool = True,
) -> CheckReport:
    """Check the named bridges (default: every bridge in VIEW), plus, when no bridge was named,
    every bond under no bridge, since it is likely meant to become an uplink."""
    names = list(bridges) if bridges else view.bridges()
    verdicts: list[Verdict] = []
    for br in names:
        verdicts.extend(check_bridge(view, br, force=force, require_up=require_up))
    if not bridges:
        for bond in view.bonds():
            link = view.links[bond]
            if view.upper_of(bond) is None and link.bond is not None:
                verdicts.extend(check_bond(link, None, force=force))
    return CheckReport(tuple(verdicts), source=view.source, forced=force)
