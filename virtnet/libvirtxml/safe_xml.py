"""Turn untrusted bytes into an lxml element tree, or refuse them cleanly.

Definitions come from users, files and the network API, so the parser never resolves
entities, never loads a DTD, never touches the network, and refuses any document that
declares a DOCTYPE or entities (billion laughs, external entities) before anything else
looks at it. Size and nesting are bounded so a hostile document costs milliseconds.
"""

from __future__ import annotations

import re

from lxml import etree

from virtnet.errors import HostileInput, InvalidDefinition

MAX_BYTES = 1024 * 1024  # 1 MiB: a real network definition is a few KiB
MAX_DEPTH = 64  # network/ip/dhcp/host/lease is 5 deep; metadata gets some room

# Declarations that only an attack needs in a network definition.
_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_XML_DECL_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*)(["'])[^"']*\2""")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def to_bytes(text: str | bytes) -> bytes:
    """The document as UTF-8 bytes (a str's own encoding declaration is rewritten to match)."""
    if isinstance(text, bytes | bytearray | memoryview):
        return bytes(text)
    if not isinstance(text, str):
        raise InvalidDefinition(
            f"expected XML text, got {type(text).__name__}",
            hint="pass the definition as a str or bytes",
        )
    text = _XML_DECL_ENCODING.sub(r"\1\2UTF-8\2", text, count=1)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidDefinition(
            f"text is not valid Unicode (character {exc.start})",
            hint="save the definition as UTF-8",
        ) from None


def _depth(root: etree._Element) -> int:
    deepest = 0
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        el, d = stack.pop()
        if d > deepest:
            deepest = d
            if deepest > MAX_DEPTH:
                return deepest
        stack.extend((child, d + 1) for child in el)
    return deepest


def parse_document(text: str | bytes) -> etree._Element:
    """Parse ``text`` safely into its root element, or raise HostileInput/InvalidDefinition."""
    data = to_bytes(text)
    if len(data) > MAX_BYTES:
        raise HostileInput(
            f"document is {len(data)} bytes, more than the {MAX_BYTES} allowed",
            hint="a network definition is a few KiB; check that this is the right file",
        )
    if not data.strip():
        raise InvalidDefinition("document is empty", hint="give a <network> definition")
    if b"\x00" in data[:4] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidDefinition(
            "document is binary data, not XML", hint="give a <network> XML definition"
        )
    match = _DECLARATIONS.search(data)
    if match:
        kind = match.group(1).decode("ascii", "replace").upper()
        raise HostileInput(
            f"document contains a <!{kind} ...> declaration",
            hint="network definitions never need a DOCTYPE or entities; remove them",
        )
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        msg = str(exc.msg if getattr(exc, "msg", None) else exc)
        if "depth" in msg.lower() or "huge" in msg.lower():
            raise HostileInput(
                "document is nested too deeply",
                hint=f"a network definition is never more than {MAX_DEPTH} elements deep",
            ) from None
        raise InvalidDefinition(
            f"not well-formed XML: {msg}",
            hint="fix the XML syntax (check quoting, closing tags and the file's encoding)",
        ) from None
    except ValueError as exc:  # e.g. lxml refusing odd input types/encodings
        raise InvalidDefinition(f"cannot read document: {exc}", hint="give UTF-8 XML") from None
    tree = root.getroottree()
    docinfo = tree.docinfo
    doctype = getattr(docinfo, "doctype", "")
    if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise HostileInput(
            "document declares a DOCTYPE",
            hint="network definitions never need a DOCTYPE or entities; remove it",
        )
    for node in root.iter(etree.Entity):
        if isinstance(node, etree._Entity):
            raise HostileInput(
                f"document uses the entity reference {node.text}",
                hint="write the characters themselves instead of entity references",
            )
    if _depth(root) > MAX_DEPTH:
        raise HostileInput(
            f"document is nested more than {MAX_DEPTH} elements deep",
            hint="a network definition is only a few elements deep",
        )
    return root
