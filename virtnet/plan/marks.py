"""virtnet's marks on the host: what says a bridge belongs to a network, and to whom.

A bridge virtnet creates carries the alias ``virtnet:NAME owner=ID``: NAME is the network,
ID identifies the state directory that made it (the first 12 hex digits of the SHA-256 of
its absolute path). The mark is what lets virtnet take a running network back after its
database or runtime record is lost (same bridge, MAC and ports), and what stops a second
state directory — a cron job or a systemd unit using the default ``/var/lib/virtnet`` while
the admin used another — from treating another's networks as orphans: a namespace's
networks have one owner. Bridges marked by virtnet 0.1.0 carry no owner (``virtnet:NAME``);
they count as the current state directory's, and the next repair adds the owner.

Pure: text in, text out.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

ALIAS_PREFIX = "virtnet:"
_OWNER = " owner="


def owner_id(state_dir: str | os.PathLike[str] | Path) -> str:
    """The owner id of STATE_DIR (its absolute path, hashed: short, fixed length)."""
    path = os.path.abspath(os.fspath(state_dir))
    return hashlib.sha256(path.encode()).hexdigest()[:12]


def alias_for(network: str, owner: str | None = None) -> str:
    return ALIAS_PREFIX + network + (_OWNER + owner if owner else "")


@dataclass(frozen=True)
class BridgeMark:
    network: str
    owner: str | None  # None: marked before owners were recorded

    def owned_by(self, owner: str) -> bool:
        """Whether OWNER may act on this bridge: its own, or an owner-less legacy mark."""
        return self.owner is None or self.owner == owner


def read_mark(alias: str | None) -> BridgeMark | None:
    """The mark in a bridge's alias; None when the bridge is not virtnet's."""
    if not alias or not alias.startswith(ALIAS_PREFIX):
        return None
    body = alias[len(ALIAS_PREFIX):]
    network, sep, owner = body.rpartition(_OWNER)
    if not sep or not owner or " " in owner:
        return BridgeMark(body, None)
    return BridgeMark(network, owner)
