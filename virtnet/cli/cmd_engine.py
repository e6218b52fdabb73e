"""``virtnet reconcile``: repair drift of the running networks (the engine's own verb)."""

from __future__ import annotations

import click

from virtnet.cli import output
from virtnet.cli.context import settings
from virtnet.engine import Engine


def register(cli: click.Group) -> None:
    @cli.command("reconcile")
    @click.argument("names", nargs=-1, metavar="[NETWORK]...")
    @click.option("--remove-orphans", is_flag=True,
                  help="Also remove this state directory's bridges that run with no record "
                       "and no definition (by default they are left running and reported).")
    @click.pass_context
    def reconcile(ctx: click.Context, names: tuple[str, ...], remove_orphans: bool) -> None:
        """Bring the running networks (all, or the ones named) back to their definitions:
        recreate a removed bridge, restore deleted or flushed firewall rules, restart a dead
        dnsmasq, fix sysctls, and clear what an interrupted start left behind; take back a
        network that still runs after its record was lost. Prints each repair; prints nothing
        to repair when all is in order. Never touches another state directory's networks.

        Example: virtnet --netns lab reconcile default
        """
        s = settings(ctx)
        with Engine(s.state_dir, s.netns) as engine:
            repairs = engine.reconcile(list(names) if names else None,
                                       remove_orphans=remove_orphans)
        output.emit(ctx, {"repairs": repairs},
                    lambda: "".join(f"repaired {r}\n" for r in repairs) or "nothing to repair\n")
