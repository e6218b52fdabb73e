"""The YAML form of a network definition: the same model as libvirt's XML, in plain words.

    name: default
    mode: nat                     # nat | route | open | bridge | isolated | private | ...
    bridge: {name: virbr0, stp: true, delay: 0}
    ips:
      - address: 192.168.122.1
        prefix: 24
        dhcp:
          ranges: [{start: 192.168.122.2, end: 192.168.122.254}]
          hosts: [{mac: "52:54:00:00:00:10", name: vm1, ip: 192.168.122.10}]

Every XML element has a key here, so XML -> YAML -> XML loses nothing. ``mode: isolated``
(or no ``mode`` and no ``forward``) is a network without ``<forward>``; a ``forward`` mapping
without ``mode`` is libvirt's ``<forward/>`` (nat).

Reading is strict and safe: PyYAML's safe loader only, a size limit, no aliases (so no
"billion laughs"), no duplicate keys, and YAML 1.2's plain scalars (``yes``/``on`` stay
strings, ``52:54:00:12:34:56`` is not a base-60 number). An unknown key is refused with its
path and the keys allowed there.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from virtnet.errors import HostileInput, InvalidDefinition
from virtnet.model.network import (
    DHCP,
    DNS,
    Bandwidth,
    BandwidthRate,
    Bootp,
    Bridge,
    DHCPHost,
    DHCPRange,
    DNSForwarder,
    DNSHost,
    DNSSrv,
    DNSTxt,
    Domain,
    Forward,
    ForwardMode,
    IPDef,
    Lease,
    Nat,
    NatAddressRange,
    Network,
    PciAddress,
    PortGroup,
    Route,
    VirtualPort,
    Vlan,
    VlanTag,
)

MAX_BYTES = 1 << 20  # a definition is a few KiB; anything near this is not one
MAX_DEPTH = 40

# --- a strict loader -----------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars, no aliases and no duplicate keys."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise HostileInput(
                "YAML aliases (*name) are not accepted in a definition",
                element=f"line {mark.line + 1}",
                hint="write the value out instead of referring to an anchor",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:  # nesting far beyond any definition
                raise HostileInput("YAML nesting is too deep", hint="this is not a definition")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                raise HostileInput("YAML merge keys (<<) are not accepted", hint="write keys out")
            if not isinstance(key, str | int | bool):
                continue  # not hashable or not a key a definition has; refused later
            if key in seen:
                raise InvalidDefinition(
                    f"duplicate key {key!r}",
                    element=f"line {key_node.start_mark.line + 1}",
                    hint="give each key once",
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 core schema: only true/false, decimal integers and null are not strings.
_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    return int(str(loader.construct_scalar(node)))  # decimal only: no octal, no base 60


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class _Dumper(yaml.SafeDumper):
    """Block style; lists indented under their key; multi-line text as a literal block."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _YAML_BREAKS.search(value):
        # PyYAML would write these raw in a single-quoted scalar, where a reader folds them
        # as line breaks; double quotes escape them (\N, \L, \P).
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    if "\n" in value and value == value.strip() and not _NO_LITERAL.search(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_str(value)


_YAML_BREAKS = re.compile("[\x85\u2028\u2029]")


# Literal blocks cannot carry control characters or trailing spaces faithfully.
_NO_LITERAL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\x85\u2028\u2029]| \n")
_Dumper.add_representer(str, _represent_str)


def read_yaml(text: str) -> Any:
    """Parse YAML text safely into plain data (dicts, lists, str, int, bool, None)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise HostileInput(
            f"the YAML document is larger than {MAX_BYTES} bytes",
            hint="a network definition is a few kilobytes; check the file",
        )
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a strict SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise InvalidDefinition(
            f"not valid YAML: {exc.problem or exc}", element=where, hint="fix the YAML syntax"
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidDefinition(f"not valid YAML: {exc}", hint="fix the YAML syntax") from None
    except RecursionError:
        raise HostileInput("YAML nesting is too deep", hint="this is not a definition") from None


# --- field kinds -------------------------------------------------------------------------


class _Kind:
    def load(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def dump(self, value: Any) -> Any:
        return value

    def empty(self, value: Any) -> bool:
        """True when the model value means "not given" and the key is left out."""
        return value is None


def _bad(path: str, problem: str, fix: str) -> InvalidDefinition:
    return InvalidDefinition(problem, element=path, hint=fix)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false", int: "a number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


class _Str(_Kind):
    def load(self, value: Any, path: str) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # decimal only (see _Loader): "123" and 123 mean the same
        raise _bad(path, f"expected text, got {_type_name(value)}", "give a string (quote it)")


class _Int(_Kind):
    def load(self, value: Any, path: str) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
            return int(value)
        raise _bad(path, f"expected a whole number, got {value!r}", "give a number like 24")


_TRUE = {"yes", "on", "true", "y"}
_FALSE = {"no", "off", "false", "n"}


class _Bool(_Kind):
    def load(self, value: Any, path: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise _bad(path, f"expected true or false, got {value!r}", "give true or false")


class _StrList(_Kind):
    def load(self, value: Any, path: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise _bad(path, f"expected a list, got {_type_name(value)}", "give a list")
        return tuple(_Str().load(v, f"{path}[{i}]") for i, v in enumerate(value))

    def dump(self, value: Any) -> Any:
        return list(value)

    def empty(self, value: Any) -> bool:
        return not value


def _plain_kind(hint: Any) -> _Kind | None:
    """The kind for a simple annotation (``int | None``, ``tuple[str, ...]``...), else None."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    if len(args) == 1 and args[0] in (str, int, bool):
        return {str: _Str(), int: _Int(), bool: _Bool()}[args[0]]
    if typing.get_origin(hint) is tuple and typing.get_args(hint) == (str, ...):
        return _StrList()
    return None


@dataclass
class _Obj(_Kind):
    """A dataclass from a mapping, key by key."""

    cls: type
    fields: Sequence[tuple[str, str, _Kind]]  # (yaml key, dataclass field, kind)
    required: Sequence[str] = ()
    shorthand: Callable[[Any, str], Any] | None = None  # accepts a non-mapping form

    def __post_init__(self) -> None:
        # A model field added later with a plain type gets a key of its own name, so the
        # YAML form stays lossless without an edit here (tests check every field is covered).
        named = {attr for _, attr, _ in self.fields}
        hints = typing.get_type_hints(self.cls)
        extra = [
            (f.name, f.name, kind)
            for f in dataclasses.fields(self.cls)
            if f.name not in named and (kind := _plain_kind(hints[f.name])) is not None
        ]
        self.fields = [*self.fields, *extra]

    def load(self, value: Any, path: str) -> Any:
        if self.shorthand is not None and not isinstance(value, dict):
            return self.shorthand(value, path)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise _bad(path, f"expected a mapping, got {_type_name(value)}", "give key: value")
        keys = [k for k, _, _ in self.fields]
        kwargs: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in keys:
                raise _bad(
                    where,
                    f"unknown key {key!r}",
                    f"allowed keys{' in ' + path if path else ''}: {', '.join(keys)}",
                )
            _, attr, kind = self.fields[keys.index(key)]
            if item is not None:
                kwargs[attr] = kind.load(item, where)
        for key in self.required:
            attr = next(a for k, a, _ in self.fields if k == key)
            if attr not in kwargs:
                where = f"{path}.{key}" if path else key
                raise _bad(where, f"{key} is required", f"give {key}")
        return self.cls(**kwargs)

    def dump(self, value: Any) -> Any:
        out: dict[str, Any] = {}
        for key, attr, kind in self.fields:
            item = getattr(value, attr)
            if not kind.empty(item):
                out[key] = kind.dump(item)
        return out


@dataclass
class _List(_Kind):
    item: _Kind

    def load(self, value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _bad(path, f"expected a list, got {_type_name(value)}", "give a list (- item)")
        return tuple(self.item.load(v, f"{path}[{i}]") for i, v in enumerate(value))

    def dump(self, value: Any) -> Any:
        return [self.item.dump(v) for v in value]

    def empty(self, value: Any) -> bool:
        return not value


class _Lease(_Kind):
    """``lease: 60`` (minutes, libvirt's default unit) or ``lease: {expiry: 1, unit: hours}``."""

    def load(self, value: Any, path: str) -> Lease:
        if value == "infinite":
            return Lease(0)
        if isinstance(value, dict):
            lease = _LEASE_OBJ.load(value, path)
            assert isinstance(lease, Lease)
            return lease
        return Lease(_Int().load(value, path))

    def dump(self, value: Any) -> Any:
        return value.expiry if value.unit is None else _LEASE_OBJ.dump(value)


class _Mode(_Kind):
    def load(self, value: Any, path: str) -> ForwardMode:
        text = _Str().load(value, path)
        try:
            return ForwardMode(text.lower())
        except ValueError:
            raise _bad(
                path,
                f"unknown mode {text!r}",
                f"use one of: {', '.join(m.value for m in ForwardMode)}",
            ) from None


class _Params(_Kind):
    """virtualport parameters: a mapping kept in the order written."""

    def load(self, value: Any, path: str) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            raise _bad(path, f"expected a mapping, got {_type_name(value)}", "give name: value")
        return tuple(
            (_Str().load(k, path), _Str().load(v, f"{path}.{k}")) for k, v in value.items()
        )

    def dump(self, value: Any) -> Any:
        return dict(value)

    def empty(self, value: Any) -> bool:
        return not value


def _domain_shorthand(value: Any, path: str) -> Domain:
    return Domain(name=_Str().load(value, path))


TEXT, NUM, FLAG = _Str(), _Int(), _Bool()
_LEASE_OBJ = _Obj(Lease, [("expiry", "expiry", NUM), ("unit", "unit", TEXT)], required=["expiry"])
LEASE = _Lease()
RATE = _Obj(
    BandwidthRate,
    [
        ("average", "average", NUM),
        ("peak", "peak", NUM),
        ("burst", "burst", NUM),
        ("floor", "floor", NUM),
    ],
)
BANDWIDTH = _Obj(Bandwidth, [("inbound", "inbound", RATE), ("outbound", "outbound", RATE)])
VLAN = _Obj(
    Vlan,
    [
        ("trunk", "trunk", FLAG),
        (
            "tags",
            "tags",
            _List(_Obj(VlanTag, [("id", "id", NUM), ("native_mode", "native_mode", TEXT)], ["id"])),
        ),
    ],
)
VIRTUALPORT = _Obj(VirtualPort, [("type", "type", TEXT), ("parameters", "parameters", _Params())])
NAT = _Obj(
    Nat,
    [
        ("ipv6", "ipv6", FLAG),
        (
            "addresses",
            "addresses",
            _List(
                _Obj(
                    NatAddressRange,
                    [("start", "start", TEXT), ("end", "end", TEXT)],
                    ["start", "end"],
                )
            ),
        ),
        ("port_start", "port_start", NUM),
        ("port_end", "port_end", NUM),
    ],
)
PCI = _Obj(
    PciAddress,
    [
        ("domain", "domain", TEXT),
        ("bus", "bus", TEXT),
        ("slot", "slot", TEXT),
        ("function", "function", TEXT),
        ("type", "type", TEXT),
    ],
    required=["domain", "bus", "slot", "function"],
)


FORWARD = _Obj(
    Forward,
    [
        ("dev", "dev", TEXT),
        ("managed", "managed", FLAG),
        ("driver", "driver_name", TEXT),
        ("nat", "nat", NAT),
        ("interfaces", "interfaces", _StrList()),
        ("pfs", "pfs", _StrList()),
        ("addresses", "addresses", _List(PCI)),
    ],
)
BRIDGE = _Obj(
    Bridge,
    [
        ("name", "name", TEXT),
        ("stp", "stp", FLAG),
        ("delay", "delay", NUM),
        ("mac_table_manager", "mac_table_manager", TEXT),
        ("zone", "zone", TEXT),
    ],
)
DOMAIN = _Obj(
    Domain,
    [("name", "name", TEXT), ("local_only", "local_only", FLAG), ("register", "register", FLAG)],
    required=["name"],
    shorthand=_domain_shorthand,
)
DNS_FORM = _Obj(
    DNS,
    [
        ("enable", "enable", FLAG),
        ("forward_plain_names", "forward_plain_names", FLAG),
        (
            "forwarders",
            "forwarders",
            _List(_Obj(DNSForwarder, [("addr", "addr", TEXT), ("domain", "domain", TEXT)])),
        ),
        (
            "hosts",
            "hosts",
            _List(
                _Obj(DNSHost, [("ip", "ip", TEXT), ("hostnames", "hostnames", _StrList())], ["ip"])
            ),
        ),
        (
            "txt_records",
            "txts",
            _List(
                _Obj(DNSTxt, [("name", "name", TEXT), ("value", "value", TEXT)], ["name", "value"])
            ),
        ),
        (
            "srv_records",
            "srvs",
            _List(
                _Obj(
                    DNSSrv,
                    [
                        ("service", "service", TEXT),
                        ("protocol", "protocol", TEXT),
                        ("domain", "domain", TEXT),
                        ("target", "target", TEXT),
                        ("port", "port", NUM),
                        ("priority", "priority", NUM),
                        ("weight", "weight", NUM),
                    ],
                    ["service", "protocol"],
                )
            ),
        ),
    ],
)
DHCP_FORM = _Obj(
    DHCP,
    [
        (
            "ranges",
            "ranges",
            _List(
                _Obj(
                    DHCPRange,
                    [("start", "start", TEXT), ("end", "end", TEXT), ("lease", "lease", LEASE)],
                    ["start", "end"],
                )
            ),
        ),
        (
            "hosts",
            "hosts",
            _List(
                _Obj(
                    DHCPHost,
                    [
                        ("mac", "mac", TEXT),
                        ("id", "id", TEXT),
                        ("name", "name", TEXT),
                        ("ip", "ip", TEXT),
                        ("lease", "lease", LEASE),
                    ],
                )
            ),
        ),
        (
            "bootp",
            "bootp",
            _Obj(Bootp, [("file", "file", TEXT), ("server", "server", TEXT)], ["file"]),
        ),
    ],
)


class _IP(_Obj):
    """An <ip>; ``address: 192.168.122.1/24`` is accepted as address plus prefix."""

    def load(self, value: Any, path: str) -> Any:
        if isinstance(value, dict) and isinstance(value.get("address"), str):
            addr, sep, plen = value["address"].partition("/")
            if sep and _is_cidr(value["address"]):
                if "prefix" in value or "netmask" in value:
                    raise _bad(
                        f"{path}.address",
                        "the address has /PREFIX and prefix/netmask is given too",
                        "give the prefix once",
                    )
                value = {**value, "address": addr, "prefix": plen}
        return super().load(value, path)


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return True


IP = _IP(
    IPDef,
    [
        ("address", "address", TEXT),
        ("family", "family", TEXT),
        ("netmask", "netmask", TEXT),
        ("prefix", "prefix", NUM),
        ("local_ptr", "local_ptr", FLAG),
        ("tftp_root", "tftp_root", TEXT),
        ("dhcp", "dhcp", DHCP_FORM),
    ],
    required=["address"],
)
ROUTE = _Obj(
    Route,
    [
        ("address", "address", TEXT),
        ("prefix", "prefix", NUM),
        ("netmask", "netmask", TEXT),
        ("gateway", "gateway", TEXT),
        ("family", "family", TEXT),
        ("metric", "metric", NUM),
    ],
    required=["address", "gateway"],
)
PORTGROUP = _Obj(
    PortGroup,
    [
        ("name", "name", TEXT),
        ("default", "default", FLAG),
        ("trust_guest_rx_filters", "trust_guest_rx_filters", FLAG),
        ("vlan", "vlan", VLAN),
        ("virtualport", "virtualport", VIRTUALPORT),
        ("bandwidth", "bandwidth", BANDWIDTH),
    ],
    required=["name"],
)
# Top level, in the order a person reads a definition. "mode" and "forward" are handled apart.
NETWORK_FIELDS: list[tuple[str, str, _Kind]] = [
    ("name", "name", TEXT),
    ("uuid", "uuid", TEXT),
    ("title", "title", TEXT),
    ("description", "description", TEXT),
    ("bridge", "bridge", BRIDGE),
    ("mac", "mac", TEXT),
    ("mtu", "mtu", NUM),
    ("domain", "domain", DOMAIN),
    ("dns", "dns", DNS_FORM),
    ("ips", "ips", _List(IP)),
    ("routes", "routes", _List(ROUTE)),
    ("bandwidth", "bandwidth", BANDWIDTH),
    ("vlan", "vlan", VLAN),
    ("virtualport", "virtualport", VIRTUALPORT),
    ("portgroups", "portgroups", _List(PORTGROUP)),
    ("port_isolated", "port_isolated", FLAG),
    ("ipv6", "ipv6", FLAG),
    ("trust_guest_rx_filters", "trust_guest_rx_filters", FLAG),
    ("dnsmasq_options", "dnsmasq_options", _StrList()),
    ("metadata", "metadata", TEXT),
]
_NETWORK = _Obj(Network, NETWORK_FIELDS, required=["name"])
ALLOWED_TOP = ["name", "mode", "forward"] + [k for k, _, _ in NETWORK_FIELDS[1:]]


# --- public API --------------------------------------------------------------------------


def network_from_data(data: Any) -> Network:
    """A Network from already-parsed YAML/JSON data (a mapping)."""
    if not isinstance(data, dict):
        raise InvalidDefinition(
            f"a definition is a mapping of keys, got {_type_name(data)}",
            hint="start with 'name: NETWORK' and 'mode: nat'",
        )
    data = dict(data)
    mode_given = "mode" in data and data["mode"] is not None
    mode = _Mode().load(data.pop("mode"), "mode") if mode_given else None
    has_forward = "forward" in data
    fwd_data = data.pop("forward", None)
    for key in data:
        if key not in ALLOWED_TOP:
            raise _bad(str(key), f"unknown key {key!r}", f"allowed keys: {', '.join(ALLOWED_TOP)}")
    net = _NETWORK.load(data, "")
    assert isinstance(net, Network)
    forward: Forward | None = None
    if mode is ForwardMode.ISOLATED:
        if fwd_data:
            raise _bad(
                "forward",
                "an isolated network has no forwarding options",
                "remove 'forward', or choose another mode",
            )
    elif mode is not None or has_forward:
        loaded = FORWARD.load(fwd_data, "forward")
        assert isinstance(loaded, Forward)
        forward = dataclasses.replace(
            loaded, mode=mode or ForwardMode.NAT, mode_given=mode is not None
        )
    return dataclasses.replace(net, forward=forward)


def network_to_data(net: Network) -> dict[str, Any]:
    """The YAML form of ``net`` as plain data, keys in reading order."""
    body = _NETWORK.dump(net)
    out: dict[str, Any] = {
        k: body.pop(k) for k in ("name", "uuid", "title", "description") if k in body
    }
    fwd = net.forward
    if fwd is None:
        out["mode"] = ForwardMode.ISOLATED.value
    else:
        if fwd.mode_given:
            out["mode"] = fwd.mode.value
        fwd_body = FORWARD.dump(fwd)
        if fwd_body or not fwd.mode_given:
            out["forward"] = fwd_body
    if net.domain is not None and set(body["domain"]) == {"name"}:
        body["domain"] = net.domain.name  # the short form: domain: example.com
    out.update(body)
    return out


def load_yaml(text: str) -> Network:
    """Parse a YAML definition (untrusted) into a Network."""
    return network_from_data(read_yaml(text))


def dump_yaml(net: Network) -> str:
    """``net`` as a YAML definition that load_yaml reads back to the same Network."""
    return yaml.dump(
        network_to_data(net),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
