"""A throwaway OVN central for tests: NB and SB ovsdb-servers and ovn-northd, run by hand.

Everything lives in one temporary directory (databases, unix sockets, control sockets,
logs); the daemons run in the foreground as our children and are ended by PID. No kernel
datapath and no ovn-controller: ovn-trace simulates the logical flows northd computes.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
TOOLS = ("ovsdb-server", "ovsdb-tool", "ovn-northd", "ovn-nbctl", "ovn-sbctl", "ovn-trace")


def require_ovn() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or not NB_SCHEMA.exists():
        pytest.skip(f"OVN not installed ({', '.join(missing) or NB_SCHEMA}): run scripts/setup.sh")


def _wait_socket(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear: {log.read_text()[-2000:]}")
        time.sleep(0.005)


class OvnCentral:
    def __init__(self, root: Path, *, northd: bool = True) -> None:
        self.root = root
        self.nb_sock = root / "nb.sock"
        self.sb_sock = root / "sb.sock"
        self.nb_file = root / "nb.db"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.with_northd = northd

    @property
    def nb(self) -> str:
        return f"unix:{self.nb_sock}"

    @property
    def sb(self) -> str:
        return f"unix:{self.sb_sock}"

    def _daemon(self, name: str, argv: list[str], sock: Path | None) -> None:
        log = self.root / f"{name}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=self.root)
        self.procs.append(proc)
        if sock is not None:
            _wait_socket(sock, proc, log)

    def _ovsdb(self, name: str, schema: Path, sock: Path) -> None:
        db = self.root / f"{name}.db"
        subprocess.run(["ovsdb-tool", "create", str(db), str(schema)], check=True)
        self._daemon(
            name,
            [
                "ovsdb-server",
                f"--remote=punix:{sock}",
                f"--unixctl={self.root / (name + '.ctl')}",
                "--no-chdir",
                "-vconsole:off",
                f"--log-file={self.root / (name + '-ovsdb.log')}",
                str(db),
            ],
            sock,
        )

    def start(self) -> OvnCentral:
        try:
            self._ovsdb("nb", NB_SCHEMA, self.nb_sock)
            subprocess.run(["ovn-nbctl", f"--db={self.nb}", "init"], check=True)
            if self.with_northd:
                self._ovsdb("sb", SB_SCHEMA, self.sb_sock)
                self._daemon(
                    "northd",
                    [
                        "ovn-northd",
                        f"--ovnnb-db={self.nb}",
                        f"--ovnsb-db={self.sb}",
                        f"--unixctl={self.root / 'northd.ctl'}",
                        "--no-chdir",
                        "-vconsole:off",
                        f"--log-file={self.root / 'northd-file.log'}",
                    ],
                    self.root / "northd.ctl",
                )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End our daemons by PID (SIGTERM, then SIGKILL), northd first."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def nbctl(self, *args: str) -> str:
        return subprocess.run(
            ["ovn-nbctl", f"--db={self.nb}", *args], capture_output=True, text=True, check=True
        ).stdout

    def sync(self, timeout: int = 10) -> None:
        """Wait until northd has turned the NB contents into SB logical flows."""
        self.nbctl(f"--timeout={timeout}", "--wait=sb", "sync")

    def trace(self, datapath: str, flow: str, *ct: str, minimal: bool = True) -> str:
        """ovn-trace's account of ``flow`` entering ``datapath``; ``ct``: the conntrack
        states successive lookups return."""
        argv = ["ovn-trace", f"--db={self.sb}", *(["--minimal"] if minimal else [])]
        argv += [f"--ct={c}" for c in ct]
        out = subprocess.run([*argv, datapath, flow], capture_output=True, text=True, check=True)
        return out.stdout
