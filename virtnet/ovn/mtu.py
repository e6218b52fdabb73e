"""The MTU a VM may use across chassis: the underlay's, less the tunnel's encapsulation.

A frame between VMs on two chassis travels inside a tunnel packet on the underlay. OVN's
geneve adds an outer IPv4 header (20), UDP (8), the geneve header (8), OVN's 8-byte option
(the logical ports) and the inner Ethernet header (14): 58 bytes. VXLAN adds 20 + 8 + 8 + 14
= 50. A VM MTU above ``underlay - overhead`` is dropped by the sending chassis
(ovs-vswitchd logs ``Message too long``): handshakes pass, bulk transfers stall.
"""

from __future__ import annotations

from virtnet.errors import InvalidDefinition

OVERHEAD = {"geneve": 58, "vxlan": 50}
DEFAULT_UNDERLAY_MTU = 1500
MIN_MTU = 576  # IPv4's minimum datagram every host must take (RFC 791); DHCP's mtu floor


def overhead(encap: str) -> int:
    try:
        return OVERHEAD[encap]
    except KeyError:
        raise InvalidDefinition(
            f"--encap {encap!r} is not an OVN encapsulation",
            element="--encap",
            hint=f"use one of {', '.join(OVERHEAD)}",
        ) from None


def vm_mtu(underlay_mtu: int, encap: str = "geneve") -> int:
    """The largest MTU a VM may use for its frames to cross the underlay."""
    return underlay_mtu - overhead(encap)


def check_underlay(underlay_mtu: int, encap: str = "geneve") -> None:
    if not MIN_MTU + overhead(encap) <= underlay_mtu <= 65535:
        raise InvalidDefinition(
            f"--underlay-mtu {underlay_mtu} cannot carry {encap} tunnels",
            element="--underlay-mtu",
            hint=f"give the underlay's MTU, {MIN_MTU + overhead(encap)}..65535 (usually 1500)",
        )


def warning(name: str, mtu: int, underlay_mtu: int, encap: str = "geneve") -> str | None:
    """Why network NAME's <mtu> cannot cross the underlay, with the fix; None if it can."""
    fits = vm_mtu(underlay_mtu, encap)
    if mtu <= fits:
        return None
    return (
        f"network '{name}': <mtu size='{mtu}'/> cannot cross a {underlay_mtu}-byte underlay "
        f"with {encap} ({overhead(encap)} bytes of encapsulation): frames above {fits} bytes "
        f"between chassis are dropped; set <mtu size='{fits}'/> or raise the underlay's MTU "
        f"to {mtu + overhead(encap)} (--underlay-mtu)"
    )
