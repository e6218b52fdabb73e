"""Ports (veth into a namespace, tap for QEMU), fixed MACs, DHCP host changes by SIGHUP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.conftest import require_root
from tests.hostlab import Lab, nat_network, sh
from virtnet.errors import Conflict, InvalidDefinition, NotFound
from virtnet.model.network import DHCP, DHCPHost

pytestmark = pytest.mark.host


@pytest.fixture
def lab(unique_name: str) -> Iterator[Lab]:
    require_root()
    lab = Lab(unique_name)
    try:
        yield lab.build(outside=False)
    finally:
        lab.close()


def test_ports_add_list_delete(lab: Lab) -> None:
    net = nat_network("p", f"{lab.mark}b", 30)
    lab.engine.start(net)
    vm = lab.vm("p", mac="52:54:00:aa:bb:01")
    assert "52:54:00:aa:bb:01" in sh(vm.ns, "ip", "link", "show", "eth0")
    tap = lab.engine.add_port("p", kind="tap", name=f"{lab.mark}t", mac="52:54:00:aa:bb:02")
    ports = {p.name: p for p in lab.engine.list_ports("p")}
    assert set(ports) == {vm.port, tap.name}
    assert ports[vm.port].kind == "veth" and ports[vm.port].peer_netns == vm.ns
    assert ports[vm.port].bridge == f"{lab.mark}b"
    assert ports[tap.name].kind == "tap" and ports[tap.name].mac == "52:54:00:aa:bb:02"
    detail = sh(lab.host, "ip", "-d", "link", "show", tap.name)
    assert "tun type tap" in detail and f"master {lab.mark}b" in detail
    assert "fe:54:00:aa:bb:02" in detail  # libvirt's host-side tap MAC
    assert vm.port.startswith("vnet")

    with pytest.raises(Conflict):
        lab.engine.add_port("p", kind="tap", name=tap.name)
    with pytest.raises(InvalidDefinition, match="not valid"):
        lab.engine.add_port("p", kind="tap", mac="01:00:5e:00:00:01:02")
    with pytest.raises(InvalidDefinition, match="multicast"):
        lab.engine.add_port("p", kind="tap", mac="01:00:5e:00:00:01")
    with pytest.raises(InvalidDefinition, match="peer_netns"):
        lab.engine.add_port("p", kind="veth")
    with pytest.raises(NotFound, match="not active"):
        lab.engine.add_port("nosuch", kind="tap")

    lab.engine.delete_port("p", tap.name)
    assert [p.name for p in lab.engine.list_ports("p")] == [vm.port]
    with pytest.raises(NotFound):
        lab.engine.delete_port("p", tap.name)

    lab.engine.stop("p")  # takes its remaining port with it
    assert vm.port not in lab.links()


def test_dhcp_host_change_applied_by_sighup(lab: Lab) -> None:
    net = nat_network("h", f"{lab.mark}b", 31)
    lab.engine.start(net)
    (pid,) = lab.dnsmasq_pids()
    mac = "52:54:00:aa:bb:10"
    ip4 = net.ips[0]
    assert ip4.dhcp is not None
    fixed = replace(net, ips=(replace(ip4, dhcp=DHCP(
        ranges=ip4.dhcp.ranges, hosts=(DHCPHost(ip="10.77.31.200", mac=mac, name="fixed"),))),))
    lab.engine.update_dhcp_hosts(fixed)
    assert lab.dnsmasq_pids() == [pid]  # same process: reloaded, not restarted
    vm = lab.vm("h", mac=mac)
    assert vm.ip == "10.77.31.200"
    lease = next(x for x in lab.engine.leases("h") if x.mac == mac)
    assert lease.ip == "10.77.31.200"
    assert lab.engine.definition("h") == fixed
    # anything beyond host entries needs a restart: refused, nothing changed
    with pytest.raises(Conflict, match="more than new DHCP hosts"):
        lab.engine.update_dhcp_hosts(replace(fixed, dnsmasq_options=("no-ping", "log-dhcp")))
