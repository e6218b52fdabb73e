"""Running ovn-nbctl: one process, one transaction, errors as virtnet errors.

ovn-nbctl takes any number of commands separated by ``--`` and commits them as one OVSDB
transaction: all of them or none. Commands that change nothing are dropped by the IDL, so a
transaction that changes nothing is never sent.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence

from virtnet.errors import HostError, InvalidDefinition, NotSupported

Command = tuple[str, ...]
DEFAULT_TIMEOUT = 30


def binary() -> str:
    path = shutil.which("ovn-nbctl")
    if path is None:
        raise NotSupported(
            "ovn-nbctl is not installed",
            hint="install Debian's ovn-central (scripts/setup.sh does) or ovn-common",
        )
    return path


def check_db(db: str) -> str:
    if ":" not in db or db.split(":", 1)[0] not in ("unix", "tcp", "ssl"):
        raise InvalidDefinition(
            f"--db {db!r} is not an OVSDB connection",
            element="--db",
            hint="give unix:/path/ovnnb_db.sock, tcp:HOST:6641 or ssl:HOST:6641",
        )
    return db


def argv(
    db: str,
    commands: Sequence[Command],
    *,
    timeout: int = DEFAULT_TIMEOUT,
    options: Sequence[str] = (),
) -> list[str]:
    """The one ovn-nbctl invocation that runs ``commands`` as a single transaction."""
    out = ["ovn-nbctl", f"--db={db}", f"--timeout={timeout}", *options]
    for cmd in commands:
        out.append("--")
        out.extend(cmd)
    return out


def format_commands(commands: Sequence[Command], db: str | None = None) -> str:
    """The transaction as a shell command a person can read, check and paste."""
    head = "ovn-nbctl" + (f" --db={shlex.quote(db)}" if db else "")
    if not commands:
        return f"{head}   # nothing to do\n"
    lines = [head + " \\"]
    for i, cmd in enumerate(commands):
        tail = " \\" if i < len(commands) - 1 else ""
        lines.append(f"  -- {shlex.join(cmd)}{tail}")
    return "\n".join(lines) + "\n"


def run(
    db: str,
    commands: Sequence[Command],
    *,
    timeout: int = DEFAULT_TIMEOUT,
    options: Sequence[str] = (),
) -> str:
    """Run ``commands`` in one transaction against ``db``; stdout, or HostError naming why."""
    check_db(db)
    if not commands:
        return ""
    args = argv(db, commands, timeout=timeout, options=options)
    args[0] = binary()
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout + 5, check=False
        )
    except OSError as exc:  # E2BIG: the transaction outgrew the 2 MiB command line
        raise HostError(
            f"cannot run ovn-nbctl with {len(commands)} commands: {exc.strerror}",
            hint="apply fewer networks at once (about 1,200 fit in one transaction)",
        ) from None
    except subprocess.TimeoutExpired:
        raise HostError(
            f"ovn-nbctl did not finish within {timeout} s talking to {db}",
            hint="check that the northbound ovsdb-server is running and reachable",
        ) from None
    if proc.returncode != 0:
        err = proc.stderr.strip().replace("ovn-nbctl: ", "")
        if "Connection refused" in err or "No such file" in err or "timed out" in err:
            hint = "check that the northbound ovsdb-server listens on that address"
        elif "duplicate uuid" in err:
            # A plan made against an older state (another apply came first): nothing of it
            # ran; a new apply reads the state again and updates the rows instead.
            hint = "the database changed since this plan was made; nothing was changed: apply again"
        else:
            hint = "nothing was changed: the transaction is all or nothing"
        raise HostError(f"ovn-nbctl failed against {db}: {err}", hint=hint)
    return proc.stdout
