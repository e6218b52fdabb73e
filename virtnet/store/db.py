"""The Store: one SQLite database ``state_dir/virtnet.db`` in WAL mode.

Concurrency: every write is a short ``BEGIN IMMEDIATE`` transaction, so writers queue on
SQLite's lock (busy_timeout) instead of failing on a read-to-write upgrade; readers never
block in WAL mode. Schema creation and migrations run under a file lock so that many first
commands at once create the schema once.

A database SQLite cannot read is reported with its path and the way to recover; it is never
replaced or re-created behind the user's back (it holds the only copy of the definitions).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virtnet.errors import Conflict, StoreError
from virtnet.store import schema
from virtnet.store.lock import host_lock

DB_NAME = "virtnet.db"
BUSY_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class StoredDefinition:
    name: str
    uuid: str
    xml: str
    persistent: bool
    autostart: bool
    origin: str = "define"  # define | create | apply | import | default


class Store:
    """Definitions and runtime status under STATE_DIR (created if missing)."""

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DB_NAME
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create state directory {self.state_dir}: {exc.strerror}",
                hint="pass a writable --state-dir (or set VIRTNET_STATE_DIR), or run as root",
            ) from None
        self._mutex = threading.RLock()
        self._depth = 0
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        with self._guard():
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._migrate()
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._guard():
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def check(self) -> list[str]:
        """SQLite's integrity check: an empty list when the database is sound."""
        with self._guard():
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        problems = [str(r[0]) for r in rows]
        return [] if problems == ["ok"] else problems

    def host_lock(self, netns: str | None) -> AbstractContextManager[None]:
        """Exclusive cross-process lock for changing namespace NETNS ("" or None: root)."""
        return host_lock(self.state_dir, netns or None)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes into one atomic transaction (nests: inner blocks join it)."""
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self._guard():
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                with self._guard():
                    self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            with self._guard():
                self._conn.execute("COMMIT")

    # -- definitions ---------------------------------------------------------------------

    def put_definition(
        self,
        name: str,
        uuid: str,
        xml: str,
        *,
        persistent: bool,
        autostart: bool = False,
        origin: str = "define",
    ) -> None:
        """Create or replace the definition called NAME. A UUID already used by another
        name is a Conflict (libvirt refuses the same). ORIGIN says which command made it."""
        now = time.time()
        with self.transaction(), self._guard():
            row = self._conn.execute(
                "SELECT name FROM definitions WHERE uuid = ? AND name != ?", (uuid, name)
            ).fetchone()
            if row:
                raise Conflict(
                    f"network {name!r}: uuid {uuid} is already used by network {row[0]!r}",
                    element="uuid",
                    hint="remove the <uuid> element to get a fresh one, or undefine the other",
                )
            self._conn.execute(
                "INSERT INTO definitions"
                " (name, uuid, xml, persistent, autostart, origin, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET uuid = excluded.uuid, xml = excluded.xml,"
                " persistent = excluded.persistent, autostart = excluded.autostart,"
                " origin = excluded.origin, updated = excluded.updated",
                (name, uuid, xml, int(persistent), int(autostart), origin, now, now),
            )

    def get_definition(self, name: str) -> StoredDefinition | None:
        with self._guard():
            row = self._conn.execute(
                "SELECT name, uuid, xml, persistent, autostart, origin FROM definitions"
                " WHERE name = ?",
                (name,),
            ).fetchone()
        return _definition(row) if row else None

    def get_definition_by_uuid(self, uuid: str) -> StoredDefinition | None:
        with self._guard():
            row = self._conn.execute(
                "SELECT name, uuid, xml, persistent, autostart, origin FROM definitions"
                " WHERE lower(uuid) = lower(?)",
                (uuid,),
            ).fetchone()
        return _definition(row) if row else None

    def list_definitions(self) -> list[StoredDefinition]:
        """All definitions, sorted by name."""
        with self._guard():
            rows = self._conn.execute(
                "SELECT name, uuid, xml, persistent, autostart, origin FROM definitions"
                " ORDER BY name"
            ).fetchall()
        return [_definition(r) for r in rows]

    def delete_definition(self, name: str) -> bool:
        """Remove NAME's definition; False when there was none."""
        with self.transaction(), self._guard():
            cur = self._conn.execute("DELETE FROM definitions WHERE name = ?", (name,))
            return cur.rowcount > 0

    def set_autostart(self, name: str, flag: bool) -> bool:
        """Set NAME's autostart flag; False when NAME is not defined."""
        with self.transaction(), self._guard():
            cur = self._conn.execute(
                "UPDATE definitions SET autostart = ?, updated = ? WHERE name = ?",
                (int(flag), time.time(), name),
            )
            return cur.rowcount > 0

    # -- facts about the store ----------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._guard():
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction(), self._guard():
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- runtime status ------------------------------------------------------------------

    def put_runtime(self, netns: str | None, name: str, record: dict[str, Any]) -> None:
        """Record what was created for running network NAME in NETNS ("" = root)."""
        text = json.dumps(record, sort_keys=True)
        with self.transaction(), self._guard():
            self._conn.execute(
                "INSERT INTO runtime (netns, name, record, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(netns, name) DO UPDATE SET record = excluded.record,"
                " updated = excluded.updated",
                (netns or "", name, text, time.time()),
            )

    def get_runtime(self, netns: str | None, name: str) -> dict[str, Any] | None:
        """NAME's runtime record in NETNS; None when there is none or it is unreadable (an
        unreadable record is treated as lost: ``Service.recover`` rebuilds it from what
        virtnet marked on the host; ``runtime_unreadable`` tells the two apart)."""
        with self._guard():
            row = self._conn.execute(
                "SELECT record FROM runtime WHERE netns = ? AND name = ?", (netns or "", name)
            ).fetchone()
        if row is None:
            return None
        try:
            return self._record(row[0], netns, name)
        except StoreError:
            return None

    def runtime_unreadable(self, netns: str | None, name: str) -> StoreError | None:
        """The error describing NAME's runtime record if it exists but cannot be read."""
        with self._guard():
            row = self._conn.execute(
                "SELECT record FROM runtime WHERE netns = ? AND name = ?", (netns or "", name)
            ).fetchone()
        if row is None:
            return None
        try:
            self._record(row[0], netns, name)
        except StoreError as exc:
            return exc
        return None

    def delete_runtime(self, netns: str | None, name: str) -> bool:
        with self.transaction(), self._guard():
            cur = self._conn.execute(
                "DELETE FROM runtime WHERE netns = ? AND name = ?", (netns or "", name)
            )
            return cur.rowcount > 0

    def list_runtime(self, netns: str | None) -> dict[str, dict[str, Any]]:
        """Every readable runtime record in NETNS. An unreadable one is left out (treated as
        lost, see ``get_runtime``), so one damaged row does not stop every command."""
        with self._guard():
            rows = self._conn.execute(
                "SELECT name, record FROM runtime WHERE netns = ? ORDER BY name", (netns or "",)
            ).fetchall()
        out = {}
        for name, text in rows:
            with contextlib.suppress(StoreError):
                out[name] = self._record(text, netns, name)
        return out

    # -- internals -----------------------------------------------------------------------

    def _record(self, text: str, netns: str | None, name: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            ns = netns or ""
            where = f"--netns {ns} " if ns else ""
            raise StoreError(
                f"runtime status of network {name!r} in namespace {ns or 'root'} in "
                f"{self.path} is unreadable",
                hint=f"'virtnet {where}net-start {name}' drops it and rebuilds the status "
                "from what virtnet marked on the host",
            )
        return value

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise use of the connection and turn SQLite failures into StoreError."""
        with self._mutex:
            try:
                yield
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"{self.path}: {exc}") from None
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
            return StoreError(
                f"state database {self.path} stayed locked for {BUSY_TIMEOUT_MS // 1000}s",
                hint="another virtnet command is holding it; retry when it has finished",
            )
        if isinstance(exc, sqlite3.OperationalError) and (
            "readonly" in text or "unable to open" in text
        ):
            return StoreError(
                f"cannot write state database {self.path}: {text}",
                hint="run as root, or pass a writable --state-dir",
            )
        return StoreError(
            f"state database {self.path} is corrupted or not a virtnet database ({text})",
            hint=f"virtnet will not replace it. Move it aside (mv {self.path} "
            f"{self.path}.broken), then re-define your networks (virtnet apply -f / "
            f"net-define / import); net-start or apply then takes back networks still running. "
            f"'sqlite3 {self.path}.broken .recover' may salvage the old definitions",
        )

    def _migrate(self) -> None:
        """Bring the schema up to date; WAL mode and migrations run under a file lock."""
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        mode = str(self._conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        target = len(schema.MIGRATIONS)
        if version > target:
            raise StoreError(
                f"state database {self.path} has schema version {version}, newer than this "
                f"virtnet understands ({target})",
                hint="use the virtnet version that created it, or a newer one",
            )
        if version == target and mode == "wal":
            return
        lock_file = self.state_dir / "locks" / "store-migrate.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if str(self._conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                self._conn.execute("PRAGMA journal_mode = WAL")
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            for number in range(version + 1, target + 1):
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _statements(schema.MIGRATIONS[number - 1]):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {number}")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _definition(row: tuple[Any, ...]) -> StoredDefinition:
    name, uuid, xml, persistent, autostart, origin = row
    return StoredDefinition(
        name=str(name), uuid=str(uuid), xml=str(xml), persistent=bool(persistent),
        autostart=bool(autostart), origin=str(origin),
    )
