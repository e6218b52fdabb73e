"""Write a host bridge for bridged mode, on a bond when asked, that passes the rules.

Three formats: nmstate YAML (one document), NetworkManager keyfiles (one file per connection)
and nmcli commands. Every spec is checked by the same rules as ``virtnet host check`` before
anything is written, so an invalid combination is refused with the same message, and what is
written here is what ``host check`` accepts.

Keyfiles and nmcli use ``master=``/``slave-type=`` rather than the newer ``controller=``/
``port-type=``: every NetworkManager version reads the old names, only >= 1.46 the new ones.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from virtnet.errors import InvalidDefinition
from virtnet.hostcfg.facts import BondSettings, HostView, Link, LinkKind
from virtnet.hostcfg.modes import BondMode, parse_mode
from virtnet.hostcfg.rules import CheckReport, check_view
from virtnet.hostcfg.sysfs import link_kind

FORMATS = ("nmstate", "keyfile", "nmcli")
# Safe in file names, YAML and shell alike; 15 characters is the kernel's limit (IFNAMSIZ-1).
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
# systemd's predictable names for WLAN start with "wl" (wlp2s0, wlo1, wlx...); old ones "wlan"
_WIFI_NAME = re.compile(r"^(wlan\d+|wl[opsx][0-9a-f].*)$")
# A fixed namespace so the same spec always gives the same connection UUIDs.
_UUID_NS = uuid.UUID("5c1b8f3e-2d4a-4b6e-9a51-7e0d3c2b1a90")


def _check_name(name: str, what: str) -> str:
    if not _IFNAME.match(name) or name in (".", ".."):
        raise InvalidDefinition(
            f"{what} name {name!r} is not a valid interface name",
            element=what,
            hint="use 1 to 15 letters, digits, '_', '.', '-', starting with a letter or digit",
        )
    return name


@dataclass(frozen=True)
class BridgeSpec:
    name: str
    uplinks: tuple[str, ...]
    bond_name: str = "bond0"
    bond_mode: BondMode | None = None  # None: no bond for one uplink, active-backup for more
    miimon: int = 100
    arp_interval: int = 0
    ipv4: str = "dhcp"  # dhcp | none | ADDRESS/PREFIX
    gateway: str | None = None

    @property
    def bonded(self) -> bool:
        return len(self.uplinks) > 1 or self.bond_mode is not None

    @property
    def mode(self) -> BondMode:
        return self.bond_mode or parse_mode("active-backup")

    @property
    def bridge_port(self) -> str:
        return self.bond_name if self.bonded else self.uplinks[0]


def make_spec(
    name: str,
    uplinks: str | tuple[str, ...] | list[str],
    *,
    bond_name: str = "bond0",
    bond_mode: str | None = None,
    miimon: int = 100,
    arp_interval: int = 0,
    ipv4: str = "dhcp",
    gateway: str | None = None,
) -> BridgeSpec:
    """Validate the command line's words into a spec (names, addresses, mode)."""
    if isinstance(uplinks, str):
        uplinks = [u for u in (x.strip() for x in uplinks.split(",")) if u]
    ups = tuple(_check_name(u, "uplink") for u in uplinks)
    if not ups:
        raise InvalidDefinition(
            "no uplink given", element="--uplink", hint="name the wired interface(s): --uplink eth1"
        )
    if len(set(ups)) != len(ups):
        raise InvalidDefinition(
            f"uplink listed twice: {','.join(ups)}", element="--uplink", hint="name each once"
        )
    _check_name(name, "bridge")
    _check_name(bond_name, "bond")
    clash = {name, bond_name} & set(ups) if len(ups) > 1 or bond_mode else {name} & set(ups)
    if clash or name == bond_name:
        raise InvalidDefinition(
            "the bridge, the bond and the uplinks need different names "
            f"({', '.join(sorted(clash or {name}))})",
            element="--name/--bond-name/--uplink",
            hint="e.g. --name br0 --bond-name bond0 --uplink eth1,eth2",
        )
    mode = parse_mode(bond_mode, where="--bond-mode") if bond_mode is not None else None
    if miimon < 0 or arp_interval < 0:
        raise InvalidDefinition(
            "miimon and arp_interval are milliseconds, not negative",
            element="--miimon",
            hint="use --miimon 100",
        )
    if ipv4 not in ("dhcp", "none"):
        try:
            iface = ipaddress.IPv4Interface(ipv4)
        except ValueError:
            raise InvalidDefinition(
                f"--ipv4 {ipv4!r} is not dhcp, none or ADDRESS/PREFIX",
                element="--ipv4",
                hint="e.g. --ipv4 192.0.2.10/24 --gateway 192.0.2.1",
            ) from None
        if "/" not in ipv4:
            raise InvalidDefinition(
                f"--ipv4 {ipv4} has no prefix length", element="--ipv4", hint=f"write {iface}"
            )
    if gateway is not None:
        if ipv4 in ("dhcp", "none"):
            raise InvalidDefinition(
                "--gateway needs a static --ipv4 ADDRESS/PREFIX",
                element="--gateway",
                hint="with DHCP the gateway comes from the DHCP server",
            )
        try:
            ipaddress.IPv4Address(gateway)
        except ValueError:
            raise InvalidDefinition(
                f"--gateway {gateway!r} is not an IPv4 address", element="--gateway", hint=""
            ) from None
    return BridgeSpec(name, ups, bond_name, mode, miimon, arp_interval, ipv4, gateway)


def planned_view(spec: BridgeSpec, *, sysfs_root: str | Path | None = "/") -> HostView:
    """The links the spec creates, uplinks classified from sysfs where they exist (and by
    their names), so the rules can judge the result before it is written."""
    links: dict[str, Link] = {}
    for up in spec.uplinks:
        links[up] = Link(up, _uplink_kind(up, sysfs_root), origin="--uplink")
    if spec.bonded:
        settings = BondSettings(spec.mode, spec.miimon, spec.arp_interval)
        links[spec.bond_name] = Link(
            spec.bond_name, LinkKind.BOND, ports=spec.uplinks, bond=settings, origin="--bond-mode"
        )
    links[spec.name] = Link(spec.name, LinkKind.BRIDGE, ports=(spec.bridge_port,), origin="--name")
    return HostView(links, source="the requested host bridge")


def _uplink_kind(name: str, sysfs_root: str | Path | None) -> LinkKind:
    if _WIFI_NAME.match(name):
        return LinkKind.WIRELESS
    if sysfs_root is not None and link_kind(sysfs_root, name) is LinkKind.WIRELESS:
        return LinkKind.WIRELESS
    return LinkKind.ETHERNET


def check_spec(spec: BridgeSpec, *, sysfs_root: str | Path | None = "/") -> CheckReport:
    """The rules on what the spec would create; raises UnsafeHostConfig on any refusal."""
    report = check_view(planned_view(spec, sysfs_root=sysfs_root), [spec.name], require_up=False)
    report.raise_if_refused(can_force=False)
    return report


def _uuid(spec: BridgeSpec, conn: str) -> str:
    return str(uuid.uuid5(_UUID_NS, f"{spec.name}/{conn}"))


def _bond_options(spec: BridgeSpec) -> dict[str, int | str]:
    opts: dict[str, int | str] = {"mode": spec.mode.name, "miimon": spec.miimon}
    if spec.arp_interval:
        opts["arp_interval"] = spec.arp_interval
    return opts


def _port_conn(spec: BridgeSpec, up: str) -> str:
    return f"{spec.bond_name if spec.bonded else spec.name}-port-{up}"


def render_nmstate(spec: BridgeSpec) -> str:
    ifaces: list[dict[str, object]] = []
    if spec.bonded:
        opts = _bond_options(spec)
        mode = opts.pop("mode")
        ifaces.append(
            {
                "name": spec.bond_name,
                "type": "bond",
                "state": "up",
                "ipv4": {"enabled": False},
                "ipv6": {"enabled": False},
                "link-aggregation": {"mode": mode, "options": opts, "port": list(spec.uplinks)},
            }
        )
    for up in spec.uplinks:
        ifaces.append({"name": up, "type": "ethernet", "state": "up"})
    ipv4: dict[str, object]
    if spec.ipv4 == "dhcp":
        ipv4 = {"enabled": True, "dhcp": True}
    elif spec.ipv4 == "none":
        ipv4 = {"enabled": False}
    else:
        iface = ipaddress.IPv4Interface(spec.ipv4)
        ipv4 = {
            "enabled": True,
            "dhcp": False,
            "address": [{"ip": str(iface.ip), "prefix-length": iface.network.prefixlen}],
        }
    ifaces.append(
        {
            "name": spec.name,
            "type": "linux-bridge",
            "state": "up",
            "ipv4": ipv4,
            "bridge": {
                "options": {"stp": {"enabled": False}},
                "port": [{"name": spec.bridge_port}],
            },
        }
    )
    doc: dict[str, object] = {"interfaces": ifaces}
    if spec.gateway:
        doc["routes"] = {
            "config": [
                {
                    "destination": "0.0.0.0/0",
                    "next-hop-address": spec.gateway,
                    "next-hop-interface": spec.name,
                }
            ]
        }
    header = (
        f"# virtnet host bridge: {spec.name} for bridged-mode VMs; "
        "apply with 'nmstatectl apply FILE'\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def _keyfile(sections: list[tuple[str, list[tuple[str, str]]]]) -> str:
    out = []
    for name, items in sections:
        out.append(f"[{name}]")
        out.extend(f"{k}={v}" for k, v in items)
        out.append("")
    return "\n".join(out)


def render_keyfiles(spec: BridgeSpec) -> dict[str, str]:
    """File name -> contents, for /etc/NetworkManager/system-connections (mode 0600)."""
    files: dict[str, str] = {}
    if spec.ipv4 == "dhcp":
        ipv4 = [("method", "auto")]
    elif spec.ipv4 == "none":
        ipv4 = [("method", "disabled")]
    else:
        ipv4 = [
            ("method", "manual"),
            ("address1", spec.ipv4 + (f",{spec.gateway}" if spec.gateway else "")),
        ]
    files[f"{spec.name}.nmconnection"] = _keyfile(
        [
            (
                "connection",
                [
                    ("id", spec.name),
                    ("uuid", _uuid(spec, spec.name)),
                    ("type", "bridge"),
                    ("interface-name", spec.name),
                ],
            ),
            ("bridge", [("stp", "false")]),
            ("ipv4", ipv4),
            ("ipv6", [("method", "auto" if spec.ipv4 == "dhcp" else "disabled")]),
        ]
    )
    if spec.bonded:
        files[f"{spec.bond_name}.nmconnection"] = _keyfile(
            [
                (
                    "connection",
                    [
                        ("id", spec.bond_name),
                        ("uuid", _uuid(spec, spec.bond_name)),
                        ("type", "bond"),
                        ("interface-name", spec.bond_name),
                        ("master", spec.name),
                        ("slave-type", "bridge"),
                    ],
                ),
                ("bond", [(k, str(v)) for k, v in _bond_options(spec).items()]),
            ]
        )
    for up in spec.uplinks:
        conn = _port_conn(spec, up)
        files[f"{conn}.nmconnection"] = _keyfile(
            [
                (
                    "connection",
                    [
                        ("id", conn),
                        ("uuid", _uuid(spec, conn)),
                        ("type", "ethernet"),
                        ("interface-name", up),
                        ("master", spec.bond_name if spec.bonded else spec.name),
                        ("slave-type", "bond" if spec.bonded else "bridge"),
                    ],
                ),
            ]
        )
    return files


def render_nmcli(spec: BridgeSpec) -> str:
    def cmd(*args: str) -> str:
        return " ".join(shlex.quote(a) for a in args)

    lines = [
        f"# virtnet host bridge: {spec.name} for bridged-mode VMs",
        f"# profiles already on {', '.join(spec.uplinks)} keep them until deleted "
        "(nmcli connection show; nmcli connection delete NAME)",
    ]
    ip: list[str]
    if spec.ipv4 == "dhcp":
        ip = ["ipv4.method", "auto", "ipv6.method", "auto"]
    elif spec.ipv4 == "none":
        ip = ["ipv4.method", "disabled", "ipv6.method", "disabled"]
    else:
        ip = ["ipv4.method", "manual", "ipv4.addresses", spec.ipv4]
        if spec.gateway:
            ip += ["ipv4.gateway", spec.gateway]
        ip += ["ipv6.method", "disabled"]
    lines.append(
        cmd(
            "nmcli",
            "connection",
            "add",
            "type",
            "bridge",
            "con-name",
            spec.name,
            "ifname",
            spec.name,
            "bridge.stp",
            "no",
            *ip,
        )
    )
    if spec.bonded:
        opts = ",".join(f"{k}={v}" for k, v in _bond_options(spec).items())
        lines.append(
            cmd(
                "nmcli",
                "connection",
                "add",
                "type",
                "bond",
                "con-name",
                spec.bond_name,
                "ifname",
                spec.bond_name,
                "bond.options",
                opts,
                "master",
                spec.name,
                "slave-type",
                "bridge",
            )
        )
    for up in spec.uplinks:
        lines.append(
            cmd(
                "nmcli",
                "connection",
                "add",
                "type",
                "ethernet",
                "con-name",
                _port_conn(spec, up),
                "ifname",
                up,
                "master",
                spec.bond_name if spec.bonded else spec.name,
                "slave-type",
                "bond" if spec.bonded else "bridge",
            )
        )
    lines.append(cmd("nmcli", "connection", "up", spec.name))
    return "\n".join(lines) + "\n"
