"""Reading and writing definition files, in libvirt XML or virtnet's YAML form.

The format is told by the content, not the file name: a document whose first non-blank
character is ``<`` is XML, anything else is YAML. Reading never goes further than parsing:
validation (virtnet.model.validate) and defaults (virtnet.model.defaults) are separate steps.
"""

from __future__ import annotations

from pathlib import Path

from virtnet.errors import HostileInput, InvalidDefinition, NotFound
from virtnet.libvirtxml import format_network, parse_network
from virtnet.model.network import Network
from virtnet.yamlform import dump_yaml, load_yaml

FORMATS = ("xml", "yaml")
MAX_FILE_BYTES = 1 << 20


def detect_format(text: str | bytes) -> str:
    """ "xml" when the document starts with '<' (after a BOM and blanks), else "yaml"."""
    head = text[:4096]
    if isinstance(head, bytes):
        head = head.decode("utf-8", "replace")
    return "xml" if head.lstrip("\ufeff \t\r\n").startswith("<") else "yaml"


def load_text(text: str | bytes, *, fmt: str | None = None) -> Network:
    """Parse a definition (untrusted) in ``fmt`` ("xml"/"yaml"), or the format it looks like."""
    fmt = fmt or detect_format(text)
    if fmt == "xml":
        return parse_network(text)
    if fmt != "yaml":
        raise InvalidDefinition(f"unknown format {fmt!r}", hint="use 'xml' or 'yaml'")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidDefinition(
                f"the YAML is not UTF-8 text (byte {exc.start})",
                hint="save the file as UTF-8",
            ) from None
    return load_yaml(text.removeprefix("\ufeff"))


def load_file(path: str | Path) -> Network:
    """Read a definition file (XML or YAML, told by its content)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise NotFound(f"no such file: {p}", hint="check the path") from None
    except IsADirectoryError:
        raise InvalidDefinition(f"{p} is a directory", hint="give a definition file") from None
    except OSError as exc:
        raise InvalidDefinition(f"cannot read {p}: {exc.strerror}", hint="check the file") from None
    if len(data) > MAX_FILE_BYTES:
        raise HostileInput(
            f"{p} is larger than {MAX_FILE_BYTES} bytes",
            hint="a network definition is a few kilobytes; check the file",
        )
    return load_text(data)


def dump(net: Network, fmt: str) -> str:
    """``net`` as a definition in ``fmt``: "xml" (as virsh net-dumpxml) or "yaml"."""
    if fmt == "xml":
        return format_network(net)
    if fmt == "yaml":
        return dump_yaml(net)
    raise InvalidDefinition(f"unknown format {fmt!r}", hint="use 'xml' or 'yaml'")
