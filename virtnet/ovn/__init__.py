"""OVN backend: the same network definitions, carried by OVN's northbound database.

Where users outgrow one host, a virtnet network (nat, route, open, isolated) becomes a
logical switch with OVN's native DHCP, and for the forwarding modes a gateway router on a
shared outside switch, with SNAT and stateful ACLs for nat. ``translate`` and the plan
functions are pure; ``apply`` runs a plan as one ovn-nbctl transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from virtnet.model.network import Network
from virtnet.ovn import nbctl, state
from virtnet.ovn.nbctl import Command, format_commands
from virtnet.ovn.plan import (
    apply_commands,
    delete_commands,
    networks,
    port_commands,
    port_delete_commands,
)
from virtnet.ovn.state import NbState
from virtnet.ovn.topology import OvnNetwork, OvnOptions, translate, translate_all

__all__ = [
    "Command",
    "NbState",
    "OvnNetwork",
    "OvnOptions",
    "apply",
    "apply_commands",
    "delete",
    "delete_commands",
    "format_commands",
    "networks",
    "plan",
    "port_add",
    "port_commands",
    "port_delete_commands",
    "translate",
    "translate_all",
]


def plan(
    nets: Sequence[Network], opts: OvnOptions | None = None, db: str | None = None
) -> list[Command]:
    """The commands that make ``db`` (or an empty database, when None) carry ``nets``."""
    ovn = translate_all(nets, opts)
    current = state.read(db) if db else None
    return apply_commands(ovn, opts, current)


def apply(nets: Sequence[Network], db: str, opts: OvnOptions | None = None) -> list[Command]:
    """Make ``db`` carry ``nets`` in one transaction; the commands that ran."""
    cmds = plan(nets, opts, db)
    nbctl.run(db, cmds)
    return cmds


def delete(name: str, db: str) -> list[Command]:
    cmds = delete_commands(name, state.read(db))
    nbctl.run(db, cmds)
    return cmds


def port_add(
    network: str, port: str, db: str, *, mac: str | None = None, ip: str | None = None
) -> list[Command]:
    cmds = port_commands(network, port, state.read(db), mac=mac, ip=ip)
    nbctl.run(db, cmds)
    return cmds
