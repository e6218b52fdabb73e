"""Starting and stopping one network's rules: incremental first, whole table as fallback.

The increment (``render_add``/``render_remove``) is one small transaction that costs the
same for network #1 and #1000. It is refused, atomically, when the live table is not what
it expects (missing table, someone deleted an element, a stale element overlaps); then the
whole table is replaced from the caller's list of active networks, which also repairs the
drift. Either way the result is the table rendered for the active networks.
"""

from __future__ import annotations

from collections.abc import Sequence

from virtnet.errors import HostError
from virtnet.firewall.elements import check_disjoint, has_rules
from virtnet.firewall.live import apply_script
from virtnet.firewall.render import render_add, render_remove, render_table
from virtnet.model.network import Network


def add_network(netns: str | None, net: Network, others: Sequence[Network]) -> str:
    """Put NET's rules in place; OTHERS are the networks already active (NET excluded).
    Returns "none" (no rules for its mode), "incremental" or "full"."""
    if not has_rules(net):
        return "none"
    check_disjoint([*others, net])  # a clear Conflict before touching the host
    try:
        apply_script(netns, render_add(net))
        return "incremental"
    except HostError:
        apply_script(netns, render_table([*others, net]))
        return "full"


def remove_network(netns: str | None, net: Network, remaining: Sequence[Network]) -> str:
    """Take NET's rules out; REMAINING are the networks that stay active.
    Returns "none", "incremental" or "full"."""
    if not has_rules(net):
        return "none"
    try:
        apply_script(netns, render_remove(net))
        return "incremental"
    except HostError:
        apply_script(netns, render_table(remaining))
        return "full"
