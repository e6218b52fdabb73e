"""virsh's ``net-*`` verbs (same names, arguments and meanings), VM ports, ``autostart`` and
shell completion. Each command parses, calls virtnet.service, and prints."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

from virtnet.cli import output
from virtnet.cli.context import make_settings, settings
from virtnet.errors import InvalidDefinition, NotFound, VirtnetError
from virtnet.host.leases import DhcpLease
from virtnet.libvirtxml import parse_network
from virtnet.loader import load_file
from virtnet.model.network import Network
from virtnet.service import NetworkInfo, Service
from virtnet.store import Store


@contextlib.contextmanager
def open_service(ctx: click.Context, *, offer_default: bool = True) -> Iterator[Service]:
    """The Service for the global options; on a state directory's first use, libvirt's
    ``default`` network is defined (and the user told)."""
    s = settings(ctx)
    svc = Service(s.state_dir, s.netns, log=output.verbose(ctx) if s.verbose else None)
    try:
        if offer_default:
            message = svc.ensure_default_network()
            if message:
                click.echo(f"note: {message}", err=True)
        yield svc
    finally:
        svc.close()


def load_definition(path: str) -> Network:
    """A network from a libvirt XML or YAML file."""
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"file {path} does not exist or is not a regular file",
                       hint="give the path of a network definition (XML or YAML)")
    return load_file(p)


def _complete_network(ctx: click.Context, param: click.Parameter, incomplete: str
                      ) -> list[CompletionItem]:
    """Network names for shell completion (read-only: no default network is offered)."""
    try:
        params = ctx.find_root().params
        s = make_settings(params.get("state_dir"), params.get("netns"), "table", False)
        if not (s.state_dir / "virtnet.db").exists():
            return []
        with Store(s.state_dir) as st:
            names = [d.name for d in st.list_definitions()]
    except Exception:
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def network_argument(name: str = "network") -> Any:
    return click.argument(name, metavar="NETWORK", shell_complete=_complete_network)


_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


def _yesno(flag: bool) -> str:
    return "yes" if flag else "no"


def register(cli: click.Group) -> None:  # noqa: C901 - one flat list of commands
    # -- define / undefine / create --------------------------------------------------------

    @cli.command("net-define")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.pass_context
    def net_define(ctx: click.Context, file: str) -> None:
        """Define (but do not start) a persistent network from an XML or YAML FILE.

        Redefining a running network changes its stored definition; the running one keeps
        its old definition until it is restarted.

        Example: virtnet net-define examples/nat.xml
        """
        net = load_definition(file)
        with open_service(ctx) as svc:
            net = svc.define(net)
            output.emit(ctx, {"name": net.name, "uuid": net.uuid, "defined": True},
                        lambda: f"Network {net.name} defined from {file}\n\n")

    @cli.command("net-undefine")
    @network_argument()
    @click.pass_context
    def net_undefine(ctx: click.Context, network: str) -> None:
        """Remove a persistent network's definition. A running network keeps running as a
        transient one until net-destroy.

        Example: virtnet net-undefine lab
        """
        with open_service(ctx) as svc:
            name = svc.resolve(network)
            running = svc.undefine(name)
            output.emit(ctx, {"name": name, "undefined": True, "still_running": running},
                        lambda: f"Network {name} has been undefined\n\n")

    @cli.command("net-create")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.pass_context
    def net_create(ctx: click.Context, file: str) -> None:
        """Create and start a transient network from FILE (forgotten once destroyed).

        Example: virtnet net-create /tmp/scratch.xml
        """
        net = load_definition(file)
        with open_service(ctx) as svc:
            report = svc.create(net)
            for m in report.messages:
                output.note(ctx, m)
            output.emit(ctx, {"name": report.name, "bridge": report.bridge, "started": True},
                        lambda: f"Network {report.name} created from {file}\n\n")

    # -- start / destroy -------------------------------------------------------------------

    @cli.command("net-start")
    @network_argument()
    @click.option("--force", is_flag=True,
                  help="Bridged mode: start even if the host bridge's bond/uplink is unsafe.")
    @click.pass_context
    def net_start(ctx: click.Context, network: str, force: bool) -> None:
        """Start a defined (inactive) network.

        Example: virtnet net-start default
        """
        with open_service(ctx) as svc:
            report = svc.start(network, force=force)
            for m in report.messages:
                output.note(ctx, m)
            output.emit(ctx, {"name": report.name, "bridge": report.bridge, "started": True,
                              "seconds": round(report.seconds, 4)},
                        lambda: f"Network {report.name} started\n\n")

    @cli.command("net-destroy")
    @network_argument()
    @click.pass_context
    def net_destroy(ctx: click.Context, network: str) -> None:
        """Stop an active network: its bridge, ports, rules and dnsmasq go away (a
        transient network is forgotten).

        Example: virtnet net-destroy default
        """
        with open_service(ctx) as svc:
            name = svc.resolve(network)
            svc.destroy(name)
            output.emit(ctx, {"name": name, "destroyed": True},
                        lambda: f"Network {name} destroyed\n\n")

    # -- listing and inspection ------------------------------------------------------------

    @cli.command("net-list")
    @click.option("--all", "all_", is_flag=True, help="Active and inactive networks.")
    @click.option("--inactive", is_flag=True, help="Only inactive networks.")
    @click.option("--persistent", is_flag=True, help="Only persistent networks.")
    @click.option("--transient", is_flag=True, help="Only transient networks.")
    @click.option("--autostart", is_flag=True, help="Only networks with autostart on.")
    @click.option("--no-autostart", is_flag=True, help="Only networks with autostart off.")
    @click.option("--name", "names", is_flag=True, help="Print only the names.")
    @click.option("--uuid", "uuids", is_flag=True, help="Print only the UUIDs.")
    @click.option("--table", is_flag=True, help="The table (the default; as virsh accepts).")
    @click.pass_context
    def net_list(ctx: click.Context, all_: bool, inactive: bool, persistent: bool,
                 transient: bool, autostart: bool, no_autostart: bool, names: bool,
                 uuids: bool, table: bool) -> None:
        """List networks (by default the active ones), as virsh net-list.

        Example: virtnet net-list --all
        """
        with open_service(ctx) as svc:
            nets = svc.list_networks()
        nets = filter_networks(nets, all_=all_, inactive=inactive, persistent=persistent,
                               transient=transient, autostart=autostart,
                               no_autostart=no_autostart)
        if table and (names or uuids):
            raise click.UsageError("--table cannot be combined with --name or --uuid")
        output.emit(ctx, [n.as_dict() for n in nets],
                    lambda: render_list(nets, names=names, uuids=uuids))

    @cli.command("net-info")
    @network_argument()
    @click.pass_context
    def net_info(ctx: click.Context, network: str) -> None:
        """Basic information about a network.

        Example: virtnet net-info default
        """
        with open_service(ctx) as svc:
            info = svc.info(network)
        output.emit(ctx, info.as_dict(), lambda: render_info(info))

    @cli.command("net-uuid")
    @network_argument()
    @click.pass_context
    def net_uuid(ctx: click.Context, network: str) -> None:
        """Print a network's UUID.

        Example: virtnet net-uuid default
        """
        with open_service(ctx) as svc:
            info = svc.info(network)
        output.emit(ctx, {"name": info.name, "uuid": info.uuid}, lambda: f"{info.uuid}\n\n")

    @cli.command("net-name")
    @click.argument("uuid", metavar="UUID")
    @click.pass_context
    def net_name(ctx: click.Context, uuid: str) -> None:
        """Print the name of the network with this UUID.

        Example: virtnet net-name 3e3fce45-4f53-4fa7-bb32-11f34168b82b
        """
        with open_service(ctx) as svc:
            stored = svc.store.get_definition_by_uuid(uuid)
            if stored is None:
                raise NotFound(f"network not found: no network with matching uuid '{uuid}'",
                               hint="'virtnet net-list --all --uuid' lists the UUIDs")
        output.emit(ctx, {"name": stored.name, "uuid": stored.uuid},
                    lambda: f"{stored.name}\n\n")

    @cli.command("net-dumpxml")
    @network_argument()
    @click.option("--inactive", is_flag=True,
                  help="The persistent definition, not the running one.")
    @click.pass_context
    def net_dumpxml(ctx: click.Context, network: str, inactive: bool) -> None:
        """Print a network's definition as libvirt XML (the running one when active).

        Example: virtnet net-dumpxml --inactive default
        """
        with open_service(ctx) as svc:
            xml = svc.dumpxml(network, inactive=inactive)
        output.emit(ctx, {"xml": xml}, lambda: xml + "\n")

    @cli.command("net-edit")
    @network_argument()
    @click.pass_context
    def net_edit(ctx: click.Context, network: str) -> None:
        """Edit a network's persistent definition in $EDITOR (validated before it is
        saved; on an error you are asked whether to edit again).

        Example: EDITOR=vi virtnet net-edit default
        """
        with open_service(ctx) as svc:
            name = svc.resolve(network)
            try:
                original = svc.dumpxml(name, inactive=True)
            except InvalidDefinition:
                # A stored definition this virtnet cannot read: edit its text as stored.
                stored = svc.store.get_definition(name)
                if stored is None:
                    raise
                original = stored.xml
            text = original
            while True:
                edited = click.edit(text, extension=".xml", require_save=True)
                if edited is None or edited == original:
                    click.echo(f"Network {name} XML configuration not changed.\n")
                    return
                text = edited
                try:
                    net = svc.define(parse_network(edited))
                except VirtnetError as exc:
                    click.echo(f"error: {exc}", err=True)
                    if not click.confirm("Failed. Try again?", default=True, err=True):
                        raise InvalidDefinition(
                            f"network {name}: edited definition refused; nothing changed",
                            hint="run net-edit again",
                        ) from None
                    continue
                click.echo(f"Network {net.name} XML configuration edited.\n")
                return

    @cli.command("net-autostart")
    @network_argument()
    @click.option("--disable", is_flag=True, help="Turn autostart off.")
    @click.pass_context
    def net_autostart(ctx: click.Context, network: str, disable: bool) -> None:
        """Mark a persistent network to be started by 'virtnet autostart' (at boot).

        Example: virtnet net-autostart lab
        """
        with open_service(ctx) as svc:
            name = svc.resolve(network)
            svc.set_autostart(name, not disable)
        word = "unmarked" if disable else "marked"
        output.emit(ctx, {"name": name, "autostart": not disable},
                    lambda: f"Network {name} {word} as autostarted\n\n")

    @cli.command("net-dhcp-leases")
    @network_argument()
    @click.option("--mac", metavar="MAC", help="Only the leases of this MAC address.")
    @click.pass_context
    def net_dhcp_leases(ctx: click.Context, network: str, mac: str | None) -> None:
        """Print the DHCP leases dnsmasq has handed out on a network.

        Example: virtnet net-dhcp-leases default --mac 52:54:00:12:34:56
        """
        if mac is not None and not _MAC.match(mac):
            raise InvalidDefinition(f"--mac {mac!r} is not a MAC address",
                                    hint="write it as 52:54:00:xx:xx:xx")
        with open_service(ctx) as svc:
            leases = svc.leases(network, mac)
            net = svc.definition(network)
        rows = [lease_row(lease, net) for lease in leases]
        output.emit(ctx, rows, lambda: render_leases(rows))

    @cli.command("net-update")
    @network_argument()
    @click.argument("command", metavar="COMMAND", type=click.Choice(
        ["add", "add-first", "add-last", "delete", "modify"]))
    @click.argument("section", metavar="SECTION", type=click.Choice(
        ["ip-dhcp-host", "ip-dhcp-range", "dns-host", "dns-txt", "dns-srv", "portgroup",
         "forward-interface", "bridge", "domain", "ip", "forward", "forward-pf"]))
    @click.argument("xml", metavar="XML")
    @click.option("--parent-index", type=int, default=-1, show_default=False,
                  help="Which <ip> (0-based) an ip-dhcp-* change applies to.")
    @click.option("--live", is_flag=True, help="Change the running network.")
    @click.option("--config", is_flag=True, help="Change the persistent definition.")
    @click.option("--current", is_flag=True,
                  help="The running network if active, else the definition (default).")
    @click.pass_context
    def net_update(ctx: click.Context, network: str, command: str, section: str, xml: str,
                   parent_index: int, live: bool, config: bool, current: bool) -> None:
        """Change one section of a network, as virsh net-update: XML is an element (or a
        file holding one). A live DHCP host change reaches dnsmasq without a restart.

        Example: virtnet net-update default add ip-dhcp-host
        "<host mac='52:54:00:00:00:01' ip='192.168.122.10'/>" --live --config
        """
        if current and (live or config):
            raise click.UsageError("--current cannot be combined with --live or --config")
        if not xml.lstrip().startswith("<"):
            path = Path(xml)
            if not path.is_file():
                raise NotFound(f"XML argument {xml!r} is neither an element nor a file",
                               hint="give the element itself (starting with '<') or a file")
            try:
                xml = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidDefinition(f"cannot read XML file {xml}: {exc}",
                                        hint="give a readable UTF-8 file") from None
        with open_service(ctx) as svc:
            name = svc.resolve(network)
            result = svc.update(name, command, section, xml, parent_index=parent_index,
                                live=live, config=config)
        what = " and ".join(w for w, on in (("live state", result.live),
                                             ("persistent config", result.config)) if on)
        output.emit(ctx, {"name": name, "live": result.live, "config": result.config,
                          "effect": result.effect},
                    lambda: f"Updated network {name} {what}\n\n")

    # -- ports -----------------------------------------------------------------------------

    @cli.command("port-add")
    @network_argument()
    @click.option("--kind", type=click.Choice(["veth", "tap"]), default="veth",
                  show_default=True, help="veth: far end in --peer-netns; tap: for QEMU.")
    @click.option("--name", metavar="DEV", help="Host-side device name (default generated).")
    @click.option("--peer-netns", metavar="NS", help="Namespace that gets the veth's far end.")
    @click.option("--peer-name", metavar="DEV", default="eth0", show_default=True,
                  help="Name of the far end inside --peer-netns.")
    @click.option("--mac", metavar="MAC", help="MAC address of the VM side.")
    @click.option("--owner", metavar="USER|UID",
                  help="tap: the user that may attach (e.g. QEMU's); default root only.")
    @click.option("--group", metavar="GROUP|GID", help="tap: the group that may attach.")
    @click.pass_context
    def port_add(ctx: click.Context, network: str, kind: str, name: str | None,
                 peer_netns: str | None, peer_name: str, mac: str | None,
                 owner: str | None, group: str | None) -> None:
        """Attach a VM endpoint to an active network's bridge.

        Example: virtnet port-add default --peer-netns vm1 --mac 52:54:00:00:00:01
        """
        with open_service(ctx) as svc:
            port = svc.add_port(network, kind=kind, name=name, peer_netns=peer_netns,
                                peer_name=peer_name, mac=mac, owner=owner, group=group)
        output.emit(ctx, port_dict(port), lambda: f"Port {port.name} added to network "
                    f"{port.network}\n\n")

    @cli.command("port-list")
    @network_argument()
    @click.pass_context
    def port_list(ctx: click.Context, network: str) -> None:
        """List the ports attached to an active network.

        Example: virtnet port-list default
        """
        with open_service(ctx) as svc:
            ports = svc.list_ports(network)
        rows = [port_dict(p) for p in ports]
        output.emit(ctx, rows, lambda: output.table(
            ["Port", "Kind", "MAC address", "Peer", "Owner", "Group"],
            [[r["name"], r["kind"], r["mac"] or "-",
              f"{r['peer_netns']}/{r['peer_name']}" if r["peer_netns"] else "-",
              _id_cell(r.get("owner")), _id_cell(r.get("group"), group=True)]
             for r in rows]) + "\n")

    @cli.command("port-delete")
    @network_argument()
    @click.argument("port", metavar="PORT")
    @click.pass_context
    def port_delete(ctx: click.Context, network: str, port: str) -> None:
        """Remove a port from a network.

        Example: virtnet port-delete default vnet0
        """
        with open_service(ctx) as svc:
            name = svc.resolve(network)
            svc.delete_port(name, port)
        output.emit(ctx, {"network": name, "port": port, "deleted": True},
                    lambda: f"Port {port} deleted from network {name}\n\n")

    # -- boot and shell --------------------------------------------------------------------

    @cli.command("autostart")
    @click.pass_context
    def autostart(ctx: click.Context) -> None:
        """Start every network marked autostart that is not running (run at boot by
        contrib/virtnet-autostart.service). Exits non-zero if any failed to start.

        Example: virtnet autostart
        """
        with open_service(ctx) as svc:
            results = svc.autostart_all()
        data = [{"name": n, "started": err is None, "error": err} for n, err in results]
        output.emit(ctx, data, lambda: "".join(
            f"Network {n} started\n" if err is None else f"Network {n} failed to start: "
            f"{err}\n" for n, err in results) or "No autostart network to start\n")
        failed = [n for n, err in results if err is not None]
        if failed:
            raise VirtnetError(f"{len(failed)} autostart network(s) failed: "
                               f"{', '.join(failed)}", hint="see the messages above")

    @cli.command("completion")
    @click.argument("shell", type=click.Choice(["bash", "zsh"]))
    @click.pass_context
    def completion(ctx: click.Context, shell: str) -> None:
        """Print a shell completion script. Load it with
        eval "$(virtnet completion bash)" (or zsh), or save it in your completion directory.

        Example: virtnet completion bash > /etc/bash_completion.d/virtnet
        """
        cls = get_completion_class(shell)
        assert cls is not None
        root = ctx.find_root().command
        click.echo(cls(root, {}, "virtnet", "_VIRTNET_COMPLETE").source())


# -- rendering (pure, tested by golden files) ------------------------------------------------


def filter_networks(nets: list[NetworkInfo], *, all_: bool = False, inactive: bool = False,
                    persistent: bool = False, transient: bool = False, autostart: bool = False,
                    no_autostart: bool = False) -> list[NetworkInfo]:
    """virsh net-list's filters: active only unless --all/--inactive; the others narrow."""
    out = []
    for n in nets:
        if inactive and not all_ and n.active:
            continue
        if not inactive and not all_ and not n.active:
            continue
        if persistent != transient and n.persistent != persistent:
            continue
        if autostart != no_autostart and n.autostart != autostart:
            continue
        out.append(n)
    return out


def render_list(nets: list[NetworkInfo], *, names: bool = False, uuids: bool = False) -> str:
    if names and uuids:
        return "".join(f"{n.uuid}  {n.name}\n" for n in nets) + "\n"
    if names:
        return "".join(f"{n.name}\n" for n in nets) + "\n"
    if uuids:
        return "".join(f"{n.uuid}\n" for n in nets) + "\n"
    return output.table(
        ["Name", "State", "Autostart", "Persistent"],
        [[n.name, "active" if n.active else "inactive", _yesno(n.autostart),
          _yesno(n.persistent)] for n in nets],
    ) + "\n"


def render_info(info: NetworkInfo) -> str:
    return output.fields([
        ("Name", info.name),
        ("UUID", info.uuid),
        ("Active", _yesno(info.active)),
        ("Persistent", _yesno(info.persistent)),
        ("Autostart", _yesno(info.autostart)),
        ("Bridge", info.bridge or ""),
    ]) + "\n"


def lease_row(lease: DhcpLease, net: Network) -> dict[str, Any]:
    addr = ipaddress.ip_address(lease.ip)
    prefix = 64 if addr.version == 6 else 24
    for ip in net.ips:
        if ip.network.version == addr.version and addr in ip.network:
            prefix = ip.prefixlen
            break
    return {
        "expiry": lease.expiry,
        "expiry_time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lease.expiry)),
        "mac": lease.mac,
        "protocol": f"ipv{addr.version}",
        "ip": lease.ip,
        "prefix": prefix,
        "hostname": lease.hostname,
        "client_id": lease.client_id,
        "iaid": lease.iaid,
    }


def render_leases(rows: list[dict[str, Any]]) -> str:
    return output.table(
        ["Expiry Time", "MAC address", "Protocol", "IP address", "Hostname",
         "Client ID or DUID"],
        [[r["expiry_time"], r["mac"] or "-", r["protocol"], f"{r['ip']}/{r['prefix']}",
          r["hostname"] or "-", r["client_id"] or "-"] for r in rows],
    ) + "\n"


def port_dict(port: Any) -> dict[str, Any]:
    return {
        "name": port.name,
        "network": port.network,
        "kind": port.kind,
        "bridge": port.bridge,
        "mac": port.mac,
        "peer_netns": port.peer_netns,
        "peer_name": port.peer_name,
        "owner": getattr(port, "owner", None),
        "group": getattr(port, "group", None),
    }


def _id_cell(value: int | None, *, group: bool = False) -> str:
    """A tap's owner/group as a name where the host knows one (uid 0 -> root)."""
    import grp
    import pwd

    if value is None:
        return "-"
    try:
        return grp.getgrgid(value).gr_name if group else pwd.getpwuid(value).pw_name
    except KeyError:
        return str(value)
