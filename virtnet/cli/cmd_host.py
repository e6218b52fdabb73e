"""``virtnet host``: check a host's bridges, bonds and uplinks for bridged mode, and write
host configuration (nmstate, NetworkManager keyfiles, nmcli) for a bridge that passes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import yaml

from virtnet.cli.context import settings
from virtnet.errors import Conflict, InvalidDefinition, UnsafeHostConfig
from virtnet.hostcfg import (
    CheckReport,
    Severity,
    check_spec,
    check_view,
    make_spec,
    read_files,
    read_sysfs,
    render_keyfiles,
    render_nmcli,
    render_nmstate,
)
from virtnet.hostcfg.generate import FORMATS
from virtnet.hostcfg.iplink import read_live

_LABEL = {Severity.OK: "ok", Severity.WARNING: "WARNING", Severity.REFUSED: "REFUSED"}


def _print_report(report: CheckReport, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(report.to_dict(), sort_keys=False), nl=False)
        return
    click.echo(f"checked: {report.source}")
    current: object = ()
    for v in report.verdicts:
        if v.bridge != current:
            current = v.bridge
            click.echo(f"bridge {v.bridge}:" if v.bridge else "bonds under no bridge:")
        label = "WARNING (forced)" if v.forced else _LABEL[v.severity]
        click.echo(f"  {label:8} {v.uplink}: {v.message}")
        if v.fix and v.severity is not Severity.OK:
            click.echo(f"  {'':8} fix: {v.fix}")
    n_ref, n_warn = len(report.refused), len(report.warnings)
    if n_ref:
        tail = "; --force to go ahead" if report.forceable else ""
        click.echo(f"result: refused ({n_ref} refusal(s), {n_warn} warning(s)){tail}")
    else:
        click.echo(f"result: ok ({n_warn} warning(s))")


def register(cli: click.Group) -> None:
    @cli.group("host")
    def host() -> None:
        """The host side of bridged mode: bridges, bonds, uplinks."""

    @host.command("check")
    @click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--sysfs-root",
        metavar="DIR",
        help="Check the live host whose sys/ and proc/ are under DIR (default / when no FILES).",
    )
    @click.option("--bridge", "bridges", multiple=True, metavar="NAME", help="Only this bridge.")
    @click.option("--force", is_flag=True, help="Report refusals as warnings; exit 0.")
    @click.pass_context
    def check(
        ctx: click.Context,
        files: tuple[Path, ...],
        sysfs_root: str | None,
        bridges: tuple[str, ...],
        force: bool,
    ) -> None:
        """Apply the bridged-mode rules to NetworkManager keyfiles / nmstate FILES, or to a
        live host (sysfs, or with --netns that namespace's links). Bond modes 1, 2, 4 with
        MII monitoring pass; modes 0, 3, 5, 6, ARP monitoring, no monitoring and Wi-Fi
        uplinks are refused (exit status 9)."""
        if files and sysfs_root:
            raise InvalidDefinition(
                "give FILES or --sysfs-root, not both",
                element="host check",
                hint="check configuration files and the live host in two runs",
            )
        netns = settings(ctx).netns
        if files:
            view = read_files(files)
        elif netns and not sysfs_root:
            view = read_live(netns)  # that namespace's links, over netlink
        else:
            view = read_sysfs(sysfs_root or "/")
        if not bridges and not view.bridges() and not view.bonds():
            raise InvalidDefinition(
                f"no bridge and no bond found ({view.source})",
                element="host check",
                hint="create the bridge first (virtnet host bridge ...) or name it with --bridge",
            )
        report = check_view(view, list(bridges) or None, force=force)
        _print_report(report, settings(ctx).output)
        if report.refused:
            ctx.exit(UnsafeHostConfig.exit_status)

    @host.command("bridge")
    @click.option("--name", required=True, metavar="BRIDGE", help="The bridge, e.g. br0.")
    @click.option(
        "--uplink", required=True, metavar="IF[,IF]", help="Wired interface(s); 2+ make a bond."
    )
    @click.option(
        "--bond-mode",
        metavar="MODE",
        help="active-backup (default), balance-xor, 802.3ad or 1/2/4.",
    )
    @click.option("--bond-name", default="bond0", show_default=True, metavar="NAME")
    @click.option("--miimon", default=100, show_default=True, type=int, metavar="MS")
    @click.option(
        "--arp-interval",
        default=0,
        show_default=True,
        type=int,
        metavar="MS",
        help="ARP monitoring; refused behind a bridge, kept for a clear message.",
    )
    @click.option(
        "--ipv4",
        default="dhcp",
        show_default=True,
        metavar="dhcp|none|ADDR/PREFIX",
        help="The host's own address on the bridge.",
    )
    @click.option("--gateway", metavar="ADDR", help="Default gateway with a static --ipv4.")
    @click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="nmstate", show_default=True
    )
    @click.option(
        "--dir",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Write the file(s) into DIR instead of printing them.",
    )
    @click.option(
        "--sysfs-root",
        default="/",
        show_default=True,
        metavar="DIR",
        help="Where to look up whether an uplink is Wi-Fi.",
    )
    def bridge(
        name: str,
        uplink: str,
        bond_mode: str | None,
        bond_name: str,
        miimon: int,
        arp_interval: int,
        ipv4: str,
        gateway: str | None,
        fmt: str,
        out_dir: Path | None,
        sysfs_root: str,
    ) -> None:
        """Write host configuration for bridge NAME on UPLINK(s) that passes 'host check'."""
        spec = make_spec(
            name,
            uplink,
            bond_name=bond_name,
            bond_mode=bond_mode,
            miimon=miimon,
            arp_interval=arp_interval,
            ipv4=ipv4,
            gateway=gateway,
        )
        check_spec(spec, sysfs_root=sysfs_root)
        if fmt == "keyfile":
            files = render_keyfiles(spec)
        elif fmt == "nmstate":
            files = {f"{spec.name}.yml": render_nmstate(spec)}
        else:
            files = {f"{spec.name}-nmcli.sh": render_nmcli(spec)}
        if out_dir is None:
            for i, (fname, text) in enumerate(files.items()):
                if len(files) > 1:
                    click.echo(("\n" if i else "") + f"# ---- {fname} ----")
                click.echo(text, nl=False)
            return
        _write_files(out_dir, files, secret=fmt == "keyfile")
        for fname in files:
            click.echo(str(out_dir / fname))


def _write_files(out_dir: Path, files: dict[str, str], *, secret: bool) -> None:
    """All or nothing: refuse if any target exists, then write each (0600 for keyfiles:
    NetworkManager ignores keyfiles that others can read)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    taken = [f for f in files if (out_dir / f).exists()]
    if taken:
        raise Conflict(
            f"{', '.join(taken)} already exist(s) in {out_dir}",
            element="--dir",
            hint="remove them or choose another --dir",
        )
    for fname, text in files.items():
        path = out_dir / fname
        mode = 0o600 if secret else (0o755 if fname.endswith(".sh") else 0o644)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
