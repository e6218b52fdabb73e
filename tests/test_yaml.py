"""The YAML form: lossless against libvirt XML, strict about keys, safe against hostile YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtnet import loader
from virtnet.errors import HostileInput, InvalidDefinition, NotFound
from virtnet.libvirtxml import format_network, parse_network
from virtnet.model.network import ForwardMode, Lease, Network
from virtnet.yamlform import MAX_BYTES, dump_yaml, load_yaml

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "libvirt-9.0.0"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _inputs() -> list[Path]:
    cases = [
        line.split("\t") for line in (CORPUS / "xml2xml-cases.tsv").read_text().splitlines()[1:]
    ]
    files = [CORPUS / "networkxml2xmlin" / f"{c[0]}.xml" for c in cases if c[1] == "ok"]
    return files + sorted((CORPUS / "networkxml2confdata").glob("*.xml"))


@pytest.mark.parametrize("path", _inputs(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_xml_yaml_xml_is_lossless(path: Path) -> None:
    net = parse_network(path.read_bytes())
    text = dump_yaml(net)
    back = load_yaml(text)
    assert back == net
    assert format_network(back) == format_network(net)
    assert loader.load_text(text) == net  # detected as YAML by content
    assert dump_yaml(back) == text  # stable


def test_corpus_covered() -> None:
    assert len(_inputs()) == 42 + 15  # every ok xml2xml input and every xml2conf input


BASIC = """\
name: demo
mode: nat
bridge: {name: virbr7, stp: yes, delay: 0}
domain: demo.test
ips:
  - address: 192.168.77.1/24
    dhcp:
      ranges: [{start: 192.168.77.10, end: 192.168.77.99, lease: {expiry: 1, unit: hours}}]
      hosts:
        - {mac: "52:54:00:12:34:56", name: vm1, ip: 192.168.77.5, lease: 30}
"""


def test_natural_form() -> None:
    net = load_yaml(BASIC)
    assert net.mode is ForwardMode.NAT and net.forward and net.forward.mode_given
    assert net.bridge and net.bridge.stp is True and net.bridge.name == "virbr7"
    assert net.domain and net.domain.name == "demo.test"
    ip = net.ips[0]
    assert (ip.address, ip.prefix) == ("192.168.77.1", 24)
    assert ip.dhcp and ip.dhcp.ranges[0].lease == Lease(1, "hours")
    assert ip.dhcp.hosts[0].lease == Lease(30)
    assert ip.dhcp.hosts[0].mac == "52:54:00:12:34:56"


def test_isolated_and_bare_forward() -> None:
    assert load_yaml("name: a\nmode: isolated\n").forward is None
    assert load_yaml("name: a\n").forward is None
    bare = load_yaml("name: a\nforward: {}\n").forward
    assert bare is not None and bare.mode is ForwardMode.NAT and not bare.mode_given


def test_yaml_12_scalars() -> None:
    # "yes"/"no"/"on" and base-60 look-alikes stay text where text is expected
    net = load_yaml("name: no\nmac: 52:54:00:12:34:56\ntitle: on\n")
    assert (net.name, net.mac, net.title) == ("no", "52:54:00:12:34:56", "on")
    assert load_yaml("name: '010'\n").name == "010"


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        ("name: a\nmodee: nat\n", "modee", "allowed keys: name, mode, forward"),
        ("name: a\nbridge: {nmae: x}\n", "bridge.nmae", "allowed keys in bridge: name, stp"),
        (
            "name: a\nips: [{address: 10.0.0.1, dhcp: {range: []}}]\n",
            "ips[0].dhcp.range",
            "ranges, hosts, bootp",
        ),
        ("name: a\nmtu: big\n", "mtu", "whole number"),
        ("name: a\nbridge: {stp: maybe}\n", "bridge.stp", "true or false"),
        ("name: a\nmode: tunnel\n", "mode", "one of: nat, route"),
        ("name: a\nips: {address: 10.0.0.1}\n", "ips", "expected a list"),
        ("name: a\nips: [{prefix: 24}]\n", "ips[0].address", "required"),
        ("mode: nat\n", "name", "required"),
        ("- a\n- b\n", None, "mapping"),
        ("name: a\nname: b\n", "line 2", "duplicate key"),
        ("name: [a\n", "line 2, column 1", "not valid YAML"),
        ("name: a\nmode: isolated\nforward: {dev: eth0}\n", "forward", "isolated"),
    ],
)
def test_bad_yaml_names_the_key(text: str, where: str | None, needle: str) -> None:
    with pytest.raises(InvalidDefinition) as info:
        load_yaml(text)
    assert info.value.element == where
    assert needle in str(info.value)


def test_aliases_refused() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nname: *c\n"
    with pytest.raises(HostileInput, match="aliases"):
        load_yaml(bomb)


def test_merge_keys_refused() -> None:
    with pytest.raises(HostileInput):
        load_yaml("base: &b {stp: true}\nname: a\nbridge: {<<: *b}\n")
    # without aliases "<<" is just an unknown key (YAML 1.2 has no merge keys)
    with pytest.raises(InvalidDefinition, match="unknown key '<<'"):
        load_yaml("name: a\nbridge: {<<: {stp: true}}\n")


def test_size_and_depth_limits() -> None:
    with pytest.raises(HostileInput, match="larger"):
        load_yaml("name: a\n" + "#" * MAX_BYTES)
    with pytest.raises(HostileInput, match="deep"):
        load_yaml("name: " + "[" * 5000 + "]" * 5000)


def test_python_tags_refused() -> None:
    with pytest.raises(InvalidDefinition):
        load_yaml("name: !!python/object/apply:os.system ['true']\n")


def test_detect_format() -> None:
    assert loader.detect_format("\ufeff  <network/>") == "xml"
    assert loader.detect_format(b"\n<?xml version='1.0'?><network/>") == "xml"
    assert loader.detect_format("name: a\n") == "yaml"


def test_load_file(tmp_path: Path) -> None:
    (tmp_path / "n.conf").write_text("<network><name>x</name></network>")
    assert loader.load_file(tmp_path / "n.conf").name == "x"
    (tmp_path / "n.txt").write_bytes(b"\xef\xbb\xbfname: y\n")
    assert loader.load_file(tmp_path / "n.txt").name == "y"
    (tmp_path / "bad").write_bytes(b"name: \xff\n")
    with pytest.raises(InvalidDefinition, match="UTF-8"):
        loader.load_file(tmp_path / "bad")
    with pytest.raises(NotFound):
        loader.load_file(tmp_path / "missing.xml")
    with pytest.raises(InvalidDefinition, match="directory"):
        loader.load_file(tmp_path)


def test_dump_formats() -> None:
    net = load_yaml(BASIC)
    assert loader.dump(net, "xml").startswith("<network>")
    as_xml = loader.dump(net, "xml")
    assert format_network(loader.load_text(as_xml)) == as_xml
    assert loader.load_text(loader.dump(net, "yaml"), fmt="yaml") == net
    with pytest.raises(InvalidDefinition):
        loader.dump(net, "json")


@pytest.mark.parametrize("text", ["\x85", "a\u2028b", "x\ty", " lead", "\ufeffbom", "l1\nl2"])
def test_odd_strings_survive(text: str) -> None:
    net = Network(name="a", title=text, description=text)
    assert load_yaml(dump_yaml(net)) == net


def test_every_model_field_has_a_yaml_key() -> None:
    """A field added to the model must reach the YAML form, or XML -> YAML would drop it."""
    import dataclasses

    import virtnet.model.network as model
    from virtnet import yamlform

    covered: dict[type, set[str]] = {}

    def walk(kind: object) -> None:
        if isinstance(kind, yamlform._List):
            walk(kind.item)
        elif isinstance(kind, yamlform._Obj):
            if kind.cls in covered:
                return
            covered[kind.cls] = {attr for _, attr, _ in kind.fields}
            for _, _, sub in kind.fields:
                walk(sub)
        elif isinstance(kind, yamlform._Lease):
            walk(yamlform._LEASE_OBJ)

    walk(yamlform._NETWORK)
    walk(yamlform.FORWARD)
    covered[model.Network].add("forward")  # written as mode + forward
    covered[model.Forward] |= {"mode", "mode_given"}
    for cls in [c for c in vars(model).values() if dataclasses.is_dataclass(c)]:
        missing = {f.name for f in dataclasses.fields(cls)} - covered.get(cls, set())
        assert not missing, f"{cls.__name__}: no YAML key for {sorted(missing)}"
