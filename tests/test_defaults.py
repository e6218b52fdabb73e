"""fill_defaults: what libvirt's net-define adds to a parsed definition."""

from __future__ import annotations

import re
import uuid

import pytest

from virtnet.errors import Conflict
from virtnet.libvirtxml import format_network, parse_network
from virtnet.model.defaults import (
    MAX_BRIDGE_ID,
    bridge_template,
    fill_defaults,
    free_bridge_name,
    generate_mac,
)
from virtnet.model.network import Bridge, Forward, ForwardMode, Network

IP = "<ip address='192.168.60.1' netmask='255.255.255.0'/>"


def parsed(body: str) -> Network:
    return parse_network(f"<network><name>n</name>{body}</network>")


def test_uuid_generated_when_missing_and_kept_when_given() -> None:
    net = fill_defaults(parsed(IP))
    assert net.uuid is not None
    assert str(uuid.UUID(net.uuid)) == net.uuid
    given = "81ff0d90-c91e-6742-64da-4a736edb9a9b"
    assert fill_defaults(parsed(f"<uuid>{given}</uuid>" + IP)).uuid == given
    assert fill_defaults(parsed(IP)).uuid != fill_defaults(parsed(IP)).uuid


@pytest.mark.parametrize(
    "forward", ["", "<forward/>", "<forward mode='route'/>", "<forward mode='open'/>"]
)
def test_bridge_owning_modes_get_virbr0_stp_on_delay_0(forward: str) -> None:
    net = fill_defaults(parsed(forward + IP))
    assert net.bridge == Bridge(name="virbr0", stp=True, delay=0)


def test_lowest_free_number_skips_taken_names() -> None:
    net = fill_defaults(parsed(IP), taken_bridges={"virbr0", "virbr1", "virbr3"})
    assert net.bridge_name == "virbr2"


def test_explicit_name_kept_even_if_listed_as_taken() -> None:
    # A clash is a validation problem, not something to paper over with another name.
    net = fill_defaults(parsed("<bridge name='br-lab'/>" + IP), taken_bridges={"br-lab"})
    assert net.bridge_name == "br-lab"


def test_explicit_stp_and_delay_are_kept() -> None:
    net = fill_defaults(parsed("<bridge name='b1' stp='off' delay='3'/>" + IP))
    assert net.bridge == Bridge(name="b1", stp=False, delay=3)


def test_template_with_one_percent_d_is_expanded() -> None:
    net = fill_defaults(parsed("<bridge name='lab%d'/>" + IP), taken_bridges={"lab0"})
    assert net.bridge_name == "lab1"


@pytest.mark.parametrize(
    ("name", "template"),
    [
        (None, "virbr%d"),
        ("br0", None),
        ("lab%d", "lab%d"),
        ("a%db%d", "virbr%d"),  # more than one % -> libvirt falls back to virbr%d
        ("a%sb%d", "virbr%d"),
        ("100%", None),  # no %d: a plain (if odd) name
    ],
)
def test_bridge_template_rules(name: str | None, template: str | None) -> None:
    assert bridge_template(name) == template


def test_bridge_names_exhausted_is_a_conflict() -> None:
    taken = {f"virbr{n}" for n in range(MAX_BRIDGE_ID + 1)}
    assert free_bridge_name("virbr%d", taken - {f"virbr{MAX_BRIDGE_ID}"}) == "virbr256"
    with pytest.raises(Conflict) as info:
        fill_defaults(parsed(IP), taken_bridges=taken)
    assert info.value.element == "network/bridge"
    assert info.value.hint


def test_bridge_mac_generated_in_qemu_range_unless_given() -> None:
    net = fill_defaults(parsed(IP))
    assert net.mac is not None
    assert re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", net.mac)
    given = fill_defaults(parsed("<mac address='52:54:00:AA:BB:CC'/>" + IP))
    assert given.mac == "52:54:00:aa:bb:cc"
    assert len({generate_mac() for _ in range(50)}) > 40


@pytest.mark.parametrize("mode", ["bridge", "private", "vepa", "passthrough", "hostdev"])
def test_modes_without_own_bridge_get_no_bridge_or_mac(mode: str) -> None:
    net = Network(
        name="d", forward=Forward(mode=ForwardMode(mode), dev="eth0", interfaces=("eth0",))
    )
    filled = fill_defaults(net)
    assert filled.bridge is None
    assert filled.mac is None
    assert filled.uuid is not None


def test_host_bridge_mode_keeps_its_bridge_untouched() -> None:
    net = fill_defaults(parsed("<forward mode='bridge'/><bridge name='br0'/>"))
    assert net.bridge == Bridge(name="br0")


def test_idempotent() -> None:
    once = fill_defaults(parsed(IP), taken_bridges={"virbr0"})
    assert fill_defaults(once, taken_bridges={"virbr0", "virbr1"}) == once


def test_filled_definition_formats_like_libvirt_define() -> None:
    net = fill_defaults(parsed("<forward/>" + IP), taken_bridges={"virbr0"})
    xml = format_network(net, inactive=True)
    assert f"<uuid>{net.uuid}</uuid>" in xml
    assert "<forward mode='nat'/>" in xml
    assert "<bridge name='virbr1' stp='on' delay='0'/>" in xml
    assert f"<mac address='{net.mac}'/>" in xml
    assert parse_network(xml) == net
