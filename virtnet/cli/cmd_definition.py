"""Commands on definition files that touch nothing on the host: validate, convert, render.

``render`` prints the dnsmasq files virtnet would write for a network, with the paths under
``--state-dir`` that a real start would use.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import yaml

from virtnet.cli.context import settings
from virtnet.dnsmasq.config import (
    DnsmasqPaths,
    needs_dnsmasq,
    render_addnhosts,
    render_conf,
    render_hostsfile,
)
from virtnet.errors import HostileInput, VirtnetError
from virtnet.loader import FORMATS, MAX_FILE_BYTES, dump, load_file, load_text
from virtnet.model.defaults import fill_defaults
from virtnet.model.network import Network
from virtnet.model.validate import DefinitionProblems, validate


def load(path: str) -> Network:
    """A definition from a file, or from standard input when the path is "-"."""
    if path != "-":
        return load_file(path)
    data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise HostileInput(f"standard input is larger than {MAX_FILE_BYTES} bytes")
    return load_text(data)


def summary(net: Network) -> str:
    """One line that says what the network is: mode, bridge, subnets, DHCP."""
    parts = [net.mode.value]
    if net.bridge_name:
        parts.append(f"bridge {net.bridge_name}")
    if net.forward and net.forward.dev:
        parts.append(f"via {net.forward.dev}")
    for ip in net.ips:
        text = f"{ip.address}/{ip.prefixlen}"
        if ip.dhcp and ip.dhcp.ranges:
            text += " DHCP " + ",".join(f"{r.start}-{r.end}" for r in ip.dhcp.ranges)
        if ip.dhcp and ip.dhcp.hosts:
            text += f" {len(ip.dhcp.hosts)} static host(s)"
        parts.append(text)
    return f"network '{net.name}' ({', '.join(parts)})"


def _error_record(exc: VirtnetError) -> dict[str, Any]:
    items = exc.problems if isinstance(exc, DefinitionProblems) else [exc]
    return {
        "code": exc.code,
        "problems": [
            {"element": p.element, "problem": p.message, "fix": p.hint, "code": p.code}
            for p in items
        ],
    }


def register(cli: click.Group) -> None:
    @cli.command("validate")
    @click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
    @click.pass_context
    def validate_cmd(ctx: click.Context, files: tuple[str, ...]) -> None:
        """Check definition files (libvirt XML or YAML; - reads standard input).

        Each file gets a line: ok and what the network is, or every problem with its fix.
        The exit status is non-zero when any file has problems.
        """
        results: list[dict[str, Any]] = []
        status = 0
        for path in files:
            try:
                net = load(path)
                validate(net)
            except VirtnetError as exc:
                status = max(status, exc.exit_status)
                results.append({"file": path, "ok": False, **_error_record(exc)})
                if settings(ctx).output == "table":
                    click.echo(f"{path}: error: {exc}", err=True)
                continue
            results.append({"file": path, "ok": True, "network": net.name, "mode": net.mode.value})
            if settings(ctx).output == "table":
                click.echo(f"{path}: ok: {summary(net)}")
        out = settings(ctx).output
        if out == "json":
            click.echo(json.dumps(results, indent=2))
        elif out == "yaml":
            click.echo(yaml.safe_dump(results, sort_keys=False), nl=False)
        if status:
            sys.exit(status)

    @cli.command("convert")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--to", "fmt", type=click.Choice(FORMATS), required=True, help="Format to write.")
    def convert_cmd(file: str, fmt: str) -> None:
        """Print a definition in libvirt XML or YAML (the input format is detected; - is stdin)."""
        click.echo(dump(load(file), fmt), nl=False)

    @cli.command("render")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option(
        "--what",
        type=click.Choice(["dnsmasq", "hosts", "addnhosts"]),
        default="dnsmasq",
        show_default=True,
        help="dnsmasq: the configuration; hosts: the DHCP hosts file; addnhosts: DNS hosts.",
    )
    @click.pass_context
    def render_cmd(ctx: click.Context, file: str, what: str) -> None:
        """Print the dnsmasq file virtnet would write for a definition (nothing is started)."""
        net = load(file)
        validate(net)
        if not needs_dnsmasq(net):
            click.echo(
                f"note: network '{net.name}' (mode {net.mode.value}) runs no dnsmasq: "
                + (
                    "it has no <ip>"
                    if net.mode.has_own_bridge
                    else "VMs use the addresses, DHCP and DNS of the network they join"
                ),
                err=True,
            )
            return
        if not net.bridge_name:
            net = fill_defaults(net)
            click.echo(
                f"note: no bridge name given; shown with {net.bridge_name}, the first free "
                "name on a host with no other networks",
                err=True,
            )
        paths = DnsmasqPaths.for_network(settings(ctx).state_dir, net.name)
        if what == "dnsmasq":
            text = render_conf(net, paths) or ""
        elif what == "hosts":
            text = render_hostsfile(net)
        else:
            text = render_addnhosts(net)
        click.echo(text, nl=False)
