"""What a lab holds, from a YAML file or from flags. Pure: builds definitions, touches nothing.

A lab file::

    vms_per_network: 2            # VM endpoints per network (each takes a real DHCP lease)
    outside_hosts: 1              # machines on the LAN, each with routes to every VM subnet
    outside_routes: true          # false: the outside hosts have no route to the VM subnets
    lan_hairpin: false            # the LAN switch reflects frames back out of the host's
                                  # macvtap interfaces' ports (decides vepa VM to VM)
    networks:
      - {name: nat, mode: nat}                      # shorthand: subnet and bridge chosen
      - {name: rt, mode: route, subnet: 198.51.100.0/24, ipv6: "2001:db8:42::/64"}
      - {name: mv, mode: macvtap-bridge}            # macvtap on eth0, the host's LAN interface
      - {name: pt, mode: passthrough, interfaces: [eth1, eth2]}  # one LAN interface per VM
      - {file: ../networks/default.xml}             # a definition file (XML or YAML)
      - {definition: "<network>...</network>"}      # a definition inline

Shorthand networks are tuned for a fast test bed: STP off and dnsmasq ``no-ping`` (the docs:
STP holds a new port ~4 s, the ping check delays a first offer ~3 s).

The macvtap direct modes (``macvtap-bridge``, ``vepa``, ``private``, ``passthrough``) put VMs on
host interfaces that are ports of the LAN; their VMs lease addresses from the LAN's DHCP
server. Shared modes default to ``eth0``, the interface holding the host's own LAN address (so
the lab shows that a host cannot reach its own macvtap VMs); passthrough needs an interface per
VM and defaults to ``ethNp1``..``ethNpV``. Every pool interface other than eth0 is created by
the lab as one more veth from the host into the LAN (``virtnet.lab.bed``).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from virtnet import direct
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

# macvtap direct modes by their lab names ("bridge" alone is libvirt's bridged mode)
DIRECT_SHORTHAND = {
    "macvtap-bridge": ForwardMode.BRIDGE,
    "vepa": ForwardMode.VEPA,
    "private": ForwardMode.PRIVATE,
    "passthrough": ForwardMode.PASSTHROUGH,
}
SHORTHAND_MODES = ("bridge", "nat", "route", "isolated", "open", *DIRECT_SHORTHAND)
LAN_BRIDGE = "br0"  # bridged mode: the VM host's bridge on the LAN, its uplink enslaved
HOST_UPLINK = "eth0"  # the host's interface on the LAN (its address, unless bridged: br0's)
MAX_UPLINKS = 32  # extra host interfaces on the LAN for macvtap pools
IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
LAN_V4 = ipaddress.IPv4Network("203.0.113.0/24")  # TEST-NET-3: the lab's physical LAN
LAN_V6 = ipaddress.IPv6Network("2001:db8:ff::/64")
HOST_LAN_V4, HOST_LAN_V6 = "203.0.113.1", "2001:db8:ff::1"
# The LAN's DHCP server (bridged and macvtap VMs): .100 to .150
LAN_DHCP = (str(LAN_V4.network_address + 100), str(LAN_V4.network_address + 150))
LAN_DHCP_SIZE = 51
MAX_VMS = 50
MAX_OUTSIDE = 20


@dataclass(frozen=True)
class LabSpec:
    networks: tuple[Network, ...]
    vms_per_network: int = 2
    outside_hosts: int = 1
    outside_routes: bool = True
    lan_hairpin: bool = False  # hairpin on the LAN ports of the host's macvtap interfaces

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
    interfaces: Sequence[str] | None = None,
    vms: int = 2,
) -> Network:
    """A lab network of MODE: bridge vnbrINDEX, STP off, DHCP on its subnet, no-ping; for a
    macvtap mode the pool INTERFACES (default: see the module's doc; VMS sizes passthrough's)."""
    if mode not in SHORTHAND_MODES:
        raise InvalidDefinition(
            f"lab network mode {mode!r} is not one of {', '.join(SHORTHAND_MODES)}",
            element="networks[].mode",
            hint="use a definition file ('file:') for other modes",
        )
    name = name or mode
    if mode in DIRECT_SHORTHAND:
        return _direct_network(mode, index, name, subnet, ipv6, interfaces, vms)
    if interfaces is not None:
        raise InvalidDefinition(f"lab network {name!r} of mode {mode} takes no interfaces",
                                element="networks[].interfaces",
                                hint="interfaces are the pool of a macvtap mode "
                                f"({', '.join(DIRECT_SHORTHAND)})")
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


def _direct_network(mode: str, index: int, name: str, subnet: str | None, ipv6: str | None,
                    interfaces: Sequence[str] | None, vms: int) -> Network:
    fmode = DIRECT_SHORTHAND[mode]
    if subnet is not None or ipv6 is not None:
        raise InvalidDefinition(
            f"lab network {name!r} ({mode}) takes no subnet: its VMs are stations on the LAN "
            "and lease their addresses from the LAN's DHCP server",
            element="networks[].subnet", hint="remove subnet/ipv6")
    if interfaces is None:
        interfaces = ([f"eth{index}p{i}" for i in range(1, vms + 1)]
                      if fmode is ForwardMode.PASSTHROUGH else [HOST_UPLINK])
    pool = tuple(str(d) for d in interfaces)
    if not pool:
        raise InvalidDefinition(f"lab network {name!r} has an empty interface pool",
                                element="networks[].interfaces",
                                hint=f"e.g. interfaces: [{HOST_UPLINK}] or leave it out")
    fw = (Forward(mode=fmode, dev=pool[0]) if len(pool) == 1
          else Forward(mode=fmode, interfaces=pool))
    return Network(name=name, uuid=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                  f"virtnet-lab:{name}:{mode}:{','.join(pool)}")),
                   forward=fw)


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
    modes: Sequence[str], *, vms: int = 2, outside: int = 1, outside_routes: bool = True,
    lan_hairpin: bool = False,
) -> LabSpec:
    nets = [shorthand_network(m, i, vms=vms) for i, m in enumerate(modes)]
    names = [n.name for n in nets]
    nets = [replace(n, name=f"{n.name}{i}") if names.count(n.name) > 1 else n
            for i, n in enumerate(nets)]
    return _checked(LabSpec(tuple(nets), vms, outside, outside_routes, lan_hairpin))


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
                           "lan_hairpin", "name", "description"}
    if unknown:
        raise InvalidDefinition(f"unknown lab keys: {', '.join(sorted(unknown))}", element="lab",
                                hint="allowed: networks, vms_per_network, outside_hosts, "
                                "outside_routes, lan_hairpin")
    items = data.get("networks")
    if not isinstance(items, list) or not items:
        raise InvalidDefinition("a lab needs a non-empty 'networks' list", element="networks",
                                hint="e.g. networks: [{mode: nat}, {mode: route}]")
    vms = _int(data, "vms_per_network", 2)
    nets = [_network(item, i, base, vms) for i, item in enumerate(items)]
    return _checked(LabSpec(
        networks=tuple(nets),
        vms_per_network=vms,
        outside_hosts=_int(data, "outside_hosts", 1),
        outside_routes=_bool(data, "outside_routes", True),
        lan_hairpin=_bool(data, "lan_hairpin", False),
    ))


def _bool(data: dict[str, Any], key: str, default: bool) -> bool:
    v = data.get(key, default)
    if not isinstance(v, bool):
        raise InvalidDefinition(f"{key} must be true or false, not {v!r}", element=key,
                                hint=f"e.g. {key}: {'true' if default else 'false'}")
    return v


def _int(data: dict[str, Any], key: str, default: int) -> int:
    v = data.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidDefinition(f"{key} must be an integer, not {v!r}", element=key,
                                hint=f"e.g. {key}: {default}")
    return v


def _network(item: Any, index: int, base: Path, vms: int = 2) -> Network:
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
    unknown = set(item) - {"name", "mode", "subnet", "ipv6", "interfaces"}
    if unknown:
        raise InvalidDefinition(f"unknown keys {', '.join(sorted(unknown))}", element=where,
                                hint="a shorthand network takes name, mode, subnet, ipv6, "
                                "interfaces")
    pool = item.get("interfaces")
    if pool is not None and (not isinstance(pool, list) or not all(
            isinstance(d, str) for d in pool)):
        raise InvalidDefinition(f"interfaces must be a list of interface names, not {pool!r}",
                                element=f"{where}.interfaces", hint="e.g. [eth1, eth2]")
    try:
        return shorthand_network(
            str(item.get("mode", "nat")), index,
            name=str(item["name"]) if "name" in item else None,
            subnet=str(item["subnet"]) if "subnet" in item else None,
            ipv6=str(item["ipv6"]) if "ipv6" in item else None,
            interfaces=pool, vms=vms,
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
    if sum(is_host_bridge(n) for n in spec.networks) > 1:
        raise InvalidDefinition("a lab has one LAN, so at most one bridged network",
                                element="networks[].mode", hint="keep one 'mode: bridge'")
    _check_direct(spec)
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


def is_host_bridge(net: Network) -> bool:
    """libvirt's bridged mode proper (VMs on a host bridge), not macvtap bridge mode."""
    return net.mode is ForwardMode.BRIDGE and bool(net.bridge_name)


def on_lan(net: Network) -> bool:
    """Whether NET's VMs are stations on the lab's LAN (bridged or macvtap)."""
    return is_host_bridge(net) or direct.is_direct(net)


def host_uplink(spec_or_nets: LabSpec | Sequence[Network]) -> str:
    """The interface holding the host's LAN address: br0 when bridged, else eth0."""
    nets = spec_or_nets.networks if isinstance(spec_or_nets, LabSpec) else spec_or_nets
    return LAN_BRIDGE if any(is_host_bridge(n) for n in nets) else HOST_UPLINK


def macvtap_interfaces(nets: Sequence[Network]) -> list[str]:
    """Every host interface the lab's macvtap networks use, in first-use order."""
    out: list[str] = []
    for net in nets:
        if direct.is_direct(net):
            out += [d for d in direct.pool_of(net) if d not in out]
    return out


def extra_uplinks(nets: Sequence[Network]) -> list[str]:
    """The macvtap interfaces the lab creates: veths from the host into the LAN (all but the
    host's own eth0)."""
    return [d for d in macvtap_interfaces(nets) if d != HOST_UPLINK]


def _check_direct(spec: LabSpec) -> None:
    """What the lab can build for macvtap networks, refused up front with the fix."""
    bridged = any(is_host_bridge(n) for n in spec.networks)
    users: dict[str, list[Network]] = {}
    lan_vms = 0
    for net in spec.networks:
        if not on_lan(net):
            continue
        lan_vms += spec.vms_per_network
        if not direct.is_direct(net):
            continue
        el = f"networks[{net.name}]"
        fw = net.forward
        if net.mode is ForwardMode.HOSTDEV or (fw is not None and fw.pfs):
            raise InvalidDefinition(
                f"lab network {net.name!r} uses SR-IOV (hostdev or <pf>), which needs SR-IOV "
                "hardware; the lab's interfaces are veths", element=el,
                hint="use macvtap-bridge, vepa, private or passthrough with <interface dev=...>")
        pool = direct.pool_of(net)
        if not pool:
            raise InvalidDefinition(f"lab network {net.name!r} has no interface pool",
                                    element=el, hint="give <forward dev=...> or interfaces")
        for dev in pool:
            if not IFNAME_RE.match(dev) or dev in ("lo", LAN_BRIDGE) or dev.startswith("vn"):
                raise InvalidDefinition(
                    f"lab network {net.name!r}: {dev!r} cannot be a lab interface (lo, "
                    f"{LAN_BRIDGE} and vn* are the lab's own; at most 15 letters, digits, "
                    "'-', '_', '.')", element=el, hint="name it like eth1")
            users.setdefault(dev, []).append(net)
        if bridged and HOST_UPLINK in pool:
            raise InvalidDefinition(
                f"lab network {net.name!r} puts macvtap devices on {HOST_UPLINK}, which the "
                f"lab's bridged network makes a port of {LAN_BRIDGE} (the kernel puts no "
                "macvtap on a bridge port)", element=el,
                hint="give it its own interfaces (e.g. interfaces: [eth1]), or build the "
                "bridged network in another lab")
        if direct.exclusive(net):
            if len(pool) < spec.vms_per_network:
                raise InvalidDefinition(
                    f"lab network {net.name!r} ({net.mode.value}) needs one interface per VM: "
                    f"{len(pool)} for {spec.vms_per_network} VMs", element=el,
                    hint=f"list {spec.vms_per_network} interfaces, or leave them out")
            if HOST_UPLINK in pool:
                raise InvalidDefinition(
                    f"lab network {net.name!r} ({net.mode.value}) would give {HOST_UPLINK}, "
                    "the host's own LAN interface, to a VM", element=el,
                    hint="use other interfaces (e.g. eth1, eth2); the lab creates them")
    for dev, nets in users.items():
        if len(nets) > 1 and any(direct.exclusive(n) for n in nets):
            raise InvalidDefinition(
                f"interface {dev} is in the pools of {', '.join(repr(n.name) for n in nets)}; "
                "a passthrough interface belongs to one VM alone",
                element="networks[].interfaces", hint="give each network its own interfaces")
    if len(users) - (HOST_UPLINK in users) > MAX_UPLINKS:
        raise InvalidDefinition(f"the lab's macvtap networks use more than {MAX_UPLINKS} "
                                "interfaces", element="networks[].interfaces",
                                hint="use fewer VMs or share interfaces")
    if lan_vms > LAN_DHCP_SIZE:
        raise InvalidDefinition(
            f"{lan_vms} VMs would lease from the LAN's DHCP server, which has "
            f"{LAN_DHCP_SIZE} addresses", element="vms_per_network",
            hint="use fewer VMs per network or fewer bridged/macvtap networks")


def topology_of(spec: LabSpec) -> Any:
    """The reach topology a lab stands for (outside hosts named outside1..N)."""
    from virtnet.reach.topology import Outside, Topology

    return Topology(
        networks=spec.networks,
        vms_per_network=spec.vms_per_network,
        outside=tuple(Outside(f"outside{i}", routes_to_vms=spec.outside_routes)
                      for i in range(1, spec.outside_hosts + 1)),
        uplink=host_uplink(spec),
        lan_hairpin=spec.lan_hairpin,
    )
