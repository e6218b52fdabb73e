"""Entry point: the ``virtnet`` group, global options, and the one place errors become exits.

Each area of commands lives in its own module with a ``register(group)`` function; the list
below is the only place that knows them all.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

from virtnet.cli.context import make_settings
from virtnet.errors import NotFound, VirtnetError
from virtnet.host import netns as netns_mod

# Modules that add commands. Each defines register(cli: click.Group) -> None.
COMMAND_MODULES: list[str] = [
    "virtnet.cli.cmd_host",
    "virtnet.cli.cmd_lifecycle",
    "virtnet.cli.cmd_declarative",
    "virtnet.cli.cmd_definition",
    "virtnet.cli.cmd_lab",
    "virtnet.cli.cmd_engine",
    "virtnet.cli.cmd_ops",
    "virtnet.cli.cmd_ovn",
]


def _wants_json(argv: list[str]) -> bool:
    """Whether ARGV asks for ``-o json`` (read before click parses, for its usage errors)."""
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output") and i + 1 < len(argv):
            if argv[i + 1] == "json":
                return True
        elif arg in ("-ojson", "--output=json"):
            return True
        elif arg == "--":
            break
    return False


class VirtnetGroup(click.Group):
    """Turns every VirtnetError into a message and its stable exit status, never a traceback.

    click's own usage errors (a missing argument, a bad choice, a directory given for a file)
    become the documented JSON error object too when ``-o json`` was asked for."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            if _wants_json(argv):
                param = getattr(exc, "param", None)
                click.echo(json.dumps({"error": {
                    "code": "usage", "exit_status": exc.exit_code,
                    "message": exc.format_message(),
                    "element": getattr(param, "name", None),
                    "hint": "see 'virtnet --help' or 'virtnet COMMAND --help'",
                }}), err=True)
            else:
                exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VirtnetError as exc:
            settings = (ctx.obj or {}).get("settings")
            if settings is not None and settings.output == "json":
                # Scripts asked for JSON: the error is JSON too (on stderr; stdout stays empty).
                click.echo(json.dumps({"error": error_dict(exc)}), err=True)
            else:
                click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_status)


def error_dict(exc: VirtnetError) -> dict[str, Any]:
    """The documented JSON shape of an error."""
    return {
        "code": exc.code,
        "exit_status": exc.exit_status,
        "message": exc.message,
        "element": exc.element,
        "hint": exc.hint,
    }


@click.group(cls=VirtnetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="virtnet")
@click.option(
    "--state-dir",
    metavar="DIR",
    help="State directory (default $VIRTNET_STATE_DIR or /var/lib/virtnet).",
)
@click.option(
    "--netns",
    metavar="NAME",
    help="Network namespace to act in (default $VIRTNET_NETNS or the root namespace).",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "yaml"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show the operations performed.")
@click.pass_context
def cli(
    ctx: click.Context, state_dir: str | None, netns: str | None, output: str, verbose: bool
) -> None:
    """virtnet: build, verify and keep right the virtual networks VMs connect to."""
    ctx.ensure_object(dict)
    ctx.obj["settings"] = make_settings(state_dir, netns, output, verbose)
    target = ctx.obj["settings"].netns
    if target is not None and not ctx.resilient_parsing and not netns_mod.exists(target):
        # Every command that acts in a namespace needs it; say so once, here.
        raise NotFound(
            f"network namespace {target!r} does not exist",
            element="--netns",
            hint=f"create it with 'ip netns add {target}', or name an existing one "
            "('ip netns list')",
        )


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


def main() -> None:
    cli(prog_name="virtnet")
