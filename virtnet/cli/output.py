"""Printing shared by the commands: virsh-style tables for people, JSON/YAML for scripts.

Tables follow virsh's vshTable layout exactly: each cell is preceded by one space, every
column but the last is padded to its widest cell plus two spaces, and the header is underlined
by (width + 3) dashes per column. Like virsh (vshCommandRun's closing vshPrintExtra), every
command's text output ends with one empty line. JSON and YAML print the same data structure
(documented per command in docs/cli.md); keys never depend on the output format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click
import yaml

from virtnet.cli.context import settings


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A virsh table (header, dashed rule, rows), each line ending in a newline."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(" " + cell)
            if i < len(cells) - 1:
                out.append(" " * (widths[i] - len(cell) + 2))
        return "".join(out) + "\n"

    rule = "".join("-" * (w + 3) for w in widths) + "\n"
    return line(headers) + rule + "".join(line(r) for r in rows)


def fields(pairs: Sequence[tuple[str, str]]) -> str:
    """virsh's 'Label:         value' blocks (label padded to 15 columns, as net-info)."""
    return "".join(f"{label + ':':<15} {value}\n" for label, value in pairs)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def emit(ctx: click.Context, data: Any, human: Callable[[], str]) -> None:
    """Print DATA as JSON/YAML when asked, else the text HUMAN() renders."""
    fmt = settings(ctx).output
    if fmt == "json":
        click.echo(to_json(data), nl=False)
    elif fmt == "yaml":
        click.echo(to_yaml(data), nl=False)
    else:
        click.echo(human(), nl=False)


def note(ctx: click.Context, message: str) -> None:
    """A message for people (stderr in json/yaml mode, so scripts parse clean stdout)."""
    machine = settings(ctx).output != "table"
    click.echo(message, err=machine)


def verbose(ctx: click.Context) -> Callable[[str], None]:
    """A logger for the operations performed, printed to stderr with --verbose."""
    if settings(ctx).verbose:
        return lambda msg: click.echo(f"+ {msg}", err=True)
    return lambda msg: None
