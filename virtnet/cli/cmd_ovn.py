"""``virtnet ovn ...``: the same definitions, carried by an OVN northbound database.

``plan`` prints the one ovn-nbctl transaction (against an empty database, or against
``--db`` when given); ``apply`` runs it; ``delete``, ``port-add``, ``port-del`` and ``list``
work on what virtnet put there. Nothing here touches the local host's networking.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

import click
import yaml

from virtnet import ovn
from virtnet.cli.context import settings
from virtnet.errors import InvalidDefinition
from virtnet.loader import load_file
from virtnet.model.network import Network
from virtnet.modes.traits import traits
from virtnet.ovn import chassis as chassis_mod
from virtnet.ovn import names, nbctl, state
from virtnet.ovn.mtu import DEFAULT_UNDERLAY_MTU, OVERHEAD
from virtnet.ovn.nbctl import Command, check_db
from virtnet.ovn.topology import DEFAULT_CHASSIS, DEFAULT_OUTSIDE_SWITCH, OvnOptions


def _options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option(
            "--external-ip",
            "external_ips",
            multiple=True,
            metavar="[NETWORK=]ADDR[/PLEN]",
            help="A nat/route/open network's address on the outside switch (repeatable; "
            "NETWORK= may be left out when one network is given).",
        ),
        click.option(
            "--external-ipv6",
            "external_ipv6s",
            multiple=True,
            metavar="[NETWORK=]ADDR/PLEN",
            help="A nat/route/open network's IPv6 address on the outside switch (repeatable): "
            "its IPv6 subnet is routed out, or SNATed with <nat ipv6='yes'>.",
        ),
        click.option("--outside-subnet", metavar="CIDR", help="The outside network's subnet."),
        click.option(
            "--outside-gateway", metavar="IP", help="Next hop of each router's default route."
        ),
        click.option(
            "--outside-gateway6",
            metavar="IP",
            help="Next hop of each router's IPv6 default route (with --external-ipv6).",
        ),
        click.option(
            "--outside-switch",
            default=DEFAULT_OUTSIDE_SWITCH,
            show_default=True,
            help="Logical switch the gateway ports share.",
        ),
        click.option(
            "--physical-network",
            metavar="NAME",
            help="Give the outside switch a localnet port on this ovn-bridge-mappings network.",
        ),
        click.option(
            "--chassis",
            default=None,
            help="Chassis that hosts the gateway routers (ovn-sbctl list Chassis); apply "
            "needs it (or --sb-db) for nat/route/open networks. plan uses the placeholder "
            f"'{DEFAULT_CHASSIS}' when it is not given.",
        ),
        click.option(
            "--sb-db",
            metavar="CONN",
            help="SB database to find the gateway chassis in when --chassis is not given "
            "(the one with ovn-cms-options=enable-chassis-as-gw, or the only one).",
        ),
        click.option(
            "--underlay-mtu",
            type=int,
            default=DEFAULT_UNDERLAY_MTU,
            show_default=True,
            help="MTU of the network between the chassis; VMs get it less the tunnel's "
            "overhead (DHCP mtu) unless the definition has <mtu>.",
        ),
        click.option(
            "--encap",
            type=click.Choice(sorted(OVERHEAD)),
            default="geneve",
            show_default=True,
            help="The cluster's tunnel type (ovn-encap-type): geneve adds 58 bytes, vxlan 50.",
        ),
        click.option(
            "--dns-server",
            "dns_servers",
            multiple=True,
            metavar="IP",
            help="DHCP dns_server (repeatable; default: the network's gateway address).",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _parse_external(
    values: tuple[str, ...], nets: list[Network], flag: str = "--external-ip"
) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        if "=" in v:
            name, addr = v.split("=", 1)
        elif len(nets) == 1:
            name, addr = nets[0].name, v
        else:
            raise InvalidDefinition(
                f"{flag} {v!r} does not say which network it is for",
                element=flag,
                hint="write NETWORK=ADDR/PLEN when several networks are given",
            )
        out[name] = addr
    return out


def _gateway_chassis(nets: list[Network], kw: dict[str, Any], *, required: bool) -> str:
    """--chassis, else the SB database's gateway chassis (--sb-db), else (plan only) the
    placeholder; apply of a network that needs a gateway refuses to guess."""
    if kw["chassis"]:
        return str(kw["chassis"])
    if kw["sb_db"]:
        return chassis_mod.pick(chassis_mod.read(kw["sb_db"]))
    needs = [n.name for n in nets if traits(n).forwards_out]
    if required and needs:
        raise chassis_mod.required(needs)
    return DEFAULT_CHASSIS


def _build(
    files: tuple[str, ...], kw: dict[str, Any], *, apply: bool = False
) -> tuple[list[Network], OvnOptions]:
    nets = [load_file(f) for f in files]
    opts = OvnOptions(
        external_ips=_parse_external(kw["external_ips"], nets),
        external_ipv6s=_parse_external(kw["external_ipv6s"], nets, "--external-ipv6"),
        outside_gateway6=kw["outside_gateway6"],
        outside_subnet=kw["outside_subnet"],
        outside_gateway=kw["outside_gateway"],
        outside_switch=kw["outside_switch"],
        physical_network=kw["physical_network"],
        chassis=_gateway_chassis(nets, kw, required=apply),
        dns_servers=tuple(kw["dns_servers"]),
        underlay_mtu=kw["underlay_mtu"],
        encap=kw["encap"],
    )
    return nets, opts


def _notes(nets: list[Network], opts: OvnOptions) -> list[str]:
    lines = []
    for n in ovn.translate_all(nets, opts):
        for w in n.warnings:
            click.echo(f"warning: {w}", err=True)
            lines.append(f"# warning: {w}")
        for note in n.notes:
            lines.append(f"# {n.name}: not carried: {note}")
        r = n.router
        if n.mode.value == "route" and r is not None and r.gateway is not None:
            via = r.gateway.address.split("/")[0]
            via6 = r.gateway.address6.split("/")[0] if r.gateway.address6 else None
            for net in r.networks:
                sub = ipaddress.ip_interface(net).network
                hop = via6 if ":" in net else via
                if hop is not None:
                    lines.append(f"# {n.name}: the outside needs a route: {sub} via {hop}")
    return lines


def _echo_commands(ctx: click.Context, cmds: list[Command], db: str | None) -> None:
    if settings(ctx).output == "table":
        click.echo(ovn.format_commands(cmds, db), nl=False)
    else:
        _dump(ctx, {"db": db, "commands": [list(c) for c in cmds]})


def _dump(ctx: click.Context, data: Any) -> None:
    if settings(ctx).output == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
    else:
        click.echo(json.dumps(data, indent=2))


def register(cli: click.Group) -> None:
    @cli.group("ovn")
    def ovn_group() -> None:
        """Carry networks in an OVN northbound database (many hosts instead of one).

        nat, route, open and isolated networks become logical switches with OVN's DHCP, and
        (except isolated) gateway routers on a shared outside switch; bridged and direct
        modes are refused. See docs/ovn.md.
        """

    @ovn_group.command("plan")
    @click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
    @click.option("--db", metavar="CONN", help="Plan against this NB database (read only).")
    @_options
    @click.pass_context
    def plan_cmd(ctx: click.Context, files: tuple[str, ...], db: str | None, **kw: Any) -> None:
        """Print the ovn-nbctl transaction that carries FILES (changes nothing)."""
        nets, opts = _build(files, kw)
        cmds = ovn.plan(nets, opts, check_db(db) if db else None)
        if settings(ctx).output == "table":
            for line in _notes(nets, opts):
                click.echo(line)
            if db is None:
                click.echo("# against an empty database (give --db to plan against yours)")
            if not kw["chassis"] and not kw["sb_db"] and any(
                traits(n).forwards_out for n in nets
            ):
                click.echo(
                    f"# no --chassis: routers name the placeholder '{DEFAULT_CHASSIS}', which "
                    "no chassis carries (apply needs --chassis or --sb-db)"
                )
        _echo_commands(ctx, cmds, db)

    @ovn_group.command("apply")
    @click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
    @click.option("--db", required=True, metavar="CONN", help="NB database, e.g. unix:PATH.")
    @_options
    @click.pass_context
    def apply_cmd(ctx: click.Context, files: tuple[str, ...], db: str, **kw: Any) -> None:
        """Make the NB database carry FILES, in one transaction (all or nothing)."""
        check_db(db)
        nets, opts = _build(files, kw, apply=True)
        cmds = ovn.apply(nets, db, opts)
        if settings(ctx).verbose:
            click.echo(ovn.format_commands(cmds, db), nl=False, err=True)
        for line in _notes(nets, opts):
            click.echo(line)
        click.echo(
            f"applied {len(nets)} network(s) to {db}: {', '.join(n.name for n in nets)} "
            f"({len(cmds)} commands, one transaction)"
        )

    @ovn_group.command("delete")
    @click.argument("name")
    @click.option("--db", required=True, metavar="CONN", help="NB database, e.g. unix:PATH.")
    @click.pass_context
    def delete_cmd(ctx: click.Context, name: str, db: str) -> None:
        """Remove every OVN object of network NAME (its switch, router, ports, DHCP, DNS)."""
        cmds = ovn.delete(name, check_db(db))
        if settings(ctx).verbose:
            click.echo(ovn.format_commands(cmds, db), nl=False, err=True)
        click.echo(f"deleted OVN network '{name}' from {db}")

    @ovn_group.command("port-add")
    @click.argument("network")
    @click.argument("port")
    @click.option("--mac", help="The VM's MAC (a <host> reservation gives it its address).")
    @click.option("--ip", help="A fixed IPv4 address (default: OVN's pool, the DHCP range).")
    @click.option("--db", required=True, metavar="CONN", help="NB database, e.g. unix:PATH.")
    @click.pass_context
    def port_add_cmd(
        ctx: click.Context, network: str, port: str, mac: str | None, ip: str | None, db: str
    ) -> None:
        """Add logical switch port PORT for a VM on NETWORK, served by its DHCP options."""
        cmds = ovn.port_add(network, port, check_db(db), mac=mac, ip=ip)
        if settings(ctx).verbose:
            click.echo(ovn.format_commands(cmds, db), nl=False, err=True)
        addresses = next(c[2] for c in cmds if c[0] == "lsp-set-addresses")
        click.echo(f"port '{port}' on OVN network '{network}': {addresses}")

    @ovn_group.command("port-del")
    @click.argument("network")
    @click.argument("port")
    @click.option("--db", required=True, metavar="CONN", help="NB database, e.g. unix:PATH.")
    def port_del_cmd(network: str, port: str, db: str) -> None:
        """Remove VM port PORT from NETWORK."""
        nbctl.run(check_db(db), ovn.port_delete_commands(network, port, state.read(db)))
        click.echo(f"deleted port '{port}' from OVN network '{network}'")

    @ovn_group.command("list")
    @click.option("--db", required=True, metavar="CONN", help="NB database, e.g. unix:PATH.")
    @click.pass_context
    def list_cmd(ctx: click.Context, db: str) -> None:
        """The networks virtnet put in the NB database, with their VM ports."""
        st = state.read(check_db(db))
        rows: list[dict[str, Any]] = []
        for name, mode in ovn.networks(st).items():
            sw = names.switch(name)
            vm_ports: list[dict[str, Any]] = []
            for p in st.switch_ports.get(sw, []):
                row = st.ports[p]
                if row["type"] == "":
                    dyn = row["dynamic_addresses"]
                    addr = (
                        " ".join(row["addresses"])
                        if isinstance(row["addresses"], list)
                        else row["addresses"]
                    )
                    vm_ports.append({"port": p, "addresses": addr, "dynamic": dyn or None})
            rows.append({"network": name, "mode": mode, "switch": sw, "ports": vm_ports})
        if settings(ctx).output != "table":
            _dump(ctx, rows)
            return
        for r in rows:
            click.echo(f"{r['network']:<20} {r['mode']:<9} {r['switch']}")
            for p in r["ports"]:
                extra = f" (assigned {p['dynamic']})" if p["dynamic"] else ""
                click.echo(f"  port {p['port']}: {p['addresses']}{extra}")
