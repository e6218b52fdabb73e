"""libvirt's own dnsmasq test cases: our configuration says what libvirt 9.0's says.

Compared as the corpus README says: directives (``key=value`` lines, comments dropped) with the
process-only ones left out on both sides; every other directive as often as libvirt has it, and
repeated ones in the same relative order; hosts files line by line. ``dhcp-hostsfile`` and
``addn-hosts`` are where libvirt has them but point into virtnet's state directory.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from virtnet.dnsmasq.config import DnsmasqPaths, render_conf, render_hostsfile
from virtnet.libvirtxml import parse_network

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "libvirt-9.0.0"
DATA = CORPUS / "networkxml2confdata"
STATE = Path("/var/lib/virtnet")
PROCESS_ONLY = {
    "pid-file",
    "dhcp-leasefile",
    "leasefile-ro",
    "dhcp-script",
    "user",
    "group",
    "log-facility",
    "log-queries",
    "log-dhcp",
    "conf-file",
    "conf-dir",
    "keep-in-foreground",
    "no-daemon",
}
CASES = (CORPUS / "xml2conf-cases.tsv").read_text().split()[1:]


def directives(text: str) -> dict[str, list[str]]:
    """key -> its values in file order (a multiset that keeps each key's relative order)."""
    out: dict[str, list[str]] = defaultdict(list)
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if key not in PROCESS_ONLY:
            out[key].append(value)
    return dict(out)


def test_cases_listed() -> None:
    assert len(CASES) == 15


@pytest.mark.parametrize("case", CASES)
def test_conf_matches_libvirt(case: str) -> None:
    net = parse_network((DATA / f"{case}.xml").read_text())
    paths = DnsmasqPaths.for_network(STATE, net.name)
    text = render_conf(net, paths)
    assert text is not None
    ours = directives(text)
    theirs = directives((DATA / f"{case}.conf").read_text())
    for key, path, suffix in (
        ("dhcp-hostsfile", paths.hostsfile, "hostsfile"),
        ("addn-hosts", paths.addnhosts, "addnhosts"),
    ):
        if key in theirs:
            assert theirs[key] == [f"/var/lib/libvirt/dnsmasq/{net.name}.{suffix}"]
            theirs[key] = [str(path)]
            assert str(path).startswith(f"{STATE}/dnsmasq/")
    assert ours == theirs
    # what running needs, which libvirt passes on the command line instead
    assert f"pid-file={paths.pidfile}" in text.splitlines()
    if "dhcp-range" in ours:
        assert f"dhcp-leasefile={paths.leasefile}" in text.splitlines()


@pytest.mark.parametrize("case", CASES)
def test_hostsfile_matches_libvirt(case: str) -> None:
    net = parse_network((DATA / f"{case}.xml").read_text())
    expected = DATA / f"{case}.hostsfile"
    want = expected.read_text().splitlines() if expected.exists() else []
    assert render_hostsfile(net).splitlines() == want


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq not installed")
@pytest.mark.parametrize("case", CASES)
def test_dnsmasq_parses_what_we_write(case: str, tmp_path: Path) -> None:
    """dnsmasq's own option parser (--test, no daemon) accepts each configuration."""
    net = parse_network((DATA / f"{case}.xml").read_text())
    paths = DnsmasqPaths.for_network(tmp_path, net.name)
    paths.conf.parent.mkdir()
    paths.conf.write_text(render_conf(net, paths) or "")
    res = subprocess.run(
        ["dnsmasq", "--test", f"--conf-file={paths.conf}"], capture_output=True, text=True
    )
    if case == "dnsmasq-options":
        # libvirt's test passes <dnsmasq:option value='foo=bar'/> through verbatim, as we do;
        # dnsmasq itself refuses it, which is what a user would see at start
        assert res.returncode != 0 and "bad option" in res.stderr
    else:
        assert res.returncode == 0, res.stderr
