"""Planning is pure: definitions -> desired bridges, sysctls, dnsmasq files, nft table; and the
difference from an observed host. No root, no host access."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from virtnet.errors import InvalidDefinition, NotSupported
from virtnet.model.network import (
    DHCP,
    DNS,
    Bridge,
    DHCPRange,
    Forward,
    ForwardMode,
    IPDef,
    Network,
)
from virtnet.plan import (
    Observed,
    ObservedBridge,
    Plan,
    desired_state,
    diff,
    owner_id,
    plan_network,
)

STATE = Path("/var/lib/virtnet-test")


def net(mode: ForwardMode = ForwardMode.NAT, name: str = "default", br: str = "virbr0",
        **kw: object) -> Network:
    base = Network(
        name=name,
        forward=None if mode is ForwardMode.ISOLATED else Forward(mode=mode),
        bridge=Bridge(name=br, stp=True, delay=0),
        mac="52:54:00:0A:0B:0C",
        ips=(IPDef(address="192.168.122.1", netmask="255.255.255.0",
                   dhcp=DHCP(ranges=(DHCPRange("192.168.122.2", "192.168.122.254"),))),),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_bridge_spec_from_definition() -> None:
    p = plan_network(replace(net(), mtu=9000), STATE)
    b = p.bridge
    assert (b.name, b.mac, b.mtu, b.stp, b.delay) == ("virbr0", "52:54:00:0a:0b:0c", 9000, True, 0)
    assert b.addresses == ("192.168.122.1/24",)
    assert b.alias == f"virtnet:default owner={owner_id(STATE)}"


def test_stp_defaults_on_like_libvirt() -> None:
    p = plan_network(replace(net(), bridge=Bridge(name="virbr0")), STATE)
    assert p.bridge.stp is True and p.bridge.delay == 0


@pytest.mark.parametrize(
    ("mode", "forwarding"),
    [(ForwardMode.NAT, True), (ForwardMode.ROUTE, True), (ForwardMode.OPEN, True),
     (ForwardMode.ISOLATED, False)],
)
def test_sysctls_per_mode(mode: ForwardMode, forwarding: bool) -> None:
    sc = {s.path: s.value for s in plan_network(net(mode), STATE).sysctls}
    assert ("net/ipv4/ip_forward" in sc) is forwarding
    # no IPv6 address: IPv6 off on the bridge
    assert sc["net/ipv6/conf/virbr0/disable_ipv6"] == "1"
    assert "net/ipv6/conf/all/forwarding" not in sc


def test_ipv6_network_turns_on_ipv6_without_ra() -> None:
    v6 = IPDef(address="fd00:1::1", family="ipv6", prefix=64)
    sc = {s.path: s.value for s in plan_network(net(ips=(net().ips[0], v6)), STATE).sysctls}
    assert sc["net/ipv6/conf/virbr0/disable_ipv6"] == "0"
    assert sc["net/ipv6/conf/virbr0/accept_ra"] == "0"
    assert sc["net/ipv6/conf/virbr0/autoconf"] == "0"
    assert sc["net/ipv6/conf/all/forwarding"] == "1"
    assert plan_network(net(ips=(net().ips[0], v6)), STATE).bridge.addresses == (
        "192.168.122.1/24", "fd00:1::1/64")


def test_dnsmasq_files_in_state_dir_and_open_mode_has_no_firewall() -> None:
    p = plan_network(net(), STATE)
    assert p.dnsmasq is not None and p.firewall
    assert p.dnsmasq.conf == STATE / "dnsmasq" / "default.conf"
    conf = dict(p.dnsmasq.files)[p.dnsmasq.conf]
    assert "interface=virbr0" in conf and f"pid-file={p.dnsmasq.pidfile}" in conf
    assert not plan_network(net(ForwardMode.OPEN), STATE).firewall


def test_no_dnsmasq_without_ip_or_with_dns_off_and_no_dhcp() -> None:
    assert plan_network(net(ips=()), STATE).dnsmasq is None
    off = net(ips=(IPDef(address="10.0.0.1", prefix=24),), dns=DNS(enable=False))
    assert plan_network(off, STATE).dnsmasq is None


def test_refuses_unsupported_modes_and_missing_bridge() -> None:
    with pytest.raises(NotSupported, match="bridge"):
        plan_network(net(ForwardMode.BRIDGE), STATE)
    with pytest.raises(InvalidDefinition, match="no bridge name"):
        plan_network(net(bridge=None), STATE)


def test_two_networks_one_bridge_is_refused() -> None:
    a = net(name="a")
    b = net(name="b", ips=(IPDef(address="10.1.0.1", prefix=24),))
    with pytest.raises(InvalidDefinition, match="both use bridge"):
        desired_state([a, b], STATE)


def test_desired_table_is_one_script_for_all_networks() -> None:
    a = net(name="a")
    b = net(name="b", br="virbr1", ips=(IPDef(address="10.1.0.1", prefix=24),))
    d = desired_state([a, b], STATE)
    assert "virbr0" in d.nft_script and "virbr1" in d.nft_script
    text = str(Plan(d))
    assert "network a (nat)" in text and "bridge virbr1" in text and "nftables:" in text


def _observed_like(d_net: Network) -> Observed:
    p = plan_network(d_net, STATE)
    assert p.dnsmasq is not None
    return Observed(
        bridges={"virbr0": ObservedBridge("virbr0", f"virtnet:default owner={owner_id(STATE)}",
                                          "52:54:00:0a:0b:0c", 1500, True,
                                          frozenset({"192.168.122.1/24"}), True)},
        sysctls={s.path: s.value for s in p.sysctls},
        files=dict(p.dnsmasq.files),
        dnsmasq_running={"default": True},
    )


def test_diff_of_matching_host_is_empty() -> None:
    d = desired_state([net()], STATE)
    assert diff(d, _observed_like(net())) == []
    assert str(Plan(d, ())) == "no changes: the host matches the plan\n"


def test_diff_shows_only_what_differs() -> None:
    d = desired_state([net()], STATE)
    seen = _observed_like(net())
    br = seen.bridges["virbr0"]
    drifted = replace(
        seen,
        bridges={"virbr0": replace(br, addresses=frozenset({"10.9.9.9/24"}), up=False,
                                   stp=False)},
        sysctls={**seen.sysctls, "net/ipv4/ip_forward": "0"},
        dnsmasq_running={},
        nft_drift=("missing element masq4 192.168.122.0/24",),
    )
    got = [str(c) for c in diff(d, drifted)]
    assert got == [
        "~ link virbr0: stp off -> on",
        "+ address 192.168.122.1/24 dev virbr0",
        "- address 10.9.9.9/24 dev virbr0",
        "~ link virbr0: down -> up",
        "~ sysctl net.ipv4.ip_forward: 0 -> 1",
        "+ dnsmasq default: --conf-file=/var/lib/virtnet-test/dnsmasq/default.conf",
        "~ nftables inet virtnet: missing element masq4 192.168.122.0/24",
    ]


def test_diff_on_empty_host_creates_everything() -> None:
    got = [str(c) for c in diff(desired_state([net()], STATE), Observed())]
    assert got[0].startswith(f"+ bridge virbr0: alias virtnet:default owner={owner_id(STATE)}, "
                             "mac 52:54:00:0a:0b:0c")
    assert "+ file /var/lib/virtnet-test/dnsmasq/default.conf" in got
    assert any(c.startswith("~ sysctl net.ipv4.ip_forward: (absent) -> 1") for c in got)
