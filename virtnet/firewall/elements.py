"""What one network adds to virtnet's sets and maps (pure).

libvirt 9.0's semantics, per network with bridge BR and subnets S (its iptables rules in
``networkxml2firewalldata-iptables/`` are the reference):

- nat, route, isolated: BR in ``bridges`` (host DHCP/DNS/TFTP/DHCPv6 accepted, DHCP
  checksum filled, anything else forwarded into or out of BR rejected) and ``BR . BR`` in
  ``same_bridge`` (VM<->VM accepted).
- nat: S may leave BR (only towards ``<forward dev>`` when given); only replies may enter
  (verdict ``jump forward_established``, which rejects what is not a reply itself);
  masquerade S to not-S, TCP/UDP source ports 1024-65535 unless ``<nat><port>`` (via a
  verdict map to a per-range chain);
  224.0.0.0/24 and 255.255.255.255 (IPv6: ff02::/16) not NATed;
  ``<nat><address>`` gives SNAT to that IPv4 range instead.
  IPv6 subnets are NATed only with ``<nat ipv6='yes'>``; otherwise libvirt routes them
  (accept, any state).
- route: S may leave and enter BR, any state, no NAT.
- isolated: BR in ``isolated`` and S in ``isolated4``/``isolated6``: nothing is forwarded
  out of or into it, whatever the destination (stricter than libvirt 9.0, whose accept into
  a routed bridge comes before the isolated reject).
- open, bridge and the direct modes: no elements at all.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict

from virtnet.errors import Conflict, InvalidDefinition
from virtnet.firewall.names import check_ifname
from virtnet.firewall.parts import Addrs, Element, Ifname, Ports, Verdict
from virtnet.firewall.schema import (
    DEFAULT_PORTS,
    EST_CHAIN,
    SETS_BY_NAME,
    ChainSpec,
    masq_ports_chain,
    masq_ports_chain_spec,
)
from virtnet.model.network import ForwardMode, Network
from virtnet.modes.traits import traits

FIREWALLED_MODES = (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.ISOLATED)

_SKIP4 = (ipaddress.ip_network("224.0.0.0/24"), ipaddress.ip_network("255.255.255.255/32"))
_SKIP6 = (ipaddress.ip_network("ff02::/16"),)

Elements = dict[str, list[Element]]


def has_rules(net: Network) -> bool:
    return net.mode in FIREWALLED_MODES


def _ports(net: Network) -> Ports:
    """libvirt: no <port> means 1024-65535; a start without a usable end means that port."""
    nat = net.forward.nat if net.forward else None
    start = nat.port_start if nat and nat.port_start else 0
    end = nat.port_end if nat and nat.port_end else 0
    if start == 0 and end == 0:
        return Ports(1024, 65535)
    if start < end <= 65535:
        return Ports(start, end)
    return Ports(start, start)


def _snat_range(net: Network) -> Addrs | None:
    nat = net.forward.nat if net.forward else None
    if not nat or not nat.addresses:
        return None
    if len(nat.addresses) > 1:
        raise InvalidDefinition(
            "only one <address> range is supported inside <nat>",
            element=f"network '{net.name}' <forward><nat><address>",
            hint="keep a single <address start=... end=...> (libvirt accepts only one)",
        )
    rng = nat.addresses[0]
    try:
        lo, hi = ipaddress.ip_address(rng.start), ipaddress.ip_address(rng.end)
    except ValueError as exc:
        raise InvalidDefinition(
            str(exc), element=f"network '{net.name}' <forward><nat><address>"
        ) from None
    if lo.version != 4 or hi.version != 4 or int(lo) > int(hi):
        raise InvalidDefinition(
            f"NAT address range {rng.start}-{rng.end} is not an ascending IPv4 range",
            element=f"network '{net.name}' <forward><nat><address>",
            hint="give IPv4 start <= end",
        )
    return Addrs(lo, hi)


def network_elements(net: Network) -> Elements:
    """Set/map name -> elements this network contributes (empty for modes without rules)."""
    out: Elements = defaultdict(list)
    if not has_rules(net):
        return {}
    if not net.bridge_name:
        raise InvalidDefinition(
            f"network '{net.name}' has no bridge name",
            element=f"network '{net.name}' <bridge name>",
            hint="fill defaults (virtnet.model.defaults.fill_defaults) before rendering",
        )
    br = Ifname(check_ifname(net.bridge_name, element=f"network '{net.name}' <bridge name>"))
    out["bridges"].append(Element((br,)))
    out["same_bridge"].append(Element((br, br)))
    if not traits(net).forwards_out:
        out["isolated"].append(Element((br,)))
        for ip in net.ips:
            out["isolated6" if ip.is_ipv6 else "isolated4"].append(
                Element((Addrs.net(ip.network),)))
        return dict(out)

    fwd = net.forward
    assert fwd is not None  # nat/route always have <forward>
    dev = (
        Ifname(check_ifname(fwd.dev, element=f"network '{net.name}' <forward dev>"))
        if fwd.dev
        else None
    )
    nat_v6 = bool(fwd.nat and fwd.nat.ipv6)
    for ip in net.ips:
        fam = "6" if ip.is_ipv6 else "4"
        subnet = Addrs.net(ip.network)
        nat = net.mode == ForwardMode.NAT and (fam == "4" or nat_v6)
        verdict = Verdict(f"jump {EST_CHAIN}" if nat else "accept")
        if dev:
            out[f"out{fam}_dev"].append(Element((br, dev, subnet)))
            out[f"in{fam}_dev"].append(Element((dev, br, subnet), (verdict,)))
        else:
            out[f"out{fam}"].append(Element((br, subnet)))
            out[f"in{fam}"].append(Element((br, subnet), (verdict,)))
        if not nat:
            continue
        for skip in (ip.network, *(_SKIP4 if fam == "4" else _SKIP6)):
            out[f"nat{fam}_skip"].append(Element((subnet, Addrs.net(skip))))
        ports = _ports(net)
        snat = _snat_range(net) if fam == "4" else None
        key: tuple[Ifname | Addrs, ...] = (subnet, dev) if dev else (subnet,)
        suffix = "_dev" if dev else ""
        if snat:
            out[f"snat4{suffix}"].append(Element(key, (snat,)))
            out[f"snat4{suffix}_ports"].append(Element(key, (snat, ports)))
        else:
            goto = Verdict(f"goto {masq_ports_chain(ports.lo, ports.hi)}")
            out[f"masq{fam}{suffix}"].append(Element(key))
            out[f"masq{fam}{suffix}_ports"].append(Element(key, (goto,)))
    for name in out:
        assert name in SETS_BY_NAME, name
    return dict(out)


def extra_chains(net: Network) -> list[ChainSpec]:
    """Chains this network needs beyond the fixed ones: its masquerade port range, if custom."""
    if net.mode != ForwardMode.NAT or _snat_range(net) is not None:
        return []
    ports = _ports(net)
    if (ports.lo, ports.hi) == DEFAULT_PORTS:
        return []
    return [masq_ports_chain_spec(ports.lo, ports.hi)]


def merged_extra_chains(nets: list[Network] | tuple[Network, ...]) -> list[ChainSpec]:
    chains: dict[str, ChainSpec] = {}
    for net in nets:
        for chain in extra_chains(net):
            chains.setdefault(chain.name, chain)
    return list(chains.values())


def check_disjoint(nets: list[Network] | tuple[Network, ...]) -> None:
    """Refuse two firewalled networks sharing a bridge or overlapping subnets: their set
    elements would collide (nft refuses overlapping intervals) and one network's stop would
    remove the other's rules."""
    bridges: dict[str, str] = {}
    subnets: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    for net in nets:
        if not has_rules(net):
            continue
        if net.bridge_name:
            other = bridges.setdefault(net.bridge_name, net.name)
            if other != net.name:
                raise Conflict(
                    f"networks '{other}' and '{net.name}' both use bridge {net.bridge_name}",
                    element=f"network '{net.name}' <bridge name>",
                    hint="give each network its own bridge (or stop one of them)",
                )
        subnets += [(ip.network, net.name) for ip in net.ips]
    # Sorted by start, a subnet overlaps an earlier one iff it starts before the furthest
    # end seen so far (O(n log n): a thousand networks stay cheap).
    subnets.sort(key=lambda item: (item[0].version, int(item[0].network_address)))
    prev: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str] | None = None
    for subnet, owner in subnets:
        overlaps = (
            prev is not None
            and prev[0].version == subnet.version
            and int(subnet.network_address) <= int(prev[0].broadcast_address)
        )
        if overlaps and prev is not None and prev[1] == owner:
            raise InvalidDefinition(
                f"subnets {prev[0]} and {subnet} of network '{owner}' overlap",
                element=f"network '{owner}' <ip address>",
                hint="give each <ip> of a network its own, non-overlapping subnet",
            )
        if overlaps and prev is not None:
            raise Conflict(
                f"subnet {subnet} of network '{owner}' overlaps {prev[0]} of network '{prev[1]}'",
                element=f"network '{owner}' <ip address>",
                hint="use non-overlapping subnets (or stop the other network)",
            )
        if (
            prev is None
            or prev[0].version != subnet.version
            or int(subnet.broadcast_address) > int(prev[0].broadcast_address)
        ):
            prev = (subnet, owner)


def merged_elements(nets: list[Network] | tuple[Network, ...]) -> Elements:
    """All networks' elements per set, in order (refuses networks that would collide)."""
    check_disjoint(nets)
    merged: Elements = defaultdict(list)
    seen: dict[str, set[str]] = defaultdict(set)
    for net in nets:
        for name, elems in network_elements(net).items():
            for elem in elems:
                canon = elem.canon()
                if canon not in seen[name]:
                    seen[name].add(canon)
                    merged[name].append(elem)
    return dict(merged)
