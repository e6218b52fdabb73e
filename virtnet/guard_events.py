"""What the guard listens to, as file descriptors a ``selectors`` loop can wait on.

- ``NftEvents``: the kernel's nftables change notifications (netlink group NFNLGRP_NFTABLES,
  what ``nft monitor`` itself subscribes to) in one namespace. Subscribing is synchronous:
  once the constructor returns no change can be missed, which a spawned ``nft monitor`` (that
  subscribes some time after it starts) cannot promise. Each transaction ends with a
  "new generation" message naming the process that made it: that is "who broke it".
- ``LinkEvents``: rtnetlink link and address notifications in the namespace. A plain socket
  rather than pyroute2: its 0.9 synchronous API wraps an asyncio core, while a non-blocking
  ``recv`` on our own socket is predictable inside a ``selectors`` loop, and the two headers
  the guard needs (ifinfomsg, ifaddrmsg) take a few lines to read.
- ``ProcessWatch``: a pidfd per dnsmasq; it becomes readable when the process exits, whoever
  its parent is (dnsmasq daemonizes, so it is never our child).

The parsers are small and pure (``parse_messages``, ``nft_event``, ``link_event``) so they are
tested without a kernel. Sockets are opened inside the namespace (``entered``) and stay bound
to it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from virtnet.host.nsenter import entered

NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NFNLGRP_NFTABLES = 7
RTNLGRP_LINK = 1
RTNLGRP_IPV4_IFADDR = 5
RTNLGRP_IPV6_IFADDR = 9
SO_RCVBUFFORCE = 33
RCVBUF = 4 << 20  # a flushed ruleset is thousands of messages at once

NLMSG_HDR = struct.Struct("=LHHLL")
NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 2, 3, 4

# nftables message types: (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_*
NFT_SUBSYS = 10
_NFT_OPS = {
    0: ("add", "table"), 2: ("delete", "table"),
    3: ("add", "chain"), 5: ("delete", "chain"),
    6: ("add", "rule"), 8: ("delete", "rule"),
    9: ("add", "set"), 11: ("delete", "set"),
    12: ("add", "element"), 14: ("delete", "element"),
    18: ("add", "object"), 20: ("delete", "object"),
    22: ("add", "flowtable"), 24: ("delete", "flowtable"),
    26: ("delete", "table"), 27: ("delete", "chain"), 28: ("delete", "rule"),  # DESTROY*
    29: ("delete", "set"), 30: ("delete", "element"),
}
NFT_MSG_NEWGEN = 15
NFPROTO = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}

RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR = 16, 17, 20, 21
IFLA_IFNAME = 3
IFF_UP = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2


@dataclass(frozen=True)
class NlMsg:
    type: int
    payload: bytes


def parse_messages(data: bytes) -> Iterator[NlMsg]:
    """The netlink messages in one datagram (header stripped)."""
    off = 0
    while off + NLMSG_HDR.size <= len(data):
        length, mtype, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, off)
        if length < NLMSG_HDR.size or off + length > len(data):
            return
        yield NlMsg(mtype, data[off + NLMSG_HDR.size: off + length])
        off += (length + 3) & ~3


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """Top-level netlink attributes (type without the nested/byte-order flags) -> payload."""
    out: dict[int, bytes] = {}
    off = 0
    while off + 4 <= len(data):
        length, atype = struct.unpack_from("=HH", data, off)
        if length < 4 or off + length > len(data):
            break
        out.setdefault(atype & 0x3FFF, data[off + 4: off + length])
        off += (length + 3) & ~3
    return out


def _str(raw: bytes | None) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace") if raw else ""


# --- nftables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NftChange:
    """One object changed in one transaction; ``generation`` closes a transaction instead."""

    op: str  # add | delete | generation
    kind: str  # table | chain | rule | set | element | ... ("" for generation)
    family: str
    table: str
    name: str = ""  # the chain or set it concerns
    process: str = ""  # for generation: "nft (pid 123)"

    def __str__(self) -> str:
        if self.op == "generation":
            return f"by {self.process}" if self.process else ""
        where = f"{self.family} {self.table}"
        if self.kind == "table":
            return f"{self.op} table {where}"
        return f"{self.op} {self.kind} {where} {self.name}".rstrip()


def nft_event(msg: NlMsg) -> NftChange | None:
    """An nftables notification as an NftChange (None for what is not one)."""
    if msg.type >> 8 != NFT_SUBSYS or len(msg.payload) < 4:
        return None
    cmd = msg.type & 0xFF
    family = NFPROTO.get(msg.payload[0], str(msg.payload[0]))
    attrs = parse_attrs(msg.payload[4:])
    if cmd == NFT_MSG_NEWGEN:
        pid = struct.unpack(">I", attrs[2])[0] if len(attrs.get(2, b"")) == 4 else 0
        name = _str(attrs.get(3))
        proc = f"{name or 'process'} (pid {pid})" if pid else name
        return NftChange("generation", "", family, "", process=proc)
    if cmd not in _NFT_OPS:
        return None
    op, kind = _NFT_OPS[cmd]
    # Attribute 1 is the table's name in every object message; 2 names the chain of a rule,
    # the set of a set or element, 3 the name of a chain.
    name = _str(attrs.get(3 if kind == "chain" else 2)) if kind != "table" else ""
    return NftChange(op, kind, family, _str(attrs.get(1)), name)


class _NetlinkSocket:
    def __init__(self, netns: str | None, protocol: int, groups: tuple[int, ...]) -> None:
        with entered(netns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      protocol)
        try:
            with contextlib.suppress(OSError):  # needs CAP_NET_ADMIN; the default works too
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
            self.sock.bind((0, 0))
            for group in groups:
                self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise
        self.overrun = False  # the kernel dropped notifications (ENOBUFS): assume anything

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def read(self) -> Iterator[NlMsg]:
        """Every message waiting now (never blocks)."""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overrun = True
                    continue
                raise
            yield from parse_messages(data)


class NftEvents(_NetlinkSocket):
    """nftables change notifications in NETNS."""

    def __init__(self, netns: str | None) -> None:
        super().__init__(netns, NETLINK_NETFILTER, (NFNLGRP_NFTABLES,))

    def changes(self) -> list[NftChange]:
        return [c for m in self.read() if (c := nft_event(m)) is not None]


# --- links ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkChange:
    kind: str  # link | address
    op: str  # new | delete
    index: int
    name: str  # link name ("" when the message has none)
    up: bool = True  # link: IFF_UP
    address: str = ""  # address: the address

    def __str__(self) -> str:
        if self.kind == "address":
            what = "added to" if self.op == "new" else "removed from"
            return f"address {self.address} {what} {self.name or f'link #{self.index}'}"
        if self.op == "delete":
            return f"link {self.name} deleted"
        return f"link {self.name} changed ({'up' if self.up else 'down'})"


def link_event(msg: NlMsg) -> LinkChange | None:
    if msg.type in (RTM_NEWLINK, RTM_DELLINK) and len(msg.payload) >= 16:
        _fam, _type, index, flags, _change = struct.unpack_from("=BxHiII", msg.payload)
        attrs = parse_attrs(msg.payload[16:])
        op = "new" if msg.type == RTM_NEWLINK else "delete"
        return LinkChange("link", op, index, _str(attrs.get(IFLA_IFNAME)), bool(flags & IFF_UP))
    if msg.type in (RTM_NEWADDR, RTM_DELADDR) and len(msg.payload) >= 8:
        family, prefix, _flags, _scope, index = struct.unpack_from("=BBBBi", msg.payload)
        attrs = parse_attrs(msg.payload[8:])
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS) or b""
        addr = ""
        with contextlib.suppress(ValueError, OSError):
            addr = socket.inet_ntop(family, raw) + f"/{prefix}"
        op = "new" if msg.type == RTM_NEWADDR else "delete"
        return LinkChange("address", op, index, "", address=addr)
    return None


class LinkEvents(_NetlinkSocket):
    """Link and address notifications in NETNS."""

    def __init__(self, netns: str | None) -> None:
        super().__init__(netns, NETLINK_ROUTE,
                         (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR))

    def changes(self) -> list[LinkChange]:
        return [c for m in self.read() if (c := link_event(m)) is not None]


# --- processes -----------------------------------------------------------------------------


class ProcessWatch:
    """A pidfd for PID; readable once the process has exited. ``gone`` is True when the
    process did not exist any more when the watch was made."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd: int | None = None
        with contextlib.suppress(ProcessLookupError):
            self.fd = os.pidfd_open(pid)

    @property
    def gone(self) -> bool:
        return self.fd is None

    def fileno(self) -> int:
        assert self.fd is not None
        return self.fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
