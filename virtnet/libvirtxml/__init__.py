"""libvirt network XML: a safe parser and a faithful formatter.

``parse_network`` reads untrusted XML into a :class:`~virtnet.model.network.Network` with
libvirt's parse-time defaults and checks; ``format_network`` prints a Network exactly as
``virsh net-dumpxml`` would.
"""

from virtnet.libvirtxml.format import format_network
from virtnet.libvirtxml.parse import DNSMASQ_NS, parse_network

__all__ = ["DNSMASQ_NS", "format_network", "parse_network"]
