"""Network definitions and options the OVN tests share: one network per mode, inline so a
change to examples/ cannot move the golden files."""

from __future__ import annotations

from virtnet.loader import load_text
from virtnet.model.network import Network
from virtnet.ovn import OvnOptions

XML = {
    "nat": """<network>
  <name>natnet</name>
  <forward mode='nat'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
      <host mac='52:54:00:00:00:10' name='web' ip='192.168.122.10'/>
    </dhcp>
  </ip>
</network>""",
    "route": """<network>
  <name>routenet</name>
  <forward mode='route'/>
  <ip address='192.168.100.1' prefix='24'>
    <dhcp>
      <range start='192.168.100.100' end='192.168.100.199'>
        <lease expiry='2' unit='hours'/>
      </range>
    </dhcp>
  </ip>
  <route address='10.20.0.0' prefix='16' gateway='192.168.100.254'/>
</network>""",
    "isolated": """<network>
  <name>isonet</name>
  <domain name='iso.test'/>
  <ip address='192.168.150.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.150.10' end='192.168.150.20'/>
      <range start='192.168.150.30' end='192.168.150.40'/>
    </dhcp>
  </ip>
</network>""",
    "open": """<network>
  <name>opennet</name>
  <forward mode='open'/>
  <mtu size='9000'/>
  <ip address='192.168.160.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.160.2' end='192.168.160.254'/>
    </dhcp>
  </ip>
</network>""",
}

EXTERNAL = {
    "natnet": "203.0.113.10/24",
    "routenet": "203.0.113.11/24",
    "opennet": "203.0.113.13/24",
}
OUTSIDE_HOST = ("52:54:00:00:01:50", "203.0.113.50")


def net(mode: str) -> Network:
    return load_text(XML[mode])


def all_nets() -> list[Network]:
    return [net(m) for m in ("nat", "route", "isolated", "open")]


def options(**kw: object) -> OvnOptions:
    base: dict[str, object] = {"external_ips": dict(EXTERNAL), "outside_gateway": "203.0.113.1"}
    base.update(kw)
    return OvnOptions(**base)  # type: ignore[arg-type]
