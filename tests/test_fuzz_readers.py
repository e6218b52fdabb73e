"""Property tests: whatever the input, the readers give a Network or a VirtnetError, nothing else.

Inputs are libvirt's corpus files mutated (attributes and elements dropped, duplicated or
altered, control characters injected, bytes flipped), random bytes, and YAML built from the
corpus with values swapped for random ones. A definition that passes validation must also
render a dnsmasq configuration with no injected line, and survive XML -> YAML -> model intact.
Fixed budget and a fixed seed (derandomize), so the run is the same every time and fast.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from virtnet.dnsmasq.config import DnsmasqPaths, render_addnhosts, render_conf, render_hostsfile
from virtnet.errors import VirtnetError
from virtnet.libvirtxml import parse_network
from virtnet.loader import load_text
from virtnet.model.defaults import fill_defaults
from virtnet.model.network import Network
from virtnet.model.validate import validate
from virtnet.yamlform import dump_yaml, load_yaml, network_to_data

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "libvirt-9.0.0"
FILES = sorted((CORPUS / "networkxml2xmlin").glob("*.xml")) + sorted(
    (CORPUS / "networkxml2confdata").glob("*.xml")
)
BUDGET = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STATE = Path("/var/lib/virtnet")
ATTRS = [
    "name", "mode", "dev", "address", "prefix", "netmask", "family", "start", "end", "mac",
    "ip", "id", "expiry", "unit", "stp", "delay", "value", "enable", "size", "gateway",
    "service", "protocol", "target", "port", "domain", "localOnly", "forwardPlainNames",
    "localPtr", "root", "file", "server", "ipv6", "trunk", "type", "default", "isolated",
]  # fmt: skip
NASTY = [
    "", "-1", "0", "4294967296", "99999999999999999999", "yes", "no", "0x10", "::", "::1",
    "1.2.3.4", "192.168.122.1", "255.255.255.255", "a\nb", "a,b", '"', "#x", " x", "virbr%d",
    "../..", "a" * 300, "é", "\u2028", "\x85", "nat", "bridge", "hostdev", "00:00:00:00:00:00",
]  # fmt: skip
# What a rendered configuration may contain: directives virtnet writes, one a line.
DIRECTIVES = {
    "strict-order", "port", "server", "no-resolv", "local", "domain", "expand-hosts",
    "domain-needed", "pid-file", "except-interface", "bind-dynamic", "interface", "dhcp-option",
    "ra-param", "txt-record", "srv-host", "enable-tftp", "tftp-root", "dhcp-range",
    "dhcp-no-override", "dhcp-authoritative", "dhcp-boot", "dhcp-lease-max", "dhcp-hostsfile",
    "dhcp-leasefile", "addn-hosts", "enable-ra", "log-facility",
}  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

values = st.one_of(st.sampled_from(NASTY), st.text(max_size=12))


def check_result(produce: Any) -> Network | None:
    """Run a reader: a Network or a VirtnetError are the only acceptable outcomes."""
    try:
        net = produce()
    except VirtnetError:
        return None
    assert isinstance(net, Network)
    return net


def check_network(net: Network) -> None:
    """A read Network: YAML keeps it whole; if valid, its dnsmasq files carry no injection."""
    assert load_yaml(dump_yaml(net)) == net
    try:
        validate(net)
    except VirtnetError:
        # rendering an invalid definition is refused with a virtnet error, never a crash
        paths = DnsmasqPaths.for_network(STATE, "x")
        for render in (lambda: render_conf(net, paths), lambda: render_hostsfile(net)):
            with contextlib.suppress(VirtnetError):
                render()
        return
    full = fill_defaults(net)
    conf = render_conf(full, DnsmasqPaths.for_network(STATE, full.name))
    if conf is not None:
        options = set(full.dnsmasq_options)
        for line in conf.splitlines():
            assert not _CONTROL.search(line)
            if line.startswith("#") or line in options:
                continue
            assert line.partition("=")[0] in DIRECTIVES, line
    for text in (render_hostsfile(full), render_addnhosts(full)):
        assert not _CONTROL.search(text.replace("\t", " ").replace("\n", " "))


def _mutate_tree(data: st.DataObject, root: etree._Element) -> None:
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    for _ in range(data.draw(st.integers(1, 4), label="n_mutations")):
        el = data.draw(st.sampled_from(elements), label="element")
        op = data.draw(
            st.sampled_from(["drop_attr", "set_attr", "drop", "dup", "text", "move"]), label="op"
        )
        parent = el.getparent()
        try:
            if op == "drop_attr" and el.attrib:
                del el.attrib[data.draw(st.sampled_from(sorted(el.attrib)))]
            elif op == "set_attr":
                name = data.draw(st.sampled_from(sorted(el.attrib) + ATTRS))
                el.set(name, data.draw(values))
            elif op == "drop" and parent is not None:
                parent.remove(el)
            elif op == "dup" and parent is not None:
                parent.insert(parent.index(el), etree.fromstring(etree.tostring(el)))
            elif op == "text":
                el.text = data.draw(values)
            elif op == "move" and parent is not None:
                target = data.draw(st.sampled_from(elements))
                if el not in target.iterancestors() and el is not target:
                    target.append(el)
        except (ValueError, TypeError):
            pass  # lxml refuses values XML cannot hold; the byte mutations below inject those


@BUDGET
@given(st.data())
def test_mutated_corpus_xml(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(FILES), label="file")
    root = etree.fromstring(path.read_bytes())
    _mutate_tree(data, root)
    raw = bytearray(etree.tostring(root))
    for _ in range(data.draw(st.integers(0, 2), label="n_byte_edits")):
        pos = data.draw(st.integers(0, len(raw)), label="pos")
        junk = data.draw(
            st.sampled_from([b"\x00", b"\x01", b"\n", b"&#10;", b"&#1;", b"<", b"&x;", b"\xff"])
            | st.binary(max_size=4),
            label="junk",
        )
        raw[pos:pos] = junk
    net = check_result(lambda: parse_network(bytes(raw)))
    if net is not None:
        check_network(net)


@BUDGET
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_random_input_to_both_readers(blob: bytes | str) -> None:
    for fmt in ("xml", "yaml", None):
        net = check_result(lambda fmt=fmt: load_text(blob, fmt=fmt))
        if net is not None:
            check_network(net)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(values, inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@BUDGET
@given(st.data())
def test_mutated_yaml(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(FILES), label="file")
    try:
        doc: Any = network_to_data(parse_network(path.read_bytes()))
    except VirtnetError:
        doc = {"name": "x", "mode": "nat"}
    for _ in range(data.draw(st.integers(1, 3), label="n_mutations")):
        where = data.draw(st.sampled_from(_paths(doc)[1:] or [()]), label="path")
        if not where:
            break
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        op = data.draw(st.sampled_from(["replace", "delete", "add"]), label="op")
        if op == "replace":
            parent[where[-1]] = data.draw(yaml_values, label="value")
        elif op == "delete":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(values, label="key")] = data.draw(yaml_values, label="value")
    text = yaml.safe_dump(doc, allow_unicode=True)
    net = check_result(lambda: load_yaml(text))
    if net is not None:
        check_network(net)
