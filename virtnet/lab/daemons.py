"""Daemons a lab runs as its own children, each in a namespace, ended by PID.

Not ``--detach``: a detached daemon is re-parented to PID 1, which on these machines never
reaps, so every daemon the lab ever ran would linger as a zombie. As children they are
waited for. ``ip netns exec`` execs the daemon, so the child's PID is the daemon's.
Each PID is recorded with its start time (``/proc/PID/stat`` field 22), so a lab torn down
from its state file after a crash ends only the processes it started, never a PID reused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from virtnet.errors import HostError


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    start_time: int  # clock ticks since boot: tells our PID from a reused one
    log: str

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "pid": self.pid, "start_time": self.start_time,
                "log": self.log}


def start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[19]) if fields[0] != "Z" else None


def is_ours(pid: int, started: int) -> bool:
    """Whether PID still runs and is the process we started (same start time)."""
    return start_time(pid) == started


class Daemons:
    """The lab's running daemons, in start order; ``stop`` ends them newest first."""

    def __init__(self, on_start: Callable[[Started], None] | None = None) -> None:
        self.procs: list[tuple[Started, subprocess.Popen[bytes]]] = []
        self._on_start = on_start

    def start(self, name: str, netns: str, argv: Sequence[str], *, log: Path,
              env: Mapping[str, str] | None = None, cwd: Path | None = None,
              ready: Callable[[], bool] | None = None, timeout: float = 15.0) -> Started:
        """Run ARGV in NETNS; with READY, wait until it says the daemon serves."""
        full_env = {**os.environ, **(env or {})}
        with log.open("ab") as fh:
            proc = subprocess.Popen(["ip", "netns", "exec", netns, *argv], stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=full_env, cwd=cwd, start_new_session=True)
        st = start_time(proc.pid)
        s = Started(name, proc.pid, st or 0, str(log))
        self.procs.append((s, proc))
        if self._on_start is not None:
            self._on_start(s)
        if ready is not None:
            deadline = time.monotonic() + timeout
            while not ready():
                if proc.poll() is not None:
                    raise HostError(f"lab daemon {name} exited ({proc.returncode}): "
                                    f"{_tail(log)}", hint=f"its log: {log}")
                if time.monotonic() > deadline:
                    raise HostError(f"lab daemon {name} was not ready within {timeout:.0f} s: "
                                    f"{_tail(log)}", hint=f"its log: {log}")
                time.sleep(0.01)
        return s

    def pop(self, name: str) -> None:
        """End one daemon (by PID) and forget it."""
        for i, (s, proc) in enumerate(self.procs):
            if s.name == name:
                _end(proc)
                del self.procs[i]
                return

    def stop(self, grace: float = 3.0) -> list[str]:
        """SIGTERM every daemon, newest first; SIGKILL what is still there after GRACE; reap
        them all. Returns what was ended."""
        out = []
        for _s, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for s, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.append(f"process {s.pid} ({s.name})")
        self.procs.clear()
        return out


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill_recorded(recorded: Sequence[Mapping[str, object]], grace: float = 3.0) -> list[str]:
    """End processes of a lab whose keeper is gone (crash), only those still ours."""
    out = []
    live = [(int(str(r["pid"])), int(str(r["start_time"])), str(r["name"])) for r in recorded]
    live = [r for r in live if is_ours(r[0], r[1])]
    for pid, _, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid, st, name in live:
        while is_ours(pid, st) and time.monotonic() < deadline:
            time.sleep(0.02)
        if is_ours(pid, st):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        out.append(f"process {pid} ({name})")
    return out


def _tail(log: Path, n: int = 600) -> str:
    try:
        return log.read_text(errors="replace")[-n:].strip()
    except FileNotFoundError:
        return "(no log)"
