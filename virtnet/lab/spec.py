"""What a lab holds, from a YAML file or from flags. Pure: builds definitions, touches nothing.

A lab file::

    vms_per_network: 2            # VM endpoints per network (each takes a real DHCP lease)
    outside_hosts: 1              # machines on the LAN, each with routes to every VM subnet
    outside_routes: true          # false: the outside hosts have no route to the VM subnets
    networks:
      - {name: nat, mode: nat}                      # shorthand: subnet and bridge chosen
      - {name: rt, mode: route, subnet: 198.51.100.0/24, ipv6: "2001:db8:42::/64"}
      - {file: ../networks/default.xml}             # a definition file (XML or YAML)
      - {definition: "<network>...</network>"}      # a definition inline

Shorthand networks are tuned for a fast test bed: STP off and dnsmasq ``no-ping`` (the docs:
STP holds a new port ~4 s, the ping check delays a first offer ~3 s).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from virtnet.errors import InvalidDefinition
from virtnet.model.network import (
    DHCP,
    Bridge,
    DHCPRange,
    Forward,
    ForwardMode,
    IPDef,
    Network,
)

SHORTHAND_MODES = ("bridge", "nat", "route", "isolated", "open")
LAN_BRIDGE = "br0"  # bridged mode: the VM host's bridge on the LAN, its uplink enslaved
LAN_V4 = ipaddress.IPv4Network("203.0.113.0/24")  # TEST-NET-3: the lab's physical LAN
LAN_V6 = ipaddress.IPv6Network("2001:db8:ff::/64")
HOST_LAN_V4, HOST_LAN_V6 = "203.0.113.1", "2001:db8:ff::1"
MAX_VMS = 50
MAX_OUTSIDE = 20


@dataclass(frozen=True)
class LabSpec:
    networks: tuple[Network, ...]
    vms_per_network: int = 2
    outside_hosts: int = 1
    outside_routes: bool = True

    def outside_address(self, i: int, family: str = "ipv4") -> str:
        """Outside host i (1-based) on the LAN."""
        if family == "ipv4":
            return str(LAN_V4.network_address + 9 + i)
        return str(LAN_V6.network_address + 9 + i)


def shorthand_network(
    mode: str,
    index: int,
    *,
    name: str | None = None,
    subnet: str | None = None,
    ipv6: str | None = None,
) -> Network:
    """A lab network of MODE: bridge vnbrINDEX, STP off, DHCP on its subnet, no-ping."""
    if mode not in SHORTHAND_MODES:
        raise InvalidDefinition(
            f"lab network mode {mode!r} is not one of {', '.join(SHORTHAND_MODES)}",
            element="networks[].mode",
            hint="use a definition file ('file:') for other modes",
        )
    name = name or mode
    if mode == "bridge":
        # VMs join the host's LAN bridge and take their addresses from the LAN's DHCP server.
        return Network(
            name=name,
            uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"virtnet-lab:{name}:{LAN_BRIDGE}")),
            forward=Forward(mode=ForwardMode.BRIDGE),
            bridge=Bridge(name=LAN_BRIDGE),
        )
    v4 = ipaddress.IPv4Network(subnet or f"192.168.{100 + index}.0/24")
    if v4.prefixlen > 28:
        raise InvalidDefinition(f"subnet {v4} of lab network {name!r} is too small",
                                element="networks[].subnet", hint="use a /28 or larger")
    ips = [_ipdef(v4)]
    if ipv6:
        v6 = ipaddress.IPv6Network(ipv6)
        if v6.prefixlen != 64:
            raise InvalidDefinition(f"IPv6 subnet {v6} of lab network {name!r} must be a /64",
                                    element="networks[].ipv6", hint="use a /64 (SLAAC and RA)")
        ips.append(_ipdef(v6))
    forward = None if mode == "isolated" else Forward(mode=ForwardMode(mode))
    return Network(
        name=name,
        uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"virtnet-lab:{name}:{v4}")),
        forward=forward,
        bridge=Bridge(name=f"vnbr{index}", stp=False, delay=0),
        ips=tuple(ips),
        dnsmasq_options=("no-ping",),
    )


def _ipdef(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> IPDef:
    first = net.network_address + 1
    size = net.num_addresses
    offset = min(10, size // 4)
    start = net.network_address + offset
    end = net.network_address + min(size - 2, offset + 90)
    if net.version == 4:
        return IPDef(address=str(first), prefix=net.prefixlen,
                     dhcp=DHCP(ranges=(DHCPRange(str(start), str(end)),)))
    # IPv6 without a DHCP range: dnsmasq advertises the prefix (ra-only) and VMs use SLAAC,
    # since the lab's DHCP client (udhcpc) speaks only DHCPv4.
    return IPDef(address=str(first), family="ipv6", prefix=net.prefixlen)


def from_flags(
    modes: Sequence[str], *, vms: int = 2, outside: int = 1, outside_routes: bool = True
) -> LabSpec:
    nets = [shorthand_network(m, i) for i, m in enumerate(modes)]
    names = [n.name for n in nets]
    nets = [replace(n, name=f"{n.name}{i}") if names.count(n.name) > 1 else n
            for i, n in enumerate(nets)]
    return _checked(LabSpec(tuple(nets), vms, outside, outside_routes))


def load(path: str | Path) -> LabSpec:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise InvalidDefinition(f"lab file {str(p)!r} does not exist",
                                hint="give a lab YAML file (see examples/lab/)") from None
    except yaml.YAMLError as exc:
        raise InvalidDefinition(f"lab file {str(p)!r} is not valid YAML: {exc}",
                                hint="fix the YAML syntax") from None
    return parse(data, base=p.parent)


def parse(data: Any, *, base: Path = Path(".")) -> LabSpec:
    if not isinstance(data, dict):
        raise InvalidDefinition("a lab file must be a mapping", element="lab",
                                hint="start with 'networks:' (see examples/lab/)")
    unknown = set(data) - {"networks", "vms_per_network", "outside_hosts", "outside_routes",
                           "name", "description"}
    if unknown:
        raise InvalidDefinition(f"unknown lab keys: {', '.join(sorted(unknown))}", element="lab",
                                hint="allowed: networks, vms_per_network, outside_hosts, "
                                "outside_routes")
    items = data.get("networks")
    if not isinstance(items, list) or not items:
        raise InvalidDefinition("a lab needs a non-empty 'networks' list", element="networks",
                                hint="e.g. networks: [{mode: nat}, {mode: route}]")
    nets = [_network(item, i, base) for i, item in enumerate(items)]
    return _checked(LabSpec(
        networks=tuple(nets),
        vms_per_network=_int(data, "vms_per_network", 2),
        outside_hosts=_int(data, "outside_hosts", 1),
        outside_routes=bool(data.get("outside_routes", True)),
    ))


def _int(data: dict[str, Any], key: str, default: int) -> int:
    v = data.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidDefinition(f"{key} must be an integer, not {v!r}", element=key,
                                hint=f"e.g. {key}: {default}")
    return v


def _network(item: Any, index: int, base: Path) -> Network:
    where = f"networks[{index}]"
    if not isinstance(item, dict):
        raise InvalidDefinition("each network must be a mapping", element=where,
                                hint="e.g. {mode: nat} or {file: net.xml}")
    if "file" in item or "definition" in item:
        import importlib

        loader: Any = importlib.import_module("virtnet.loader")  # XML or YAML definitions

        if "file" in item:
            net = loader.load_file(base / str(item["file"]))
        else:
            net = loader.load_text(str(item["definition"]))
        if "name" in item:
            net = replace(net, name=str(item["name"]))
        return net
    unknown = set(item) - {"name", "mode", "subnet", "ipv6"}
    if unknown:
        raise InvalidDefinition(f"unknown keys {', '.join(sorted(unknown))}", element=where,
                                hint="a shorthand network takes name, mode, subnet, ipv6")
    try:
        return shorthand_network(
            str(item.get("mode", "nat")), index,
            name=str(item["name"]) if "name" in item else None,
            subnet=str(item["subnet"]) if "subnet" in item else None,
            ipv6=str(item["ipv6"]) if "ipv6" in item else None,
        )
    except ValueError as exc:
        raise InvalidDefinition(f"{exc}", element=where,
                                hint="give subnets like 192.168.5.0/24, 2001:db8:5::/64") from None


def _checked(spec: LabSpec) -> LabSpec:
    if not 1 <= spec.vms_per_network <= MAX_VMS:
        raise InvalidDefinition(f"vms_per_network must be 1..{MAX_VMS}",
                                element="vms_per_network", hint="e.g. 2")
    if not 0 <= spec.outside_hosts <= MAX_OUTSIDE:
        raise InvalidDefinition(f"outside_hosts must be 0..{MAX_OUTSIDE}",
                                element="outside_hosts", hint="e.g. 1")
    names: set[str] = set()
    if sum(n.mode is ForwardMode.BRIDGE for n in spec.networks) > 1:
        raise InvalidDefinition("a lab has one LAN, so at most one bridged network",
                                element="networks[].mode", hint="keep one 'mode: bridge'")
    subnets: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for net in spec.networks:
        if net.name in names:
            raise InvalidDefinition(f"two lab networks are named {net.name!r}",
                                    element="networks[].name", hint="give each a unique name")
        names.add(net.name)
        for ip in net.ips:
            sub = ip.network
            for other, osub in subnets:
                if sub.version == osub.version and sub.overlaps(osub):
                    raise InvalidDefinition(
                        f"subnets of lab networks {other!r} and {net.name!r} overlap "
                        f"({osub} / {sub})", element="networks[].subnet",
                        hint="give each network its own subnet")
            if sub.version == 4 and sub.overlaps(LAN_V4) or sub.version == 6 and sub.overlaps(
                    LAN_V6):
                raise InvalidDefinition(f"network {net.name!r} overlaps the lab's LAN",
                                        element="networks[].subnet",
                                        hint=f"avoid {LAN_V4} and {LAN_V6}")
            subnets.append((net.name, sub))
    return spec


def topology_of(spec: LabSpec) -> Any:
    """The reach topology a lab stands for (outside hosts named outside1..N)."""
    from virtnet.reach.topology import Outside, Topology

    return Topology(
        networks=spec.networks,
        vms_per_network=spec.vms_per_network,
        outside=tuple(Outside(f"outside{i}", routes_to_vms=spec.outside_routes)
                      for i in range(1, spec.outside_hosts + 1)),
    )
