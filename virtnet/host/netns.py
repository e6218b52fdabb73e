"""Named network namespaces (the `ip netns` kind) and running commands in them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from virtnet.errors import HostError, NotFound

NETNS_DIR = "/run/netns"


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def list_names() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def create(name: str) -> None:
    """Create namespace NAME with its loopback up. Refuses a name that already exists."""
    if exists(name):
        raise HostError(f"network namespace {name!r} already exists")
    _ip(["netns", "add", name])
    run(name, ["ip", "link", "set", "lo", "up"])


def delete(name: str) -> None:
    """Delete namespace NAME if present (its links go with it)."""
    if exists(name):
        _ip(["netns", "del", name])


def prefix(netns: str | None) -> list[str]:
    """argv prefix that runs a command inside NETNS (nothing for the root namespace)."""
    if netns is None:
        return []
    if not exists(netns):
        raise NotFound(
            f"network namespace {netns!r} does not exist",
            hint=f"create it with 'ip netns add {netns}' or pass an existing --netns",
        )
    return ["ip", "netns", "exec", netns]


def run(
    netns: str | None,
    argv: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run argv in NETNS; on failure raise HostError carrying the command's stderr."""
    cmd = prefix(netns) + list(argv)
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise HostError(
            f"{' '.join(argv[:3])} failed in namespace {netns or 'root'}: "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def _ip(args: list[str]) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise HostError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def run_direct(
    netns: str | None,
    argv: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Like run(), but enters NETNS with setns(2) in this thread instead of through
    ``ip netns exec``: ~2 ms less per command. Only the network namespace changes (no
    /etc/netns bind mounts, no remounted /sys), which suits tools that talk netlink only,
    such as nft and ip; use run() for anything that reads /sys or /etc."""
    from virtnet.host.nsenter import entered

    if netns is not None and not exists(netns):
        prefix(netns)  # raises the NotFound with its hint
    with entered(netns):
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                              timeout=timeout)
    if check and proc.returncode != 0:
        raise HostError(
            f"{' '.join(argv[:3])} failed in namespace {netns or 'root'}: "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc
