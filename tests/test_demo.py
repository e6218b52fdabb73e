"""The main job: the demo's observed table is the seed's (in CI, with real packets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import require_root
from virtnet import demo
from virtnet.cli.main import cli
from virtnet.host import netns as netns_mod
from virtnet.reach.table import DEPENDS, SEED_TABLE, YES

pytestmark = pytest.mark.host


def test_demo_observed_table_is_the_seed(tmp_path: Path) -> None:
    require_root()
    lines: list[str] = []
    result = demo.run(tmp_path, progress=lines.append)
    assert lines, "progress is reported while it runs"
    assert result.report.differences == []
    observed = {r.label: r.cells for r in result.observed}
    for label in ("Bridged mode", "NAT", "Routed mode", "Isolated mode"):
        assert observed[label] == SEED_TABLE[label], label
    # Open mode: the seed says "depends on the host's firewall rules"; the lab host has none,
    # so forwarding decides and everything is reachable.
    assert SEED_TABLE["Open mode"] == (DEPENDS,) * 4
    assert observed["Open mode"] == (YES,) * 4
    assert result.ok
    # NAT's outbound traffic was seen by the outside host as coming from the VM host.
    nat_out = [r for r in result.report.results
               if r.key.src.startswith("nat/") and r.key.dst == "outside1"
               and r.key.proto == "tcp"]
    assert nat_out and all(r.seen_as == "host" for r in nat_out)
    route_out = [r for r in result.report.results
                 if r.key.src.startswith("route/") and r.key.dst == "outside1"
                 and r.key.proto == "tcp"]
    assert route_out and all(r.seen_as == "itself" for r in route_out)
    # Bridged VMs are plain LAN stations: the outside host saw their own addresses.
    lan_in = [r for r in result.report.results
              if r.key.src == "outside1" and r.key.dst.startswith("bridge/")
              and r.key.proto == "tcp"]
    assert lan_in and all(r.observed.ok and r.seen_as == "itself" for r in lan_in)
    assert not [n for n in netns_mod.list_names() if n.startswith(result.mark)]
    assert not (tmp_path / "labs" / f"{result.mark}.json").exists()


def test_demo_command_json(tmp_path: Path) -> None:
    require_root()
    res = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "--output", "json", "demo"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["ok"] is True and data["differences"] == []
    assert {r["row"] for r in data["seed"]} == set(SEED_TABLE)
    observed = {r["row"]: r["cells"] for r in data["observed"]}
    expected = {r["row"]: r["cells"] for r in data["expected"]}
    assert observed["NAT"]["Visible to outside locations"] == "no"
    assert observed == expected
    assert observed["Bridged mode"] == dict.fromkeys(observed["NAT"], "YES")
    assert data["timings"]["total"] > 0
