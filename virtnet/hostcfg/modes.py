"""The bonding driver's seven modes, and what each does to VM traffic behind a bridge.

Names and numbers are the kernel's own (``bond_mode_tbl`` in drivers/net/bonding/bond_options.c,
as sysfs prints them: ``active-backup 1``); ``proc_name`` is what ``/proc/net/bonding/BOND``
prints after "Bonding Mode:" (``bond_mode_name()`` in bond_main.c). Which modes work under a
bridge with VMs is the seed's rule (RHEL guide, "Bridged network bonding"): 1, 2 and 4.
"""

from __future__ import annotations

from dataclasses import dataclass

from virtnet.errors import InvalidDefinition

# The advice every refusal ends with: the modes that work and the monitoring they need.
GOOD_MODES_FIX = (
    "use mode 1 (active-backup), 2 (balance-xor) or 4 (802.3ad, needs LACP on the switch) "
    "with MII link monitoring (miimon=100)"
)


@dataclass(frozen=True)
class BondMode:
    number: int
    name: str  # sysfs / NetworkManager / nmstate spelling
    proc_name: str  # /proc/net/bonding spelling
    bridge_safe: bool
    why: str  # why it breaks VM traffic behind a bridge ("" when it does not)

    @property
    def label(self) -> str:
        """How messages name a mode: ``mode 0 (balance-rr)``."""
        return f"mode {self.number} ({self.name})"


MODES: tuple[BondMode, ...] = (
    BondMode(
        0,
        "balance-rr",
        "load balancing (round-robin)",
        False,
        "balance-rr sends consecutive frames round-robin over all ports, so one flow arrives "
        "out of order, and the switch, seeing the same source MACs on several ports, floods "
        "frames back in on another port: the bridge sees its own frames return and learns the "
        "VMs' MAC addresses on the bond (MAC flapping), so frames for VMs are lost",
    ),
    BondMode(1, "active-backup", "fault-tolerance (active-backup)", True, ""),
    BondMode(2, "balance-xor", "load balancing (xor)", True, ""),
    BondMode(
        3,
        "broadcast",
        "fault-tolerance (broadcast)",
        False,
        "broadcast transmits every frame on every port, so every frame a VM sends is "
        "duplicated and the copies come back in through the switch: the bridge learns the "
        "VMs' MAC addresses on the bond (MAC flapping) and VM connections break",
    ),
    BondMode(4, "802.3ad", "IEEE 802.3ad Dynamic link aggregation", True, ""),
    BondMode(
        5,
        "balance-tlb",
        "transmit load balancing",
        False,
        "balance-tlb spreads outgoing frames over the ports but receives only on the active "
        "port and moves MAC addresses between ports on failover: the switch learns each VM's "
        "MAC on whichever port its frames left by, and replies sent there are dropped, so VM "
        "MAC addresses get lost",
    ),
    BondMode(
        6,
        "balance-alb",
        "adaptive load balancing",
        False,
        "balance-alb does what balance-tlb does and also rewrites the source MAC of ARP replies "
        "to steer incoming traffic to a port: the switch and the LAN learn VM MAC addresses "
        "on the wrong port or not at all, so VM MAC addresses get lost and their traffic with "
        "them",
    ),
)

_BY_NAME = {m.name: m for m in MODES}
_BY_PROC = {m.proc_name: m for m in MODES}


_HINT = "use one of " + ", ".join(f"{m.name} ({m.number})" for m in MODES)


def mode_by_number(number: int, *, where: str = "bond mode") -> BondMode:
    if not 0 <= number < len(MODES):
        raise InvalidDefinition(f"bond mode {number} does not exist", element=where, hint=_HINT)
    return MODES[number]


def parse_mode(value: str | int, *, where: str = "bond mode") -> BondMode:
    """A mode as users, sysfs or NetworkManager write it: ``active-backup``, ``1``,
    ``active-backup 1`` (sysfs) or ``fault-tolerance (active-backup)`` (procfs)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return mode_by_number(value, where=where)
    text = str(value).strip()
    if text in _BY_NAME:
        return _BY_NAME[text]
    if text in _BY_PROC:
        return _BY_PROC[text]
    if text.isdigit():
        return mode_by_number(int(text), where=where)
    parts = text.split()
    if len(parts) == 2 and parts[0] in _BY_NAME and parts[1].isdigit():
        mode = _BY_NAME[parts[0]]
        if mode.number == int(parts[1]):
            return mode
    raise InvalidDefinition(
        f"unknown bond mode {text!r}",
        element=where,
        hint=_HINT,
    )
