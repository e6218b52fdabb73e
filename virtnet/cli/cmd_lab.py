"""``virtnet reach``, ``virtnet lab up|down|status|list``, ``virtnet verify``, ``virtnet demo``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from virtnet.cli import cmd_ovn_lab
from virtnet.cli.context import settings
from virtnet.cli.output import emit
from virtnet.errors import InvalidDefinition, NotFound, VerificationFailed
from virtnet.lab import bed, spec
from virtnet.reach import render
from virtnet.reach.expected import expected
from virtnet.reach.table import rows
from virtnet.reach.topology import Outside, Topology


def _progress(ctx: click.Context) -> Any:
    t0 = time.monotonic()
    return lambda msg: click.echo(f"[{time.monotonic() - t0:5.2f}s] {msg}", err=True)


def _pick_lab(state_dir: Path, mark: str | None) -> bed.LabState:
    if mark:
        return bed.load(state_dir, mark)
    labs = [lab for lab in bed.list_labs(state_dir) if lab.status == "up"]
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise NotFound("no lab is up", hint="'virtnet lab up --network nat' builds one")
    raise InvalidDefinition(f"{len(labs)} labs are up: {', '.join(s.mark for s in labs)}",
                            hint="name one: virtnet verify MARK")


def register(cli: click.Group) -> None:
    @cli.command("reach")
    @click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
    @click.option("--lab", "lab_mark", metavar="MARK", help="Use the definitions of this lab.")
    @click.option("--mode", "modes", multiple=True,
                  type=click.Choice(list(spec.SHORTHAND_MODES)),
                  help="Add a sample network of this mode (repeatable).")
    @click.option("--vms", default=2, show_default=True, help="VMs per network.")
    @click.option("--no-outside-route", is_flag=True,
                  help="Outside hosts have no route to the VM subnets.")
    @click.option("--host-rules/--no-host-rules", default=None,
                  help="Read the host's nftables ruleset and forwarding sysctls in --netns "
                  "(default: when --netns is given).")
    @click.option("--seed-style", is_flag=True, help="Open mode as the seed prints it.")
    @click.option("--table-only", is_flag=True, help="Only the comparison table.")
    @click.pass_context
    def reach(ctx: click.Context, files: tuple[str, ...], lab_mark: str | None,
              modes: tuple[str, ...], vms: int, no_outside_route: bool,
              host_rules: bool | None, seed_style: bool, table_only: bool) -> None:
        """The expected reachability of networks, from their definitions (no root needed).

        For every pair of endpoints (the host, each VM, outside hosts, VMs of other networks)
        says reachable or not and the rule that decides, and sums it up as the comparison
        table of the connection types.
        """
        s = settings(ctx)
        nets = []
        if lab_mark:
            nets += bed.load(s.state_dir, lab_mark).network_defs()
        if files:
            import importlib

            loader: Any = importlib.import_module("virtnet.loader")
            nets += [loader.load_file(f) for f in files]
        nets += list(spec.from_flags(modes).networks) if modes else []
        if not nets:
            raise InvalidDefinition("no networks given",
                                    hint="give definition files, --mode MODE or --lab MARK")
        read = host_rules if host_rules is not None else s.netns is not None
        kw: dict[str, Any] = {}
        if read:
            from virtnet.reach import hostfw
            from virtnet.reach.verify import _read

            kw["host_ruleset"] = hostfw.read_ruleset(s.netns)
            from virtnet.host.nsenter import entered

            with entered(s.netns):
                kw["ip_forward"] = _read("/proc/sys/net/ipv4/ip_forward") == "1"
                kw["ip6_forward"] = _read("/proc/sys/net/ipv6/conf/all/forwarding") == "1"
        topo = Topology(networks=tuple(nets), vms_per_network=vms,
                        outside=(Outside("outside1", routes_to_vms=not no_outside_route),),
                        **kw)
        m = expected(topo)
        table = rows(m, seed_style=seed_style)
        data = {"table": render.rows_json(table), "pairs": render.matrix_json(m)}

        def human() -> str:
            out = render.table_text(table) + "\n"
            if not table_only:
                out += "\n" + render.matrix_text(m) + "\n"
            return out

        emit(ctx, data, human)

    @cli.group("lab")
    def lab() -> None:
        """Disposable test beds inside network namespaces (needs root)."""

    @lab.command("up")
    @click.argument("file", required=False, type=click.Path(dir_okay=False))
    @click.option("-f", "--file", "file_opt", type=click.Path(dir_okay=False),
                  help="The lab file, as with 'apply -f' (same as the FILE argument).")
    @click.option("--network", "modes", multiple=True,
                  type=click.Choice(list(spec.SHORTHAND_MODES)),
                  help="A network of this mode (repeatable), instead of a lab file.")
    @click.option("--vms", default=2, show_default=True, help="VMs per network.")
    @click.option("--outside", default=1, show_default=True, help="Outside hosts on the LAN.")
    @click.option("--no-outside-routes", is_flag=True,
                  help="Outside hosts get no route to the VM subnets.")
    @cmd_ovn_lab.backend_option
    @click.option("--chassis", default=2, show_default=True,
                  help="--backend ovn: hypervisors (chassis 1 is the gateway chassis).")
    @click.pass_context
    def lab_up(ctx: click.Context, file: str | None, file_opt: str | None,
               modes: tuple[str, ...], vms: int, outside: int,
               no_outside_routes: bool, backend: str, chassis: int) -> None:
        """Build a lab from FILE (YAML, see examples/lab/) or from --network flags.

        With --backend ovn the command keeps the lab (its daemons are its children) until
        Ctrl-C, SIGTERM or 'virtnet lab down MARK'."""
        if file and file_opt:
            raise InvalidDefinition("give the lab file once, as FILE or as -f FILE")
        file = file or file_opt
        if file and modes:
            raise InvalidDefinition("give a lab file or --network flags, not both",
                                    hint="put every network in the file")
        if file:
            lab_spec = spec.load(file)
        elif modes:
            lab_spec = spec.from_flags(modes, vms=vms, outside=outside,
                                       outside_routes=not no_outside_routes)
        else:
            raise InvalidDefinition("no lab described",
                                    hint="virtnet lab up examples/lab/demo.yaml, or "
                                    "--network nat --network route")
        if backend == "ovn":
            cmd_ovn_lab.check_host_only(lab_spec)
            cmd_ovn_lab.up(ctx, list(lab_spec.networks), vms=lab_spec.vms_per_network,
                           chassis=chassis, progress=_progress(ctx))
            return
        st = bed.up(lab_spec, settings(ctx).state_dir, progress=_progress(ctx))
        emit(ctx, _status(st), lambda: _status_text(st))

    @lab.command("down")
    @click.argument("mark", required=False)
    @click.option("--all", "all_", is_flag=True,
                  help="Every lab, and leftovers of crashed labs found by their marks.")
    @click.pass_context
    def lab_down(ctx: click.Context, mark: str | None, all_: bool) -> None:
        """Tear down lab MARK (or the only one), leaving nothing behind."""
        s = settings(ctx)
        if all_:
            removed = bed.down_all(s.state_dir, progress=_progress(ctx))
            removed.update(cmd_ovn_lab.ovn_bed.down_all(s.state_dir, progress=_progress(ctx)))
        elif cmd_ovn_lab.is_ovn_mark(mark):
            assert mark is not None
            removed = cmd_ovn_lab.down(s.state_dir, mark, _progress(ctx))
        else:
            st = _pick_any(s.state_dir, mark)
            removed = {st.mark: bed.down(st, progress=_progress(ctx))}
        emit(ctx, removed, lambda: "".join(
            f"lab {m}: removed {len(r)} ({', '.join(r[:6])}{', ...' if len(r) > 6 else ''})\n"
            for m, r in removed.items()) or "no labs\n")

    @lab.command("status")
    @click.argument("mark", required=False)
    @click.pass_context
    def lab_status(ctx: click.Context, mark: str | None) -> None:
        """The lab's namespaces, endpoints and addresses."""
        if cmd_ovn_lab.is_ovn_mark(mark):
            ost = cmd_ovn_lab.ovn_bed.load(settings(ctx).state_dir, str(mark))
            emit(ctx, cmd_ovn_lab.status(ost), lambda: cmd_ovn_lab.status_text(ost))
            return
        st = _pick_any(settings(ctx).state_dir, mark)
        emit(ctx, _status(st), lambda: _status_text(st))

    @lab.command("list")
    @click.pass_context
    def lab_list(ctx: click.Context) -> None:
        """Every lab recorded in the state directory."""
        labs = bed.list_labs(settings(ctx).state_dir)
        data: list[dict[str, Any]] = [{"mark": s.mark, "status": s.status,
                 "networks": [n.name for n in s.network_defs()],
                 "vms": len(s.vms), "namespaces": len(s.namespaces)} for s in labs]
        data += [{"mark": o.mark, "status": f"{o.status} (ovn)",
                  "networks": [n.name for n in o.network_defs()], "vms": len(o.vms),
                  "namespaces": len(o.namespaces)}
                 for o in cmd_ovn_lab.ovn_bed.list_labs(settings(ctx).state_dir)]
        emit(ctx, data, lambda: render.grid(
            ["mark", "status", "networks", "VMs"],
            [[d["mark"], d["status"], ",".join(d["networks"]), str(d["vms"])] for d in data],
        ) + "\n")

    @cli.command("verify")
    @click.argument("mark", required=False)
    @click.option("--timeout", default=1.0, show_default=True, help="Seconds per probe.")
    @click.pass_context
    def verify_cmd(ctx: click.Context, mark: str | None, timeout: float) -> None:
        """Probe every pair of a lab's endpoints (ICMP, TCP; IPv4 and IPv6) and compare with
        the expected matrix; exits non-zero on any difference. An OVN lab (mark vo...) is
        probed for the seed's columns, its gateway address standing for the host."""
        from virtnet.reach.verify import verify

        sdir = settings(ctx).state_dir
        if cmd_ovn_lab.is_ovn_mark(mark) or mark is None and not any(
                lab.status == "up" for lab in bed.list_labs(sdir)) and any(
                o.status == "up" for o in cmd_ovn_lab.ovn_bed.list_labs(sdir)):
            cmd_ovn_lab.verify(ctx, cmd_ovn_lab.pick(sdir, mark), timeout)
            return
        st = _pick_lab(settings(ctx).state_dir, mark)
        report = verify(st, timeout=timeout)
        data = {
            "lab": st.mark,
            "probes": report.probes,
            "seconds": report.seconds,
            "expected_table": render.rows_json(report.expected_rows()),
            "observed_table": render.rows_json(report.observed_rows()),
            "results": [
                {"pair": str(r.key), "from": r.key.src, "to": r.key.dst,
                 "family": r.key.family, "proto": r.key.proto,
                 "expected": r.expected.reachable, "rule": r.expected.rule,
                 "observed": r.observed.ok, "detail": r.observed.detail,
                 "seen_as": r.seen_as, "differs": r.differs} for r in report.results
            ],
        }

        def human() -> str:
            body = [[r.key.src, r.key.dst, f"{r.key.family}/{r.key.proto}",
                     render.verdict_text(r.expected.reachable),
                     ("YES" if r.observed.ok else "no") + f" ({r.observed.detail}"
                     + (f", seen as {r.seen_as})" if r.seen_as else ")"),
                     "<-- DIFFERS" if r.differs else "", r.expected.rule]
                    for r in report.results]
            out = render.grid(["from", "to", "probe", "expected", "observed", "", "rule"],
                              body)
            out += "\n\n" + render.table_text(report.observed_rows(), title="observed:")
            out += f"\n\n{report.probes} probes in {report.seconds:.2f} s, " \
                   f"{len(report.differences)} difference(s)\n"
            return out

        emit(ctx, data, human)
        if report.differences:
            raise VerificationFailed(
                f"lab {st.mark}: {len(report.differences)} pair(s) differ from the expected "
                "matrix: " + "; ".join(str(d.key) for d in report.differences[:5]),
                hint="the rows marked DIFFERS name the rule that should have decided")

    @cli.command("demo")
    @click.option("--ipv6", is_flag=True, help="Give every network an IPv6 /64 too (slower: "
                  "SLAAC).")
    @click.option("--vms", default=2, show_default=True, help="VMs per network.")
    @cmd_ovn_lab.backend_option
    @click.option("--chassis", default=2, show_default=True,
                  help="--backend ovn: hypervisors the VMs are spread over.")
    @click.pass_context
    def demo_cmd(ctx: click.Context, ipv6: bool, vms: int, backend: str, chassis: int) -> None:
        """Build a lab with one network of each connection type, prove the seed's comparison
        table with packets, print it beside the seed's, and tear down (--backend ovn: nat,
        route, isolated and open on OVN across chassis)."""
        from virtnet import demo

        if backend == "ovn":
            if ipv6:
                raise InvalidDefinition("--ipv6 is not part of the OVN demo",
                                        element="--ipv6", hint="leave out --ipv6")
            cmd_ovn_lab.demo(ctx, vms=vms, chassis=chassis, progress=_progress(ctx))
            return

        result = demo.run(settings(ctx).state_dir, progress=_progress(ctx), ipv6=ipv6,
                          vms=vms)
        emit(ctx, demo.to_json(result), lambda: demo.text(result))
        if not result.ok:
            raise VerificationFailed("the observed table differs from the seed's",
                                     hint="the lines above name each differing pair and rule")


def _pick_any(state_dir: Path, mark: str | None) -> bed.LabState:
    if mark:
        return bed.load(state_dir, mark)
    labs = bed.list_labs(state_dir)
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise NotFound("no labs", hint="'virtnet lab up --network nat' builds one")
    raise InvalidDefinition(f"{len(labs)} labs: {', '.join(s.mark for s in labs)}",
                            hint="name one by its mark")


def _status(st: bed.LabState) -> dict[str, Any]:
    return {"mark": st.mark, "status": st.status, "host_netns": st.host_ns,
            "lan_netns": st.lan_ns, "networks": [n.name for n in st.network_defs()],
            "endpoints": bed.addresses(st), "build_seconds": st.build_seconds}


def _status_text(st: bed.LabState) -> str:
    addrs = bed.addresses(st)
    body = [[k, v.get("netns", ""), v.get("ipv4", "-"), v.get("ipv6", "-")]
            for k, v in addrs.items()]
    head = (f"lab {st.mark} ({st.status}): networks "
            f"{', '.join(n.name for n in st.network_defs())} in {st.host_ns}; "
            f"LAN {st.lan_ns}\n")
    return head + render.grid(["endpoint", "netns", "ipv4", "ipv6"], body) + "\n"
