"""Links in one namespace over one netlink socket: virtnet's bridges and the ports on them.

The socket is opened inside the target namespace (``nsenter``) and used for the whole apply.
Every bridge virtnet creates carries the alias ``virtnet:NETWORK`` and every port
``virtnet-port:NETWORK ...``, so what is ours can always be found again, even after a crash.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
import socket
import struct
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from virtnet.errors import HostError
from virtnet.host import rtnl
from virtnet.host.nsenter import entered
from virtnet.host.rtnl import RawLink, Rtnl
from virtnet.plan import BridgeSpec, ObservedBridge
from virtnet.plan.marks import BridgeMark, read_mark

PORT_ALIAS = "virtnet-port:"


@dataclass(frozen=True)
class LinkInfo:
    index: int
    name: str
    kind: str
    alias: str | None
    master: int | None
    mac: str
    mtu: int
    up: bool
    stp: bool | None


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name) if hasattr(msg, "get_attr") else msg.get(name)


def _info(msg: Any) -> LinkInfo:
    linkinfo = _attr(msg, "IFLA_LINKINFO")
    kind = linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo is not None else None
    stp = None
    if kind == "bridge":
        data = linkinfo.get_attr("IFLA_INFO_DATA")
        stp = bool(data.get_attr("IFLA_BR_STP_STATE")) if data is not None else None
    return LinkInfo(
        index=msg["index"],
        name=_attr(msg, "IFLA_IFNAME"),
        kind=kind or "device",
        alias=_attr(msg, "IFLA_IFALIAS") or None,
        master=_attr(msg, "IFLA_MASTER"),
        mac=(_attr(msg, "IFLA_ADDRESS") or "").lower(),
        mtu=_attr(msg, "IFLA_MTU") or 0,
        up=bool(msg["flags"] & 1),
        stp=stp,
    )


SO_NETNS_COOKIE = 71  # Linux >= 5.14: which network namespace a socket belongs to


def _netns_cookie(fd: int) -> int:
    sock = socket.socket(fileno=os.dup(fd))
    try:
        return int(struct.unpack("Q", sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0])
    finally:
        sock.close()


class Netlink:
    """An rtnetlink socket inside NETNS (None: the caller's namespace), one per thread.

    pyroute2 keeps its transport per thread and opens it lazily in whatever namespace the
    calling thread is in, which for a new thread is the root namespace. So each thread gets
    its own IPRoute, opened inside NETNS, and its namespace is checked by cookie: an
    operation can never land in another namespace than the one asked for.
    """

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self._local = threading.local()
        self._opened: list[IPRoute] = []
        self._guard = threading.Lock()
        self._rtnl: Rtnl | None = None
        _ = self.ipr  # open now: a missing namespace fails here, before any change

    @property
    def ipr(self) -> IPRoute:
        ipr: IPRoute | None = getattr(self._local, "ipr", None)
        if ipr is None:
            with entered(self.netns):
                ipr = IPRoute()
                probe = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
            try:
                want = _netns_cookie(probe.fileno())
            finally:
                probe.close()
            if _netns_cookie(ipr.fileno()) != want:
                ipr.close()
                raise HostError(f"netlink socket is not in namespace {self.netns or 'root'}")
            with self._guard:
                self._opened.append(ipr)
            self._local.ipr = ipr
        return ipr

    def close(self) -> None:
        if self._rtnl is not None:
            self._rtnl.close()
            self._rtnl = None
        with self._guard:
            for ipr in self._opened:
                ipr.close()
            self._opened.clear()
        self._local = threading.local()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------

    def get(self, name: str) -> LinkInfo | None:
        try:
            return _info(self.ipr.link("get", ifname=name)[0])
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise HostError(f"cannot read link {name}: {exc}") from None

    def get_raw(self, name: str) -> RawLink | None:
        """Index, alias, group and master of link NAME in one raw round trip (~0.05 ms, where
        ``get`` through pyroute2 costs ~1 ms); None when there is no such link."""
        (reply,) = self.rtnl.run([rtnl.get_link(name)])
        if reply.error == errno.ENODEV:
            return None
        if reply.error or reply.link is None:
            detail = reply.message or os.strerror(reply.error)
            raise HostError(f"cannot read link {name}: {detail}")
        return reply.link

    def links(self) -> Iterator[LinkInfo]:
        for msg in self.ipr.link("dump"):
            yield _info(msg)

    def addresses(self, index: int) -> frozenset[str]:
        """CIDR addresses on a link, without IPv6 link-local ones (the kernel adds those)."""
        out = set()
        for msg in self.ipr.addr("dump", index=index):
            if msg["index"] != index:
                continue
            addr = _attr(msg, "IFA_ADDRESS")
            if addr is None:
                continue
            iface = ipaddress.ip_interface(f"{addr}/{msg['prefixlen']}")
            if iface.version == 6 and iface.ip.is_link_local:
                continue
            out.add(str(iface))
        return frozenset(out)

    def observe_bridge(self, name: str) -> ObservedBridge | None:
        link = self.get(name)
        if link is None:
            return None
        return ObservedBridge(
            name=link.name,
            alias=link.alias,
            mac=link.mac,
            mtu=link.mtu,
            stp=bool(link.stp),
            addresses=self.addresses(link.index),
            up=link.up,
            kind=link.kind,
        )

    def marked_bridges(self) -> list[tuple[BridgeMark, LinkInfo]]:
        """virtnet's bridges in this namespace, whoever owns them, with their marks."""
        out = []
        for link in self.links():
            mark = read_mark(link.alias) if link.kind == "bridge" else None
            if mark is not None:
                out.append((mark, link))
        return out

    # -- changing -----------------------------------------------------------------------

    @property
    def rtnl(self) -> Rtnl:
        """A raw socket for the batched requests of the start path (see rtnl.py)."""
        if self._rtnl is None:
            self._rtnl = Rtnl(self.netns)
        return self._rtnl

    def create_bridge(self, spec: BridgeSpec) -> int:
        """Create the bridge, down, with its MAC, MTU and STP; returns its index."""
        replies = self.rtnl.check([
            rtnl.new_bridge(spec.name, mac=spec.mac, mtu=spec.mtu, stp=spec.stp,
                            delay=spec.delay),
            rtnl.get_link(spec.name),
        ])
        index = replies[1].link_index
        if index is None:
            raise HostError(f"bridge {spec.name} vanished right after it was created")
        return index

    def set_alias(self, index: int, alias: str) -> None:
        self._set(index, ifalias=alias)

    def add_address(self, index: int, cidr: str, dev: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        try:
            self.ipr.addr(
                "add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen
            )
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise HostError(f"cannot add address {cidr} to {dev}: {exc.args[-1]}") from None

    def del_address(self, index: int, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        try:
            self.ipr.addr(
                "del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen
            )
        except NetlinkError as exc:
            if exc.code not in (errno.EADDRNOTAVAIL, errno.ENODEV):
                raise HostError(f"cannot remove address {cidr}: {exc.args[-1]}") from None

    def set_up(self, index: int) -> None:
        self._set(index, state="up")

    def set_master(self, index: int, master: int) -> None:
        self._set(index, master=master)

    def configure_bridge(self, index: int, spec: BridgeSpec) -> None:
        """Alias, up and addresses, one batch: what makes a new bridge the network's."""
        reqs = [rtnl.set_link(index, alias=spec.alias, up=True, what=f"set up {spec.name}")]
        reqs += [rtnl.new_address(index, cidr, spec.name) for cidr in spec.addresses]
        for req, rep in zip(reqs, self.rtnl.run(reqs), strict=True):
            if rep.error and not (rep.error == errno.EEXIST and req.type == rtnl.RTM_NEWADDR):
                detail = rep.message or os.strerror(rep.error)
                raise HostError(f"cannot {req.what}: {detail}")

    def fix_bridge(self, index: int, spec: BridgeSpec, seen: ObservedBridge) -> None:
        """Bring an existing bridge back to SPEC (what reconcile does after drift)."""
        if seen.alias != spec.alias:
            self.set_alias(index, spec.alias)
        if spec.mac and seen.mac != spec.mac:
            self._set(index, address=spec.mac)
        if spec.mtu and seen.mtu != spec.mtu:
            self._set(index, mtu=spec.mtu)
        if seen.stp != spec.stp:
            self._set(index, kind="bridge", br_stp_state=int(spec.stp))
        for cidr in seen.addresses - set(spec.addresses):
            self.del_address(index, cidr)
        for cidr in spec.addresses:
            if cidr not in seen.addresses:
                self.add_address(index, cidr, spec.name)
        if not seen.up:
            self.set_up(index)

    def delete_many(self, names: Sequence[str]) -> list[str]:
        """Delete links NAMES (a deleted veth takes its peer along); returns what could not be
        deleted, as "NAME: reason"."""
        if len(names) <= 1:
            return [f"{n}: {e}" for n in names if (e := self._delete_error(n))]
        present = self.rtnl.dump_links()
        wanted = set(names)
        return self.delete_links([link for link in present if link.name in wanted],
                                 {link.group for link in present})

    def delete_links(self, doomed: Sequence[RawLink], used_groups: Collection[int]
                     ) -> list[str]:
        """Delete DOOMED (from a dump in which USED_GROUPS are all the link groups seen);
        returns what could not be deleted. Several go in one request: they are given a link
        group no other link in the namespace has and the group is deleted, so the kernel's
        RCU waits (~17 ms a bridge here, ~35 ms when deleted alone) are paid together."""
        if len(doomed) <= 1:
            return [f"{n.name}: {e}" for n in doomed if (e := self._delete_error(n.name))]
        group = secrets.randbelow(1 << 30) + (1 << 30)
        while group in used_groups:
            group = secrets.randbelow(1 << 30) + (1 << 30)
        marks = [rtnl.set_group(link.index, group, link.name) for link in doomed]
        replies = self.rtnl.run([*marks, rtnl.del_group(group)])
        if not any(r.error for r in replies):
            return []
        # Something refused: whatever is left of the group goes one by one, for the details
        # (and so no link of ours keeps the group).
        return [f"{link.name}: {e}" for link in doomed if (e := self._delete_error(link.name))]

    def _delete_error(self, name: str) -> str | None:
        (reply,) = self.rtnl.run([rtnl.del_link(name)])
        if reply.error in (0, errno.ENODEV):
            return None
        return reply.message or os.strerror(reply.error)

    def delete(self, name: str) -> bool:
        """Delete link NAME; False if it was not there."""
        try:
            self.ipr.link("del", ifname=name)
            return True
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise HostError(f"cannot delete link {name}: {exc.args[-1]}") from None

    def _set(self, index: int, **kw: Any) -> None:
        try:
            self.ipr.link("set", index=index, **kw)
        except NetlinkError as exc:
            what = ", ".join(kw)
            raise HostError(f"cannot set {what} on link #{index}: {exc.args[-1]}") from None
