"""``virtnet apply`` / ``virtnet plan`` (declarative, many networks at once) and
``virtnet import`` (take over libvirt's definitions)."""

from __future__ import annotations

from pathlib import Path

import click

from virtnet import importer
from virtnet.cli import output
from virtnet.cli.cmd_lifecycle import open_service
from virtnet.declarative import Declarative, load_sources
from virtnet.errors import VirtnetError


def register(cli: click.Group) -> None:
    @cli.command("plan")
    @click.option("-f", "--file", "files", multiple=True, required=True, metavar="FILE|DIR",
                  help="Definition file, or directory of *.xml/*.yaml files (repeatable).")
    @click.option("--prune", is_flag=True,
                  help="Also show networks made by apply that the files no longer name.")
    @click.pass_context
    def plan(ctx: click.Context, files: tuple[str, ...], prune: bool) -> None:
        """Show what 'apply' would change (networks added, changed, started, removed, and
        under each the bridge, address, sysctl, dnsmasq and nftables changes). Changes
        nothing.

        Example: virtnet plan -f networks/
        """
        sources = load_sources(files)
        with open_service(ctx, offer_default=False) as svc:
            result = Declarative(svc).plan(sources, prune=prune)
        output.emit(ctx, result.as_dict(), result.render)

    @cli.command("apply")
    @click.option("-f", "--file", "files", multiple=True, required=True, metavar="FILE|DIR",
                  help="Definition file, or directory of *.xml/*.yaml files (repeatable).")
    @click.option("--prune", is_flag=True,
                  help="Remove networks made by an earlier apply that the files no longer "
                  "name.")
    @click.pass_context
    def apply(ctx: click.Context, files: tuple[str, ...], prune: bool) -> None:
        """Make the host run exactly the networks in the files: define them (persistent,
        autostart), start new ones, change running ones, and with --prune remove the ones
        an earlier apply made. All or nothing: if one network fails, the others are left as
        they were.

        Example: virtnet apply -f networks/ --prune
        """
        sources = load_sources(files)
        with open_service(ctx) as svc:
            result = Declarative(svc).apply(sources, prune=prune)
        for m in result.messages:
            output.note(ctx, m)
        data = {
            "networks": [{"name": n, "result": what} for n, what in result.done],
            "summary": result.plan.counts(),
        }
        output.emit(ctx, data, lambda: "".join(
            f"network {n}: {what}\n" for n, what in result.done) + (
            "Apply complete: " + ", ".join(f"{v} {k}" for k, v in result.plan.counts().items()
                                           if v) + ".\n"))

    @cli.command("import")
    @click.argument("directory", required=False, metavar="[DIR]",
                    type=click.Path(file_okay=False))
    @click.option("--connect", "uri", metavar="URI",
                  help="Read a running libvirt (needs libvirt-python), e.g. qemu:///system.")
    @click.pass_context
    def import_(ctx: click.Context, directory: str | None, uri: str | None) -> None:
        """Define libvirt's networks in virtnet, reporting anything that does not carry
        over. Reads DIR (libvirt network XML files; autostart from DIR/autostart), or a
        running libvirt with --connect; with neither, a running libvirt when libvirt-python
        is installed, else /etc/libvirt/qemu/networks.

        Example: virtnet import /etc/libvirt/qemu/networks
        """
        if directory is not None and uri is not None:
            raise click.UsageError("give DIR or --connect, not both")
        if directory is not None:
            sources = importer.from_directory(Path(directory))
        elif uri is not None or importer.libvirt_available():
            sources = importer.from_libvirt(uri)
        else:
            sources = importer.from_directory(importer.LIBVIRT_DIR)
        with open_service(ctx, offer_default=False) as svc:
            items = importer.import_networks(svc, sources)
        output.emit(ctx, [i.as_dict() for i in items], lambda: _render(items))
        failed = [i.name for i in items if i.status == importer.FAILED]
        if failed:
            raise VirtnetError(f"{len(failed)} network(s) could not be imported: "
                               f"{', '.join(failed)}", hint="see the notes above")


def _render(items: list[importer.ImportItem]) -> str:
    lines = []
    for i in items:
        auto = ", autostart" if i.autostart and i.status == importer.IMPORTED else ""
        lines.append(f"{i.name}: {i.status}{auto} (from {i.source})")
        lines += [f"  - {n}" for n in i.notes]
    counts = {s: sum(i.status == s for i in items)
              for s in (importer.IMPORTED, importer.SKIPPED, importer.FAILED)}
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()) + ".")
    return "\n".join(lines) + "\n"
