"""Raw rtnetlink batches: several requests in one sendmsg(2), one reply each.

pyroute2 costs ~0.5 ms of Python per request (an event loop turn each); a network start
needs about six, on its critical path. Here the few messages a bridge needs are packed by
hand (the formats are fixed: ``linux/rtnetlink.h``, ``linux/if_link.h``) and sent together:
the kernel runs them in order and acknowledges each, so a whole bridge costs two round
trips. Errors come back with the kernel's extended-ack text.

The socket is opened inside the target namespace and stays bound to it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from virtnet.errors import HostError
from virtnet.host.nsenter import entered

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_ACK_TLVS = 0x200
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 0x8000

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINKINFO = 18
IFLA_MASTER = 10
IFLA_IFALIAS = 20
IFLA_GROUP = 27
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_BR_FORWARD_DELAY = 1
IFLA_BR_STP_STATE = 5
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
IFF_UP = 0x1

CHUNK = 128  # requests per sendmsg: their acks (~1 KiB of buffer each) fit the socket

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


@dataclass(frozen=True)
class Request:
    type: int
    flags: int
    body: bytes  # the family header and attributes
    what: str  # for error messages


def new_bridge(name: str, *, mac: str | None, mtu: int | None, stp: bool, delay: int) -> Request:
    attrs = [attr(IFLA_IFNAME, cstr(name))]
    if mac:
        attrs.append(attr(IFLA_ADDRESS, mac_bytes(mac)))
    if mtu:
        attrs.append(attr(IFLA_MTU, u32(mtu)))
    attrs.append(nested(
        IFLA_LINKINFO,
        attr(IFLA_INFO_KIND, cstr("bridge")),
        nested(IFLA_INFO_DATA,
               attr(IFLA_BR_FORWARD_DELAY, u32(delay * 100)),  # clock ticks (USER_HZ)
               attr(IFLA_BR_STP_STATE, u32(int(stp)))),
    ))
    return Request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                   _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + b"".join(attrs),
                   f"create bridge {name}")


def get_link(name: str) -> Request:
    return Request(RTM_GETLINK, 0, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
                   + attr(IFLA_IFNAME, cstr(name)), f"read link {name}")


def del_link(name: str) -> Request:
    return Request(RTM_DELLINK, 0, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
                   + attr(IFLA_IFNAME, cstr(name)), f"delete link {name}")


def set_group(index: int, group: int, name: str) -> Request:
    return Request(RTM_SETLINK, 0, _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0)
                   + attr(IFLA_GROUP, u32(group)), f"mark {name} for deletion")


def del_group(group: int) -> Request:
    """Delete every link of GROUP in one request: the kernel unregisters them together, so
    the RCU waits of a device's removal are paid once for all, not once per device."""
    return Request(RTM_DELLINK, 0, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
                   + attr(IFLA_GROUP, u32(group)), f"delete link group {group}")


def set_link(index: int, *, alias: str | None = None, up: bool = False, what: str) -> Request:
    flags = IFF_UP if up else 0
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, flags)
    if alias is not None:
        body += attr(IFLA_IFALIAS, alias.encode())
    return Request(RTM_SETLINK, 0, body, what)


def new_address(index: int, cidr: str, dev: str) -> Request:
    iface = ipaddress.ip_interface(cidr)
    fam = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    packed = iface.ip.packed
    body = _IFADDR.pack(fam, iface.network.prefixlen, 0, 0, index)
    body += attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
    if iface.version == 4 and iface.network.prefixlen < 31:
        body += attr(IFA_BROADCAST, iface.network.broadcast_address.packed)
    return Request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {cidr} to {dev}")


@dataclass(frozen=True)
class Reply:
    error: int  # 0 or a positive errno
    message: str  # the kernel's extended-ack text, if any
    link_index: int | None = None  # for get_link
    link: RawLink | None = None  # for get_link


@dataclass(frozen=True)
class RawLink:
    """The few facts of a link the start and stop paths need (from RTM_NEWLINK)."""

    index: int
    name: str
    alias: str | None
    group: int
    master: int | None


def _parse_link(data: bytes, off: int, length: int) -> RawLink:
    _f, _t, index, _fl, _ch = _IFINFO.unpack_from(data, off + _HDR.size)
    name, alias, group, master = "", None, 0, None
    pos, end = off + _HDR.size + _IFINFO.size, off + length
    while pos + 4 <= end:
        alen, atype = struct.unpack_from("=HH", data, pos)
        if alen < 4:
            break
        payload = data[pos + 4:pos + alen]
        atype &= 0x3FFF
        if atype == IFLA_IFNAME:
            name = payload.split(b"\0", 1)[0].decode()
        elif atype == IFLA_IFALIAS:
            alias = payload.split(b"\0", 1)[0].decode(errors="replace") or None
        elif atype == IFLA_GROUP:
            (group,) = struct.unpack_from("=I", payload)
        elif atype == IFLA_MASTER:
            (master,) = struct.unpack_from("=I", payload)
        pos += _align(alen)
    return RawLink(index, name, alias, group, master)


class Rtnl:
    """A raw NETLINK_ROUTE socket in NETNS for batches of requests."""

    def __init__(self, netns: str | None) -> None:
        with entered(netns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      NETLINK_ROUTE)
        self.sock.bind((0, 0))
        for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
            with contextlib.suppress(OSError):  # older kernels: plain acks
                self.sock.setsockopt(SOL_NETLINK, opt, 1)
        self.seq = int.from_bytes(os.urandom(2), "little") << 8
        self._lock = threading.Lock()

    def close(self) -> None:
        self.sock.close()

    def run(self, requests: Sequence[Request]) -> list[Reply]:
        """Send REQUESTS in one sendmsg (in chunks of CHUNK: the kernel drops acks that do
        not fit the socket's receive buffer, ENOBUFS); returns one Reply each, in order."""
        with self._lock:
            out: list[Reply] = []
            for i in range(0, len(requests), CHUNK):
                out += self._run(requests[i:i + CHUNK])
            return out

    def _run(self, requests: Sequence[Request]) -> list[Reply]:
        first = self.seq + 1
        out = bytearray()
        for i, req in enumerate(requests):
            length = _HDR.size + len(req.body)
            out += _HDR.pack(length, req.type, NLM_F_REQUEST | NLM_F_ACK | req.flags,
                             first + i, 0)
            out += req.body
            out += b"\0" * (_align(length) - length)
        self.seq += len(requests)
        self.sock.send(bytes(out))
        replies: dict[int, Reply] = {}
        links: dict[int, RawLink] = {}
        while len(replies) < len(requests):
            data = self.sock.recv(65536)
            off = 0
            while off + _HDR.size <= len(data):
                length, mtype, flags, seq, _pid = _HDR.unpack_from(data, off)
                if length < _HDR.size:
                    break
                idx = seq - first
                if 0 <= idx < len(requests):
                    if mtype == NLMSG_ERROR:
                        (err,) = struct.unpack_from("=i", data, off + _HDR.size)
                        text = _ext_ack_text(data, off, length, flags) if err else ""
                        link = links.get(idx)
                        replies[idx] = Reply(-err, text, link.index if link else None, link)
                    elif mtype == RTM_NEWLINK:
                        links[idx] = _parse_link(data, off, length)
                off += _align(length)
        return [replies[i] for i in range(len(requests))]

    def dump_links(self) -> list[RawLink]:
        """Every link of the namespace (one RTM_GETLINK dump, parsed for a few attributes)."""
        with self._lock:
            self.seq += 1
            seq = self.seq
            body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
            self.sock.send(_HDR.pack(_HDR.size + len(body), RTM_GETLINK,
                                     NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
            out: list[RawLink] = []
            while True:
                data = self.sock.recv(1 << 20)
                off = 0
                while off + _HDR.size <= len(data):
                    length, mtype, _flags, rseq, _pid = _HDR.unpack_from(data, off)
                    if length < _HDR.size:
                        break
                    if rseq == seq:
                        if mtype == NLMSG_DONE:
                            return out
                        if mtype == NLMSG_ERROR:
                            (err,) = struct.unpack_from("=i", data, off + _HDR.size)
                            raise HostError(f"cannot list links: {os.strerror(-err)}")
                        if mtype == RTM_NEWLINK:
                            out.append(_parse_link(data, off, length))
                    off += _align(length)

    def check(self, requests: Sequence[Request]) -> list[Reply]:
        """run(); the first failure becomes a HostError naming the request."""
        replies = self.run(requests)
        for req, rep in zip(requests, replies, strict=True):
            if rep.error:
                detail = rep.message or os.strerror(rep.error)
                raise HostError(f"cannot {req.what}: {detail}", hint=_hint(rep.error))
        return replies


def _ext_ack_text(data: bytes, off: int, length: int, flags: int) -> str:
    if not flags & NLM_F_ACK_TLVS:
        return ""
    # errno, then the request's header only (NETLINK_CAP_ACK), then TLVs
    pos = off + _HDR.size + 4 + _HDR.size
    end = off + length
    while pos + 4 <= end:
        alen, atype = struct.unpack_from("=HH", data, pos)
        if alen < 4:
            break
        if atype & 0x3FFF == NLMSGERR_ATTR_MSG:
            return data[pos + 4:pos + alen].split(b"\0", 1)[0].decode(errors="replace")
        pos += _align(alen)
    return ""


def _hint(err: int) -> str | None:
    import errno

    return {
        errno.EEXIST: "an interface or address of that name already exists: choose another",
        errno.EPERM: "virtnet needs root (CAP_NET_ADMIN)",
        errno.EINVAL: "check the MAC address, MTU and bridge settings of the definition",
    }.get(err)
