"""The SQLite store: definitions, runtime status, migrations, corruption, concurrency, locks."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from virtnet.errors import Conflict, StoreError
from virtnet.store import Store, StoredDefinition, host_lock, schema
from virtnet.store.lock import lock_path

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path) as st:
        st.put_definition("net1", "u-1", "<network/>", persistent=True)
        st.put_definition("net0", "u-0", "<network><name>net0</name></network>",
                          persistent=False, autostart=True)
        assert st.get_definition("net1") == StoredDefinition("net1", "u-1", "<network/>",
                                                            True, False)
        assert [d.name for d in st.list_definitions()] == ["net0", "net1"]
        assert st.get_definition_by_uuid("U-0") is not None
        assert st.set_autostart("net1", True)
        assert st.get_definition("net1").autostart  # type: ignore[union-attr]
        assert not st.set_autostart("missing", True)
        # Replacing a definition keeps the name, takes the new values.
        st.put_definition("net1", "u-1", "<network>v2</network>", persistent=True,
                          autostart=False)
        assert st.get_definition("net1").xml == "<network>v2</network>"  # type: ignore[union-attr]
        assert st.delete_definition("net1")
        assert not st.delete_definition("net1")
        assert st.get_definition("net1") is None
    # Persisted across opens.
    with Store(tmp_path) as st:
        assert [d.name for d in st.list_definitions()] == ["net0"]


def test_uuid_taken_by_another_name_is_a_conflict(tmp_path: Path) -> None:
    with Store(tmp_path) as st:
        st.put_definition("a", "same", "<a/>", persistent=True)
        with pytest.raises(Conflict, match="already used by network 'a'"):
            st.put_definition("b", "same", "<b/>", persistent=True)
        assert st.get_definition("b") is None


def test_runtime_is_per_namespace(tmp_path: Path) -> None:
    with Store(tmp_path) as st:
        st.put_runtime("", "n", {"bridge": "virbr0", "links": ["virbr0"]})
        st.put_runtime("ns1", "n", {"bridge": "virbr9"})
        assert st.get_runtime(None, "n") == {"bridge": "virbr0", "links": ["virbr0"]}
        assert st.list_runtime("ns1") == {"n": {"bridge": "virbr9"}}
        assert st.delete_runtime("ns1", "n")
        assert st.list_runtime("ns1") == {}
        assert st.get_runtime("", "n") is not None


def test_unreadable_runtime_record_is_reported(tmp_path: Path) -> None:
    with Store(tmp_path) as st:
        st.put_runtime("", "n", {"a": 1})
    con = sqlite3.connect(tmp_path / "virtnet.db")
    con.execute("UPDATE runtime SET record = 'garbage'")
    con.commit()
    con.close()
    with Store(tmp_path) as st:
        # Treated as lost (None), and told apart from a missing one with its fix.
        assert st.get_runtime("", "n") is None
        err = st.runtime_unreadable("", "n")
        assert err is not None and "net-start n' drops it and rebuilds" in str(err)
        assert st.runtime_unreadable("", "other") is None
        # Listing leaves the damaged row out instead of failing every command.
        st.put_runtime("", "ok", {"b": 2})
        assert st.list_runtime("") == {"ok": {"b": 2}}


def test_transaction_rolls_back_every_write(tmp_path: Path) -> None:
    with Store(tmp_path) as st:
        st.put_definition("keep", "u-k", "<k/>", persistent=True)
        with pytest.raises(RuntimeError), st.transaction():
            st.put_definition("x", "u-x", "<x/>", persistent=True)
            st.delete_definition("keep")
            raise RuntimeError("boom")
        assert [d.name for d in st.list_definitions()] == ["keep"]


def test_new_database_is_wal_at_current_version(tmp_path: Path) -> None:
    with Store(tmp_path) as st:
        assert st.schema_version == len(schema.MIGRATIONS)
        assert st.check() == []
    con = sqlite3.connect(tmp_path / "virtnet.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_migration_runs_once_and_keeps_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    with Store(tmp_path) as st:
        st.put_definition("n", "u", "<n/>", persistent=True)
    v1 = len(schema.MIGRATIONS)
    extra = "ALTER TABLE definitions ADD COLUMN note TEXT DEFAULT 'migrated'"
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, extra])
    with Store(tmp_path) as st:
        assert st.schema_version == v1 + 1
        assert st.get_definition("n") is not None
    # Opening again does not re-run it (it would fail: the column exists).
    with Store(tmp_path) as st:
        assert st.schema_version == v1 + 1
    con = sqlite3.connect(tmp_path / "virtnet.db")
    assert con.execute("SELECT note FROM definitions").fetchone()[0] == "migrated"
    con.close()


def test_version_1_database_is_migrated(tmp_path: Path) -> None:
    """A database written by schema version 1 keeps its rows and gains origin + meta."""
    con = sqlite3.connect(tmp_path / "virtnet.db")
    con.executescript(schema.MIGRATIONS[0])
    con.execute("INSERT INTO definitions VALUES ('old', 'u-old', '<old/>', 1, 1, 0, 0)")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    with Store(tmp_path) as st:
        assert st.schema_version == len(schema.MIGRATIONS) >= 2
        assert st.get_definition("old") == StoredDefinition("old", "u-old", "<old/>", True,
                                                           True, "define")
        st.put_definition("new", "u-new", "<new/>", persistent=True, origin="apply")
        assert st.get_definition("new").origin == "apply"  # type: ignore[union-attr]
        assert st.get_meta("k") is None
        st.set_meta("k", "v1")
        st.set_meta("k", "v2")
        assert st.get_meta("k") == "v2"


def test_failed_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    with Store(tmp_path) as st:
        st.put_definition("n", "u", "<n/>", persistent=True)
    v1 = len(schema.MIGRATIONS)
    bad = "ALTER TABLE definitions ADD COLUMN z TEXT; SELECT * FROM no_such_table"
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, bad])
    with pytest.raises(StoreError):
        Store(tmp_path)
    monkeypatch.undo()
    with Store(tmp_path) as st:
        assert st.schema_version == v1
        assert st.get_definition("n") is not None
    con = sqlite3.connect(tmp_path / "virtnet.db")
    cols = [r[1] for r in con.execute("PRAGMA table_info(definitions)")]
    con.close()
    assert "z" not in cols


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path).close()
    con = sqlite3.connect(tmp_path / "virtnet.db")
    con.execute("PRAGMA user_version = 999")
    con.close()
    with pytest.raises(StoreError, match="newer than this virtnet"):
        Store(tmp_path)


def test_garbage_file_is_reported_not_replaced(tmp_path: Path) -> None:
    db = tmp_path / "virtnet.db"
    junk = b"this is not sqlite at all\n" * 200
    db.write_bytes(junk)
    with pytest.raises(StoreError) as info:
        Store(tmp_path)
    msg = str(info.value)
    assert str(db) in msg and "corrupted" in msg and "mv " in msg
    assert db.read_bytes() == junk


def test_damaged_pages_are_reported(tmp_path: Path) -> None:
    with Store(tmp_path) as st:
        for i in range(200):
            st.put_definition(f"n{i}", f"u{i}", "<network>" + "x" * 500 + "</network>",
                              persistent=True)
    # Fold the WAL into the main file, then overwrite the table pages with noise.
    con = sqlite3.connect(tmp_path / "virtnet.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    db = tmp_path / "virtnet.db"
    data = bytearray(db.read_bytes())
    for off in range(4096 * 2, len(data), 4096):
        data[off:off + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    before = db.read_bytes()
    with pytest.raises(StoreError, match="corrupted"):
        st = Store(tmp_path)
        st.list_definitions()
    assert db.read_bytes() == before


def test_unwritable_state_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create state directory"):
        Store(blocker / "sub")


_WRITER = textwrap.dedent(
    """
    import sys
    from virtnet.store import Store
    state, idx = sys.argv[1], int(sys.argv[2])
    st = Store(state)
    for j in range(5):
        st.put_definition(f"net{idx}-{j}", f"uuid-{idx}-{j}", "<network/>", persistent=True)
        st.put_runtime("", f"net{idx}-{j}", {"pid": idx})
        st.list_definitions()
    print("ok")
    """
)


def test_twenty_processes_at_once(tmp_path: Path) -> None:
    """20 concurrent writers on a fresh state dir (schema creation races too): none lost."""
    state = tmp_path / "state"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(state), str(i)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(20)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    with Store(state) as st:
        names = {d.name for d in st.list_definitions()}
        assert names == {f"net{i}-{j}" for i in range(20) for j in range(5)}
        assert len(st.list_runtime("")) == 100
        assert st.check() == []


def test_host_lock_excludes_other_processes(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from virtnet.store import host_lock
        with host_lock(Path(sys.argv[1]), "nsA"):
            print("held", flush=True)
            time.sleep(0.6)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        # Another namespace is independent.
        t0 = time.monotonic()
        with host_lock(tmp_path, "nsB"):
            assert time.monotonic() - t0 < 0.3
        with pytest.raises(Conflict, match="still changing namespace nsA"), \
                host_lock(tmp_path, "nsA", timeout=0.1):
            pass
        t0 = time.monotonic()
        with host_lock(tmp_path, "nsA"):
            waited = time.monotonic() - t0
        assert waited > 0.2  # had to wait for the holder to finish
    finally:
        holder.wait(timeout=10)


def test_host_lock_is_reentrant_and_named(tmp_path: Path) -> None:
    with Store(tmp_path) as st, st.host_lock(""), st.host_lock(None), host_lock(tmp_path, None):
        assert lock_path(tmp_path, None).name == "_root.lock"
    assert lock_path(tmp_path, "a b/c").name == "x-6120622f63.lock"
    assert lock_path(tmp_path, "ns-1").name == "ns-1.lock"
