"""The expected reachability matrix: for every pair of endpoints, reachable or not, and why.

Pure: computed from definitions (and, for open mode, the host's own ruleset when it is known).
The per-mode rules are libvirt's (9.0, iptables backend; see the conformance corpus'
``networkxml2firewalldata-iptables``), which virtnet's nftables table reproduces:

- FORWARD walks libvirt's chains in the order FWX, FWI, FWO. FWX accepts ``iif BR oif BR``.
  FWI is decided by the network of the *output* bridge: nat accepts only ``ct state
  established,related`` to its subnet, route accepts anything to its subnet, and nat/route/
  isolated reject the rest into their bridge. FWO is decided by the network of the *input*
  bridge: nat/route accept from their subnet (nat: only out of ``forward dev`` when given),
  then reject. Open networks have no rules, so a packet between an open network and the
  outside is decided by the host's own rules and its forwarding sysctl.
- nat masquerades from its subnet to anything outside it (IPv6 only with ``<nat ipv6='yes'>``;
  without it a nat network's IPv6 subnet is routed, exactly like route mode).
- An isolated network's DHCP hands out no router (``dhcp-option=3``): its VMs have no route off
  their bridge at all.

Cross-network VM to VM on one host follows from the same chains: into a route network anything
is accepted (FWI, before the source's FWO), into nat and isolated networks nothing new is, into
an open network the source network's FWO decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from virtnet import direct
from virtnet.model.network import ForwardMode, Network
from virtnet.reach import hostfw
from virtnet.reach.topology import (
    FAMILIES,
    Endpoint,
    Kind,
    Topology,
    has_family,
    is_host_bridge,
    subnets,
)

PROTOCOLS = ("icmp", "tcp")
MANAGED = (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.ISOLATED)


@dataclass(frozen=True)
class Verdict:
    reachable: bool | None  # None: depends on something not known here (host firewall rules)
    rule: str  # the rule or fact that decides
    seen_as: str | None = None  # "host" when the destination sees the host's address (NAT)


@dataclass(frozen=True)
class PairKey:
    src: str
    dst: str
    family: str
    proto: str

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst} [{self.family}/{self.proto}]"


@dataclass(frozen=True)
class Matrix:
    topology: Topology
    endpoints: tuple[Endpoint, ...]
    pairs: dict[PairKey, Verdict]

    def get(self, src: str, dst: str, family: str = "ipv4", proto: str = "tcp") -> Verdict | None:
        return self.pairs.get(PairKey(src, dst, family, proto))

    def endpoint(self, id_: str) -> Endpoint:
        for e in self.endpoints:
            if e.id == id_:
                return e
        raise KeyError(id_)

    def __iter__(self) -> Iterator[tuple[PairKey, Verdict]]:
        return iter(self.pairs.items())


def expected(topo: Topology) -> Matrix:
    """Every ordered pair of distinct endpoints, per address family both have, per protocol."""
    eps = topo.endpoints()
    pairs: dict[PairKey, Verdict] = {}
    for src in eps:
        for dst in eps:
            if src == dst:
                continue
            for fam in FAMILIES:
                if not (_has(topo, src, fam) and _has(topo, dst, fam)):
                    continue
                for proto in PROTOCOLS:
                    pairs[PairKey(src.id, dst.id, fam, proto)] = decide(topo, src, dst, fam, proto)
    return Matrix(topo, tuple(eps), pairs)


def _has(topo: Topology, ep: Endpoint, family: str) -> bool:
    if ep.kind is Kind.VM:
        assert ep.network
        return has_family(topo.network(ep.network), family)
    if ep.kind is Kind.OUTSIDE:
        return family == "ipv4" or topo.outside_host(ep.id).ipv6
    return True


# -- the pieces of a decision -------------------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    """Where an endpoint sits, as the host's forwarding sees it."""

    ep: Endpoint
    net: Network | None  # a VM's network
    on_lan: bool  # outside hosts and bridged/macvtap VMs: reached through the uplink

    @property
    def bridge(self) -> str | None:
        return self.net.bridge_name if self.net and not self.on_lan else None


def _side(topo: Topology, ep: Endpoint) -> _Side:
    if ep.kind is Kind.VM:
        assert ep.network
        net = topo.network(ep.network)
        return _Side(ep, net, on_lan=net.mode is ForwardMode.BRIDGE or net.mode.is_direct)
    return _Side(ep, None, on_lan=ep.kind is Kind.OUTSIDE)


def _name(net: Network) -> str:
    return f"{net.mode.value} {net.name!r}"


def _subnet_text(net: Network, family: str) -> str:
    return ", ".join(str(s) for s in subnets(net, family)) or "its subnet"


def _nat_applies(net: Network, family: str) -> bool:
    """nat masquerades IPv4 always, IPv6 only with <nat ipv6='yes'>."""
    if net.mode is not ForwardMode.NAT:
        return False
    if family == "ipv4":
        return True
    return bool(net.forward and net.forward.nat and net.forward.nat.ipv6)


def _effective_mode(net: Network, family: str) -> ForwardMode:
    if net.mode is ForwardMode.NAT and not _nat_applies(net, family):
        return ForwardMode.ROUTE  # libvirt: a nat network's IPv6 is routed unless nat ipv6='yes'
    return net.mode


def _uplink(topo: Topology, net: Network | None) -> str:
    if topo.uplink:
        return topo.uplink
    dev = net.forward.dev if net is not None and net.forward else None
    return dev or "uplink"


def _uses_host_fw(*nets: Network | None) -> bool:
    return any(n is not None and n.mode is ForwardMode.OPEN for n in nets)


def _host_rules(
    topo: Topology, pkt: hostfw.Packet, *nets: Network | None, default_rule: str
) -> Verdict:
    """What the host's own firewall (tables other than virtnet's) does with PKT."""
    if topo.host_ruleset is None:
        if _uses_host_fw(*nets):
            return Verdict(None, "open: depends on the host's firewall rules (not read)")
        return Verdict(True, default_rule)
    ok, why = hostfw.evaluate(topo.host_ruleset, pkt)
    if ok is None:
        return Verdict(None, f"open: depends on the host's firewall rules ({why})")
    if not ok:
        return Verdict(False, f"host firewall: {why}")
    if why and _uses_host_fw(*nets):
        return Verdict(True, f"host firewall: {why}")
    return Verdict(True, default_rule if not why else f"{default_rule}; host firewall: {why}")


def decide(topo: Topology, src: Endpoint, dst: Endpoint, family: str, proto: str) -> Verdict:
    s, d = _side(topo, src), _side(topo, dst)
    direct = _direct_pair(topo, s, d)
    if direct is not None:
        return direct
    if src.kind is Kind.HOST or dst.kind is Kind.HOST:
        return _with_host(topo, s, d, family, proto)
    if s.net is not None and d.net is s.net and not s.on_lan:
        return _same_bridge(topo, s.net, family, proto)
    if s.on_lan and d.on_lan:
        return Verdict(True, "both on the host's LAN: switched there, the host is not involved")
    return _routed(topo, s, d, family, proto)


def _direct_pair(topo: Topology, s: _Side, d: _Side) -> Verdict | None:
    """Bridged and macvtap VMs: the LAN decides, with macvtap's known gaps."""
    for side in (s, d):
        net = side.net
        if net is None or not direct.is_direct(net):
            continue
        other = d if side is s else s
        if net.mode is ForwardMode.HOSTDEV or (net.forward and net.forward.pfs):
            return Verdict(None, f"{_name(net)}: SR-IOV virtual functions; the card's "
                           "embedded switch decides (virtnet does not start these)")
        dev = _macvtap_dev(topo, side)
        if dev is None:
            return Verdict(False, f"macvtap {_name(net)}: no device left for "
                           f"{side.ep.id} (passthrough: one VM per interface)")
        if other.ep.kind is Kind.HOST:
            up = topo.uplink
            if not _host_blind(topo, dev) and up is not None and dev != up:
                return Verdict(True, f"macvtap on {dev}, the host's address on {up}: "
                               "through the LAN")
            if topo.lan_hairpin:
                return Verdict(True, f"macvtap on {dev}: the LAN switch reflects the host's "
                               "frames back to its own VMs (hairpin)")
            return Verdict(False, f"macvtap on {dev}: the host and its own macvtap VMs cannot "
                           "reach each other")
        if other.net is not None and direct.is_direct(other.net) and not (
                other.net.mode is ForwardMode.HOSTDEV or other.net.forward
                and other.net.forward.pfs):
            return _macvtap_pair(topo, side, dev, other)
        if other.bridge is not None and _host_blind(topo, dev):
            return Verdict(False, f"macvtap on {dev}: traffic to the host's own bridges needs "
                           "the host, which cannot see its macvtap VMs")
        # Otherwise (on another LAN interface, or a hairpin switch) the VM is a LAN station
        # like any other: the host's forwarding rules decide, below.
    for side in (s, d):
        if side.net is not None and is_host_bridge(side.net):
            other = d if side is s else s
            br = side.net.bridge_name
            if other.ep.kind is Kind.HOST:
                return Verdict(True, f"bridge {side.net.name!r}: the host's own address on {br}")
            if other.net is side.net:
                return Verdict(True, f"bridge {side.net.name!r}: stations on the same host "
                               f"bridge {br}")
    return None


def _host_blind(topo: Topology, dev: str) -> bool:
    """Whether the host cannot see macvtap VMs on DEV: its address is on DEV (the uplink;
    None in a pure computation: taken to be DEV) and the LAN switch does not hairpin."""
    return (topo.uplink is None or dev == topo.uplink) and not topo.lan_hairpin


def _macvtap_dev(topo: Topology, side: _Side) -> str | None:
    """The device VM I of a macvtap network gets: libvirt's allocation, in VM order."""
    assert side.net is not None
    index = int(side.ep.id.rsplit("/vm", 1)[1])
    return direct.allocation(side.net, max(index, topo.vms_per_network))[index - 1]


def _macvtap_pair(topo: Topology, a: _Side, dev: str, b: _Side) -> Verdict:
    """Two macvtap VMs: the kernel switches between macvlans on one device only in bridge
    mode (both ends); vepa sends everything to the switch, private never delivers between
    macvlans of one device; on different devices the LAN switches as between any stations."""
    assert a.net is not None and b.net is not None
    other_dev = _macvtap_dev(topo, b)
    if other_dev is None:
        return Verdict(False, f"macvtap {_name(b.net)}: no device left for {b.ep.id}")
    if other_dev != dev:
        return Verdict(True, f"macvtap on {dev} and {other_dev}: switched by the LAN")
    modes = {direct.kernel_mode(a.net), direct.kernel_mode(b.net)}
    if "private" in modes:
        return Verdict(False, f"macvtap private mode on {dev}: VMs on one device never see "
                       "each other, even through a hairpin switch")
    if modes == {"bridge"}:
        return Verdict(True, f"macvtap bridge mode on {dev}: VMs switched on the device")
    if topo.lan_hairpin is None:
        return Verdict(None, f"macvtap vepa on {dev}: VM to VM only if the external switch "
                       "reflects frames (hairpin)")
    if topo.lan_hairpin:
        return Verdict(True, f"macvtap vepa on {dev}: the LAN switch reflects frames (hairpin)")
    return Verdict(False, f"macvtap vepa on {dev}: every frame goes to the LAN switch, which "
                   "does not send it back out the port it came in on (hairpin off)")


def _with_host(topo: Topology, s: _Side, d: _Side, family: str, proto: str) -> Verdict:
    vm = s if s.ep.kind is Kind.VM else d if d.ep.kind is Kind.VM else None
    if vm is None:
        return Verdict(True, "the host's uplink on the LAN")
    if vm.on_lan:
        # A bridged VM is a LAN station like any other: reached through the uplink.
        return Verdict(True, "the host's uplink on the LAN")
    assert vm.net is not None
    net = vm.net
    br = net.bridge_name or "its bridge"
    if s.ep.kind is Kind.VM:
        pkt = hostfw.Packet("input", family, proto, iif=br, oif=None,
                            saddr=_addr(topo, s, family), daddr=_addr(topo, d, family, peer=s))
        return _host_rules(topo, pkt, net,
                           default_rule=f"host input: the host's address on {br} (not filtered)")
    pkt = hostfw.Packet("output", family, proto, iif=None, oif=br,
                        saddr=_addr(topo, s, family, peer=d), daddr=_addr(topo, d, family))
    return _host_rules(topo, pkt, net,
                       default_rule=f"host output to {br} (not filtered)")


def _same_bridge(topo: Topology, net: Network, family: str, proto: str) -> Verdict:
    br = net.bridge_name or "its bridge"
    if net.mode in MANAGED:
        return Verdict(True, f"{_name(net)}: VM to VM on {br} accepted (iif {br} oif {br})")
    # br_netfilter passes bridged frames through the forward hook: the host's rules decide.
    addr = _vm_addr(net, family)
    pkt = hostfw.Packet("forward", family, proto, iif=br, oif=br, saddr=addr, daddr=addr)
    return _host_rules(topo, pkt, net,
                       default_rule=f"{_name(net)}: switched on {br}, no rules")


def _has_route(topo: Topology, frm: _Side, to: _Side, family: str) -> tuple[bool, str]:
    """Whether FRM has a route to TO's address (and which fact says so)."""
    if frm.ep.kind is Kind.OUTSIDE or frm.on_lan:
        if not to.on_lan and to.ep.kind is Kind.VM:
            assert to.net is not None
            routes = frm.ep.kind is Kind.OUTSIDE and topo.outside_host(frm.ep.id).routes_to_vms
            if not routes:
                return False, (f"{frm.ep.id} has no route to {_subnet_text(to.net, family)} "
                               "via the host")
        return True, ""
    assert frm.net is not None
    if frm.net.mode is ForwardMode.ISOLATED:
        return False, (f"{_name(frm.net)}: DHCP hands out no router (dhcp-option=3), no route "
                       "off the bridge")
    return True, ""


def _routed(topo: Topology, s: _Side, d: _Side, family: str, proto: str) -> Verdict:
    """Traffic the host forwards: VM to another network's VM, VM to/from the LAN."""
    ok, why = _has_route(topo, s, d, family)
    if not ok:
        return Verdict(False, why)
    if not topo.forwarding(family):
        knob = "ip_forward" if family == "ipv4" else "ipv6 forwarding"
        return Verdict(False, f"host forwarding off ({knob}=0)")
    out = _forward(topo, s, d, family, proto, established=False)
    if out.reachable is not True:
        return out
    masq = s.net is not None and not s.on_lan and _nat_applies(s.net, family) and not (
        s.net.forward is not None and s.net.forward.dev is not None
        and (d.bridge or _uplink(topo, s.net)) != s.net.forward.dev
    )
    if not masq:
        ok, why = _has_route(topo, d, s, family)
        if not ok:
            return Verdict(False, f"no way back: {why}")
    back = _forward(topo, d, s, family, proto, established=True)
    if back.reachable is not True:
        return Verdict(back.reachable, f"replies: {back.rule}")
    rule = out.rule
    if masq:
        assert s.net is not None
        rule += f"; masqueraded to the host's address ({_name(s.net)})"
    return Verdict(True, rule, seen_as="host" if masq else None)


def _forward(
    topo: Topology, s: _Side, d: _Side, family: str, proto: str, *, established: bool
) -> Verdict:
    """One packet through the forward hook: virtnet's rules (libvirt's FWI then FWO), then the
    host's own."""
    vm_net = d.net if d.bridge else s.net if s.bridge else None
    oif, iif = d.bridge or _uplink(topo, vm_net), s.bridge or _uplink(topo, vm_net)
    state = "reply" if established else "new"
    onet = d.net if d.bridge else None
    inet_ = s.net if s.bridge else None
    accepted: str | None = None
    if onet is not None and onet.mode in MANAGED:
        mode, br = _effective_mode(onet, family), onet.bridge_name
        dev = onet.forward.dev if onet.forward else None
        if mode is not ForwardMode.ISOLATED and dev and iif != dev:
            if mode is ForwardMode.NAT and not established:
                return Verdict(False, f"{_name(onet)}: inbound guard rejects new connections "
                               f"into {br} (only ct state established,related)")
            return Verdict(False, f"{_name(onet)}: into {br} only from {dev} (forward dev), "
                           "rejected")
        if mode is ForwardMode.NAT:
            if not established:
                return Verdict(False, f"{_name(onet)}: inbound guard rejects new connections "
                               f"into {br} (only ct state established,related)")
            accepted = f"{_name(onet)}: replies into {br} accepted"
        elif mode is ForwardMode.ROUTE:
            how = "" if onet.mode is ForwardMode.ROUTE else " (IPv6 without nat ipv6='yes': routed)"
            accepted = f"{_name(onet)}{how}: forwarded into {br} ({_subnet_text(onet, family)})"
        else:
            return Verdict(False, f"{_name(onet)}: nothing forwarded into {br} (rejected)")
    if accepted is None and inet_ is not None and inet_.mode in MANAGED:
        br = inet_.bridge_name
        if inet_.mode is ForwardMode.ISOLATED:
            return Verdict(False, f"{_name(inet_)}: nothing forwarded out of {br} (rejected)")
        dev = inet_.forward.dev if inet_.forward else None
        if dev and oif != dev:
            return Verdict(False, f"{_name(inet_)}: forwarded out of {br} only via {dev} "
                           "(forward dev), rejected")
        accepted = f"{_name(inet_)}: forwarded out of {br} from {_subnet_text(inet_, family)}"
    pkt = hostfw.Packet("forward", family, proto, iif=iif, oif=oif,
                        saddr=_addr(topo, s, family), daddr=_addr(topo, d, family),
                        state="established" if established else "new")
    default = accepted or f"no virtnet rule for this {state}: forwarded (forwarding on)"
    nets = () if accepted else (onet, inet_)
    return _host_rules(topo, pkt, *nets, default_rule=default)


# -- representative addresses, for matching host rules -----------------------------------------


def _vm_addr(net: Network, family: str) -> str:
    for ip in net.ipv4 if family == "ipv4" else net.ipv6_defs:
        if ip.dhcp and ip.dhcp.ranges:
            return ip.dhcp.ranges[0].start
        return str(ip.network.network_address + 10)
    return "192.0.2.200" if family == "ipv4" else "2001:db8:ff::200"


def _addr(topo: Topology, side: _Side, family: str, peer: _Side | None = None) -> str:
    if side.ep.kind is Kind.VM:
        assert side.net is not None
        return _vm_addr(side.net, family)
    if side.ep.kind is Kind.HOST:
        if peer is not None and peer.net is not None:
            ips = peer.net.ipv4 if family == "ipv4" else peer.net.ipv6_defs
            if ips:
                return str(ipaddress.ip_interface(f"{ips[0].address}/{ips[0].prefixlen}").ip)
        return "203.0.113.1" if family == "ipv4" else "2001:db8:ff::1"
    return "203.0.113.10" if family == "ipv4" else "2001:db8:ff::10"
