"""Interface names as nft strings: checked, then quoted.

Bridge and device names come from validated definitions, but they are spliced into an nft
script, so this is the last line of defence: anything that could end the string (quotes,
backslashes, newlines), start a wildcard (``*``) or is not a legal Linux interface name is
refused instead of escaped.
"""

from __future__ import annotations

import re

from virtnet.errors import HostileInput, InvalidDefinition

_LEGAL = re.compile(r"[A-Za-z0-9_.+@-]{1,15}")
_HOSTILE = re.compile(r"[\"'\\*;{}$#`\x00-\x1f\x7f]")


def check_ifname(name: str, *, element: str = "bridge name") -> str:
    """Return NAME if it is a safe interface name, else raise (HostileInput / InvalidDefinition)."""
    if _HOSTILE.search(name):
        raise HostileInput(
            f"interface name {name!r} contains quote, backslash, wildcard or control characters",
            element=element,
            hint="use letters, digits and . _ - + @ only (at most 15 characters)",
        )
    if not _LEGAL.fullmatch(name) or name in (".", ".."):
        raise InvalidDefinition(
            f"{name!r} is not a valid interface name",
            element=element,
            hint="use 1-15 characters from letters, digits and . _ - + @",
        )
    return name


def quote_ifname(name: str, *, element: str = "bridge name") -> str:
    """NAME as an nft string literal (double-quoted), after check_ifname."""
    return '"' + check_ifname(name, element=element) + '"'
