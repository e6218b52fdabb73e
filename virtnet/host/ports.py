"""VM ports on a network's bridge: a veth whose far end lives in another namespace, or a tap.

A port is marked by its alias ``virtnet-port:NETWORK kind=K peer=NS/NAME mac=M``, which is
all list/stop need: no per-port record to keep in step, and 1,000 ports cost 1,000 links.

A tap is never left open to anyone: the kernel lets any process that can open
``/dev/net/tun`` (0666 on stock Debian) attach to a persistent tap that has neither owner
nor group. So every tap gets an owner (TUNSETOWNER) and/or a group (TUNSETGROUP) — root
alone when none is asked for — and only a process with that user id (and in that group,
when both are set), or with CAP_NET_ADMIN, can attach. The alias records them for
``port-list`` (``owner=UID group=GID``, ``-`` for none).
"""

from __future__ import annotations

import errno
import fcntl
import grp
import os
import pwd
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
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE
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
    owner: int | None = None  # taps: the user id that may attach (TUNSETOWNER)
    group: int | None = None  # taps: the group id that may attach (TUNSETGROUP)


def _id_text(value: int | None) -> str:
    return "-" if value is None else str(value)


def alias(port: Port) -> str:
    peer = f"{port.peer_netns}/{port.peer_name}" if port.peer_netns else "-"
    text = f"{PORT_ALIAS}{port.network} kind={port.kind} peer={peer} mac={port.mac or '-'}"
    if port.kind == "tap":
        text += f" owner={_id_text(port.owner)} group={_id_text(port.group)}"
    return text


def _id_of(text: str | None) -> int | None:
    return None if text is None or text == "-" else int(text)


def resolve_user(value: str | int | None) -> int | None:
    """A user name or numeric id as a uid (None stays None)."""
    if value is None or isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid
    except KeyError:
        raise NotFound(f"user {value!r} does not exist", element="port owner",
                       hint="give an existing user name or a numeric uid") from None


def resolve_group(value: str | int | None) -> int | None:
    """A group name or numeric id as a gid (None stays None)."""
    if value is None or isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    try:
        return grp.getgrnam(value).gr_gid
    except KeyError:
        raise NotFound(f"group {value!r} does not exist", element="port group",
                       hint="give an existing group name or a numeric gid") from None


def check_options(kind: str, *, peer_netns: str | None, owner: int | None,
                  group: int | None) -> None:
    """Refuse options that do not apply to a port of KIND, instead of dropping them."""
    if kind in ("tap", "macvtap") and peer_netns is not None:
        raise InvalidDefinition(
            f"--peer-netns does not apply to a {kind} port (QEMU opens it on the host)",
            element="peer_netns", hint="drop --peer-netns, or use --kind veth")
    if kind not in ("tap", "macvtap") and (owner is not None or group is not None):
        raise InvalidDefinition(
            f"--owner/--group do not apply to a {kind} port (only a tap is opened by a "
            "process)", element="port owner", hint="drop --owner/--group, or use --kind tap")


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
        owner=_id_of(kv.get("owner")),
        group=_id_of(kv.get("group")),
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
    owner: int | None = None,
    group: int | None = None,
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
    check_options(kind, peer_netns=peer_netns, owner=owner, group=group)
    if kind == "tap" and owner is None and group is None:
        owner = 0  # root only: never a tap anyone may attach to
    explicit = name is not None
    for _ in range(8):
        pname = name if name is not None else new_name()
        check_name(pname)
        port = Port(
            name=pname, network=network, kind=kind, bridge=bridge, mac=mac,
            peer_netns=peer_netns if kind == "veth" else None,
            peer_name=peer_name if kind == "veth" else None,
            owner=owner if kind == "tap" else None,
            group=group if kind == "tap" else None,
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
        # Owner and group before the tap persists: it is never attachable by anyone else.
        if port.owner is not None:
            fcntl.ioctl(fd, TUNSETOWNER, port.owner)
        if port.group is not None:
            fcntl.ioctl(fd, TUNSETGROUP, port.group)
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
