"""``virtnet validate | convert | render``: through click's runner and the installed command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from virtnet.cli.main import cli
from virtnet.libvirtxml import format_network
from virtnet.loader import load_file, load_text

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / ".." / "shared" / "conformance" / "libvirt-9.0.0"
EXAMPLES = sorted((ROOT / "examples").glob("*.xml")) + sorted((ROOT / "examples").glob("*.yaml"))
VIRTNET = Path(sys.executable).parent / "virtnet"
MODES = ("nat", "route", "bridge", "isolated", "open")


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, list(args))
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), (
        res.exception
    )
    return res.exit_code, res.stdout, res.stderr


def test_examples_one_per_mode_in_both_forms() -> None:
    for mode in MODES:
        xml, yml = ROOT / "examples" / f"{mode}.xml", ROOT / "examples" / f"{mode}.yaml"
        assert load_file(xml).mode.value == mode
        # the two forms describe the same network
        assert format_network(load_file(xml)) == format_network(load_file(yml))
        assert "#" in yml.read_text() and "<!--" in xml.read_text()  # commented


def test_validate_examples() -> None:
    code, out, err = run("validate", *map(str, EXAMPLES))
    assert code == 0, err
    assert out.count(": ok: network ") == len(EXAMPLES) == 10
    assert "nat.xml: ok: network 'default' (nat, bridge virbr0, 192.168.122.1/24" in out


def test_validate_reports_each_file_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmode: nat\nbridge: {name: virbr0}\nmtu: 9000\n")
    code, out, err = run("validate", str(ROOT / "examples" / "nat.xml"), str(bad))
    assert code == 2
    assert "nat.xml: ok" in out
    assert f"{bad}: error: ip: nat forwarding requested, but no IP address provided" in err
    assert "fix:" in err


def test_validate_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<network><name>a/b</name></network>")
    code, out, _ = run("-o", "json", "validate", str(ROOT / "examples" / "open.yaml"), str(bad))
    data = json.loads(out)
    assert code == 2
    assert data[0] == {
        "file": str(ROOT / "examples" / "open.yaml"),
        "ok": True,
        "network": "open",
        "mode": "open",
    }
    assert data[1]["ok"] is False and data[1]["problems"][0]["fix"]


def test_validate_missing_file() -> None:
    code, _, err = run("validate", "/nonexistent/net.xml")
    assert code == 4 and "no such file" in err


@pytest.mark.parametrize("src", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("fmt", ["xml", "yaml"])
def test_convert_keeps_the_network(src: Path, fmt: str) -> None:
    code, out, err = run("convert", str(src), "--to", fmt)
    assert code == 0, err
    assert out.lstrip().startswith("<network") == (fmt == "xml")
    assert format_network(load_text(out)) == format_network(load_file(src))


def test_render_uses_state_dir(tmp_path: Path) -> None:
    code, out, _ = run("--state-dir", str(tmp_path), "render", str(ROOT / "examples/nat.yaml"))
    assert code == 0
    assert f"dhcp-hostsfile={tmp_path}/dnsmasq/default.hostsfile" in out.splitlines()
    assert "interface=virbr0" in out.splitlines()
    code, out, _ = run("render", str(ROOT / "examples/nat.xml"), "--what", "hosts")
    assert out == "52:54:00:00:00:10,192.168.122.10,web\n"
    code, out, _ = run("render", str(ROOT / "examples/nat.xml"), "--what", "addnhosts")
    assert code == 0 and out == ""


def test_render_isolated_has_no_route() -> None:
    code, out, _ = run("render", str(ROOT / "examples/isolated.xml"))
    assert code == 0 and "dhcp-option=3" in out.splitlines() and "domain=private.test" in out


def test_render_bridge_prints_nothing() -> None:
    code, out, err = run("render", str(ROOT / "examples/bridge.yaml"))
    assert (code, out) == (0, "")
    assert "runs no dnsmasq" in err


def test_render_refuses_invalid(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text(
        "name: x\nmode: nat\nips: [{address: 10.0.0.1/24}]\n"
        "dnsmasq_options: ['dhcp-script=/bin/sh']\n"
    )
    code, out, err = run("render", str(bad))
    assert code == 2 and out == "" and "controls the dnsmasq process" in err


def test_render_fills_missing_bridge_name(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("name: x\nmode: route\nips: [{address: 10.0.0.1/24}]\n")
    code, out, err = run("render", str(f))
    assert code == 0 and "interface=virbr0" in out.splitlines() and "virbr0" in err


def _corpus_files() -> list[Path]:
    return sorted((CORPUS / "networkxml2xmlin").glob("*.xml")) + sorted(
        (CORPUS / "networkxml2confdata").glob("*.xml")
    )


def test_installed_command_over_examples_and_corpus(tmp_path: Path) -> None:
    """The installed entry point on every example and corpus file: results, never tracebacks."""
    cases = dict(
        line.split("\t")[:2] for line in (CORPUS / "xml2xml-cases.tsv").read_text().splitlines()[1:]
    )
    files = [*EXAMPLES, *_corpus_files()]
    res = subprocess.run(
        [str(VIRTNET), "-o", "json", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in res.stderr
    assert res.returncode == 2  # libvirt's parse-error cases and define-time refusals
    verdicts = {Path(r["file"]): r["ok"] for r in json.loads(res.stdout)}
    assert len(verdicts) == len(files)
    for path in files:
        if path.parent.name == "networkxml2xmlin" and cases[path.stem] == "parse-error":
            assert verdicts[path] is False, path
    assert all(verdicts[p] for p in EXAMPLES)
    # every valid corpus file converts and renders (in process: one interpreter start each
    # would cost ~0.5 s); the installed command once for each of convert and render
    for path in [p for p in files if verdicts[p]]:
        for argv in (["convert", str(path), "--to", "yaml"], ["render", str(path)]):
            code, _, err = run("--state-dir", str(tmp_path), *argv)
            assert code == 0, (argv, err)
    nat = str(ROOT / "examples" / "nat.yaml")
    for argv in (["convert", nat, "--to", "xml"], ["render", nat]):
        r = subprocess.run(
            [str(VIRTNET), "--state-dir", str(tmp_path), *argv],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 0 and r.stdout and "Traceback" not in r.stderr, (argv, r.stderr)


def test_standard_input() -> None:
    yaml_text = (ROOT / "examples" / "route.yaml").read_text()
    res = CliRunner().invoke(cli, ["convert", "-", "--to", "xml"], input=yaml_text)
    assert res.exit_code == 0 and res.stdout.startswith("<network>")
    res = CliRunner().invoke(cli, ["validate", "-"], input=res.stdout)
    assert res.exit_code == 0 and res.stdout.startswith("-: ok: network 'routed' (route")
    res = CliRunner().invoke(cli, ["validate", "-"], input="name: [")
    assert res.exit_code == 2 and "not valid YAML" in res.stderr
