"""Bad input as an administrator's bad day: every error a clear, documented one (pure: no
root). Names that cannot become file names are refused at define; under ``-o json`` every
error, click's usage errors included, is the documented JSON object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from virtnet.cli.main import cli
from virtnet.errors import InvalidDefinition
from virtnet.libvirtxml import parse_network
from virtnet.model.filename import LONGEST_SUFFIX, NAME_MAX, NAME_MAX_BYTES, escape_name
from virtnet.model.validate import validate


def _xml(name: str) -> str:
    return (f"<network><name>{name}</name><forward mode='nat'/>"
            "<ip address='10.99.0.1' prefix='24'/></network>")


@pytest.mark.parametrize("length", [246, 300, 5000])
def test_names_too_long_for_a_file_are_refused_at_define(tmp_path: Path, length: int) -> None:
    path = tmp_path / "long.xml"
    path.write_text(_xml("n" * length))
    result = CliRunner().invoke(cli, ["--state-dir", str(tmp_path / "s"), "net-define",
                                      str(path)])
    assert result.exit_code == 2, result.output
    assert "too long to name the network's files and marks" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "s" / "dnsmasq").exists()


def test_the_longest_name_that_fits_is_accepted() -> None:
    validate(parse_network(_xml("n" * NAME_MAX_BYTES)))
    with pytest.raises(InvalidDefinition):
        validate(parse_network(_xml("n" * (NAME_MAX_BYTES + 1))))
    # escaping counts: a character outside [A-Za-z0-9_.-] takes 3 bytes per UTF-8 byte
    limit = NAME_MAX - len(LONGEST_SUFFIX)
    wide = "%" * (limit // 3 + 1)  # 1 byte each in the name, 3 in its file names
    assert len(wide.encode()) <= NAME_MAX_BYTES and len(escape_name(wide)) > limit
    with pytest.raises(InvalidDefinition):
        validate(parse_network(_xml(wide)))


@pytest.mark.parametrize(
    "args",
    [
        ["net-define", "/tmp"],  # a directory for FILE
        ["net-define"],  # a missing argument
        ["no-such-verb"],
        ["net-list", "--no-such-flag"],
        ["port-add", "x", "--kind", "floppy"],  # a bad choice
    ],
)
def test_usage_errors_are_json_under_o_json(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["-o", "json", "--state-dir", str(tmp_path), *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    err = json.loads(result.stderr)["error"]
    assert err["code"] == "usage" and err["exit_status"] == 2 and err["message"]
    plain = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), *args])
    assert plain.exit_code == 2 and "Usage:" in plain.output  # click's text stays for people
