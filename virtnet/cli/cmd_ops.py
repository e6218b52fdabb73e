"""``virtnet guard`` and ``virtnet doctor``: keep networks right, and say why they are not."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import click

from virtnet.cli import output
from virtnet.cli.context import settings
from virtnet.doctor import Doctor, Finding, exit_status
from virtnet.guard import DEFAULT_INTERVAL, Guard


def _line(entry: dict[str, Any]) -> str:
    """A guard log entry for people: time, what happened, what caused it."""
    stamp = time.strftime("%H:%M:%S", time.localtime(entry["time"])) + \
        f".{int(entry['time'] * 1000) % 1000:03d}"
    ev = entry["event"]
    net = f" {entry['network']}" if entry.get("network") else ""
    if ev == "repair":
        text = (f"repaired{net or ' nftables'}: " + "; ".join(entry["repairs"])
                + f" (after: {'; '.join(entry['cause'])}; {entry['seconds'] * 1000:.0f} ms)")
    elif ev == "start":
        text = (f"guarding {', '.join(entry['active']) or 'no active network yet'} "
                f"(full check every {entry['interval']:g} s)")
    elif ev == "stop":
        text = f"stopped after {entry['repairs']} repair(s)"
    else:
        text = f"{ev}{net}: {entry.get('message', '')}"
    return f"{stamp} {text}"


def _doctor_text(findings: list[Finding]) -> str:
    if not findings:
        return "no problems found\n"
    counts = {sev: sum(f.severity == sev for f in findings) for sev in ("error", "warning",
                                                                         "info")}
    total = ", ".join(f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in counts.items() if n)
    return "".join(f"{f}\n" for f in findings) + total + "\n"


def register(cli: click.Group) -> None:
    @cli.command("guard")
    @click.option("--once", is_flag=True, help="Run one full check and repair, print a report, "
                  "and exit.")
    @click.option("--interval", type=float, default=DEFAULT_INTERVAL, show_default=True,
                  metavar="S", help="Seconds between full checks (the safety net behind the "
                  "events).")
    @click.pass_context
    def guard(ctx: click.Context, once: bool, interval: float) -> None:
        """Keep the active networks right while other tools break them.

        Watches the namespace's nftables and link notifications and each network's dnsmasq,
        and repairs what drifted within ~100 ms: a flushed ruleset or a deleted rule, a
        deleted bridge, a dead dnsmasq. Networks that are not active (never started, or
        stopped with net-destroy) are left alone, as is every other tool's table (a foreign
        table that drops virtnet's traffic is reported with its fix). Logs one line per
        repair with what broke it (-o json: one JSON object per line). Runs until SIGTERM or
        SIGINT.

        Example: virtnet guard --interval 60
        """
        s = settings(ctx)
        json_lines = s.output != "table"

        def log(entry: dict[str, Any]) -> None:
            click.echo(output.to_json(entry).replace("\n", " ").strip() if json_lines
                       else _line(entry))
            sys.stdout.flush()

        with Guard(s.state_dir, s.netns, interval=interval, log=log) as g:
            if once:
                report = g.once()
                output.emit(ctx, report, lambda: "".join(
                    [f"repaired {r}\n" for r in report["repairs"]] or ["nothing to repair\n"])
                    + "".join(f"warning: {w}\n" for w in report["warnings"]))
                return
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: g.stop())
            g.run()

    @cli.command("doctor")
    @click.argument("names", nargs=-1, metavar="[NETWORK]...")
    @click.pass_context
    def doctor(ctx: click.Context, names: tuple[str, ...]) -> None:
        """Diagnose the networks (all, or the ones named) and print each finding with its
        severity, what is wrong, why, and the fix. Changes nothing.

        Checks: network not active / autostart off; ip_forward off; other tables whose drop
        policy kills forwarded traffic or DHCP/DNS (Docker's FORWARD chain, distribution
        firewalls); another server on port 53/67 of a bridge; a dead dnsmasq; drift in
        virtnet's own table; bridged mode over Wi-Fi or a bond mode that breaks bridges; STP
        delaying DHCP. Exit status 0 when healthy (info findings at most), 1 with warnings,
        2 with errors.

        Example: virtnet doctor default
        """
        s = settings(ctx)
        with Doctor(s.state_dir, s.netns) as doc:
            findings = doc.diagnose(list(names))
        data = {"healthy": exit_status(findings) == 0,
                "findings": [f.as_dict() for f in findings]}
        output.emit(ctx, data, lambda: _doctor_text(findings))
        ctx.exit(exit_status(findings))
