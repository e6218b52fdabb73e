"""Pure tests of the macvtap direct modes: which networks are direct, libvirt's device choice
(networkAllocatePort), and the start checks over a host view. No root, milliseconds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from virtnet import bridged, direct
from virtnet.errors import Conflict, InvalidDefinition, NotFound, NotSupported, UnsafeHostConfig
from virtnet.hostcfg.facts import HostView, Link, LinkKind
from virtnet.libvirtxml import parse_network
from virtnet.model.network import Bridge, Forward, ForwardMode, Network, VirtualPort

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / \
    "libvirt-9.0.0" / "networkxml2xmlin"


def corpus(name: str) -> Network:
    return parse_network((CORPUS / f"{name}.xml").read_text())


def net(mode: ForwardMode, *devs: str, dev: str | None = None, **kw: object) -> Network:
    return Network(name="n", forward=Forward(mode=mode, dev=dev, interfaces=devs), **kw)  # type: ignore[arg-type]


# -- which networks are direct, and their pools ----------------------------------------------


def test_corpus_direct_networks_and_pools() -> None:
    d = corpus("direct-net")
    assert direct.is_direct(d) and not bridged.is_host_bridge(d)
    assert direct.kernel_mode(d) == "bridge" and direct.pool_of(d) == ("eth10",)
    v = corpus("vepa-net")
    assert direct.kernel_mode(v) == "vepa" and direct.pool_of(v) == ("eth1", "eth2", "eth3")
    assert not direct.exclusive(v)
    q = corpus("8021Qbh-net")  # private + 802.1Qbh: a device of its own per port
    assert direct.kernel_mode(q) == "private" and direct.exclusive(q)
    assert direct.pool_of(q) == ("eth1", "eth2", "eth3", "eth4", "eth5")
    p = corpus("passthrough-pf")
    assert direct.kernel_mode(p) == "passthru" and direct.exclusive(p)
    assert direct.pool_of(p) == ()  # a <pf> pool is its VFs, read from the host
    assert direct.is_direct(corpus("hostdev"))


def test_bridge_mode_with_bridge_name_is_bridged_not_macvtap() -> None:
    host = corpus("host-bridge-net")
    assert bridged.is_host_bridge(host) and not direct.is_direct(host)
    assert not direct.is_direct(Network(name="x", forward=Forward(mode=ForwardMode.NAT)))
    assert not direct.is_direct(Network(name="x"))  # isolated
    assert direct.is_direct(net(ForwardMode.BRIDGE, dev="eth0"))
    with pytest.raises(NotSupported, match="makes no macvtap"):
        direct.kernel_mode(Network(name="x", forward=Forward(mode=ForwardMode.NAT)))


def test_dev_alone_is_a_pool_of_one() -> None:
    assert direct.pool_of(net(ForwardMode.PRIVATE, dev="eth3")) == ("eth3",)
    # dev= with a pool: libvirt requires dev to be the first <interface>; the pool decides
    assert direct.pool_of(net(ForwardMode.VEPA, "eth1", "eth2", dev="eth1")) == ("eth1", "eth2")


# -- networkAllocatePort's choice -------------------------------------------------------------


@pytest.mark.parametrize("mode", [ForwardMode.BRIDGE, ForwardMode.PRIVATE, ForwardMode.VEPA])
def test_shared_modes_pick_the_least_used_device_ties_to_the_first(mode: ForwardMode) -> None:
    n = net(mode, "a", "b", "c")
    pool = direct.pool_of(n)
    assert direct.select_device(n, pool, {}) == "a"
    assert direct.select_device(n, pool, {"a": 1}) == "b"
    assert direct.select_device(n, pool, {"a": 1, "b": 1}) == "c"
    assert direct.select_device(n, pool, {"a": 1, "b": 1, "c": 1}) == "a"
    assert direct.select_device(n, pool, {"a": 2, "b": 1, "c": 1}) == "b"
    assert direct.select_device(n, pool, {"a": 0, "b": 0, "c": 5}) == "a"


def test_allocation_sequence_spreads_ports_round_robin() -> None:
    n = net(ForwardMode.BRIDGE, "a", "b", "c")
    used: dict[str, int] = {}
    order = []
    for _ in range(7):
        dev = direct.select_device(n, direct.pool_of(n), used)
        used[dev] = used.get(dev, 0) + 1
        order.append(dev)
    assert order == ["a", "b", "c", "a", "b", "c", "a"]


def test_passthrough_one_port_per_device_then_refused() -> None:
    n = net(ForwardMode.PASSTHROUGH, "a", "b")
    pool = direct.pool_of(n)
    assert direct.select_device(n, pool, {}) == "a"
    assert direct.select_device(n, pool, {"a": 1}) == "b"
    assert direct.select_device(n, pool, {"b": 1}) == "a"  # first free, not least used
    with pytest.raises(Conflict, match="requires exclusive access to interfaces, but none are "
                       "available") as exc:
        direct.select_device(n, pool, {"a": 1, "b": 1})
    assert exc.value.hint and "delete a port" in exc.value.hint


def test_private_with_8021qbh_is_exclusive_private_alone_shares() -> None:
    qbh = net(ForwardMode.PRIVATE, "a", dev=None, virtualport=VirtualPort(type="802.1Qbh"))
    with pytest.raises(Conflict):
        direct.select_device(qbh, ("a",), {"a": 1})
    plain = net(ForwardMode.PRIVATE, "a")
    assert direct.select_device(plain, ("a",), {"a": 9}) == "a"


def test_no_pool_at_all_is_libvirts_error() -> None:
    n = net(ForwardMode.PASSTHROUGH)
    with pytest.raises(InvalidDefinition, match="has no forward dev and no interface pool"):
        direct.select_device(n, (), {})


# -- start checks over a host view -------------------------------------------------------------


def view(*links: Link) -> HostView:
    return HostView({link.name: link for link in links}, source="test view")


UP = Link("eth1", LinkKind.ETHERNET, "up")


def test_check_passes_and_reports_mode_and_pool() -> None:
    n = net(ForwardMode.VEPA, "eth1", "eth2")
    started = direct.check_direct(
        n, view(UP, replace(UP, name="eth2")), direct.pool_of(n))
    assert started.mode == "vepa" and started.pool == ("eth1", "eth2")
    assert "vepa mode macvtap devices on eth1, eth2" in started.messages[0]
    assert "cannot reach its own VMs" in started.messages[0]


def test_missing_interface_is_named() -> None:
    n = net(ForwardMode.BRIDGE, "eth1", "eth9")
    with pytest.raises(NotFound, match="interface eth9 does not exist") as exc:
        direct.check_direct(n, view(UP), direct.pool_of(n))
    assert exc.value.element == "forward/interface[dev='eth9']"


@pytest.mark.parametrize("link,text", [
    (Link("eth1", LinkKind.WIRELESS, "up"), "wireless: Wi-Fi drops frames"),
    (Link("eth1", LinkKind.ETHERNET, "down"), "eth1 is down"),
])
def test_wireless_or_down_refused_unless_forced(link: Link, text: str) -> None:
    n = net(ForwardMode.BRIDGE, "eth1")
    with pytest.raises(UnsafeHostConfig, match=text):
        direct.check_direct(n, view(link), ("eth1",))
    forced = direct.check_direct(n, view(link), ("eth1",), force=True)
    assert any(text in m and m.startswith("warning (forced)") for m in forced.messages)


@pytest.mark.parametrize("kind", [LinkKind.BRIDGE, LinkKind.BOND])
def test_port_of_a_bridge_or_bond_refused_even_forced(kind: LinkKind) -> None:
    n = net(ForwardMode.BRIDGE, "eth1")
    upper = Link("up0", kind, "up", ports=("eth1",))
    with pytest.raises(UnsafeHostConfig, match=f"eth1 is a port of {kind} up0") as exc:
        direct.check_direct(n, view(UP, upper), ("eth1",), force=True)
    assert exc.value.hint and "up0 itself" in exc.value.hint


def test_vlan_on_top_does_not_count_as_a_master() -> None:
    n = net(ForwardMode.BRIDGE, "eth1")
    vlan = Link("eth1.5", LinkKind.VLAN, "up", lower=("eth1",))
    assert direct.check_direct(n, view(UP, vlan), ("eth1",)).pool == ("eth1",)


def test_openvswitch_virtualport_refused() -> None:
    n = net(ForwardMode.BRIDGE, "eth1", virtualport=VirtualPort(type="openvswitch"))
    with pytest.raises(NotSupported, match="macvtap device"):
        direct.check_direct(n, view(UP), ("eth1",))


# -- hostdev -------------------------------------------------------------------------------------


def test_hostdev_refusal_without_sriov_hardware() -> None:
    err = direct.hostdev_refusal(corpus("hostdev"), {}, "vm-host")
    assert err.code == "not-supported" and err.element == "forward[mode='hostdev']"
    assert "needs SR-IOV hardware" in err.message
    assert "namespace vm-host has no SR-IOV capable interface" in err.message
    assert err.hint and "/sys/class/net/PF/device/sriov_numvfs" in err.hint
    assert "sriov_totalvfs" in err.hint


def test_hostdev_refusal_names_the_hardware_it_found() -> None:
    err = direct.hostdev_refusal(corpus("hostdev-pf"), {"enp3s0f0": (8, 2)}, None)
    assert "this host has SR-IOV capable interfaces (enp3s0f0 (2 of 8 VFs enabled))" in \
        err.message
    assert "does not assign PCI devices to VMs" in err.message


def test_bridge_name_wins_over_dev() -> None:
    # bridge mode + <bridge name> + dev would be refused by validation; never macvtap here
    n = Network(name="x", forward=Forward(mode=ForwardMode.BRIDGE, dev="eth0"),
                bridge=Bridge(name="br0"))
    assert not direct.is_direct(n)


def test_allocation_places_ports_as_libvirt_would() -> None:
    assert direct.allocation(net(ForwardMode.VEPA, "a", "b"), 3) == ["a", "b", "a"]
    assert direct.allocation(net(ForwardMode.PASSTHROUGH, "a", "b"), 3) == ["a", "b", None]
    assert direct.allocation(net(ForwardMode.BRIDGE, dev="eth1"), 2) == ["eth1", "eth1"]
    assert direct.allocation(net(ForwardMode.PASSTHROUGH), 1) == [None]
