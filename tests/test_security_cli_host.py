"""The command line beside concurrent change, and the exit codes docs/cli.md promises."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_env import CliHost, cli_host, net_xml
from tests.conftest import require_root
from tests.test_cli_lifecycle import _fork_cli

pytestmark = pytest.mark.host


@pytest.fixture
def host(tmp_path: Path, unique_name: str) -> Iterator[CliHost]:
    require_root()
    with cli_host(tmp_path, unique_name) as h:
        yield h


def test_net_list_never_fails_beside_concurrent_starts_and_stops(host: CliHost) -> None:
    """20 processes start and stop networks while net-list runs again and again: every
    listing succeeds (a network stopping between two reads was an exit 4)."""
    for i in range(20):
        host.run("net-define", str(host.write(f"c{i}.xml",
                                             net_xml(f"c{i}", f"{host.mark}{i}", 140 + i))))
    base = ["--netns", host.ns, "--state-dir", str(host.state)]
    pids = []
    for i in range(20):
        verb = ["net-start", f"c{i}"]
        pids.append(_fork_cli([*base, *verb], host.tmp / f"start{i}"))
    listings = 0
    # starts, then stops, then starts again, with listings throughout
    for then in ("net-destroy", "net-start", None):
        while pids:
            result = host.run("net-list", "--all", ok=False)
            assert result.exit_code == 0, result.output
            listings += 1
            done = [p for p in pids if os.waitpid(p, os.WNOHANG)[0] != 0]
            pids = [p for p in pids if p not in done]
        if then is not None:
            pids = [_fork_cli([*base, then, f"c{i}"], host.tmp / f"{then}{i}")
                    for i in range(20)]
    assert listings >= 3
    final = host.json("net-list")
    assert len(final) == 20  # type: ignore[arg-type]


def test_ports_of_an_inactive_network_are_a_conflict(host: CliHost) -> None:
    host.run("net-define", str(host.write("i.xml", net_xml("idle", f"{host.mark}i", 160))))
    for args in (["port-add", "idle", "--kind", "tap"], ["port-list", "idle"],
                 ["port-delete", "idle", "vnet0"]):
        result = host.run(*args, ok=False)
        assert result.exit_code == 5 and "is not active" in result.output, (args, result.output)
    missing = host.run("port-add", "nosuch", "--kind", "tap", ok=False)
    assert missing.exit_code == 4
