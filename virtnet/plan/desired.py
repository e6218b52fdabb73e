"""The host state a set of networks needs, computed without touching anything.

For each network: its bridge (name, MAC, MTU, STP, addresses, the ``virtnet:NAME owner=ID``
alias that marks it ours: ``marks.py``), the sysctls its mode needs, and its dnsmasq files;
for all networks together, the one nftables table. Pure: the same definitions always give
the same plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from virtnet.errors import InvalidDefinition, NotSupported
from virtnet.model.network import ForwardMode, Network
from virtnet.plan.marks import alias_for, owner_id

IP_FORWARD = "net/ipv4/ip_forward"
IP6_FORWARD = "net/ipv6/conf/all/forwarding"
ENGINE_MODES = (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.ISOLATED, ForwardMode.OPEN)


@dataclass(frozen=True)
class BridgeSpec:
    network: str
    name: str
    mac: str | None
    mtu: int | None
    stp: bool
    delay: int  # seconds; the kernel raises it to 2 when STP is on
    addresses: tuple[str, ...]  # CIDR, e.g. "192.168.122.1/24", in definition order
    owner: str | None = None  # the state directory's owner id (marks.owner_id)

    @property
    def alias(self) -> str:
        return alias_for(self.network, self.owner)


@dataclass(frozen=True)
class Sysctl:
    path: str  # below /proc/sys, e.g. "net/ipv4/ip_forward"
    value: str

    def __str__(self) -> str:
        return f"{self.path.replace('/', '.')}={self.value}"


@dataclass(frozen=True)
class DnsmasqSpec:
    network: str
    conf: Path
    pidfile: Path
    leasefile: Path
    logfile: Path
    files: tuple[tuple[Path, str], ...]  # (path, content): conf, hosts file, addn-hosts


@dataclass(frozen=True)
class NetworkPlan:
    network: Network
    bridge: BridgeSpec
    sysctls: tuple[Sysctl, ...]
    dnsmasq: DnsmasqSpec | None
    firewall: bool  # False in open mode: no rules at all

    @property
    def name(self) -> str:
        return self.network.name


@dataclass(frozen=True)
class DesiredState:
    networks: tuple[NetworkPlan, ...]
    nft_script: str  # the whole virtnet table for all these networks, as one `nft -f` script


def check_supported(net: Network) -> None:
    if net.mode not in ENGINE_MODES:
        raise NotSupported(
            f"network {net.name!r}: the engine starts nat, route, isolated and open networks, "
            f"not forward mode {net.mode.value!r}",
            element="forward",
            hint="bridged and macvtap networks are handled by their own commands",
        )
    if not net.bridge_name:
        raise InvalidDefinition(
            f"network {net.name!r} has no bridge name",
            element="bridge",
            hint="give <bridge name='virbrN'/>, or define the network first so defaults are filled",
        )


def bridge_spec(net: Network, owner: str | None = None) -> BridgeSpec:
    assert net.bridge_name
    stp = True if net.bridge is None or net.bridge.stp is None else net.bridge.stp
    delay = 0 if net.bridge is None or net.bridge.delay is None else net.bridge.delay
    return BridgeSpec(
        network=net.name,
        name=net.bridge_name,
        mac=net.mac.lower() if net.mac else None,
        mtu=net.mtu,
        stp=stp,
        delay=delay,
        addresses=tuple(str(ip.interface) for ip in net.ips),
        owner=owner,
    )


def sysctls(net: Network) -> tuple[Sysctl, ...]:
    """libvirt's: forwarding on for every network with a <forward> (nat, route, open; never
    turned off again); on the bridge, IPv6 off without an IPv6 address, else on but ignoring
    router advertisements and autoconfiguration."""
    br = net.bridge_name
    out: list[Sysctl] = []
    if net.mode is not ForwardMode.ISOLATED:
        if net.ipv4:
            out.append(Sysctl(IP_FORWARD, "1"))
        if net.ipv6_defs:
            out.append(Sysctl(IP6_FORWARD, "1"))
    conf = f"net/ipv6/conf/{br}/"
    if net.ipv6_defs or net.ipv6:
        out += [Sysctl(conf + "disable_ipv6", "0"), Sysctl(conf + "accept_ra", "0"),
                Sysctl(conf + "autoconf", "0")]
    else:
        out.append(Sysctl(conf + "disable_ipv6", "1"))
    return tuple(out)


def dnsmasq_spec(net: Network, state_dir: Path) -> DnsmasqSpec | None:
    from virtnet.dnsmasq import config

    paths = config.DnsmasqPaths.for_network(state_dir, net.name)
    conf = config.render_conf(net, paths)
    if conf is None:
        return None
    return DnsmasqSpec(
        network=net.name,
        conf=paths.conf,
        pidfile=paths.pidfile,
        leasefile=paths.leasefile,
        logfile=paths.logfile,
        files=(
            (paths.conf, conf),
            (paths.hostsfile, config.render_hostsfile(net)),
            (paths.addnhosts, config.render_addnhosts(net)),
        ),
    )


def plan_network(net: Network, state_dir: Path) -> NetworkPlan:
    check_supported(net)
    return NetworkPlan(
        network=net,
        bridge=bridge_spec(net, owner_id(state_dir)),
        sysctls=sysctls(net),
        dnsmasq=dnsmasq_spec(net, state_dir) if net.needs_dnsmasq else None,
        firewall=net.mode is not ForwardMode.OPEN,
    )


def desired_state(
    nets: Sequence[Network], state_dir: Path, *, table_for: Sequence[Network] | None = None
) -> DesiredState:
    """Everything NETS need together; raises if two of them claim the same bridge.
    The nftables table covers TABLE_FOR (default NETS): all networks that run together."""
    from virtnet import firewall

    plans = tuple(plan_network(n, state_dir) for n in nets)
    seen: dict[str, str] = {}
    for p in plans:
        other = seen.setdefault(p.bridge.name, p.name)
        if other != p.name:
            raise InvalidDefinition(
                f"networks {other!r} and {p.name!r} both use bridge {p.bridge.name!r}",
                element="bridge",
                hint="give each network its own <bridge name=...>",
            )
    return DesiredState(
        networks=plans,
        nft_script=firewall.render_table(list(nets if table_for is None else table_for)),
    )
