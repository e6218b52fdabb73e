"""Open mode "depends on the host's firewall rules": verify reads the lab host's real ruleset
and expects what it allows, and `virtnet reach --netns` says the same without probing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import require_root
from virtnet.cli.main import cli
from virtnet.demo import demo_spec
from virtnet.lab import bed
from virtnet.reach.table import NO, YES
from virtnet.reach.verify import verify

pytestmark = pytest.mark.host


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[bed.LabState]:
    require_root()
    st = bed.up(demo_spec(vms=2), tmp_path)
    try:
        yield st
    finally:
        bed.down(st)


def test_host_rules_decide_open_mode(lab: bed.LabState) -> None:
    open_br = next(n for n in lab.network_defs() if n.name == "open").bridge_name
    # The host's own table (not virtnet's): no new connections into the open network.
    script = (
        "table inet hostfw {\n"
        "  chain hostforward {\n"
        "    type filter hook forward priority 10; policy accept;\n"
        f'    oifname "{open_br}" ct state new counter drop\n'
        "  }\n"
        "}\n"
    )
    subprocess.run(["ip", "netns", "exec", lab.host_ns, "nft", "-f", "-"], input=script,
                   text=True, check=True)
    report = verify(lab)
    assert report.differences == []  # expected from the real rules, and observed so
    row = next(r for r in report.observed_rows() if r.network == "open")
    # br_netfilter sends VM-to-VM frames on the open bridge through the forward hook too
    # (field notes), so the host's rule also cuts the open network's VMs off each other.
    assert row.cells == (YES, NO, YES, NO)
    vis = report.matrix.get("outside1", "open/vm1")
    assert vis is not None and vis.reachable is False
    assert "table inet hostfw chain hostforward" in vis.rule and "drop" in vis.rule
    # A host drop is final in nftables: route VMs lose the open network too, nat VMs as well.
    for src in ("route/vm1", "nat/vm1"):
        v = report.matrix.get(src, "open/vm1")
        assert v is not None and v.reachable is False
    # The same answer without packets, from the command line.
    res = CliRunner().invoke(cli, ["--state-dir", lab.state_dir, "--netns", lab.host_ns,
                                   "--output", "json", "reach", "--lab", lab.mark,
                                   "--vms", "2"])
    assert res.exit_code == 0, res.output
    table = {r["network"]: r["cells"] for r in json.loads(res.stdout)["table"]}
    assert table["open"]["Visible to outside locations"] == NO
    assert table["open"]["Connection to other VMs on the host"] == NO
    assert table["open"]["Connection to outside locations"] == YES
