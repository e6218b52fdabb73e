"""NAT: what is particular to it beyond its traits (virtnet.modes.traits).

Pure: imports only the model.
"""

from __future__ import annotations

from collections.abc import Sequence

# A new connection from outside into a NAT network is refused the way libvirt refuses it:
# ``reject`` (an immediate ICMP error or TCP RST), never a silent drop that leaves the
# sender waiting for a timeout. On OVN: the ACL that stops new connections from the router.
OVN_INBOUND_ACTION = "reject"


def ovn_inbound_acls(switch_router_port: str, priority: int,
                     families: Sequence[str]) -> tuple[tuple[str, int, str, str], ...]:
    """(direction, priority, match, action) of the ACLs that make a NAT network invisible
    from outside on OVN, for the masqueraded FAMILIES ('ipv4', 'ipv6').

    The allow-related ACL makes the switch stateful: the VMs' own connections are committed
    to conntrack, so their replies come back in (OVN passes established traffic before any
    ACL). A *new* connection arriving from the router (an outside host routing the subnet
    via the gateway) is rejected."""
    fams = [f for f in ("ipv4", "ipv6") if f in families]
    if not fams:
        return ()
    ip = "ip" if len(fams) == 2 else {"ipv4": "ip4", "ipv6": "ip6"}[fams[0]]
    return (
        ("from-lport", priority, ip, "allow-related"),
        ("to-lport", priority + 1, f'inport == "{switch_router_port}" && {ip} && ct.new',
         OVN_INBOUND_ACTION),
    )
