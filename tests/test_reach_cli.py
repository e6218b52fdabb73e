"""`virtnet reach`: the expected matrix from definition files or sample modes, no root."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from virtnet.cli.main import cli

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "libvirt-9.0.0"


def _reach(*args: str) -> dict[str, object]:
    res = CliRunner().invoke(cli, ["--output", "json", "reach", *args])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert isinstance(data, dict)
    return data


def test_reach_sample_modes_json() -> None:
    data = _reach("--mode", "nat", "--mode", "route", "--mode", "isolated")
    table = {r["row"]: r["cells"] for r in data["table"]}  # type: ignore[union-attr]
    assert table["NAT"]["Visible to outside locations"] == "no"
    assert table["Routed mode"]["Visible to outside locations"] == "YES"
    assert table["Isolated mode"]["Connection to outside locations"] == "no"
    pairs = data["pairs"]
    assert isinstance(pairs, list)
    guard = [p for p in pairs if p["from"] == "route/vm1" and p["to"] == "nat/vm1"]
    assert guard and all(p["reachable"] is False and "inbound guard" in p["rule"]
                         for p in guard)


def test_reach_libvirt_definitions() -> None:
    files = [str(CORPUS / "networkxml2xmlin" / f) for f in
             ("nat-network.xml", "routed-network.xml", "isolated-network.xml",
              "open-network.xml", "host-bridge-net.xml")]
    data = _reach("--seed-style", *files)
    rows = {r["network"]: r for r in data["table"]}  # type: ignore[union-attr]
    modes = {r["mode"] for r in rows.values()}
    assert modes == {"nat", "route", "isolated", "open", "bridge"}
    for r in rows.values():
        if r["mode"] == "open":
            assert set(r["cells"].values()) == {"Depends on the host's firewall rules"}
        if r["mode"] in ("route", "bridge"):
            assert set(r["cells"].values()) == {"YES"}


def test_reach_human_output_and_errors() -> None:
    res = CliRunner().invoke(cli, ["reach", "--mode", "nat"])
    assert res.exit_code == 0
    assert "visible from outside" in res.output
    assert "inbound guard" in res.output
    res = CliRunner().invoke(cli, ["reach"])
    assert res.exit_code == 2 and "no networks given" in res.output
