"""The database schema as an ordered list of migrations.

``PRAGMA user_version`` records how many migrations a database has had. Migration N (1-based)
takes a database from version N-1 to N; a migration is never edited once released, only new
ones appended, so every old database can be brought forward.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: definitions (persistent and transient) and runtime status per namespace.
    """
    CREATE TABLE definitions (
        name        TEXT PRIMARY KEY,
        uuid        TEXT NOT NULL UNIQUE,
        xml         TEXT NOT NULL,
        persistent  INTEGER NOT NULL,
        autostart   INTEGER NOT NULL DEFAULT 0,
        created     REAL NOT NULL,
        updated     REAL NOT NULL
    );
    CREATE TABLE runtime (
        netns   TEXT NOT NULL,
        name    TEXT NOT NULL,
        record  TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (netns, name)
    );
    """,
    # 2: where a definition came from (so `apply --prune` removes only what apply made), and
    # small facts about the store itself (e.g. that the default network was offered once).
    """
    ALTER TABLE definitions ADD COLUMN origin TEXT NOT NULL DEFAULT 'define';
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
]
