"""Global options every command sees: where state lives, which namespace, how to print."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click

DEFAULT_STATE_DIR = "/var/lib/virtnet"


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    netns: str | None  # None: the root namespace
    output: str  # table | json | yaml
    verbose: bool


def settings(ctx: click.Context) -> Settings:
    """The Settings the group callback stored; commands call this instead of reading options."""
    obj = ctx.find_root().obj
    assert isinstance(obj, dict) and "settings" in obj
    s = obj["settings"]
    assert isinstance(s, Settings)
    return s


def make_settings(
    state_dir: str | None, netns: str | None, output: str, verbose: bool
) -> Settings:
    return Settings(
        state_dir=Path(state_dir or os.environ.get("VIRTNET_STATE_DIR") or DEFAULT_STATE_DIR),
        netns=netns or os.environ.get("VIRTNET_NETNS") or None,
        output=output,
        verbose=verbose,
    )
