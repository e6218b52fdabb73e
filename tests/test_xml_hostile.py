"""Hostile and malformed input: each refused cleanly (HostileInput/InvalidDefinition), fast,
without reading files, touching the network or expanding entities."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from virtnet.errors import HostileInput, InvalidDefinition, VirtnetError
from virtnet.libvirtxml import format_network, parse_network
from virtnet.libvirtxml.safe_xml import MAX_BYTES, MAX_DEPTH

GOOD = "<network><name>n1</name><bridge name='vb1'/></network>"

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<network><name>&lol9;</name></network>
"""

XXE_FILE = """<?xml version="1.0"?>
<!DOCTYPE network [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<network><name>&xxe;</name></network>
"""

XXE_NETWORK = """<?xml version="1.0"?>
<!DOCTYPE network SYSTEM "http://192.0.2.1/evil.dtd">
<network><name>n1</name></network>
"""

PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE network [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>
<network><name>n1</name></network>
"""

PLAIN_DOCTYPE = """<!DOCTYPE network>
<network><name>n1</name></network>
"""


def _refused(doc: str | bytes, kind: type[VirtnetError] = InvalidDefinition) -> VirtnetError:
    start = time.monotonic()
    with pytest.raises(kind) as info:
        parse_network(doc)
    assert time.monotonic() - start < 2.0, "refusing hostile input must be fast"
    err = info.value
    assert err.message and err.hint, "a refusal says what is wrong and how to fix it"
    assert "Traceback" not in str(err)
    return err


def test_good_document_parses() -> None:
    assert parse_network(GOOD).name == "n1"
    assert parse_network(GOOD.encode()).name == "n1"


@pytest.mark.parametrize(
    "doc",
    [BILLION_LAUGHS, XXE_FILE, XXE_NETWORK, PARAMETER_ENTITY, PLAIN_DOCTYPE],
    ids=["billion-laughs", "xxe-file", "xxe-network-dtd", "parameter-entity", "doctype"],
)
def test_doctype_and_entities_are_hostile(doc: str) -> None:
    err = _refused(doc, HostileInput)
    assert "DOCTYPE" in err.message or "ENTITY" in err.message
    assert "root:" not in str(err), "no file content may leak into the message"


def test_doctype_in_utf16_is_still_refused() -> None:
    _refused(XXE_FILE.replace('<?xml version="1.0"?>', "").encode("utf-16"), HostileInput)


def test_undeclared_entity_reference_is_refused() -> None:
    err = _refused("<network><name>&xxe;</name></network>")
    assert "xxe" in err.message


def test_oversized_document_is_hostile() -> None:
    padding = "<!-- " + "x" * MAX_BYTES + " -->"
    err = _refused(f"<network><name>n1</name>{padding}</network>", HostileInput)
    assert str(MAX_BYTES) in err.message


def test_just_under_the_limit_parses() -> None:
    padding = " " * (MAX_BYTES - 200)
    assert parse_network(f"<network><name>n1</name>{padding}</network>").name == "n1"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 300, 5000])
def test_deep_nesting_is_hostile(depth: int) -> None:
    doc = "<network><name>n1</name><metadata>" + "<a:x xmlns:a='urn:a'>" * depth
    doc += "</a:x>" * depth + "</metadata></network>"
    err = _refused(doc, HostileInput)
    assert "deep" in err.message


def test_invalid_utf8_is_refused() -> None:
    err = _refused(b"<network><name>n\xff\xfe1</name></network>")
    assert "XML" in err.message or "encoding" in err.message.lower()


def test_lone_surrogate_in_str_is_refused() -> None:
    _refused("<network><name>n\udc801</name></network>")


@pytest.mark.parametrize(
    "doc",
    [
        "",
        "   \n",
        "not xml at all",
        "<network><name>n1</name>",
        "<network><name>n1</network>",
        '{"name": "n1"}',
        "<network><name>n1</name></network><network/>",
    ],
    ids=["empty", "blank", "text", "unclosed", "mismatched", "json", "two-roots"],
)
def test_non_xml_is_invalid(doc: str) -> None:
    _refused(doc)


def test_binary_junk_is_invalid() -> None:
    junk = bytes(range(256)) * 16
    _refused(junk)
    _refused(b"\x00\x01\x02\x03<network/>")
    _refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)


def test_wrong_root_element_is_invalid() -> None:
    err = _refused("<domain><name>vm</name></domain>")
    assert "<network>" in err.message


def test_wrong_input_type_is_invalid() -> None:
    _refused(12345)  # type: ignore[arg-type]


def test_processing_instructions_and_comments_are_ignored() -> None:
    doc = "<?xml version='1.0'?><!-- c --><network><?pi x?><name>n1<!-- c --></name></network>"
    assert parse_network(doc).name == "n1"


def test_str_with_foreign_encoding_declaration_parses() -> None:
    doc = "<?xml version='1.0' encoding='ISO-8859-1'?><network><name>réseau</name></network>"
    assert parse_network(doc).name == "réseau"
    assert parse_network(doc.encode("iso-8859-1")).name == "réseau"


def test_xinclude_is_not_processed() -> None:
    doc = (
        "<network xmlns:xi='http://www.w3.org/2001/XInclude'><name>n1</name>"
        "<description><xi:include href='file:///etc/passwd' parse='text'/></description>"
        "</network>"
    )
    net = parse_network(doc)
    assert net.description is None


@pytest.mark.parametrize(
    ("body", "element"),
    [
        ("<domain name='x&#10;dhcp-script=/tmp/evil'/>", "network/domain"),
        ("<bridge name='br&#9;0'/>", "network/bridge"),
        ("<forward mode='nat' dev='eth0&#13;'/>", "network/forward"),
        (
            "<dns><host ip='10.0.0.5'><hostname>a&#10;b</hostname></host></dns>",
            "network/dns/host/hostname",
        ),
        (
            "<ip address='10.0.0.1' prefix='24'><tftp root='/srv&#10;enable-tftp'/></ip>",
            "network/ip/tftp",
        ),
    ],
)
def test_line_breaks_in_values_are_hostile(body: str, element: str) -> None:
    # Such values would start a new directive in dnsmasq's configuration.
    err = _refused(f"<network><name>n1</name>{body}</network>", HostileInput)
    assert err.element == element
    assert "line break" in err.message


def test_line_break_in_name_is_hostile() -> None:
    err = _refused("<network><name>n&#10;1</name></network>", HostileInput)
    assert err.element == "network/name"


def test_dnsmasq_option_with_line_break_is_refused() -> None:
    doc = (
        "<network xmlns:d='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>n1</name>"
        "<d:options><d:option value='a=1&#10;dhcp-script=/tmp/x'/></d:options></network>"
    )
    err = _refused(doc)
    assert err.element == "network/d:options/d:option"


def test_metadata_may_hold_anything_well_formed() -> None:
    doc = (
        "<network><name>n1</name><metadata><a:x xmlns:a='urn:a' v='1&#10;2'>t&#9;</a:x>"
        "</metadata></network>"
    )
    net = parse_network(doc)
    assert net.metadata is not None and "&#10;" in net.metadata


def _filled(head: str, item: Callable[[int], str], tail: str = "") -> str:
    """``<network>`` with ``head``, then as many ``item(i)`` as fit in MAX_BYTES, then ``tail``."""
    start = f"<network><name>big</name>{head}"
    end = f"{tail}</network>"
    budget = MAX_BYTES - len(start) - len(end) - 64
    parts: list[str] = []
    i = 0
    while budget > 0:
        piece = item(i)
        budget -= len(piece)
        if budget < 0:
            break
        parts.append(piece)
        i += 1
    return start + "".join(parts) + end


def _fast(doc: str, limit: float = 3.0) -> int:
    assert MAX_BYTES - 200 < len(doc.encode()) <= MAX_BYTES
    start = time.monotonic()
    net = parse_network(doc)
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"{elapsed:.2f}s for a {len(doc)} byte document"
    return (
        len(net.routes)
        + len(net.ips)
        + len(net.portgroups)
        + len(net.forward.interfaces if net.forward else ())
    )


def test_many_routes_and_addresses_stay_fast() -> None:
    # 3000 subnets and as many routes, each gateway in the last subnet: no product of both.
    ips = "".join(f"<ip address='10.{i // 250}.{i % 250}.1' prefix='24'/>" for i in range(3000))
    doc = _filled(
        ips,
        lambda i: (
            f"<route address='172.{16 + i // 65536 % 16}.{i // 256 % 256}.{i % 256}' "
            "prefix='32' gateway='10.11.249.9'/>"
        ),
    )
    assert _fast(doc) > 8000


def test_many_forward_interfaces_stay_fast() -> None:
    doc = _filled("<forward mode='bridge'>", lambda i: f"<interface dev='e{i}'/>", "</forward>")
    assert _fast(doc) > 30000


def test_many_pci_addresses_stay_fast() -> None:
    doc = _filled(
        "<forward mode='hostdev'>",
        lambda i: f"<address type='pci' domain='{i // 256}' bus='{i % 256}' slot='1'/>",
        "</forward>",
    )
    _fast(doc)


def test_many_portgroups_and_unknown_elements_stay_fast() -> None:
    assert (
        _fast(
            _filled("", lambda i: f"<portgroup name='p{i}'><vlan><tag id='1'/></vlan></portgroup>")
        )
        > 10000
    )
    _fast(_filled("", lambda i: f"<x{i}/>"))
    _fast(_filled("", lambda i: "<a/>"))


# --- fuzzing: mutated corpus documents never crash the parser --------------------------

CORPUS_IN = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "libvirt-9.0.0"
    / "networkxml2xmlin"
)  # fmt: skip
NASTY = [
    "", " ", "0", "-1", "1", "65536", "4096", "99999999999999999999999", "yes", "no", "on",
    "off", "abc", "0x1f", "010", " 5 ", "::", "::1", "1.2.3.4", "255.255.255.255", "0.0.0.0",
    "10.0.0.0", "192.168.122.300", "fe80::1", "52:54:00:00:00:01", "ff:ff:ff:ff:ff:ff",
    "nat", "route", "open", "bridge", "hostdev", "passthrough", "none", "ipv4", "ipv6",
    "a/b", "%d", "virbr%d", "é", "x" * 300,
]  # fmt: skip


def _corpus_docs() -> list[str]:
    return [p.read_text() for p in sorted(CORPUS_IN.glob("*.xml"))]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_corpus_never_crashes(data: st.DataObject) -> None:
    docs = _corpus_docs()
    if not docs:
        pytest.skip("conformance corpus not present")
    root = etree.fromstring(data.draw(st.sampled_from(docs)).encode())
    elements = list(root.iter())
    for _ in range(data.draw(st.integers(1, 4))):
        el = data.draw(st.sampled_from(elements))
        action = data.draw(st.sampled_from(["set", "delete-attr", "drop", "dup"]))
        if action == "set":
            name = data.draw(st.sampled_from(sorted(el.attrib) or ["dev", "mode", "name"]))
            el.set(name, data.draw(st.sampled_from(NASTY)))
        elif action == "delete-attr" and el.attrib:
            del el.attrib[data.draw(st.sampled_from(sorted(el.attrib)))]
        elif action == "drop" and el.getparent() is not None:
            parent = el.getparent()
            assert parent is not None
            parent.remove(el)
            elements = list(root.iter())
        elif action == "dup" and el.getparent() is not None:
            el.addnext(copy.deepcopy(el))
            elements = list(root.iter())
    doc = etree.tostring(root, encoding="unicode")
    try:
        net = parse_network(doc)
    except VirtnetError as err:
        assert err.element, f"refusal without element: {err}"
        return
    xml = format_network(net)
    assert format_network(parse_network(xml)) == xml
