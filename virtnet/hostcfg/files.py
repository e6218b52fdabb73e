"""Read host network configuration files: NetworkManager keyfiles and nmstate YAML.

For a host not configured yet, ``virtnet host check FILE...`` applies the bridged-mode rules to
what these files will create. Both formats become the same ``HostView`` as live sysfs does.

NetworkManager keyfiles (``/etc/NetworkManager/system-connections/*.nmconnection``):
``[connection] type=bond|bridge|ethernet|wifi|vlan``, ``interface-name=``, a port names its
controller with ``master=`` (or ``controller=``, NM >= 1.46) and ``slave-type=``/``port-type=``;
``[bond] mode=``, ``miimon=``, ``arp_interval=``; ``[vlan] parent=``. Where a key is absent
NetworkManager's defaults apply: bond mode balance-rr, miimon 100 unless arp_interval is set.

nmstate YAML: ``interfaces: [{name, type: bond, link-aggregation: {mode, options: {miimon,
arp_interval}, port: [...]}}, {type: linux-bridge, bridge: {port: [{name}]}}, {type: vlan,
vlan: {base-iface}}]`` (``slaves:`` is the pre-2.0 spelling of ``port:``).
"""

from __future__ import annotations

import configparser
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from virtnet.errors import HostileInput, InvalidDefinition, NotFound
from virtnet.hostcfg.facts import BondSettings, HostView, Link, LinkKind
from virtnet.hostcfg.modes import parse_mode

MAX_FILE_BYTES = 1 << 20  # a host's network config is a few KiB; refuse anything huge

# NetworkManager's type names and their aliases (nmcli and keyfiles accept both)
_NM_KINDS = {
    "bond": LinkKind.BOND,
    "bridge": LinkKind.BRIDGE,
    "ethernet": LinkKind.ETHERNET,
    "802-3-ethernet": LinkKind.ETHERNET,
    "wifi": LinkKind.WIRELESS,
    "802-11-wireless": LinkKind.WIRELESS,
    "vlan": LinkKind.VLAN,
    "tun": LinkKind.TAP,
}
_NMSTATE_KINDS = {
    "bond": LinkKind.BOND,
    "linux-bridge": LinkKind.BRIDGE,
    "ethernet": LinkKind.ETHERNET,
    "vlan": LinkKind.VLAN,
    "tun": LinkKind.TAP,
    "wifi": LinkKind.WIRELESS,
}


def _int_option(value: Any, *, where: str, key: str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InvalidDefinition(
            f"{key}={value!r} is not a number", element=where, hint=f"write {key} in milliseconds"
        ) from None
    if n < 0:
        raise InvalidDefinition(f"{key}={n} is negative", element=where, hint=f"{key} must be >= 0")
    return n


def bond_settings(options: Mapping[str, Any], *, where: str) -> BondSettings:
    """Bond options as NetworkManager/nmstate hold them, with NetworkManager's defaults."""
    mode = parse_mode(options.get("mode", "balance-rr"), where=f"{where}: mode")
    arp = _int_option(options.get("arp_interval", 0), where=where, key="arp_interval")
    miimon_default = 0 if arp > 0 else 100
    miimon = _int_option(options.get("miimon", miimon_default), where=where, key="miimon")
    raw_targets = options.get("arp_ip_target", "")
    if isinstance(raw_targets, list):
        targets = tuple(str(t) for t in raw_targets)
    else:
        targets = tuple(t for t in str(raw_targets).replace(";", ",").split(",") if t.strip())
    return BondSettings(mode, miimon, arp, tuple(t.strip() for t in targets))


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise HostileInput(
                f"{size} bytes is too large for a network configuration file",
                element=str(path),
                hint=f"host configuration files are at most {MAX_FILE_BYTES} bytes",
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"file {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidDefinition(
            "is a directory", element=str(path), hint="name the files inside it"
        ) from None
    except UnicodeDecodeError:
        raise InvalidDefinition(
            "is not UTF-8 text", element=str(path), hint="pass a keyfile or nmstate YAML"
        ) from None


@dataclass(frozen=True)
class _Decl:
    """One interface as a file declares it, before controller references are resolved."""

    link: Link
    controller: str | None = None  # name, uuid or id of its bridge/bond (keyfiles)
    conn_id: str | None = None
    uuid: str | None = None


def _keyfile_decl(text: str, path: Path) -> _Decl:
    where = str(path)
    parser = configparser.ConfigParser(
        interpolation=None, delimiters=("=",), comment_prefixes=("#",), strict=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    try:
        parser.read_string(text, source=where)
    except configparser.Error as exc:
        raise InvalidDefinition(
            f"not a NetworkManager keyfile: {exc.message}",
            element=where,
            hint="keyfiles are INI files with a [connection] section",
        ) from None
    if not parser.has_section("connection"):
        raise InvalidDefinition(
            "no [connection] section",
            element=where,
            hint="a NetworkManager keyfile starts with [connection] id=... type=...",
        )
    conn = parser["connection"]
    ctype = conn.get("type", "").strip()
    if not ctype:
        raise InvalidDefinition(
            "[connection] has no type=", element=where, hint="add type=bond, bridge, ethernet, ..."
        )
    kind = _NM_KINDS.get(ctype, LinkKind.OTHER)
    name = (conn.get("interface-name") or conn.get("id") or path.stem).strip()
    controller = (conn.get("controller") or conn.get("master") or "").strip() or None
    bond = None
    if kind is LinkKind.BOND:
        opts = dict(parser["bond"]) if parser.has_section("bond") else {}
        bond = bond_settings(opts, where=f"{where} [bond]")
    lower: tuple[str, ...] = ()
    if kind is LinkKind.VLAN and parser.has_section("vlan"):
        parent = parser["vlan"].get("parent", "").strip()
        lower = (parent,) if parent else ()
    link = Link(name, kind, None, (), lower, bond, where)
    return _Decl(link, controller, conn.get("id", "").strip() or None, conn.get("uuid"))


def _nmstate_decls(text: str, path: Path) -> list[_Decl]:
    where = str(path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidDefinition(
            f"not valid YAML: {exc}", element=where, hint="fix the YAML syntax"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("interfaces"), list):
        raise InvalidDefinition(
            "no 'interfaces:' list",
            element=where,
            hint="nmstate files have a top-level 'interfaces:' list",
        )
    decls: list[_Decl] = []
    for i, iface in enumerate(doc["interfaces"]):
        at = f"{where}: interfaces[{i}]"
        if not isinstance(iface, dict) or not isinstance(iface.get("name"), str):
            raise InvalidDefinition("an interface without a name", element=at, hint="add name:")
        name = iface["name"]
        kind = _NMSTATE_KINDS.get(str(iface.get("type", "")), LinkKind.OTHER)
        state = iface.get("state")
        if state == "absent":
            continue
        bond = None
        ports: tuple[str, ...] = ()
        lower: tuple[str, ...] = ()
        if kind is LinkKind.BOND:
            la = iface.get("link-aggregation") or {}
            if not isinstance(la, dict):
                raise InvalidDefinition("link-aggregation is not a mapping", element=at, hint="")
            opts = dict(la.get("options") or {})
            if "mode" in la:
                opts["mode"] = la["mode"]
            bond = bond_settings(opts, where=f"{at} ({name}) link-aggregation")
            ports = tuple(str(p) for p in (la.get("port") or la.get("slaves") or []))
        elif kind is LinkKind.BRIDGE:
            br = iface.get("bridge") or {}
            raw = (br.get("port") or br.get("slaves") or []) if isinstance(br, dict) else []
            ports = tuple(str(p["name"]) if isinstance(p, dict) else str(p) for p in raw)
        elif kind is LinkKind.VLAN:
            vlan = iface.get("vlan") or {}
            base = vlan.get("base-iface") if isinstance(vlan, dict) else None
            lower = (str(base),) if base else ()
        st = str(state) if state in ("up", "down") else None
        decls.append(_Decl(Link(name, kind, st, ports, lower, bond, at)))
    return decls


def _looks_like_keyfile(text: str) -> bool:
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            return s.startswith("[")
    return False


def read_files(paths: Iterable[str | Path]) -> HostView:
    """One HostView from keyfiles and nmstate files together (a host's whole configuration
    is usually several keyfiles: the bridge, the bond, each port)."""
    decls: list[_Decl] = []
    kinds: set[str] = set()
    for p in paths:
        path = Path(p)
        text = _read_text(path)
        if path.suffix == ".nmconnection" or _looks_like_keyfile(text):
            decls.append(_keyfile_decl(text, path))
            kinds.add("NetworkManager keyfiles")
        else:
            decls.extend(_nmstate_decls(text, path))
            kinds.add("nmstate YAML")
    if not decls:
        raise InvalidDefinition("no files to check", hint="name keyfiles or nmstate YAML files")
    by_name: dict[str, _Decl] = {}
    for d in decls:
        if d.link.name in by_name:
            raise InvalidDefinition(
                f"interface {d.link.name} is defined twice: in {by_name[d.link.name].link.origin} "
                f"and {d.link.origin}",
                element=d.link.origin,
                hint="check one profile per interface",
            )
        by_name[d.link.name] = d
    # keyfile ports name their controller by interface name, connection id or uuid
    alias: dict[str, str] = {}
    for d in decls:
        for key in (d.uuid, d.conn_id):
            if key:
                alias.setdefault(key, d.link.name)
    extra: dict[str, list[str]] = {}
    for d in decls:
        if d.controller:
            ctl = d.controller if d.controller in by_name else alias.get(d.controller)
            if ctl is None:
                raise InvalidDefinition(
                    f"{d.link.name}'s controller {d.controller!r} is not among these files",
                    element=d.link.origin,
                    hint="pass the bridge's and the bond's files too",
                )
            extra.setdefault(ctl, []).append(d.link.name)
    links: dict[str, Link] = {}
    for name, d in by_name.items():
        ports = tuple(dict.fromkeys(d.link.ports + tuple(sorted(extra.get(name, [])))))
        links[name] = replace(d.link, ports=ports)
    return HostView(links, source=" and ".join(sorted(kinds)))
