"""The OVN side of ``virtnet lab up|down|status|list``, ``verify`` and ``demo`` (--backend ovn).

``lab up --backend ovn`` keeps running: the lab's daemons are its children (this machine's
PID 1 never reaps, so detached daemons would linger as zombies). Ctrl-C, SIGTERM or
``virtnet lab down MARK`` from another shell tears the lab down; ``verify`` and ``ovn``
commands work against it meanwhile (``lab status`` prints its NB address).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from virtnet.cli.context import settings
from virtnet.cli.output import emit
from virtnet.errors import InvalidDefinition, NotFound, VerificationFailed
from virtnet.lab import ovn_bed
from virtnet.model.network import Network
from virtnet.reach import render

BACKENDS = ("host", "ovn")


def backend_option(f: Any) -> Any:
    return click.option("--backend", type=click.Choice(BACKENDS), default="host",
                        show_default=True,
                        help="host: one VM host with bridges and nftables; ovn: an OVN "
                        "cluster (central, chassis, geneve, gateway chassis).")(f)


def is_ovn_mark(mark: str | None) -> bool:
    return bool(mark and ovn_bed.MARK_RE.match(mark))


def check_host_only(spec: Any) -> None:
    """What a host lab can vary and the OVN lab cannot: refused, not ignored."""
    if spec.outside_hosts != 1:
        raise InvalidDefinition("an OVN lab has exactly one outside host",
                                element="--outside", hint="leave --outside at 1")
    if not spec.outside_routes:
        raise InvalidDefinition("the OVN lab's outside host always routes the VM subnets via "
                                "their gateways", element="--no-outside-routes",
                                hint="leave out --no-outside-routes")
    if spec.lan_hairpin:
        raise InvalidDefinition("lan_hairpin is a host-lab setting (macvtap)",
                                element="lan_hairpin", hint="remove it from the lab file")


def up(ctx: click.Context, nets: list[Network], *, vms: int, chassis: int,
       progress: Any) -> None:
    spec = ovn_bed.OvnLabSpec(networks=tuple(nets), chassis=chassis, vms_per_network=vms)
    with ovn_bed.signals_interrupt():
        lab = ovn_bed.up(spec, settings(ctx).state_dir, progress=progress)
        try:  # a signal from here on finds the handlers in place and the lab torn down
            emit(ctx, status(lab.st), lambda: status_text(lab.st))
            progress(f"OVN lab {lab.st.mark} is up; Ctrl-C (or 'virtnet lab down "
                     f"{lab.st.mark}') tears it down")
            ovn_bed.hold(lab, progress=progress)
        finally:
            lab.down(progress)


def pick(state_dir: Path, mark: str | None) -> ovn_bed.OvnLabState:
    if mark:
        return ovn_bed.load(state_dir, mark)
    labs = [s for s in ovn_bed.list_labs(state_dir) if s.status == "up"]
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise NotFound("no OVN lab is up", hint="'virtnet lab up --backend ovn' builds one")
    raise InvalidDefinition(f"{len(labs)} OVN labs are up: {', '.join(s.mark for s in labs)}",
                            hint="name one: virtnet verify MARK")


def verify(ctx: click.Context, st: ovn_bed.OvnLabState, timeout: float) -> None:
    from virtnet.lab import ovn_verify

    report = ovn_verify.verify(st, timeout=timeout)

    def human() -> str:
        body = [[r.key.src, r.key.dst, f"{r.key.family}/{r.key.proto}",
                 render.verdict_text(r.expected.reachable),
                 ("YES" if r.observed.ok else "no") + f" ({r.observed.detail}"
                 + (f", seen as {r.seen_as})" if r.seen_as else ")"),
                 "<-- DIFFERS" if r.differs else "", r.expected.rule]
                for r in report.results]
        out = render.grid(["from", "to", "probe", "expected", "observed", "", "rule"], body)
        out += "\n\n" + render.table_text(report.observed_rows(),
                                          title="observed (host = the network's gateway):")
        out += f"\n\n{report.probes} probes in {report.seconds:.2f} s, " \
               f"{len(report.differences)} difference(s)\n"
        return out

    emit(ctx, ovn_verify.report_json(st, report), human)
    if report.differences:
        raise VerificationFailed(
            f"OVN lab {st.mark}: {len(report.differences)} pair(s) differ from the expected "
            "matrix: " + "; ".join(str(d.key) for d in report.differences[:5]),
            hint="the rows marked DIFFERS name the rule that should have decided")


def demo(ctx: click.Context, *, vms: int, chassis: int, progress: Any) -> None:
    from virtnet import demo as demo_mod
    from virtnet.lab import ovn_demo

    result = ovn_demo.run(settings(ctx).state_dir, progress=progress, chassis=chassis, vms=vms)
    data = demo_mod.to_json(result)
    data["backend"] = "ovn"
    emit(ctx, data, lambda: ovn_demo.text(result))
    if not result.ok:
        raise VerificationFailed("the observed table differs from the seed's",
                                 hint="the lines above name each differing pair and rule")


def down(state_dir: Path, mark: str, progress: Any) -> dict[str, list[str]]:
    st = ovn_bed.load(state_dir, mark)
    return {st.mark: ovn_bed.down(st, progress=progress)}


def status(st: ovn_bed.OvnLabState) -> dict[str, Any]:
    return {"mark": st.mark, "backend": "ovn", "status": st.status, "nb": st.nb, "sb": st.sb,
            "chassis": [st.chassis_name(i) for i in range(1, st.chassis + 1)],
            "gateway_chassis": st.gateway_chassis, "underlay_mtu": st.underlay_mtu,
            "networks": [n.name for n in st.network_defs()], "external_ips": st.external_ips,
            "vms": [{k: v.get(k) for k in ("id", "netns", "chassis", "port", "mac", "ipv4")}
                    for v in st.vms], "timings": st.timings}


def status_text(st: ovn_bed.OvnLabState) -> str:
    head = (f"OVN lab {st.mark} ({st.status}): NB {st.nb}, SB {st.sb}; chassis "
            f"{', '.join(st.chassis_name(i) for i in range(1, st.chassis + 1))} (gateway "
            f"{st.gateway_chassis}); underlay MTU {st.underlay_mtu}\n")
    body = [[v["id"], v["netns"], st.chassis_name(v["chassis"]), v["port"],
             v.get("ipv4") or "-"] for v in st.vms]
    body += [[o["id"], o["netns"], "-", "-", o["ipv4"]] for o in st.outside]
    t = st.timings
    tail = "timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items()) + "\n" if t else ""
    return head + render.grid(["endpoint", "netns", "chassis", "port", "ipv4"], body) + \
        "\n" + tail
