"""`virtnet host check` and `virtnet host bridge` through click's CliRunner."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from virtnet.cli.main import cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hostcfg"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def test_check_sysfs_refused_human() -> None:
    code, out, _ = run("host", "check", "--sysfs-root", str(FIXTURES / "sysfs/mode6-mii"))
    assert code == 9
    assert "REFUSED  bond0: bond bond0 under bridge br0 uses mode 6 (balance-alb)" in out
    assert "fix: use mode 1 (active-backup)" in out
    assert "result: refused (1 refusal(s), 0 warning(s)); --force to go ahead" in out


def test_check_sysfs_forced() -> None:
    code, out, _ = run(
        "host", "check", "--sysfs-root", str(FIXTURES / "sysfs/mode6-mii"), "--force"
    )
    assert code == 0
    assert "WARNING (forced) bond0" in out


def test_check_sysfs_ok_json() -> None:
    code, out, _ = run(
        "-o", "json", "host", "check", "--sysfs-root", str(FIXTURES / "sysfs/mode4-mii")
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True
    assert [(v["uplink"], v["severity"]) for v in doc["verdicts"]] == [("bond0", "ok")]


def test_check_keyfiles_json_refused() -> None:
    files = sorted(str(p) for p in (FIXTURES / "keyfile/mode2-arp").glob("*.nmconnection"))
    code, out, _ = run("-o", "json", "host", "check", *files)
    assert code == 9
    doc = json.loads(out)
    assert doc["source"] == "NetworkManager keyfiles"
    assert [v["code"] for v in doc["verdicts"] if v["severity"] == "refused"] == ["arp-monitoring"]


def test_check_nmstate_yaml_output() -> None:
    code, out, _ = run("-o", "yaml", "host", "check", str(FIXTURES / "nmstate/mode1-mii/host.yml"))
    assert code == 0
    assert "ok: true" in out


def test_check_missing_bridge_is_not_forceable() -> None:
    root = str(FIXTURES / "sysfs/bridge-missing")
    code, out, _ = run("host", "check", "--sysfs-root", root, "--bridge", "br0", "--force")
    assert code == 9
    assert "bridge br0 does not exist" in out
    assert "--force to go ahead" not in out


def test_check_files_and_sysfs_together_is_an_error() -> None:
    kf = str(FIXTURES / "keyfile/eth-uplink/br0.nmconnection")
    code, _, err = run("host", "check", kf, "--sysfs-root", "/")
    assert code == 2
    assert "give FILES or --sysfs-root, not both" in err


def test_check_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "x.yml"
    p.write_text("interfaces: [")
    code, _, err = run("host", "check", str(p))
    assert code == 2
    assert err.startswith("error: ") and "not valid YAML" in err and "Traceback" not in err


@pytest.mark.parametrize("fmt", ["nmstate", "keyfile", "nmcli"])
def test_bridge_prints_each_format(fmt: str) -> None:
    code, out, _ = run(
        "host", "bridge", "--name", "br0", "--uplink", "eth1,eth2", "--format", fmt,
        "--sysfs-root", str(FIXTURES / "sysfs/eth-uplink"),
    )  # fmt: skip
    assert code == 0
    assert {"nmstate": "type: linux-bridge", "keyfile": "# ---- br0.nmconnection ----",
            "nmcli": "nmcli connection add type bond"}[fmt] in out  # fmt: skip


@pytest.mark.parametrize("fmt", ["nmstate", "keyfile"])
def test_bridge_then_check_round_trip(tmp_path: Path, fmt: str) -> None:
    code, out, _ = run(
        "host", "bridge", "--name", "br0", "--uplink", "eth1,eth2", "--bond-mode", "802.3ad",
        "--format", fmt, "--dir", str(tmp_path), "--sysfs-root", str(tmp_path),
    )  # fmt: skip
    assert code == 0
    written = out.split()
    assert written and all(Path(p).exists() for p in written)
    if fmt == "keyfile":  # NetworkManager ignores keyfiles others can read
        assert all(stat.S_IMODE(Path(p).stat().st_mode) == 0o600 for p in written)
    code, out, _ = run("host", "check", *written)
    assert code == 0, out
    assert "mode 4 (802.3ad) with MII monitoring (miimon=100)" in out


def test_bridge_refuses_to_overwrite(tmp_path: Path) -> None:
    args = ["host", "bridge", "--name", "br0", "--uplink", "eth1", "--dir", str(tmp_path)]
    assert run(*args)[0] == 0
    code, _, err = run(*args)
    assert code == 5 and "already exist" in err


@pytest.mark.parametrize(
    "extra,code,words",
    [
        (["--bond-mode", "balance-rr"], 9, ["mode 0 (balance-rr)", "fix: use mode 1"]),
        (["--bond-mode", "broadcast"], 9, ["mode 3 (broadcast)"]),
        (["--miimon", "0"], 9, ["no link monitoring"]),
        (["--miimon", "0", "--arp-interval", "200"], 9, ["ARP link monitoring"]),
        (["--bond-mode", "9"], 2, ["bond mode 9 does not exist"]),
        (["--bond-name", "bond0;id"], 2, ["not a valid interface name"]),
    ],
)
def test_bridge_refusals(extra: list[str], code: int, words: list[str]) -> None:
    rc, out, err = run("host", "bridge", "--name", "br0", "--uplink", "eth1,eth2", *extra)
    assert rc == code
    assert out == ""  # nothing written when refused
    for w in words:
        assert w in err
    assert "Traceback" not in err


def test_bridge_refuses_wifi() -> None:
    rc, _, err = run("host", "bridge", "--name", "br0", "--uplink", "wlan0")
    assert rc == 9 and "Wi-Fi" in err


def test_check_live_namespace(unique_name: str) -> None:
    """With --netns, the namespace's own links (ip -j link), not the root's sysfs."""
    from tests.conftest import require_root
    from virtnet.host import netns

    require_root()
    ns = unique_name + "c"
    try:
        netns.create(ns)
        netns.run(ns, ["ip", "link", "add", "br9", "type", "bridge"])
        code, out, _ = run("--netns", ns, "host", "check")
        assert code == 9 and "bridge br9 is down" in out
        assert "ip link in namespace" in out
        netns.run(ns, ["ip", "link", "set", "br9", "up"])
        code, out, _ = run("--netns", ns, "host", "check")
        assert code == 0 and "bridge br9 has no uplink" in out
    finally:
        netns.delete(ns)
