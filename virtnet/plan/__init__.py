"""Planning: definitions -> desired host state -> difference from a host. Touches nothing."""

from __future__ import annotations

from dataclasses import dataclass

from virtnet.plan.desired import (
    BridgeSpec,
    DesiredState,
    DnsmasqSpec,
    NetworkPlan,
    Sysctl,
    desired_state,
    plan_network,
)
from virtnet.plan.diff import (
    Change,
    Observed,
    ObservedBridge,
    bridge_changes,
    describe_bridge,
    diff,
)
from virtnet.plan.marks import ALIAS_PREFIX, BridgeMark, alias_for, owner_id, read_mark


@dataclass(frozen=True)
class Plan:
    """A desired state and, when planned against a host, what differs there (else None)."""

    desired: DesiredState
    changes: tuple[Change, ...] | None = None

    @property
    def in_sync(self) -> bool:
        return self.changes is not None and not self.changes

    def __str__(self) -> str:
        if self.changes is not None:
            if not self.changes:
                return "no changes: the host matches the plan\n"
            return "".join(f"{c}\n" for c in self.changes)
        return render_desired(self.desired)


def render_desired(desired: DesiredState) -> str:
    lines: list[str] = []
    for p in desired.networks:
        lines.append(f"network {p.name} ({p.network.mode.value})")
        lines.append(f"  bridge {p.bridge.name}: {describe_bridge(p.bridge)}")
        lines += [f"  sysctl {s}" for s in p.sysctls]
        if p.dnsmasq:
            lines.append(f"  dnsmasq --conf-file={p.dnsmasq.conf}")
            for path, text in p.dnsmasq.files:
                lines.append(f"  file {path}:")
                lines += [f"    {t}" for t in text.splitlines()]
        if not p.firewall:
            lines.append("  firewall: none (open mode)")
    lines.append("nftables:")
    lines += [f"  {t}" for t in desired.nft_script.splitlines()]
    return "\n".join(lines) + "\n"


__all__ = [
    "ALIAS_PREFIX",
    "BridgeMark",
    "BridgeSpec",
    "Change",
    "DesiredState",
    "DnsmasqSpec",
    "NetworkPlan",
    "Observed",
    "ObservedBridge",
    "Plan",
    "Sysctl",
    "alias_for",
    "owner_id",
    "read_mark",
    "bridge_changes",
    "desired_state",
    "diff",
    "plan_network",
    "render_desired",
]
