"""Disposable test beds inside network namespaces: a VM host, an outside LAN with its hosts,
and VM endpoints taking real DHCP leases from virtnet's networks."""
