"""The store as the command line shows it: a broken database is an error with a way out."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from virtnet.cli.main import cli


def test_corrupted_database_is_reported_with_recovery(tmp_path: Path) -> None:
    db = tmp_path / "virtnet.db"
    junk = b"definitely not an SQLite database\n" * 100
    db.write_bytes(junk)
    r = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "net-list", "--all"])
    assert r.exit_code == 8
    assert f"state database {db} is corrupted" in r.output
    assert f"mv {db} {db}.broken" in r.output
    assert "Traceback" not in r.output
    assert db.read_bytes() == junk  # never replaced


def test_newer_schema_is_an_error(tmp_path: Path) -> None:
    import sqlite3

    con = sqlite3.connect(tmp_path / "virtnet.db")
    con.execute("PRAGMA user_version = 4242")
    con.close()
    r = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "net-list"])
    assert r.exit_code == 8 and "newer than this virtnet understands" in r.output
