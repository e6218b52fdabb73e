"""dnsmasq for virtnet's networks: the configuration it reads (rendering only, no processes)."""

from virtnet.dnsmasq.config import (
    DnsmasqPaths,
    render_addnhosts,
    render_conf,
    render_hostsfile,
)

__all__ = ["DnsmasqPaths", "render_addnhosts", "render_conf", "render_hostsfile"]
