"""libvirt 9.0's own network XML test corpus, case by case (a new case is new files, no code).

Each ``ok`` row of ``xml2xml-cases.tsv``: parse ``networkxml2xmlin/NAME.xml``, format it and
compare with ``networkxml2xmlout/NAME.xml`` as XML (element order, attributes, text).
Each ``parse-error`` row must be refused with an InvalidDefinition naming the element.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from lxml import etree

from virtnet.errors import InvalidDefinition
from virtnet.libvirtxml import format_network, parse_network

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance" / "libvirt-9.0.0"


def _cases() -> list[tuple[str, str, str]]:
    table = CORPUS / "xml2xml-cases.tsv"
    if not table.exists():
        return []
    with table.open(newline="") as fh:
        return [
            (r["case"], r["expect"], r["format_flags"]) for r in csv.DictReader(fh, delimiter="\t")
        ]


CASES = _cases()


def _xml_tree(text: str) -> etree._Element:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.fromstring(text.encode(), parser=parser)


def _same_xml(a: etree._Element, b: etree._Element, where: str = "") -> list[str]:
    """Differences between two trees: element order, attributes and text (whitespace trimmed)."""
    here = f"{where}/{etree.QName(a).localname}"
    diffs: list[str] = []
    if a.tag != b.tag:
        return [f"{here}: tag {a.tag!r} != {b.tag!r}"]
    if dict(a.attrib) != dict(b.attrib):
        diffs.append(f"{here}: attributes {dict(a.attrib)} != {dict(b.attrib)}")
    if (a.text or "").strip() != (b.text or "").strip():
        diffs.append(f"{here}: text {a.text!r} != {b.text!r}")
    if len(a) != len(b):
        diffs.append(
            f"{here}: {len(a)} children != {len(b)}: {[c.tag for c in a]} vs {[c.tag for c in b]}"
        )
        return diffs
    for ca, cb in zip(a, b, strict=True):
        diffs.extend(_same_xml(ca, cb, here))
    return diffs


def test_corpus_is_present() -> None:
    assert CASES, f"libvirt conformance corpus not found at {CORPUS}"
    assert any(expect == "ok" for _, expect, _ in CASES)
    assert any(expect == "parse-error" for _, expect, _ in CASES)


@pytest.mark.parametrize(
    ("case", "flags"), [(c, f) for c, e, f in CASES if e == "ok"], ids=lambda v: str(v)
)
def test_xml2xml_ok(case: str, flags: str) -> None:
    source = (CORPUS / "networkxml2xmlin" / f"{case}.xml").read_text()
    expected = (CORPUS / "networkxml2xmlout" / f"{case}.xml").read_text()
    net = parse_network(source)
    produced = format_network(net, inactive=flags == "inactive")
    diffs = _same_xml(_xml_tree(expected), _xml_tree(produced))
    assert not diffs, "\n".join(diffs) + "\n--- produced:\n" + produced
    # Formatting is a fixed point: what we print parses back and prints the same.
    assert format_network(parse_network(produced), inactive=flags == "inactive") == produced


@pytest.mark.parametrize("case", [c for c, e, _ in CASES if e == "parse-error"])
def test_xml2xml_parse_error(case: str) -> None:
    source = (CORPUS / "networkxml2xmlin" / f"{case}.xml").read_text()
    with pytest.raises(InvalidDefinition) as info:
        parse_network(source)
    err = info.value
    assert err.element and err.element.startswith("network/"), str(err)
    assert err.hint, "every refusal says how to fix it"
    assert "Traceback" not in str(err)


def test_output_is_byte_identical_to_libvirt_for_the_corpus() -> None:
    """Beyond the XML comparison: same quotes, indentation and line breaks as libvirt."""
    identical = 0
    for case, expect, flags in CASES:
        if expect != "ok":
            continue
        source = (CORPUS / "networkxml2xmlin" / f"{case}.xml").read_text()
        expected = (CORPUS / "networkxml2xmlout" / f"{case}.xml").read_text()
        produced = format_network(parse_network(source), inactive=flags == "inactive")
        assert produced == expected, case
        identical += 1
    assert identical == sum(1 for _, e, _ in CASES if e == "ok")
