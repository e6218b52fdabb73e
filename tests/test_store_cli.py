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


def test_unreadable_stored_definition_names_the_network(tmp_path: Path) -> None:
    from virtnet.store import Store

    with Store(tmp_path) as st:
        st.set_meta("default-network", "skipped")
        st.put_definition("old", "0b2f7c7e-9a55-4c7e-9d3e-000000000001",
                          "<network><name>old</name><bogus", persistent=True)
    r = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "net-list", "--all"])
    assert r.exit_code == 2
    assert "the stored definition of network 'old' cannot be read" in r.output
    assert "virtnet net-edit old" in r.output
    # net-edit opens the stored text as it is, so it can be corrected.
    editor = tmp_path / "fix.py"
    editor.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                      "p.write_text('<network><name>old</name></network>')\n")
    import sys

    r = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "net-edit", "old"],
                           env={"EDITOR": f"{sys.executable} {editor}", "VISUAL": ""})
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "-o", "json", "net-info", "old"])
    assert r.exit_code == 0 and '"name": "old"' in r.output
