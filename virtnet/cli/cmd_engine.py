"""``virtnet reconcile``: repair drift of the running networks (the engine's own verb)."""

from __future__ import annotations

import click

from virtnet.cli import output
from virtnet.cli.context import settings
from virtnet.engine import Engine


def register(cli: click.Group) -> None:
    @cli.command("reconcile")
    @click.argument("names", nargs=-1, metavar="[NETWORK]...")
    @click.pass_context
    def reconcile(ctx: click.Context, names: tuple[str, ...]) -> None:
        """Bring the running networks (all, or the ones named) back to their definitions:
        recreate a removed bridge, restore deleted or flushed firewall rules, restart a dead
        dnsmasq, fix sysctls, and clear what an interrupted start left behind. Prints each
        repair; prints nothing to repair when all is in order.

        Example: virtnet --netns lab reconcile default
        """
        s = settings(ctx)
        with Engine(s.state_dir, s.netns) as engine:
            repairs = engine.reconcile(list(names) if names else None)
        output.emit(ctx, {"repairs": repairs},
                    lambda: "".join(f"repaired {r}\n" for r in repairs) or "nothing to repair\n")
