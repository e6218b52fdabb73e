"""Isolated: what is particular to it beyond its traits (virtnet.modes.traits).

Pure: imports only the model.
"""

from __future__ import annotations

from virtnet.model.network import Network


def ovn_gateway_port(net: Network) -> bool:
    """Whether an isolated network gets a router with only its gateway port on OVN.

    The seed's isolated row says VMs reach the host. With dnsmasq that is the bridge's
    address; on OVN the "host" is the gateway address, which OVN's DHCP hands out as
    server_id and dns_server. A switch alone has nobody answering ARP there (no ping, no
    unicast DHCP renewal, no DNS), so the switch gets a router with that one port: no
    chassis, no gateway port, no routes, no NAT. It answers for the gateway address on
    every chassis, and nothing leaves the network. Whenever there is an address to answer
    for."""
    return bool(net.ips)
