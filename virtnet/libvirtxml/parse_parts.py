"""Parsers for the pieces of network XML shared by several parents (libvirt's netdev_*_conf.c).

<bandwidth>, <vlan>, <virtualport> appear under <network> and under <portgroup>;
each follows libvirt's own parser: same defaults, same refusals.
"""

from __future__ import annotations

from lxml import etree

from virtnet.libvirtxml.values import attr, c_uint, fail, uint, uuid
from virtnet.model.network import Bandwidth, BandwidthRate, VirtualPort, Vlan, VlanTag

ULL_MAX = 2**64 - 1
VPORT_TYPES = ("802.1Qbg", "802.1Qbh", "openvswitch", "midonet")
PROFILEID_MAX = 39  # libvirt keeps profileid in a 40-byte buffer

# Which <parameters> attributes each virtualport type may carry (libvirt's CheckNoExtras).
_VPORT_ALLOWED: dict[str | None, frozenset[str]] = {
    "802.1Qbg": frozenset({"managerid", "typeid", "typeidversion", "instanceid"}),
    "802.1Qbh": frozenset({"profileid"}),
    "openvswitch": frozenset({"profileid", "interfaceid"}),
    "midonet": frozenset({"interfaceid"}),
    None: frozenset(
        {"managerid", "typeid", "typeidversion", "instanceid", "interfaceid", "profileid"}
    ),
}
VPORT_PARAM_ORDER = (
    "managerid",
    "typeid",
    "typeidversion",
    "instanceid",
    "interfaceid",
    "profileid",
)


def children(el: etree._Element, name: str) -> list[etree._Element]:
    """Direct child elements called ``name`` in no namespace (what libvirt's ``./name`` finds)."""
    return list(el.iterchildren(tag=name))


def child(el: etree._Element | None, name: str) -> etree._Element | None:
    """The first such child, or None."""
    if el is None:
        return None
    return next(el.iterchildren(tag=name), None)


def _rate(el: etree._Element) -> BandwidthRate:
    average = uint(el, "average", maximum=ULL_MAX)
    peak = uint(el, "peak", maximum=ULL_MAX)
    burst = uint(el, "burst", maximum=ULL_MAX)
    floor = uint(el, "floor", maximum=ULL_MAX)
    if average is None and floor is None:
        fail(el, "missing mandatory average or floor attribute", "add average='KIB_PER_SEC'")
    if (peak is not None or burst is not None) and average is None:
        fail(el, "'peak' and 'burst' require the 'average' attribute", "add average='KIB_PER_SEC'")
    return BandwidthRate(average=average, peak=peak, burst=burst, floor=floor)


def parse_bandwidth(el: etree._Element, *, allow_floor: bool = False) -> Bandwidth | None:
    """``<bandwidth>``: at most one <inbound> and one <outbound>; floor only where supported."""
    if attr(el, "classID") is not None:
        fail(
            el,
            "classID attribute not supported on <bandwidth> in this usage context",
            "remove classID: libvirt assigns it at run time",
        )
    inbound = children(el, "inbound")
    outbound = children(el, "outbound")
    if len(inbound) > 1:
        fail(inbound[1], "only one <inbound> element is allowed", "merge the <inbound> elements")
    if len(outbound) > 1:
        fail(outbound[1], "only one <outbound> element is allowed", "merge the <outbound> elements")
    rate_in = _rate(inbound[0]) if inbound else None
    rate_out = _rate(outbound[0]) if outbound else None
    if rate_in is not None and rate_in.floor and not allow_floor:
        fail(
            inbound[0],
            "the floor attribute is not supported here",
            "floor is set per VM interface, not on the network; remove it",
        )
    if rate_out is not None and rate_out.floor:
        fail(outbound[0], "'floor' is allowed only in <inbound>", "remove floor from <outbound>")
    if rate_in is None and rate_out is None:
        return None
    return Bandwidth(inbound=rate_in, outbound=rate_out)


def parse_vlan(el: etree._Element) -> Vlan:
    """``<vlan [trunk='yes']><tag id='N' [nativeMode=...]/>...</vlan>``."""
    tag_els = children(el, "tag")
    if not tag_els:
        fail(el, "each <vlan> must have at least one <tag id='N'/>", "add <tag id='N'/>")
    tags: list[VlanTag] = []
    native_seen = False
    for tag_el in tag_els:
        if attr(tag_el, "id") is None:
            fail(tag_el, "missing vlan tag id attribute", "add id='N' (0-4095)")
        tag_id = uint(tag_el, "id", maximum=ULL_MAX, what="vlan tag id")
        assert tag_id is not None
        if tag_id > 4095:
            fail(
                tag_el, f"vlan tag id {tag_id} too large (maximum 4095)", "use an id from 0 to 4095"
            )
        native = attr(tag_el, "nativeMode")
        if native is not None:
            if native_seen:
                fail(tag_el, "duplicate native vlan setting", "give nativeMode on one tag only")
            if native not in ("tagged", "untagged"):
                fail(
                    tag_el,
                    f"invalid nativeMode='{native}'",
                    "use nativeMode='tagged' or 'untagged'",
                )
            native_seen = True
        tags.append(VlanTag(id=tag_id, native_mode=native))
    trunk: bool | None = True if len(tags) > 1 else None
    trunk_attr = attr(el, "trunk")
    if trunk_attr is not None:
        if trunk_attr.lower() == "yes":
            trunk = True
        else:
            if len(tags) > 1:
                fail(el, f"trunk='{trunk_attr}' with more than one vlan tag", "set trunk='yes'")
            if native_seen:
                fail(el, "trunk='no' is not allowed with a native vlan id", "set trunk='yes'")
            if trunk_attr.lower() != "no":
                fail(el, f"invalid trunk='{trunk_attr}'", "use trunk='yes' or 'no'")
            trunk = None  # libvirt accepts and discards trunk='no' with one tag
    return Vlan(tags=tuple(tags), trunk=trunk)


def parse_virtualport(el: etree._Element, *, require_type: bool) -> VirtualPort:
    """``<virtualport type=...><parameters/></virtualport>``, values as libvirt prints them."""
    vtype = attr(el, "type")
    if vtype is not None and vtype not in VPORT_TYPES:
        fail(el, f"unknown virtualport type '{vtype}'", f"use one of: {', '.join(VPORT_TYPES)}")
    if vtype is None and require_type:
        fail(el, "missing required virtualport type", f"add type= one of: {', '.join(VPORT_TYPES)}")
    values: dict[str, str] = {}
    params = next((c for c in el if isinstance(c.tag, str) and c.tag == "parameters"), None)
    if params is not None:
        for name, maximum in (("managerid", 0xFF), ("typeid", 0xFFFFFF), ("typeidversion", 0xFF)):
            number = c_uint(params, name, maximum=maximum)
            if number is not None:
                values[name] = str(number)
        for name in ("instanceid", "interfaceid"):
            raw = attr(params, name)
            if raw is not None:
                values[name] = uuid(params, raw)
        profile = attr(params, "profileid")
        if profile is not None:
            if len(profile.encode()) > PROFILEID_MAX:
                fail(params, "profileid parameter too long", f"use at most {PROFILEID_MAX} bytes")
            if profile:
                values["profileid"] = profile
        allowed = _VPORT_ALLOWED[vtype]
        for name in VPORT_PARAM_ORDER:
            if name in values and name not in allowed:
                fail(
                    params,
                    f"attribute {name} not allowed for <virtualport type='{vtype}'>",
                    f"remove {name}",
                )
    ordered = tuple((name, values[name]) for name in VPORT_PARAM_ORDER if name in values)
    return VirtualPort(type=vtype, parameters=ordered)
