"""``virtnet import``: libvirt's network directory taken over, with what does not carry over
reported per network."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_env import CliHost, cli_host
from tests.conftest import require_root
from virtnet.importer import dropped
from virtnet.service import default_network_xml

pytestmark = pytest.mark.host

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / \
    "libvirt-9.0.0" / "networkxml2xmlin"

HEADER = """<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh net-edit default
or other application using the libvirt API.
-->

"""


@pytest.fixture
def host(tmp_path: Path, unique_name: str) -> Iterator[CliHost]:
    require_root()
    with cli_host(tmp_path, unique_name) as h:
        yield h


def libvirt_dir(tmp: Path, mark: str) -> Path:
    d = tmp / "networks"
    (d / "autostart").mkdir(parents=True)
    default = default_network_xml().replace(
        "<name>default</name>",
        "<name>default</name>\n  <uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>")
    (d / "default.xml").write_text(HEADER + default.replace("virbr0", mark + "v"))
    (d / "autostart" / "default.xml").symlink_to(d / "default.xml")
    (d / "routed.xml").write_text(
        f"<network><name>routed</name><foo/><forward mode='route'/>"
        f"<bridge name='{mark}r' stp='off'/><ip address='10.91.0.1' prefix='24' bogus='1'/>"
        "</network>")
    (d / "zclash.xml").write_text(
        f"<network><name>clash</name><bridge name='{mark}c'/>"
        "<ip address='192.168.122.7' prefix='24'/></network>")
    (d / "broken.xml").write_text("<network><name>broken</name>")
    shutil.copy(CORPUS / "hostdev.xml", d / "hostdev.xml")
    shutil.copy(CORPUS / "openvswitch-net.xml", d / "openvswitch-net.xml")
    return d


def test_import_directory(host: CliHost) -> None:
    d = libvirt_dir(host.tmp, host.mark)
    r = host.run("-o", "json", "import", str(d), ok=False)
    assert r.exit_code == 1  # three networks could not be imported
    import json

    items = {i["name"]: i for i in json.loads(r.stdout)}
    assert items["default"]["status"] == "imported" and items["default"]["autostart"]
    assert items["default"]["notes"] == []
    assert items["routed"]["status"] == "imported"
    assert items["routed"]["notes"] == ["not carried over: network/foo",
                                        "not carried over: network/ip@bogus"]
    assert items["hostdev"]["status"] == "imported"
    assert any("cannot be started by virtnet here" in n for n in items["hostdev"]["notes"])
    # Refused by virtnet's define-time validation: reported, not silently skipped.
    assert items["openvswitch-net"]["status"] == "failed"
    assert items["openvswitch-net"]["notes"][0].startswith("refused: ")
    assert items["clash"]["status"] == "failed"
    assert "overlaps" in items["clash"]["notes"][0]
    assert items["broken"]["status"] == "failed"
    assert "cannot be read" in items["broken"]["notes"][0]

    listing = {n["name"]: n for n in host.json("net-list", "--all")}  # type: ignore[union-attr,index]
    assert set(listing) == {"default", "routed", "hostdev"}
    assert listing["default"]["uuid"] == "3e3fce45-4f53-4fa7-bb32-11f34168b82b"
    assert listing["default"]["autostart"] and not listing["routed"]["autostart"]
    # libvirt's own default was imported, so virtnet does not add another.
    host.run("net-start", "default")
    assert host.mark + "v" in host.links()

    # Importing again leaves what is there alone.
    r = host.run("import", str(d), ok=False)
    assert "default: skipped" in r.stdout and "already defined in virtnet" in r.stdout
    assert "0 imported, 3 skipped, 3 failed." in r.stdout


def test_import_replaces_virtnets_own_default(host: CliHost) -> None:
    host.run("net-list")  # first use: virtnet defines its default network
    d = libvirt_dir(host.tmp, host.mark)
    r = host.run("-o", "json", "import", str(d), ok=False)
    import json

    items = {i["name"]: i for i in json.loads(r.stdout)}
    assert items["default"]["status"] == "imported"
    assert items["default"]["notes"] == [
        "replaced the default network virtnet had defined on first use"]
    info = host.json("net-info", "default")
    assert info["uuid"] == "3e3fce45-4f53-4fa7-bb32-11f34168b82b"  # type: ignore[index]
    assert info["bridge"] == host.mark + "v"  # type: ignore[index]


def test_import_errors(host: CliHost) -> None:
    r = host.run("import", str(host.tmp / "nope"), ok=False)
    assert r.exit_code == 4 and "does not exist" in r.stderr
    empty = host.tmp / "empty"
    empty.mkdir()
    r = host.run("import", str(empty), ok=False)
    assert r.exit_code == 4 and "no network XML files" in r.stderr
    r = host.run("import", str(empty), "--connect", "qemu:///system", ok=False)
    assert r.exit_code == 2


def test_dropped_reports_only_what_is_lost() -> None:
    original = ("<network connections='2'><name>n</name><metadata><x:a xmlns:x='urn:x' b='1'/>"
                "</metadata><ip address='10.0.0.1' prefix='24'/><zzz/></network>")
    formatted = ("<network><name>n</name><metadata><x:a xmlns:x='urn:x' b='1'/></metadata>"
                 "<ip address='10.0.0.1' prefix='24'/></network>")
    assert dropped(original, formatted) == ["network/zzz"]


class _FakeNet:
    """Stands in for libvirt.virNetwork: libvirtd does not run on this machine."""

    def __init__(self, name: str, xml: str, persistent: bool, autostart: bool) -> None:
        self._n, self._x, self._p, self._a = name, xml, persistent, autostart
        self.flags: list[int] = []

    def name(self) -> str:
        return self._n

    def isPersistent(self) -> int:  # noqa: N802 - libvirt's method names
        return int(self._p)

    def autostart(self) -> int:
        return int(self._a)

    def XMLDesc(self, flags: int) -> str:  # noqa: N802
        self.flags.append(flags)
        return self._x


def test_from_running_libvirt(monkeypatch: pytest.MonkeyPatch, host: CliHost) -> None:
    import json
    import sys
    import types

    from virtnet import importer

    nets = [_FakeNet("default", default_network_xml(), True, True),
            _FakeNet("tmp", "<network><name>tmp</name></network>", False, False)]
    uris: list[str | None] = []

    class Conn:
        def listAllNetworks(self) -> list[_FakeNet]:  # noqa: N802
            return nets

        def close(self) -> None:
            pass

    fake = types.ModuleType("libvirt")
    fake.VIR_NETWORK_XML_INACTIVE = 1  # type: ignore[attr-defined]
    fake.libvirtError = RuntimeError  # type: ignore[attr-defined]
    fake.openReadOnly = lambda uri: uris.append(uri) or Conn()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "libvirt", fake)
    assert importer.libvirt_available()
    sources = list(importer.from_libvirt("qemu:///system"))
    assert uris == ["qemu:///system"]
    assert [(s.name_hint, s.autostart, s.persistent) for s in sources] == [
        ("default", True, True), ("tmp", False, False)]
    assert nets[0].flags == [1] and nets[1].flags == [0]  # inactive XML of persistent ones
    assert sources[0].origin == "qemu:///system:default"
    # Through the command: the transient one is reported, not imported.
    nets[0].flags.clear()
    r = host.run("-o", "json", "import", "--connect", "qemu:///system")
    items = {i["name"]: i for i in json.loads(r.stdout)}
    assert items["default"]["status"] == "imported" and items["default"]["autostart"]
    assert items["tmp"]["status"] == "skipped" and "transient" in items["tmp"]["notes"][0]
