"""A snapshot of the machine's root namespace: links, routes, forwarding sysctls, nftables,
namespaces and running dnsmasq processes.

The suite must leave all of it exactly as it found it; conftest compares before and after.
"""

from __future__ import annotations

import os
import subprocess

SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/ipv6/conf/default/disable_ipv6",
)


def _out(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def _live_dnsmasq() -> str:
    """PIDs of running dnsmasq processes (zombies excluded): the suite must end every one it
    started."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        state = stat[stat.rfind(")") + 2 :].split(" ", 1)[0]
        if name == "dnsmasq" and state != "Z":
            pids.append(int(entry))
    return " ".join(str(p) for p in sorted(pids))


def snapshot() -> dict[str, str]:
    snap = {
        # Only names, kinds and flags: counters and timers change on their own.
        "links": _out(["ip", "-o", "link", "show"]),
        "routes4": _out(["ip", "-4", "route", "show", "table", "all"]),
        "routes6": _out(["ip", "-6", "route", "show", "table", "all"]),
        "nft": _out(["nft", "list", "ruleset"]),
        "netns": _out(["ip", "netns", "list"]),
        "dnsmasq": _live_dnsmasq(),
    }
    snap["links"] = "\n".join(
        " ".join(line.split()[:3]) for line in snap["links"].splitlines()
    )
    for key in SYSCTLS:
        with open(f"/proc/sys/{key}") as fh:
            snap[key] = fh.read().strip()
    return snap


def diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [key for key in before if before[key] != after.get(key)]
