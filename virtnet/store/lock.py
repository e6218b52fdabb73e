"""Cross-process exclusive lock per network namespace (fcntl.flock on a file in the state dir).

flock locks belong to an open file description, so a second ``open`` in the same process
would block on itself; the lock is therefore re-entrant within one process.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from virtnet.errors import Conflict

_SAFE = re.compile(r"^[A-Za-z0-9_.@+-]{1,200}$")
_held: dict[str, tuple[int, int]] = {}  # lock path -> (fd, depth)
_guard = threading.Lock()


def lock_path(state_dir: Path, netns: str | None) -> Path:
    """``state_dir/locks/<netns or _root>.lock``; namespace names that are not plain get hex."""
    name = netns or "_root"
    if not _SAFE.match(name) or name in (".", ".."):
        name = "x-" + name.encode().hex()
    return Path(state_dir) / "locks" / f"{name}.lock"


@contextmanager
def host_lock(state_dir: Path, netns: str | None, *, timeout: float = 300.0) -> Iterator[None]:
    """Hold the exclusive lock for NETNS for the duration of the block.

    Waits up to TIMEOUT seconds for another virtnet command to finish, then raises Conflict.
    """
    path = lock_path(state_dir, netns)
    key = str(path)
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if not reentered:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise Conflict(
                        f"another virtnet command is still changing namespace "
                        f"{netns or 'root'} (lock {path} held for {timeout:.0f}s)",
                        hint="wait for it to finish; if none is running, the lock is "
                        "released automatically when its process exits",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
        with _guard:
            _held[key] = (fd, 1)
    try:
        yield
    finally:
        with _guard:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
            else:
                del _held[key]
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
