"""Kernel settings under /proc/sys/net, read and written inside one namespace.

/proc/sys/net resolves against the calling thread's network namespace, so these must run
inside ``nsenter.entered(netns)``; the callers do that once per apply.
"""

from __future__ import annotations

from virtnet.errors import HostError

ROOT = "/proc/sys/"


def read(path: str) -> str | None:
    """Value of a sysctl ('net/ipv4/ip_forward'), or None if it does not exist."""
    try:
        with open(ROOT + path) as fh:
            return fh.read().strip()
    except FileNotFoundError:
        return None


def write(path: str, value: str) -> None:
    try:
        with open(ROOT + path, "w") as fh:
            fh.write(value)
    except OSError as exc:
        name = path.replace("/", ".")
        raise HostError(f"cannot set sysctl {name}={value}: {exc.strerror}") from None
