"""The lab commands end to end: up, status, list, verify (exit status on a difference), down,
and the demo torn down by Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import require_root
from tests.test_lab_break import _forward_chains
from virtnet.cli.main import cli
from virtnet.errors import VerificationFailed
from virtnet.host import netns as netns_mod
from virtnet.lab import bed

pytestmark = pytest.mark.host
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "lab"


def _run(state: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["--state-dir", str(state), *args])
    return res.exit_code, res.output


def test_lab_commands(tmp_path: Path) -> None:
    require_root()
    code, out = _run(tmp_path, "--output", "json", "lab", "up", "--network", "nat",
                     "--network", "route", "--vms", "1")
    assert code == 0, out
    mark = json.loads(out[out.index("{"):])["mark"]
    try:
        code, out = _run(tmp_path, "lab", "list")
        assert code == 0 and mark in out and "nat,route" in out
        code, out = _run(tmp_path, "lab", "status", mark)
        assert code == 0 and "nat/vm1" in out and "203.0.113.10" in out
        code, out = _run(tmp_path, "verify")
        assert code == 0, out
        assert "0 difference(s)" in out
        # Break NAT's inbound guard: verify names the pairs and exits with its own status.
        host = f"{mark}-host"
        for chain in _forward_chains(host):
            subprocess.run(["ip", "netns", "exec", host, "nft", "insert", "rule", "inet",
                            "virtnet", chain, "oifname", '"vnbr0"', "accept"], check=True)
        code, out = _run(tmp_path, "verify", mark)
        assert code == VerificationFailed.exit_status, out
        assert "DIFFERS" in out and "outside1 -> nat/vm1" in out
    finally:
        code, out = _run(tmp_path, "lab", "down", mark)
    assert code == 0, out
    assert not [n for n in netns_mod.list_names() if n.startswith(mark)]
    code, out = _run(tmp_path, "lab", "down", mark)
    assert code == 4 and "no lab" in out


def test_lab_up_from_file_and_down_all(tmp_path: Path) -> None:
    require_root()
    code, out = _run(tmp_path, "lab", "up", str(EXAMPLES / "no-outside-routes.yaml"))
    assert code == 0, out
    (lab,) = bed.list_labs(tmp_path)
    code, out = _run(tmp_path, "verify", lab.mark)
    assert code == 0, out
    code, out = _run(tmp_path, "lab", "down", "--all")
    assert code == 0 and lab.mark in out
    assert not [n for n in netns_mod.list_names() if n.startswith(lab.mark)]


def test_demo_interrupted_tears_down(tmp_path: Path) -> None:
    require_root()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "virtnet"), "--state-dir", str(tmp_path), "demo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    mark = None
    deadline = time.monotonic() + 10
    while mark is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"lab (vl[0-9a-f]{4})", line)
        if m:
            mark = m.group(1)
    assert mark, "the demo reports its lab while building"
    proc.send_signal(signal.SIGINT)  # Ctrl-C in the middle of the build
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert not [n for n in netns_mod.list_names() if n.startswith(mark)], err
    assert not list((tmp_path / "labs").glob("*.json"))


def test_dual_stack_lab_verifies_ipv6(tmp_path: Path) -> None:
    require_root()
    code, out = _run(tmp_path, "lab", "up", str(EXAMPLES / "dual-stack.yaml"))
    assert code == 0, out
    try:
        code, out = _run(tmp_path, "--output", "json", "verify")
        assert code == 0, out
        data = json.loads(out[out.index("{"):])
        v6 = [r for r in data["results"] if r["family"] == "ipv6"]
        assert v6 and not any(r["differs"] for r in data["results"])
        # A nat network's IPv6 is routed (no <nat ipv6='yes'>): visible over IPv6 only.
        seen = {(r["family"], r["proto"]): r["observed"] for r in data["results"]
                if r["from"] == "outside1" and r["to"] == "nat6/vm1"}
        assert seen == {("ipv4", "icmp"): False, ("ipv4", "tcp"): False,
                        ("ipv6", "icmp"): True, ("ipv6", "tcp"): True}
    finally:
        _run(tmp_path, "lab", "down")
