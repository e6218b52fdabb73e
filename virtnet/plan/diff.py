"""What differs between the desired state and what a host really has (pure).

The host side (virtnet.host.observe) reads the namespace into an ``Observed``; ``diff``
compares. Planning against a host therefore prints only what an apply would change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from virtnet.plan.desired import BridgeSpec, DesiredState


@dataclass(frozen=True)
class ObservedBridge:
    name: str
    alias: str | None
    mac: str
    mtu: int
    stp: bool
    addresses: frozenset[str]  # CIDR, link-local IPv6 left out
    up: bool
    kind: str = "bridge"


@dataclass(frozen=True)
class Observed:
    bridges: Mapping[str, ObservedBridge] = field(default_factory=dict)
    sysctls: Mapping[str, str | None] = field(default_factory=dict)
    files: Mapping[Path, str | None] = field(default_factory=dict)
    dnsmasq_running: Mapping[str, bool] = field(default_factory=dict)  # by network name
    nft_drift: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    op: str  # "+" create, "-" remove, "~" modify
    kind: str  # bridge | address | link | sysctl | file | dnsmasq | nftables
    subject: str
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.op} {self.kind} {self.subject}"
        return f"{text}: {self.detail}" if self.detail else text


def bridge_changes(spec: BridgeSpec, seen: ObservedBridge | None) -> list[Change]:
    if seen is None:
        return [Change("+", "bridge", spec.name, describe_bridge(spec))]
    out: list[Change] = []
    if seen.kind != "bridge":
        return [Change("~", "link", spec.name, f"is a {seen.kind}, not a bridge")]
    if seen.alias != spec.alias:
        out.append(Change("~", "link", spec.name, f"alias {seen.alias!r} -> {spec.alias!r}"))
    if spec.mac and seen.mac != spec.mac:
        out.append(Change("~", "link", spec.name, f"mac {seen.mac} -> {spec.mac}"))
    if spec.mtu and seen.mtu != spec.mtu:
        out.append(Change("~", "link", spec.name, f"mtu {seen.mtu} -> {spec.mtu}"))
    if seen.stp != spec.stp:
        out.append(Change("~", "link", spec.name, f"stp {_onoff(seen.stp)} -> {_onoff(spec.stp)}"))
    for addr in spec.addresses:
        if addr not in seen.addresses:
            out.append(Change("+", "address", f"{addr} dev {spec.name}"))
    for addr in sorted(seen.addresses - set(spec.addresses)):
        out.append(Change("-", "address", f"{addr} dev {spec.name}"))
    if not seen.up:
        out.append(Change("~", "link", spec.name, "down -> up"))
    return out


def diff(desired: DesiredState, observed: Observed) -> list[Change]:
    out: list[Change] = []
    for plan in desired.networks:
        out += bridge_changes(plan.bridge, observed.bridges.get(plan.bridge.name))
        for sc in plan.sysctls:
            have = observed.sysctls.get(sc.path)
            if have != sc.value:
                out.append(Change("~", "sysctl", sc.path.replace("/", "."),
                                  f"{have if have is not None else '(absent)'} -> {sc.value}"))
        if plan.dnsmasq is not None:
            for path, text in plan.dnsmasq.files:
                have_text = observed.files.get(path)
                if have_text is None:
                    out.append(Change("+", "file", str(path)))
                elif have_text != text:
                    out.append(Change("~", "file", str(path), "content differs"))
            if not observed.dnsmasq_running.get(plan.name, False):
                out.append(Change("+", "dnsmasq", plan.name, f"--conf-file={plan.dnsmasq.conf}"))
    out += [Change("~", "nftables", "inet virtnet", line) for line in observed.nft_drift]
    return out


def describe_bridge(spec: BridgeSpec) -> str:
    parts = [f"alias {spec.alias}"]
    if spec.mac:
        parts.append(f"mac {spec.mac}")
    if spec.mtu:
        parts.append(f"mtu {spec.mtu}")
    parts.append(f"stp {_onoff(spec.stp)}" + (f" delay {spec.delay}" if spec.stp else ""))
    parts += [f"address {a}" for a in spec.addresses]
    return ", ".join(parts)


def _onoff(flag: bool) -> str:
    return "on" if flag else "off"
