"""Text and JSON forms of the expected matrix and the comparison table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from virtnet.reach.expected import Matrix, PairKey
from virtnet.reach.table import COLUMNS, SEED_TABLE, Row, verdict_text


def grid(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *body]) for i in range(len(headers))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in body]
    return "\n".join(lines)


SHORT_COLUMNS = ("host", "other VMs", "outside", "visible from outside")


def table_text(rows: Sequence[Row], *, title: str = "") -> str:
    body = [[r.network, r.label, *r.cells] for r in rows]
    text = grid(["network", "mode", *SHORT_COLUMNS], body)
    return f"{title}\n{text}" if title else text


def seed_text() -> str:
    body = [[label, *cells] for label, cells in SEED_TABLE.items()]
    return grid(["seed 16.2.6", *SHORT_COLUMNS], body)


def rows_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [
        {
            "network": r.network,
            "mode": r.mode.value,
            "row": r.label,
            "cells": dict(zip(COLUMNS, r.cells, strict=True)),
            "rules": dict(zip(COLUMNS, r.rules, strict=True)),
        }
        for r in rows
    ]


def seed_json() -> list[dict[str, Any]]:
    return [{"row": label, "cells": dict(zip(COLUMNS, cells, strict=True))}
            for label, cells in SEED_TABLE.items()]


def matrix_text(m: Matrix, observed: Mapping[PairKey, Any] | None = None) -> str:
    """One line per (src, dst, family); ICMP and TCP folded when they agree."""
    body = []
    seen: set[tuple[str, str, str]] = set()
    for key in m.pairs:
        trip = (key.src, key.dst, key.family)
        if trip in seen:
            continue
        seen.add(trip)
        icmp = m.pairs.get(PairKey(key.src, key.dst, key.family, "icmp"))
        tcp = m.pairs.get(PairKey(key.src, key.dst, key.family, "tcp"))
        verdicts = [v for v in (icmp, tcp) if v is not None]
        if icmp and tcp and icmp.reachable != tcp.reachable:
            exp = f"icmp {verdict_text(icmp)} / tcp {verdict_text(tcp)}"
        else:
            exp = verdict_text(verdicts[0])
        body.append([key.src, key.dst, key.family, exp, verdicts[0].rule])
    return grid(["from", "to", "family", "expected", "deciding rule"], body)


def matrix_json(m: Matrix) -> list[dict[str, Any]]:
    return [
        {"from": k.src, "to": k.dst, "family": k.family, "proto": k.proto,
         "reachable": v.reachable, "rule": v.rule, "seen_as": v.seen_as}
        for k, v in m.pairs.items()
    ]
