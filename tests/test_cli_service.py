"""Pure parts of the service layer: what a redefinition keeps, libvirt's default network."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from virtnet.libvirtxml import parse_network
from virtnet.model.defaults import fill_defaults
from virtnet.model.network import Bridge, ForwardMode, Network
from virtnet.model.validate import validate
from virtnet.service import NetworkInfo, carry_over, default_network_xml, unsearchable_dir


def test_default_network_is_libvirts() -> None:
    net = parse_network(default_network_xml())
    assert net.name == "default" and net.mode is ForwardMode.NAT
    assert net.bridge_name == "virbr0" and net.bridge and net.bridge.stp is True
    ip = net.ips[0]
    assert str(ip.interface) == "192.168.122.1/24"
    assert ip.dhcp and (ip.dhcp.ranges[0].start, ip.dhcp.ranges[0].end) == (
        "192.168.122.2", "192.168.122.254")
    moved = parse_network(default_network_xml(130))
    assert str(moved.ips[0].network) == "192.168.130.0/24"
    validate(fill_defaults(moved))


def test_carry_over_keeps_generated_values() -> None:
    old = fill_defaults(Network(name="n", bridge=Bridge(stp=False)), taken_bridges={"virbr0"})
    assert old.uuid and old.bridge_name == "virbr1" and old.mac
    new = carry_over(Network(name="n", bridge=Bridge(stp=False)), old)
    assert (new.uuid, new.bridge_name, new.mac) == (old.uuid, "virbr1", old.mac)
    assert new.bridge is not None and new.bridge.stp is False
    # What the new definition says wins.
    given = Network(name="n", uuid="0b2f7c7e-9a55-4c7e-9d3e-000000000001",
                    bridge=Bridge(name="br-x"), mac="52:54:00:00:00:01")
    assert carry_over(given, old) == given


def test_network_info_shape() -> None:
    info = NetworkInfo("n", "u", True, False, True, "virbr1", "nat")
    assert info.as_dict() == {"name": "n", "uuid": "u", "state": "active", "autostart": True,
                              "persistent": False, "bridge": "virbr1", "mode": "nat"}


def test_unsearchable_dir_found() -> None:
    base = Path(tempfile.mkdtemp())  # /tmp/xyz, not pytest's 0700 tree
    try:
        inner = base / "a" / "b"
        inner.mkdir(parents=True)
        for d in (base, base / "a", inner):
            d.chmod(0o755)
        assert unsearchable_dir(inner) is None
        (base / "a").chmod(0o750)
        assert unsearchable_dir(inner) == base / "a"
    finally:
        shutil.rmtree(base)
