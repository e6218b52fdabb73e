"""Which flows a repair forgets, per connection type (pure)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from tests.hostlab import nat_network
from virtnet.host.conntrack import guarded
from virtnet.model.network import Forward, ForwardMode, IPDef, Nat


def _dual(mode: ForwardMode, *, nat6: bool = False):  # type: ignore[no-untyped-def]
    net = nat_network("n", "vb0", 9, mode)
    if nat6:
        net = replace(net, forward=Forward(mode=mode, nat=Nat(ipv6=True)))
    return replace(net, ips=(*net.ips, IPDef(address="fd00:9::1", family="ipv6", prefix=64)))


V4, V6 = ipaddress.ip_network("10.77.9.0/24"), ipaddress.ip_network("fd00:9::/64")


@pytest.mark.parametrize(("mode", "nat6", "want"), [
    (ForwardMode.NAT, False, [(V4, "to")]),  # a nat network's IPv6 is routed (libvirt)
    (ForwardMode.NAT, True, [(V4, "to"), (V6, "to")]),
    (ForwardMode.ISOLATED, False, [(V4, "to"), (V4, "from"), (V6, "to"), (V6, "from")]),
    (ForwardMode.ROUTE, False, []),
    (ForwardMode.OPEN, False, []),
])
def test_guarded_flows_follow_the_connection_type(mode: ForwardMode, nat6: bool,
                                                  want: list[object]) -> None:
    assert guarded([_dual(mode, nat6=nat6)]) == want
