"""VM ports on a network's bridge: a veth whose far end lives in another namespace, or a tap.

A port is marked by its alias ``virtnet-port:NETWORK kind=K peer=NS/NAME mac=M``, which is
all list/stop need: no per-port record to keep in step, and 1,000 ports cost 1,000 links.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import struct
from dataclasses import dataclass, replace
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from virtnet.errors import Conflict, HostError, InvalidDefinition, NotFound
from virtnet.host import netns as netns_mod
from virtnet.host.links import PORT_ALIAS, LinkInfo, Netlink
from virtnet.host.nsenter import entered

KINDS = ("veth", "tap")
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000


@dataclass(frozen=True)
class Port:
    name: str  # the host-side device, enslaved to the bridge
    network: str
    kind: str  # veth | tap
    bridge: str
    mac: str | None  # the VM side's MAC (veth far end, or the guest NIC behind a tap)
    peer_netns: str | None = None
    peer_name: str | None = None


def alias(port: Port) -> str:
    peer = f"{port.peer_netns}/{port.peer_name}" if port.peer_netns else "-"
    return f"{PORT_ALIAS}{port.network} kind={port.kind} peer={peer} mac={port.mac or '-'}"


def alias_network(alias: str | None) -> str | None:
    """The network a port's alias names; None when ALIAS is not a port's."""
    if not alias or not alias.startswith(PORT_ALIAS):
        return None
    return alias[len(PORT_ALIAS):].split(" ", 1)[0]


def parse_alias(link: LinkInfo, bridge: str) -> Port | None:
    if not link.alias or not link.alias.startswith(PORT_ALIAS):
        return None
    head, *fields = link.alias[len(PORT_ALIAS):].split(" ")
    kv = dict(f.split("=", 1) for f in fields if "=" in f)
    peer = kv.get("peer", "-")
    peer_ns, _, peer_name = peer.partition("/")
    return Port(
        name=link.name,
        network=head,
        kind=kv.get("kind", "veth"),
        bridge=bridge,
        mac=None if kv.get("mac", "-") == "-" else kv["mac"],
        peer_netns=None if peer == "-" else peer_ns,
        peer_name=None if peer == "-" else peer_name,
    )


def check_name(name: str) -> None:
    if not (0 < len(name) <= 15) or "/" in name or " " in name or name in (".", ".."):
        raise InvalidDefinition(
            f"port name {name!r} is not a valid interface name",
            element="port name",
            hint="use 1-15 characters without '/' or spaces",
        )


def new_name() -> str:
    """A fresh port name: 'vnet' plus 6 random hex digits (no scan of existing links)."""
    return "vnet" + secrets.token_hex(3)


def tap_mac(mac: str) -> str:
    """The host side of a tap gets the guest MAC with 0xFE first, as libvirt does, so the
    bridge never takes the guest's own MAC as its address."""
    return "fe" + mac[2:]


def create(
    nl: Netlink,
    *,
    network: str,
    bridge: str,
    bridge_index: int,
    kind: str,
    name: str | None,
    peer_netns: str | None,
    peer_name: str,
    mac: str | None,
) -> Port:
    if kind not in KINDS:
        raise InvalidDefinition(
            f"port kind {kind!r} is not known", element="port kind", hint="use veth or tap"
        )
    if kind == "veth":
        if not peer_netns:
            raise InvalidDefinition(
                "a veth port needs the namespace its far end goes into",
                element="peer_netns",
                hint="pass peer_netns (--peer-netns NAME), or use kind tap",
            )
        if not netns_mod.exists(peer_netns):
            raise NotFound(f"network namespace {peer_netns!r} does not exist",
                           hint=f"create it first: ip netns add {peer_netns}")
        check_name(peer_name)
    explicit = name is not None
    for _ in range(8):
        pname = name if name is not None else new_name()
        check_name(pname)
        port = Port(
            name=pname, network=network, kind=kind, bridge=bridge, mac=mac,
            peer_netns=peer_netns if kind == "veth" else None,
            peer_name=peer_name if kind == "veth" else None,
        )
        if nl.get(pname) is not None:  # TUNSETIFF would silently attach to an existing tap
            if explicit:
                raise Conflict(f"cannot create port {pname}: an interface of that name exists",
                               hint="choose another port name")
            continue
        try:
            if kind == "veth":
                _create_veth(nl, port)
            else:
                _create_tap(nl, port)
            break
        except NetlinkError as exc:
            if exc.code == errno.EEXIST and not explicit:
                continue  # a random name clashed: draw another
            where = f"in namespace {peer_netns}" if exc.code == errno.EEXIST and kind == "veth" \
                else ""
            raise Conflict(
                f"cannot create port {pname} {where}: {exc.args[-1]}".replace("  ", " "),
                hint="choose another port name (or peer name)",
            ) from None
    else:
        raise HostError("could not find a free port name after 8 tries")
    try:
        link = nl.get(port.name)
        assert link is not None
        nl._set(link.index, ifalias=alias(port))
        nl.set_master(link.index, bridge_index)
        nl.set_up(link.index)
    except Exception:
        nl.delete(port.name)
        raise
    return port


def _create_veth(nl: Netlink, port: Port) -> None:
    peer: dict[str, Any] = {"ifname": port.peer_name, "net_ns_fd": port.peer_netns}
    if port.mac:
        peer["address"] = port.mac
    nl.ipr.link("add", ifname=port.name, kind="veth", peer=peer)


def _create_tap(nl: Netlink, port: Port) -> None:
    """A persistent tap made with the TUN ioctls (netlink cannot create one), in nl's netns."""
    with entered(nl.netns):
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        ifr = struct.pack("16sH", port.name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
        try:
            fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as exc:
            raise NetlinkError(exc.errno, exc.strerror) from None
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    finally:
        os.close(fd)
    if port.mac:
        link = nl.get(port.name)
        assert link is not None
        nl._set(link.index, address=tap_mac(port.mac))


def of_network(nl: Netlink, network: str, bridge: str, bridge_index: int | None) -> list[Port]:
    """The ports of NETWORK: links marked with its port alias. A port that lost its bridge
    (the bridge was deleted under it) is listed with bridge ''."""
    out = []
    for link in nl.links():
        port = parse_alias(link, bridge)
        if port is None or port.network != network:
            continue
        if bridge_index is None or link.master != bridge_index:
            port = replace(port, bridge="")
        out.append(port)
    return out
