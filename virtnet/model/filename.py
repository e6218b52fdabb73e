"""A network name as a file-name component: every state file of a network is named after it.

``escape_name`` keeps the name readable and reversible (``%XX`` for anything but letters,
digits, ``_ . -``). The longest file virtnet makes for a network is the temporary host file
``NAME.addnhosts.tmp``; a name whose escaped form does not fit beside that suffix in one
file-name component (255 bytes on Linux) cannot become a network — refused at define, as
libvirt's define fails writing ``NAME.xml``, instead of failing half-way through a start.
"""

from __future__ import annotations

import re

NAME_MAX = 255
LONGEST_SUFFIX = ".addnhosts.tmp"
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
    """None when NAME fits in a file name; else how many bytes its escaped form may have."""
    limit = NAME_MAX - len(LONGEST_SUFFIX)
    return None if len(escape_name(name).encode()) <= limit else limit
