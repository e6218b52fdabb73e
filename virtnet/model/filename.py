"""A network name as a file-name component: every state file of a network is named after it.

``escape_name`` keeps the name readable and reversible (``%XX`` for anything but letters,
digits, ``_ . -``). The longest file virtnet makes for a network is the temporary host file
``NAME.addnhosts.tmp``; a name whose escaped form does not fit beside that suffix in one
file-name component (255 bytes on Linux) cannot become a network — refused at define, as
libvirt's define fails writing ``NAME.xml``, instead of failing half-way through a start.
The name is also written into the aliases that mark a network's bridge and ports
(``virtnet:NAME owner=ID``, ``virtnet-port:NAME kind=... peer=NS/DEV mac=...``), which the
kernel limits to 255 bytes: so a name has at most 128 bytes (stricter than libvirt).
"""

from __future__ import annotations

import re

NAME_MAX = 255
LONGEST_SUFFIX = ".addnhosts.tmp"
NAME_MAX_BYTES = 128  # leaves room in the port alias for a peer namespace name of ~60 bytes
_SAFE_FILE_CHARS = re.compile(r"[A-Za-z0-9_.-]")


def escape_name(name: str) -> str:
    """A network name as a single safe file-name component (reversible, never "." or "..")."""
    out = "".join(
        ch if _SAFE_FILE_CHARS.fullmatch(ch) else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in name
    )
    if out in ("", ".", ".."):
        out = out.replace(".", "%2E") or "%00"
    return out


def max_name_bytes(name: str) -> int | None:
    """None when NAME fits in its file names and aliases; else the limit it exceeds."""
    if len(name.encode()) > NAME_MAX_BYTES:
        return NAME_MAX_BYTES
    limit = NAME_MAX - len(LONGEST_SUFFIX)
    return None if len(escape_name(name).encode()) <= limit else limit
