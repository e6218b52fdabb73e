"""Enter a network namespace in the calling thread only, for as long as a block runs.

Sockets, /proc/sys/net files and child processes created inside the block belong to the
target namespace and stay there after the thread switches back. This costs a setns(2)
(microseconds), where pyroute2's own ``netns=`` socket and ``ip netns exec`` cost a
helper process each (~2-11 ms): it is what lets one network start in a few milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from virtnet.errors import HostError, NotFound
from virtnet.host import netns as netns_mod

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_lock = threading.local()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise HostError(
            f"setns failed: {os.strerror(err)}", hint="virtnet needs root (CAP_SYS_ADMIN)"
        )


@contextmanager
def entered(netns: str | None) -> Iterator[None]:
    """Run the block inside NETNS (None: stay where we are, i.e. the root namespace)."""
    if netns is None or getattr(_lock, "current", None) == netns:
        yield
        return
    path = os.path.join(netns_mod.NETNS_DIR, netns)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(
            f"network namespace {netns!r} does not exist",
            hint=f"create it with 'ip netns add {netns}' or pass an existing --netns",
        ) from None
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        _lock.current = netns
        try:
            yield
        finally:
            _lock.current = None
            _setns(own)
    finally:
        os.close(target)
        os.close(own)
