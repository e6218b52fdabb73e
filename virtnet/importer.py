"""``virtnet import``: take over libvirt's network definitions.

Sources: a directory of libvirt network XML (libvirt keeps them in /etc/libvirt/qemu/networks,
with autostart symlinks in its ``autostart/`` subdirectory), or a running libvirt through
libvirt-python when that is installed. Every network is parsed with virtnet's own reader,
completed and validated like ``net-define``, and stored; anything that does not carry over is
reported per network: XML elements or attributes virtnet's reader drops, networks that are
transient in libvirt, names already defined here, definitions that clash with others, and
forward modes this host's engine cannot start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from virtnet.errors import NotFound, NotSupported, VirtnetError
from virtnet.libvirtxml import format_network, parse_network
from virtnet.libvirtxml.safe_xml import parse_document
from virtnet.plan.desired import check_supported
from virtnet.service import Service

LIBVIRT_DIR = Path("/etc/libvirt/qemu/networks")

IMPORTED = "imported"
SKIPPED = "skipped"
FAILED = "failed"


@dataclass
class ImportItem:
    name: str
    source: str
    status: str  # imported | skipped | failed
    autostart: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "status": self.status,
                "autostart": self.autostart, "notes": list(self.notes)}


@dataclass(frozen=True)
class Source:
    name_hint: str
    origin: str  # file path or libvirt URI + name
    xml: str
    autostart: bool
    persistent: bool = True


def from_directory(directory: Path) -> Iterator[Source]:
    if not directory.is_dir():
        raise NotFound(f"directory {directory} does not exist",
                       hint="give the directory holding libvirt's network XML files")
    auto_dir = directory / "autostart"
    autostart = {p.stem for p in auto_dir.glob("*.xml")} if auto_dir.is_dir() else set()
    files = sorted(p for p in directory.glob("*.xml") if p.is_file())
    if not files:
        raise NotFound(f"no network XML files (*.xml) in {directory}",
                       hint="libvirt keeps them in /etc/libvirt/qemu/networks")
    for p in files:
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            text = f"<!-- unreadable: {exc} -->"
        yield Source(p.stem, str(p), text, p.stem in autostart)


def from_libvirt(uri: str | None) -> Iterator[Source]:
    """The networks of a running libvirt (read-only connection)."""
    try:
        import libvirt
    except ImportError:
        raise NotSupported(
            "libvirt-python is not installed", hint="pip install libvirt-python, or import "
            "from the XML directory (virtnet import /etc/libvirt/qemu/networks)"
        ) from None
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        raise NotFound(f"cannot connect to libvirt at {uri or 'the default URI'}: {exc}",
                       hint="is libvirtd running? or import from the XML directory") from None
    try:
        for net in conn.listAllNetworks():
            persistent = bool(net.isPersistent())
            flags = libvirt.VIR_NETWORK_XML_INACTIVE if persistent else 0
            yield Source(net.name(), f"{uri or 'libvirt'}:{net.name()}", net.XMLDesc(flags),
                         bool(net.autostart()), persistent)
    finally:
        conn.close()


def libvirt_available() -> bool:
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return False
    return True


def _paths(el: etree._Element, prefix: str = "") -> set[str]:
    """Every element path and attribute in a document, e.g. network/ip/dhcp/range@start."""
    if not isinstance(el.tag, str):
        return set()
    name = etree.QName(el).localname
    here = f"{prefix}/{name}" if prefix else name
    out = {here} | {f"{here}@{etree.QName(a).localname}" for a in el.attrib}
    if name == "metadata":
        return out  # carried verbatim
    for child in el:
        out |= _paths(child, here)
    return out


def dropped(original: str, formatted: str) -> list[str]:
    """What the original XML has that virtnet's definition no longer does."""
    try:
        before = _paths(parse_document(original))
        after = _paths(parse_document(formatted))
    except VirtnetError:
        return []
    # Live-only attributes libvirt writes into status XML; not part of a definition.
    ignore = {"network@connections"}
    return sorted(p for p in before - after if p not in ignore)


def import_networks(svc: Service, sources: Iterator[Source]) -> list[ImportItem]:
    items: list[ImportItem] = []
    for src in sources:
        item = ImportItem(src.name_hint, src.origin, FAILED, autostart=src.autostart)
        items.append(item)
        if not src.persistent:
            item.status = SKIPPED
            item.notes.append("transient in libvirt (no persistent definition): not imported")
            continue
        try:
            net = parse_network(src.xml)
        except VirtnetError as exc:
            item.notes.append(f"cannot be read: {_one_line(exc)}")
            continue
        item.name = net.name
        existing = svc.store.get_definition(net.name)
        # The default network virtnet made up on first use gives way to libvirt's own.
        replace_default = existing is not None and existing.origin == "default" and (
            not svc.engine.is_active(net.name))
        if existing is not None and not replace_default:
            item.status = SKIPPED
            item.notes.append("a network of this name is already defined in virtnet: left "
                              "as it is")
            continue
        try:
            # Lock order as everywhere: the namespace lock, then the database transaction.
            with svc.store.host_lock(svc.netns), svc.store.transaction():
                if replace_default:
                    svc.store.delete_definition(net.name)
                net = svc.define(net, origin="import")
        except VirtnetError as exc:
            item.notes.append(f"refused: {_one_line(exc)}")
            continue
        if replace_default:
            item.notes.append("replaced the default network virtnet had defined on first use")
        if src.autostart:
            svc.set_autostart(net.name, True)
        item.status = IMPORTED
        item.notes += [f"not carried over: {p}" for p in
                       dropped(src.xml, format_network(net, inactive=True))]
        try:
            check_supported(net)
        except VirtnetError as exc:
            item.notes.append(f"defined, but cannot be started by virtnet here: {exc.message}")
    return items


def _one_line(exc: VirtnetError) -> str:
    return str(exc).replace("\n  fix: ", " (fix: ") + (")" if exc.hint else "")
