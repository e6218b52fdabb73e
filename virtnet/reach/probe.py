"""Live probes between namespaces: ICMP echo and TCP connections, all at once.

No helper processes: a socket belongs to the namespace it was created in, so each probe
thread enters the source namespace (setns, this thread only) just to create its socket.
ICMP uses raw sockets and fails fast on ICMP errors (a firewall ``reject`` answers at once);
TCP connects to a listener virtnet runs in every endpoint's namespace, which records the
address it sees the connection come from, so masquerading is observed, not assumed.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from virtnet.host.nsenter import entered
from virtnet.reach.expected import PairKey
from virtnet.reach.hostfw import PROBE_PORT

TOKEN_LEN = 16
_ids = itertools.count(secrets.randbelow(30000) + 1)
_id_lock = threading.Lock()


@dataclass(frozen=True)
class Probe:
    key: PairKey
    src_netns: str
    dst_addr: str


@dataclass(frozen=True)
class Observation:
    ok: bool
    detail: str  # reply | connected | refused | unreachable | no route | timeout | error ...
    seen_from: str | None = None  # TCP: the source address the listener saw
    ms: float = 0.0


def _next_id() -> int:
    with _id_lock:
        return next(_ids) & 0xFFFF


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


_ERRNO_TEXT = {
    errno.ECONNREFUSED: "refused",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "no route",
    errno.EACCES: "prohibited",
    errno.EPERM: "prohibited",
}


def icmp(src_netns: str, dst: str, timeout: float = 1.0) -> Observation:
    """One echo request from SRC_NETNS to DST; fails fast on an ICMP error about it."""
    fam = _family(dst)
    proto = socket.IPPROTO_ICMP if fam == socket.AF_INET else socket.IPPROTO_ICMPV6
    with entered(src_netns):
        sock = socket.socket(fam, socket.SOCK_RAW, proto)
    ident, t0 = _next_id(), time.monotonic()
    try:
        payload = secrets.token_bytes(8)
        if fam == socket.AF_INET:
            hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
            pkt = struct.pack("!BBHHH", 8, 0, _checksum(hdr + payload), ident, 1) + payload
        else:
            pkt = struct.pack("!BBHHH", 128, 0, 0, ident, 1) + payload  # kernel sums ICMPv6
        try:
            sock.sendto(pkt, (dst, 0))
        except OSError as exc:
            return Observation(False, _ERRNO_TEXT.get(exc.errno or 0, exc.strerror or "error"),
                               ms=_ms(t0))
        deadline = t0 + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, frm = sock.recvfrom(2048)
            except TimeoutError:
                break
            except OSError as exc:  # an ICMP error reported on the socket
                return Observation(False, _ERRNO_TEXT.get(exc.errno or 0, "error"), ms=_ms(t0))
            verdict = _icmp_answer(fam, data, ident, dst, frm[0])
            if verdict is not None:
                return Observation(verdict[0], verdict[1], ms=_ms(t0))
        return Observation(False, "timeout", ms=_ms(t0))
    finally:
        sock.close()


def _icmp_answer(fam: int, data: bytes, ident: int, dst: str,
                 frm: str) -> tuple[bool, str] | None:
    """(ok, detail) if DATA answers our echo IDENT, else None."""
    if fam == socket.AF_INET:
        off = (data[0] & 0x0F) * 4
        body = data[off:]
        reply, errors, inner_off = 0, (3, 11), 8 + ((data[off + 8] & 0x0F) * 4 if len(
            data) > off + 8 else 20)
    else:
        body = data
        reply, errors, inner_off = 129, (1, 3), 8 + 40
    if len(body) < 8:
        return None
    typ, code = body[0], body[1]
    if typ == reply and struct.unpack("!H", body[4:6])[0] == ident:
        return True, "reply"
    if typ in errors and len(body) >= inner_off + 6 and \
            struct.unpack("!H", body[inner_off + 4:inner_off + 6])[0] == ident:
        kind = "unreachable" if typ in (3, 1) else "time exceeded"
        return False, f"{kind} (icmp {typ}/{code} from {frm})"
    return None


def tcp(src_netns: str, dst: str, token: bytes, timeout: float = 1.0) -> Observation:
    """Connect from SRC_NETNS to DST's listener and hand it TOKEN."""
    fam = _family(dst)
    with entered(src_netns):
        sock = socket.socket(fam, socket.SOCK_STREAM)
    t0 = time.monotonic()
    try:
        sock.settimeout(timeout)
        sock.connect((dst, PROBE_PORT))
        sock.sendall(token)
        return Observation(True, "connected", ms=_ms(t0))
    except TimeoutError:
        return Observation(False, "timeout", ms=_ms(t0))
    except OSError as exc:
        return Observation(False, _ERRNO_TEXT.get(exc.errno or 0, exc.strerror or "error"),
                           ms=_ms(t0))
    finally:
        sock.close()


def _ms(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000, 1)


class Listeners:
    """A TCP listener on PROBE_PORT (IPv4 and IPv6) in each namespace, one selector thread
    for all; records token -> source address seen."""

    def __init__(self, namespaces: Iterable[str]):
        self.seen: dict[bytes, str] = {}
        self._sel = selectors.DefaultSelector()
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        try:
            for ns in sorted(set(namespaces)):
                with entered(ns):
                    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                s.bind(("::", PROBE_PORT))
                s.listen(256)
                s.setblocking(False)
                self._socks.append(s)
                self._sel.register(s, selectors.EVENT_READ, "listen")
        except BaseException:
            self.close()
            raise
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._loop, name="virtnet-listeners",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        bufs: dict[socket.socket, bytes] = {}
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket | int)
                if key.data == "wake":
                    return
                assert isinstance(sock, socket.socket)
                if key.data == "listen":
                    with contextlib.suppress(OSError):
                        conn, _ = sock.accept()
                        conn.setblocking(False)
                        bufs[conn] = b""
                        self._sel.register(conn, selectors.EVENT_READ, "conn")
                    continue
                try:
                    chunk = sock.recv(64)
                except OSError:
                    chunk = b""
                bufs[sock] = bufs.get(sock, b"") + chunk
                if not chunk or len(bufs[sock]) >= TOKEN_LEN:
                    data = bufs.pop(sock, b"")
                    if len(data) >= TOKEN_LEN:
                        with contextlib.suppress(OSError):
                            peer = sock.getpeername()[0]
                            self.seen[data[:TOKEN_LEN]] = _unmap(peer)
                    self._sel.unregister(sock)
                    sock.close()

    def wait_for(self, tokens: Sequence[bytes], timeout: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(t in self.seen for t in tokens):
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if getattr(self, "_thread", None) is not None:
            self._thread.join(timeout=2)
        for s in self._socks:
            s.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._sel.close()

    def __enter__(self) -> Listeners:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unmap(addr: str) -> str:
    return addr[7:] if addr.startswith("::ffff:") else addr


@contextlib.contextmanager
def listening(namespaces: Iterable[str]) -> Iterator[Listeners]:
    lst = Listeners(namespaces)
    try:
        yield lst
    finally:
        lst.close()


def run(probes: Sequence[Probe], listeners: Listeners, *, timeout: float = 1.0,
        workers: int = 64) -> dict[PairKey, Observation]:
    """Every probe, concurrently; TCP observations carry the source address the far end saw."""
    tokens = {p.key: secrets.token_bytes(TOKEN_LEN) for p in probes if p.key.proto == "tcp"}

    def one(p: Probe) -> tuple[PairKey, Observation]:
        if p.key.proto == "icmp":
            return p.key, icmp(p.src_netns, p.dst_addr, timeout)
        return p.key, tcp(p.src_netns, p.dst_addr, tokens[p.key], timeout)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(probes)))) as pool:
        results = dict(pool.map(one, probes))
    connected = [tokens[k] for k, o in results.items() if k.proto == "tcp" and o.ok]
    listeners.wait_for(connected)
    for k, o in list(results.items()):
        if k.proto == "tcp" and o.ok:
            seen = listeners.seen.get(tokens[k])
            results[k] = Observation(o.ok, o.detail, seen, o.ms)
    return results
