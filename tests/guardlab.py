"""A running ``virtnet guard`` process on a test bed, and waiting for what it logs."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.hostlab import Lab

ROOT = Path(__file__).resolve().parents[1]


class GuardProc:
    """``virtnet -o json guard`` in its own process against LAB's namespace and state."""

    def __init__(self, lab: Lab, *, interval: float = 30.0) -> None:
        argv = [sys.executable, "-c", "from virtnet.cli.main import main; main()",
                "--netns", lab.host, "--state-dir", str(lab.state_dir), "-o", "json",
                "guard", "--interval", str(interval)]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.log: list[dict[str, Any]] = []
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self._buf = ""
        try:
            self.wait_for(lambda e: e["event"] == "start", timeout=15)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Kill the guard if it still runs (Popen never signals a PID it has reaped)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        self._sel.close()

    def _pump(self, timeout: float) -> None:
        assert self.proc.stdout is not None
        if self._sel.select(timeout):
            chunk = self.proc.stdout.read() or ""
            self._buf += chunk
            while "\n" in self._buf:
                line, self._buf = self._buf.split("\n", 1)
                if line.strip():
                    self.log.append(json.loads(line))
            if not chunk and self.proc.poll() is not None:
                time.sleep(timeout)

    def wait_for(self, match: Any, *, timeout: float = 5.0, start: int = 0) -> dict[str, Any]:
        """The first log entry (from index START) that MATCH accepts; fails after TIMEOUT."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.log[start:]:
                if match(entry):
                    return entry
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and not self._sel.select(0):
                err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                raise AssertionError(f"guard did not log it in {timeout}s: {self.log} {err}")
            self._pump(min(left, 0.2))

    def settle(self, seconds: float) -> None:
        """Read what the guard logs for SECONDS."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._pump(left)

    def repairs(self, start: int = 0) -> list[dict[str, Any]]:
        return [e for e in self.log[start:] if e["event"] == "repair"]

    def terminate(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=10)
        finally:
            with contextlib.suppress(Exception):
                self.settle(0.05)
        return rc
