"""Each connection type end to end: real bridge, nftables, dnsmasq, DHCP leases, ping and TCP.

One network per mode with two VM endpoints that take real leases (udhcpc), an outside host on
TEST-NET behind the VM host's uplink. The reachability asked of each mode is the seed's table:

    mode      host<->VM  VM<->VM  VM->outside  outside->VM (route via host)
    nat       yes        yes      yes          no
    route     yes        yes      yes*         yes          (* the outside routes the subnet)
    isolated  yes        yes      no           no
    open      yes        yes      yes*         yes          (no rules: the host's firewall decides)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require_root
from tests.hostlab import OUTSIDE, UPLINK_HOST, Lab, nat_network
from virtnet.model.network import ForwardMode

pytestmark = pytest.mark.host

SUBNET = "10.77.{}.0/24"


@pytest.fixture
def lab(unique_name: str) -> Iterator[Lab]:
    require_root()
    lab = Lab(unique_name)
    try:
        yield lab.build()
    finally:
        lab.close()


@pytest.mark.parametrize(
    ("mode", "out_ok", "in_ok"),
    [
        (ForwardMode.NAT, True, False),
        (ForwardMode.ROUTE, True, True),
        (ForwardMode.ISOLATED, False, False),
        (ForwardMode.OPEN, True, True),
    ],
    ids=lambda v: v.value if isinstance(v, ForwardMode) else None,
)
def test_mode_reachability(lab: Lab, mode: ForwardMode, out_ok: bool, in_ok: bool) -> None:
    third = {"nat": 1, "route": 2, "isolated": 3, "open": 4}[mode.value]
    net = nat_network(f"m-{mode.value}", f"{lab.mark}b", third, mode)
    report = lab.engine.start(net)
    assert report.changed
    if mode is ForwardMode.ROUTE:
        assert any(f"{SUBNET.format(third)} via {UPLINK_HOST}" in m for m in report.messages)
    else:
        assert report.messages == ()

    vm1, vm2 = lab.vm(net.name), lab.vm(net.name)
    gw = f"10.77.{third}.1"
    assert vm1.ip.startswith(f"10.77.{third}.") and vm2.ip.startswith(f"10.77.{third}.")
    assert vm1.ip != vm2.ip
    # isolated: DHCP hands out no default route (dhcp-option=3 empty)
    assert vm1.router == ("" if mode is ForwardMode.ISOLATED else gw)
    leases = {lease.ip for lease in lab.engine.leases(net.name)}
    assert {vm1.ip, vm2.ip} <= leases

    for port in (7001,):
        lab.listen(lab.host, port)
        lab.listen(vm2.ns, port)
        lab.listen(lab.outside, port)
    # host <-> VM, VM <-> VM: every mode
    assert lab.ping(lab.host, vm1.ip)
    assert lab.ping(vm1.ns, gw)
    assert lab.tcp(vm1.ns, gw, 7001)
    assert lab.tcp(lab.host, vm2.ip, 7001)
    assert lab.ping(vm1.ns, vm2.ip)
    assert lab.tcp(vm1.ns, vm2.ip, 7001)

    # outside -> VM without a route via the host: never
    assert not lab.ping(lab.outside, vm2.ip, wait=0.3)
    assert not lab.tcp(lab.outside, vm2.ip, 7001, timeout=0.3)

    # VM -> outside (for route/open the outside needs the route back, so add it first
    # for those; NAT must work without it)
    if mode is ForwardMode.NAT:
        assert lab.ping(vm1.ns, OUTSIDE)
        assert lab.tcp(vm1.ns, OUTSIDE, 7001)
    lab.route_on_outside(SUBNET.format(third))
    assert lab.ping(vm1.ns, OUTSIDE, wait=0.5) is out_ok
    assert lab.tcp(vm1.ns, OUTSIDE, 7001, timeout=0.5) is out_ok

    # outside -> VM with a route via the host
    assert lab.ping(lab.outside, vm2.ip, wait=0.5) is in_ok
    assert lab.tcp(lab.outside, vm2.ip, 7001, timeout=0.5) is in_ok

    lab.engine.stop(net.name)
    assert f"{lab.mark}b" not in lab.links()
    assert "virtnet" not in lab.ruleset()
    assert lab.dnsmasq_pids() == []
    assert lab.state_files() == []


def test_dual_stack_nat_network(lab: Lab) -> None:
    """IPv6 next to IPv4: address on the bridge, IPv6 on (RA ignored), forwarding on,
    dnsmasq serving both; a VM reaches the bridge's IPv6 address."""
    import time
    from dataclasses import replace

    from tests.hostlab import sh
    from virtnet.model.network import IPDef

    base = nat_network("v6", f"{lab.mark}b", 5)
    v6 = IPDef(address="fd00:77:5::1", family="ipv6", prefix=64)
    net = replace(base, ips=(*base.ips, v6))
    lab.engine.start(net)
    br = f"{lab.mark}b"
    assert "fd00:77:5::1/64" in sh(lab.host, "ip", "-6", "addr", "show", br)
    values = sh(lab.host, "sysctl", "-n", f"net.ipv6.conf.{br}.disable_ipv6",
                f"net.ipv6.conf.{br}.accept_ra", "net.ipv6.conf.all.forwarding").split()
    assert values == ["0", "0", "1"]
    vm = lab.vm("v6")
    assert vm.ip.startswith("10.77.5.")
    sh(vm.ns, "ip", "-6", "addr", "add", "fd00:77:5::50/64", "dev", "eth0", "nodad")
    deadline = time.monotonic() + 5  # the bridge's own address leaves DAD once a port is up
    while not lab.ping(vm.ns, "fd00:77:5::1", wait=0.5) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lab.ping(vm.ns, "fd00:77:5::1")
    lab.engine.stop("v6")
    assert br not in lab.links() and lab.dnsmasq_pids() == []
