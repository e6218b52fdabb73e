"""Typed reads of XML attributes, each failure a clear InvalidDefinition naming the element.

libvirt's value syntax: yes/no tristates, unsigned decimal integers, MAC addresses of six
hex groups, UUIDs of 32 hex digits (dashes allowed), numeric IPv4/IPv6 addresses.
Normalised values are what libvirt prints back (lower-case MAC, dashed UUID, canonical IP).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import NoReturn

from lxml import etree

from virtnet.errors import InvalidDefinition

_MAC = re.compile(r"^([0-9a-fA-F]{1,2})(?::([0-9a-fA-F]{1,2})){5}$")
_UINT = re.compile(r"^[0-9]+$")


def local_name(el: etree._Element) -> str:
    return etree.QName(el).localname


def path(el: etree._Element) -> str:
    """``network/ip[2]/dhcp/range``: the element's place, indexed where siblings share its name."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        name = local_name(node)
        if node.prefix:
            name = f"{node.prefix}:{name}"
        parent = node.getparent()
        if parent is not None:
            same = [s for s in parent if isinstance(s.tag, str) and s.tag == node.tag]
            if len(same) > 1:
                name = f"{name}[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/".join(reversed(parts))


def fail(el: etree._Element, message: str, hint: str | None = None) -> NoReturn:
    raise InvalidDefinition(message, element=path(el), hint=hint)


def attr(el: etree._Element | None, name: str) -> str | None:
    if el is None:
        return None
    value = el.get(name)
    return None if value is None else str(value)


def xattr(el: etree._Element | None, name: str) -> str | None:
    """An attribute read the way libvirt's XPath ``string(./@name)`` reads it: empty is absent."""
    return attr(el, name) or None


def text(el: etree._Element | None) -> str | None:
    """XPath string() of an element: all descendant text; None when empty (as libvirt)."""
    if el is None:
        return None
    value = "".join(str(t) for t in el.itertext())
    return value or None


def tristate(el: etree._Element | None, name: str) -> bool | None:
    """A yes/no attribute: None when absent."""
    value = attr(el, name)
    if value is None:
        return None
    if value == "yes":
        return True
    if value == "no":
        return False
    assert el is not None
    fail(el, f"attribute {name}='{value}' must be 'yes' or 'no'", f"set {name}='yes' or 'no'")


def uint(
    el: etree._Element | None,
    name: str,
    *,
    maximum: int = 2**32 - 1,
    minimum: int = 0,
    what: str | None = None,
    blank_absent: bool = False,
) -> int | None:
    """An unsigned decimal attribute within [minimum, maximum]; None when absent.

    ``blank_absent``: an empty value counts as absent (libvirt's XPath number reads).
    """
    value = xattr(el, name) if blank_absent else attr(el, name)
    if value is None:
        return None
    assert el is not None
    label = what or f"attribute {name}"
    stripped = value.strip()
    if not _UINT.match(stripped):
        fail(
            el, f"{label}='{value}' is not an unsigned integer", f"give {name} as a decimal number"
        )
    number = int(stripped)
    if number < minimum or number > maximum:
        fail(
            el, f"{label}='{value}' is out of range", f"give {name} between {minimum} and {maximum}"
        )
    return number


def c_uint(el: etree._Element, name: str, *, maximum: int) -> int | None:
    """An unsigned integer in C strtoul base-0 syntax (0x.. hex, 0.. octal), as libvirt reads it."""
    value = attr(el, name)
    if value is None:
        return None
    s = value.strip().lower()
    try:
        if s.startswith("0x"):
            number = int(s[2:], 16)
        elif s.startswith("0") and len(s) > 1:
            number = int(s[1:], 8)
        else:
            number = int(s, 10)
        if number < 0:
            raise ValueError
    except ValueError:
        fail(el, f"attribute {name}='{value}' is not a number", f"give {name} as a number")
    if number > maximum:
        fail(el, f"attribute {name}='{value}' is out of range", f"give {name} at most {maximum:#x}")
    return number


def mac(el: etree._Element, name: str, value: str, *, unicast: bool = True) -> str:
    """A MAC address, lower-cased with two digits per octet; multicast refused when unicast."""
    m = _MAC.match(value)
    if not m:
        fail(
            el,
            f"'{value}' in attribute {name} is not a MAC address",
            "write it as 52:54:00:xx:xx:xx",
        )
    octets = [int(part, 16) for part in value.split(":")]
    if unicast and octets[0] & 1:
        fail(
            el,
            f"MAC address '{value}' is a multicast address",
            "use a unicast address (lowest bit of the first octet clear), e.g. 52:54:00:xx:xx:xx",
        )
    return ":".join(f"{o:02x}" for o in octets)


def uuid(el: etree._Element, value: str) -> str:
    """libvirt's virUUIDParse: 32 hex digits, dashes allowed between pairs, blanks around."""
    s = value.strip()
    digits = s.replace("-", "")
    if len(digits) != 32 or not all(c in "0123456789abcdefABCDEF" for c in digits) or "--" in s:
        fail(
            el,
            f"malformed uuid '{value}'",
            "give 32 hex digits like 81ff0d90-c91e-6742-64da-4a736edb9a9b",
        )
    d = digits.lower()
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"


def ip_address(
    el: etree._Element, name: str, value: str, *, version: int | None = None
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A numeric IP address (of ``version`` when given)."""
    if "%" in value:
        fail(el, f"'{value}' in attribute {name} has a scope id", "give the address without %SCOPE")
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        fail(
            el,
            f"'{value}' in attribute {name} is not an IP address",
            "give a numeric IPv4/IPv6 address",
        )
    if version is not None and addr.version != version:
        fail(
            el,
            f"'{value}' in attribute {name} is not an IPv{version} address",
            f"give an IPv{version} address",
        )
    return addr


def ip_attr(el: etree._Element, name: str, *, version: int | None = None) -> str | None:
    """An IP address attribute in canonical form, or None when absent."""
    value = attr(el, name)
    if value is None:
        return None
    return fmt_ip(ip_address(el, name, value, version=version))


def fmt_ip(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """As libvirt prints it, via inet_ntop (``::ffff:1.2.3.4``, not ``::ffff:102:304``)."""
    if addr.version == 6:
        return socket.inet_ntop(socket.AF_INET6, addr.packed)
    return str(addr)
