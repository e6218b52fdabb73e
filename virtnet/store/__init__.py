"""Persistent state: network definitions, autostart flags and per-namespace runtime status.

Embedded SQLite (WAL) under the state directory, with a versioned schema; ``host_lock``
serialises changes to one namespace across processes.
"""

from virtnet.store.db import Store, StoredDefinition
from virtnet.store.lock import host_lock

__all__ = ["Store", "StoredDefinition", "host_lock"]
