"""Network -> libvirt network XML, as ``virsh net-dumpxml`` prints it.

Mirrors virNetworkDefFormatBuf (libvirt 9.0): element order, attribute order, single quotes,
two-space indentation, and the defaults libvirt writes out (``mode='nat'`` for a bare
<forward>, ``stp``/``delay`` for bridge-owning modes, ``<interface>`` for ``forward dev``).
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from virtnet.errors import InvalidDefinition
from virtnet.libvirtxml.parse import DNSMASQ_NS
from virtnet.libvirtxml.parse_parts import VPORT_PARAM_ORDER
from virtnet.model.network import (
    DNS,
    Bandwidth,
    BandwidthRate,
    Forward,
    ForwardMode,
    IPDef,
    Lease,
    Network,
    PortGroup,
    Route,
    VirtualPort,
    Vlan,
)

_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;"}
# In attributes a raw line break or tab would be normalised to a space by any reader.
_ATTR_ESCAPES = {**_TEXT_ESCAPES, "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def esc(value: object) -> str:
    """Escape for an attribute value in single quotes."""
    return "".join(_ATTR_ESCAPES.get(c, c) for c in str(value))


def esc_text(value: object) -> str:
    """Escape for element text (line breaks kept, as libvirt writes them)."""
    return "".join(_TEXT_ESCAPES.get(c, c) for c in str(value))


def attrs(*pairs: tuple[str, object | None]) -> str:
    """`` a='1' b='2'`` for the pairs whose value is not None."""
    return "".join(f" {name}='{esc(value)}'" for name, value in pairs if value is not None)


def yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


class _Out:
    """Lines with libvirt's auto-indent (two spaces per level)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.level = 0

    def add(self, line: str) -> None:
        self.lines.append("  " * self.level + line)

    def open(self, line: str) -> None:
        self.add(line)
        self.level += 1

    def close(self, line: str) -> None:
        self.level -= 1
        self.add(line)


def forward_ifs(fwd: Forward) -> tuple[str, ...]:
    """The forward interface pool as libvirt holds it: ``dev`` first, then the <interface>s."""
    if fwd.dev is None:
        return fwd.interfaces
    rest = fwd.interfaces[1:] if fwd.interfaces[:1] == (fwd.dev,) else fwd.interfaces
    return (fwd.dev, *(i for i in rest if i != fwd.dev))


def format_network(net: Network, *, inactive: bool = False) -> str:
    """libvirt's XML for ``net``; ``inactive`` formats the persistent (not running) definition."""
    out = _Out()
    root_attrs = ""
    if net.dnsmasq_options:
        root_attrs += f" xmlns:dnsmasq='{DNSMASQ_NS}'"
    if net.ipv6:
        root_attrs += " ipv6='yes'"
    root_attrs += attrs(("trustGuestRxFilters", yes_no(net.trust_guest_rx_filters)))
    out.open(f"<network{root_attrs}>")
    out.add(f"<name>{esc_text(net.name)}</name>")
    if net.uuid:
        out.add(f"<uuid>{esc_text(net.uuid)}</uuid>")
    if net.title is not None:
        out.add(f"<title>{esc_text(net.title)}</title>")
    if net.description is not None:
        out.add(f"<description>{esc_text(net.description)}</description>")
    if net.metadata:
        _check_metadata(net.metadata)
        out.open("<metadata>")
        for line in net.metadata.splitlines():
            out.add(line)
        out.close("</metadata>")
    if net.forward is not None:
        _forward(out, net.forward, inactive=inactive)
    _bridge(out, net)
    if net.mtu:
        out.add(f"<mtu size='{net.mtu}'/>")
    if net.mac:
        out.add(f"<mac address='{esc(net.mac)}'/>")
    if net.domain is not None:
        d = net.domain
        out.add(
            "<domain"
            + attrs(
                ("name", d.name),
                ("localOnly", yes_no(d.local_only)),
                ("register", yes_no(d.register)),
            )
            + "/>"
        )
    if net.dns is not None:
        _dns(out, net.dns)
    if net.vlan is not None:
        _vlan(out, net.vlan)
    if net.bandwidth is not None:
        _bandwidth(out, net.bandwidth)
    if net.port_isolated is not None:
        out.add(f"<port isolated='{yes_no(net.port_isolated)}'/>")
    for ip in net.ips:
        _ip(out, ip)
    for route in net.routes:
        _route(out, route)
    if net.virtualport is not None:
        _virtualport(out, net.virtualport)
    for pg in net.portgroups:
        _portgroup(out, pg)
    if net.dnsmasq_options:
        out.open("<dnsmasq:options>")
        for opt in net.dnsmasq_options:
            out.add(f"<dnsmasq:option value='{esc(opt)}'/>")
        out.close("</dnsmasq:options>")
    out.close("</network>")
    return "\n".join(out.lines) + "\n"


def _forward(out: _Out, fwd: Forward, *, inactive: bool) -> None:
    ifs = forward_ifs(fwd)
    nat = fwd.nat
    nat_addr = bool(nat and nat.addresses)
    nat_port = bool(nat and (nat.port_start or nat.port_end))
    nat_ipv6 = nat.ipv6 if nat else None
    dev = ifs[0] if ifs and not fwd.pfs else None
    head = "<forward" + attrs(("dev", dev), ("mode", fwd.mode.value))
    if fwd.mode is ForwardMode.HOSTDEV:
        head += f" managed='{'yes' if fwd.managed else 'no'}'"
    short = not (
        ifs
        or fwd.addresses
        or fwd.pfs
        or nat_addr
        or nat_port
        or fwd.driver_name
        or nat_ipv6 is not None
    )
    if short:
        out.add(head + "/>")
        return
    out.open(head + ">")
    if fwd.driver_name:
        out.add(f"<driver name='{esc(fwd.driver_name)}'/>")
    if (
        fwd.mode is ForwardMode.NAT
        and nat is not None
        and (nat_addr or nat_port or nat_ipv6 is not None)
    ):
        nat_head = "<nat" + attrs(("ipv6", yes_no(nat_ipv6)))
        if not (nat_addr or nat_port):
            out.add(nat_head + "/>")
        else:
            out.open(nat_head + ">")
            for rng in nat.addresses[:1]:
                out.add(f"<address start='{esc(rng.start)}' end='{esc(rng.end)}'/>")
            if nat_port:
                out.add(
                    f"<port start='{nat.port_start or 0}'"
                    + (f" end='{nat.port_end}'" if nat.port_end else "")
                    + "/>"
                )
            out.close("</nat>")
    if fwd.pfs:
        out.add(f"<pf dev='{esc(fwd.pfs[0])}'/>")
    if not fwd.pfs or not inactive:
        for dev_name in ifs:
            out.add(f"<interface dev='{esc(dev_name)}'/>")
        for a in fwd.addresses:
            out.add(
                "<address"
                + attrs(
                    ("type", a.type),
                    ("domain", a.domain),
                    ("bus", a.bus),
                    ("slot", a.slot),
                    ("function", a.function),
                )
                + "/>"
            )
    out.close("</forward>")


def _bridge(out: _Out, net: Network) -> None:
    br = net.bridge
    has_bridge = net.mode.has_own_bridge
    name = br.name if br else None
    mtm = br.mac_table_manager if br else None
    if not (has_bridge or name or mtm):
        return
    line = "<bridge" + attrs(("name", name), ("zone", br.zone if br else None))
    if has_bridge:
        stp = "off" if br is not None and br.stp is False else "on"
        delay = (br.delay if br is not None else None) or 0
        line += f" stp='{stp}' delay='{delay}'"
    line += attrs(("macTableManager", mtm))
    out.add(line + "/>")


def _dns(out: _Out, dns: DNS) -> None:
    has_children = bool(dns.forwarders or dns.hosts or dns.srvs or dns.txts)
    if not (dns.enable is not None or dns.forward_plain_names is not None or has_children):
        return
    head = "<dns" + attrs(
        ("enable", yes_no(dns.enable)), ("forwardPlainNames", yes_no(dns.forward_plain_names))
    )
    if not has_children:
        out.add(head + "/>")
        return
    out.open(head + ">")
    for f in dns.forwarders:
        port = f.port if f.addr is not None and f.port else None
        out.add("<forwarder" + attrs(("domain", f.domain), ("addr", f.addr), ("port", port)) + "/>")
    for t in dns.txts:
        out.add(f"<txt name='{esc(t.name)}' value='{esc(t.value)}'/>")
    for s in dns.srvs:
        out.add(
            "<srv"
            + attrs(
                ("service", s.service),
                ("protocol", s.protocol),
                ("domain", s.domain),
                ("target", s.target),
                ("port", s.port or None),
                ("priority", s.priority or None),
                ("weight", s.weight or None),
            )
            + "/>"
        )
    for h in dns.hosts:
        out.open(f"<host ip='{esc(h.ip)}'>")
        for hostname in h.hostnames:
            out.add(f"<hostname>{esc_text(hostname)}</hostname>")
        out.close("</host>")
    out.close("</dns>")


def _lease_line(lease: Lease) -> str:
    if not lease.expiry:
        return "<lease expiry='0'/>"
    return f"<lease expiry='{lease.expiry}' unit='{lease.unit or 'minutes'}'/>"


def _element(out: _Out, head: str, name: str, inner: Iterable[str]) -> None:
    lines = list(inner)
    if not lines:
        out.add(head + "/>")
        return
    out.open(head + ">")
    for line in lines:
        out.add(line)
    out.close(f"</{name}>")


def _ip(out: _Out, ip: IPDef) -> None:
    out.open(
        "<ip"
        + attrs(
            ("family", ip.family),
            ("address", ip.address),
            ("netmask", ip.netmask),
            ("prefix", ip.prefix or None),
            ("localPtr", yes_no(ip.local_ptr)),
        )
        + ">"
    )
    if ip.tftp_root is not None:
        out.add(f"<tftp root='{esc(ip.tftp_root)}'/>")
    dhcp = ip.dhcp
    if dhcp is not None and (dhcp.ranges or dhcp.hosts):
        out.open("<dhcp>")
        for r in dhcp.ranges:
            head = f"<range start='{esc(r.start)}' end='{esc(r.end)}'"
            _element(out, head, "range", [_lease_line(r.lease)] if r.lease else [])
        for h in dhcp.hosts:
            head = "<host" + attrs(("mac", h.mac), ("id", h.id), ("name", h.name), ("ip", h.ip))
            _element(out, head, "host", [_lease_line(h.lease)] if h.lease else [])
        if dhcp.bootp is not None:
            out.add(
                "<bootp" + attrs(("file", dhcp.bootp.file), ("server", dhcp.bootp.server)) + "/>"
            )
        out.close("</dhcp>")
    out.close("</ip>")


def _route(out: _Out, r: Route) -> None:
    out.add(
        "<route"
        + attrs(
            ("family", r.family),
            ("address", r.address),
            ("netmask", r.netmask),
            ("prefix", r.prefix),
            ("gateway", r.gateway),
            ("metric", r.metric or None),
        )
        + "/>"
    )


def _vlan(out: _Out, vlan: Vlan) -> None:
    if not vlan.tags:
        return
    native = next((t for t in vlan.tags if t.native_mode), None)
    out.open("<vlan" + (" trunk='yes'" if vlan.trunk else "") + ">")
    for tag in vlan.tags:
        if native is not None and tag.id == native.id:
            out.add(f"<tag id='{tag.id}' nativeMode='{esc(native.native_mode)}'/>")
        else:
            out.add(f"<tag id='{tag.id}'/>")
    out.close("</vlan>")


def _rate(out: _Out, rate: BandwidthRate | None, name: str) -> None:
    if rate is None or not (rate.average or rate.floor):
        return
    out.add(
        f"<{name}"
        + attrs(
            ("average", rate.average or None),
            ("peak", rate.peak or None),
            ("floor", rate.floor or None),
            ("burst", rate.burst or None),
        )
        + "/>"
    )


def _bandwidth(out: _Out, bw: Bandwidth) -> None:
    out.open("<bandwidth>")
    _rate(out, bw.inbound, "inbound")
    _rate(out, bw.outbound, "outbound")
    out.close("</bandwidth>")


def _virtualport(out: _Out, vp: VirtualPort) -> None:
    head = "<virtualport" + attrs(("type", vp.type))
    if not vp.parameters:
        if vp.type is not None:
            out.add(head + "/>")
        return
    out.open(head + ">")
    params = sorted(vp.parameters, key=lambda kv: _VPORT_RANK.get(kv[0], len(_VPORT_RANK)))
    out.add("<parameters" + attrs(*params) + "/>")
    out.close("</virtualport>")


_VPORT_RANK = {name: i for i, name in enumerate(VPORT_PARAM_ORDER)}


def _check_metadata(metadata: str) -> None:
    """Network.metadata must be well-formed XML elements, or the output would not be XML."""
    try:
        etree.fromstring(
            f"<metadata>{metadata}</metadata>".encode(),
            parser=etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
        )
    except etree.XMLSyntaxError as exc:
        raise InvalidDefinition(
            f"metadata is not well-formed XML: {exc}",
            element="network/metadata",
            hint="give <metadata> children as XML elements with their own namespace",
        ) from None


def _portgroup(out: _Out, pg: PortGroup) -> None:
    out.open(
        "<portgroup"
        + attrs(
            ("name", pg.name),
            ("default", "yes" if pg.default else None),
            ("trustGuestRxFilters", yes_no(pg.trust_guest_rx_filters)),
        )
        + ">"
    )
    if pg.vlan is not None:
        _vlan(out, pg.vlan)
    if pg.virtualport is not None:
        _virtualport(out, pg.virtualport)
    if pg.bandwidth is not None:
        _bandwidth(out, pg.bandwidth)
    out.close("</portgroup>")
