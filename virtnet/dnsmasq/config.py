"""The dnsmasq configuration for one network, as libvirt 9.0's networkDnsmasqConfContents writes it.

Directive for directive and in the same order as libvirt (``src/network/bridge_driver.c``), so a
definition behaves the same under virtnet as under libvirt. Differences, all about running the
process rather than what it serves:

- the paths (pid file, hosts files, lease file, log) point into virtnet's state directory;
- ``dhcp-leasefile=`` instead of libvirt's ``--leasefile-ro --dhcp-script=leaseshelper``: dnsmasq
  keeps its own lease file there and the engine reads leases from it;
- ``log-facility=`` sends dnsmasq's log to a file next to the others, for diagnosis.

Every value that comes from a definition is checked once more here before it is written: a
newline or other control character would add a directive of the user's choosing, so it is
refused even if validation was skipped.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

from virtnet.errors import HostileInput, InvalidDefinition
from virtnet.model.filename import escape_name
from virtnet.model.network import IPDef, Lease, Network

# A path dnsmasq reads from its config: no whitespace, quotes, comment or list characters.
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./%+:@=~-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class DnsmasqPaths:
    """Where one network's dnsmasq files live: ``STATE/dnsmasq/NAME.*``."""

    conf: Path
    hostsfile: Path
    addnhosts: Path
    pidfile: Path
    leasefile: Path
    logfile: Path

    @classmethod
    def for_network(cls, state_dir: Path, name: str) -> DnsmasqPaths:
        base = Path(state_dir) / "dnsmasq"
        if not _SAFE_PATH.fullmatch(str(base)):
            raise InvalidDefinition(
                f"state directory {str(state_dir)!r} cannot be written into a dnsmasq "
                "configuration (it has spaces, quotes, commas, '#' or control characters)",
                element="--state-dir",
                hint="use a state directory path made of letters, digits and / . _ - only",
            )
        stem = escape_name(name)
        return cls(
            conf=base / f"{stem}.conf",
            hostsfile=base / f"{stem}.hostsfile",
            addnhosts=base / f"{stem}.addnhosts",
            pidfile=base / f"{stem}.pid",
            leasefile=base / f"{stem}.leases",
            logfile=base / f"{stem}.log",
        )


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _definition_errors(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Addresses and prefixes are checked by validation; unvalidated ones fail as virtnet errors."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:  # ipaddress's errors: a bad address, netmask or prefix
            raise InvalidDefinition(
                f"cannot render dnsmasq files: {exc}",
                element="ip",
                hint="run 'virtnet validate' on the definition and fix what it reports",
            ) from None

    return wrapper


def _safe(value: str, element: str) -> str:
    """The value itself, or HostileInput if it could end the directive and start another."""
    if _CONTROL.search(value):
        raise HostileInput(
            f"value {value!r} contains a newline or control character, which would inject "
            "lines into the dnsmasq configuration",
            element=element,
            hint="remove the control characters from the value",
        )
    return value


def _addr(text: str, element: str = "address") -> str:
    """An address as libvirt's virSocketAddrFormat prints it (canonical, compressed IPv6)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidDefinition(
            f"{text!r} is not an IP address", element=element, hint="give a numeric address"
        ) from None


def lease_time(lease: Lease | None) -> str | None:
    """libvirt's networkBuildDnsmasqLeaseTime: "infinite" or N plus the unit's first letter."""
    if lease is None:
        return None
    if lease.expiry == 0:
        return "infinite"
    return f"{lease.expiry}{(lease.unit or 'minutes')[0]}"


def ptr_domain(ip: IPDef) -> str:
    """The reverse-lookup zone of an <ip>'s subnet (libvirt's virSocketAddrPTRDomain)."""
    net = ip.network
    step = 8 if net.version == 4 else 4
    if net.prefixlen % step:
        fam = "IPv4" if net.version == 4 else "IPv6"
        raise InvalidDefinition(
            f"PTR domain for {fam} network with prefix {net.prefixlen} cannot be automatically "
            "created",
            element=f"ip address='{ip.address}' localPtr",
            hint=f"use a prefix that is a multiple of {step}, or remove localPtr='yes'",
        )
    labels = net.network_address.reverse_pointer.split(".")
    # reverse_pointer names the whole address; keep only the labels of the network part.
    suffix = 2  # "in-addr.arpa" / "ip6.arpa"
    host_labels = (net.max_prefixlen - net.prefixlen) // step
    return ".".join(labels[host_labels : len(labels) - suffix] + labels[-suffix:])


def _dhcp_defs(net: Network) -> tuple[IPDef | None, IPDef | None]:
    """The <ip> serving DHCP for each family; libvirt allows only one per family."""
    v4: IPDef | None = None
    v6: IPDef | None = None
    for ip in net.ips:
        if not (ip.dhcp and (ip.dhcp.ranges or ip.dhcp.hosts)):
            continue
        fam = "IPv6" if ip.is_ipv6 else "IPv4"
        if (v6 if ip.is_ipv6 else v4) is not None:
            raise InvalidDefinition(
                f"For {fam}, multiple DHCP definitions cannot be specified",
                element=f"ip address='{ip.address}' dhcp",
                hint=f"keep <dhcp> in only one {fam} <ip> of the network",
            )
        if ip.is_ipv6:
            v6 = ip
        else:
            v4 = ip
    return v4, v6


def _netmask(prefix: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)


def needs_dnsmasq(net: Network) -> bool:
    """libvirt's networkStartDhcpDaemon (the rule lives on the model, Network.needs_dnsmasq)."""
    return net.needs_dnsmasq


@_definition_errors
def render_conf(net: Network, paths: DnsmasqPaths) -> str | None:
    """The dnsmasq configuration file for ``net``, or None when the network runs no dnsmasq."""
    if not needs_dnsmasq(net):
        return None
    if not net.bridge_name:
        raise InvalidDefinition(
            "the network has no bridge name, which dnsmasq needs for interface=",
            element="bridge",
            hint="fill in defaults (fill_defaults) or give <bridge name='...'/>",
        )
    dns = net.dns
    want_dns = net.dns_enabled
    lines: list[str] = [
        "##WARNING:  THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE",
        "##OVERWRITTEN AND LOST.  Changes to this configuration should be made using:",
        "##    virtnet net-edit (or the network's definition file)",
        "##",
        "## dnsmasq conf file created by virtnet",
        "strict-order",
    ]
    if not want_dns:
        lines.append("port=0")

    if want_dns and dns and dns.forwarders:
        no_resolv = False
        for fwd in dns.forwarders:
            value = "server="
            if fwd.domain:
                value += f"/{_safe(fwd.domain, 'dns forwarder domain')}/"
            if fwd.addr:
                value += _addr(fwd.addr)
                if fwd.port:
                    value += f"#{fwd.port}"  # dnsmasq's ADDR#PORT (libvirt >= 9.x forwarders)
                if not fwd.domain:
                    no_resolv = True
            else:
                value += "#"  # "don't forward requests for this domain"
            lines.append(value)
        if no_resolv:
            lines.append("no-resolv")

    if net.domain:
        domain = _safe(net.domain.name, "domain name")
        if net.domain.local_only:
            lines.append(f"local=/{domain}/")
        lines += [f"domain={domain}", "expand-hosts"]

    if want_dns:
        lines += [f"local=/{ptr_domain(ip)}/" for ip in net.ips if ip.local_ptr]

    if want_dns and dns and dns.forward_plain_names is False:
        lines += ["domain-needed", "local=//"]

    lines += [
        f"pid-file={paths.pidfile}",
        "except-interface=lo",
        "bind-dynamic",
        f"interface={_safe(net.bridge_name, 'bridge name')}",
    ]

    if net.mode.value == "isolated":
        # No default route and no upstream DNS: nothing may leave an isolated network.
        lines += ["dhcp-option=3", "no-resolv", "ra-param=*,0,0"]

    if want_dns and dns:
        for txt in dns.txts:
            lines.append(
                f"txt-record={_safe(txt.name, 'dns txt name')},{_safe(txt.value, 'dns txt value')}"
            )
        for srv in dns.srvs:
            service = _safe(srv.service, "dns srv service")
            value = f"srv-host=_{service}._{_safe(srv.protocol, 'dns srv protocol')}"
            if srv.domain:
                value += f".{_safe(srv.domain, 'dns srv domain')}"
            if srv.target and srv.target != ".":
                value += f",{_safe(srv.target, 'dns srv target')}"
                port, prio, weight = srv.port or 0, srv.priority or 0, srv.weight or 0
                if port or prio or weight:
                    value += f",{port or 1}"
                if prio or weight:
                    value += f",{prio}"
                if weight:
                    value += f",{weight}"
            lines.append(value)

    # libvirt writes TFTP while it looks for the DHCP <ip> of each family, for every IPv4 <ip>.
    tftp_on = False
    for ip in net.ipv4:
        if ip.tftp_root:
            if not tftp_on:
                lines.append("enable-tftp")
                tftp_on = True
            lines.append(f"tftp-root={_safe(ip.tftp_root, 'ip tftp root')}")

    v4, v6 = _dhcp_defs(net)
    nbleases = 0
    for ipdef in (v4, v6):
        if ipdef is None or ipdef.dhcp is None:
            continue
        prefix = ipdef.prefixlen
        for rng in ipdef.dhcp.ranges:
            mask = str(prefix) if ipdef.is_ipv6 else _netmask(prefix)
            value = f"dhcp-range={_addr(rng.start)},{_addr(rng.end)},{mask}"
            lt = lease_time(rng.lease)
            if lt:
                value += f",{lt}"
            lines.append(value)
            nbleases += rng.size()
        if not ipdef.dhcp.ranges and ipdef.dhcp.hosts:
            # Static-only DHCP: a "static" range switches dnsmasq's DHCP service on.
            value = f"dhcp-range={_addr(ipdef.address)},static"
            if ipdef.is_ipv6:
                value += f",{prefix}"
            lines.append(value)
        if not ipdef.is_ipv6:
            lines += ["dhcp-no-override", "dhcp-authoritative"]
            bootp = ipdef.dhcp.bootp
            if bootp:
                boot = _safe(bootp.file, "ip dhcp bootp file")
                if bootp.server:
                    boot += f",,{_addr(bootp.server)}"
                lines.append(f"dhcp-boot={boot}")

    if nbleases > 0:
        lines.append(f"dhcp-lease-max={nbleases}")
    if v4 or v6:
        lines += [f"dhcp-hostsfile={paths.hostsfile}", f"dhcp-leasefile={paths.leasefile}"]
    if want_dns:
        lines.append(f"addn-hosts={paths.addnhosts}")
    if net.mtu:
        lines.append(f"dhcp-option=option:mtu,{net.mtu}")

    if v6:
        lines.append("enable-ra")
    else:
        lines += [f"dhcp-range={_addr(ip.address)},ra-only" for ip in net.ipv6_defs]

    lines += [_safe(opt, "dnsmasq:option value") for opt in net.dnsmasq_options]
    lines.append(f"log-facility={paths.logfile}")
    return "\n".join(lines) + "\n"


@_definition_errors
def hosts_lines(net: Network) -> list[str]:
    """dhcp-host lines (libvirt's hostsfileAdd), IPv4 DHCP <ip> first, then IPv6."""
    out: list[str] = []
    for ipdef in _dhcp_defs(net):
        if ipdef is None or ipdef.dhcp is None:
            continue
        for host in ipdef.dhcp.hosts:
            if not host.ip:
                continue
            ip = _addr(host.ip)
            name = _safe(host.name, "ip dhcp host name") if host.name else None
            if ipdef.is_ipv6:
                ident = _safe(host.id, "ip dhcp host id") if host.id else None
                head = ",".join(x for x in (f"id:{ident}" if ident else None, name) if x)
                line = f"{head},[{ip}]"
            else:
                mac = _safe(host.mac, "ip dhcp host mac") if host.mac else None
                if name and mac:
                    line = f"{mac},{ip},{name}"
                elif name:
                    line = f"{name},{ip}"
                else:
                    line = f"{mac},{ip}"
            lt = lease_time(host.lease)
            if lt:
                line += f",{lt}"
            out.append(line)
    return out


@_definition_errors
def render_hostsfile(net: Network) -> str:
    """The dhcp-hostsfile: one static host a line (empty when there are none)."""
    return "".join(f"{line}\n" for line in hosts_lines(net))


@_definition_errors
def render_addnhosts(net: Network) -> str:
    """The addn-hosts file from <dns><host>: "IP<TAB>name<TAB>..." with names merged per IP."""
    by_ip: dict[str, list[str]] = {}
    if net.dns:
        for host in net.dns.hosts:
            ip = _addr(host.ip)
            names = by_ip.setdefault(ip, [])
            names += [_safe(n, "dns host hostname") for n in host.hostnames]
    return "".join(
        ip + "\t" + "".join(f"{n}\t" for n in names) + "\n" for ip, names in by_ip.items()
    )
