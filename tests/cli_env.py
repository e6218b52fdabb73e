"""What the CLI tests share: a namespace-contained host, the CLI run in-process against it,
and a real DHCP client. Everything carries the run mark and is removed even after a failure;
processes are stopped by PID only."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner, Result

from virtnet.cli.main import cli
from virtnet.engine import Engine
from virtnet.host import netns

ROOT = Path(__file__).resolve().parents[1]
ETC_NETNS = Path("/etc/netns")


def net_xml(name: str, bridge: str, third: int, *, mode: str | None = "nat", dhcp: bool = True,
            uuid: str | None = None, mac: str | None = None, extra: str = "") -> str:
    """A small network on 10.<third>.0.0/24, STP off so ports forward at once."""
    fwd = f"<forward mode='{mode}'/>" if mode else ""
    dh = (f"<dhcp><range start='10.{third}.0.10' end='10.{third}.0.20'/></dhcp>"
          if dhcp else "")
    return textwrap.dedent(f"""\
        <network>
          <name>{name}</name>
          {f"<uuid>{uuid}</uuid>" if uuid else ""}
          {fwd}
          <bridge name='{bridge}' stp='off' delay='0'/>
          {f"<mac address='{mac}'/>" if mac else ""}
          {extra}
          <ip address='10.{third}.0.1' prefix='24'>{dh}</ip>
        </network>
        """)


@dataclass
class CliHost:
    """A host namespace NS with virtnet's state in STATE; ``run`` is the virtnet command."""

    ns: str
    state: Path
    tmp: Path
    mark: str
    extra_ns: list[str] = field(default_factory=list)

    def run(self, *args: str, ok: bool = True, input: str | None = None,
            env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        result = runner.invoke(cli, ["--netns", self.ns, "--state-dir", str(self.state), *args],
                               input=input, env=env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, (args, result.output)
        return result

    def json(self, *args: str) -> object:
        return json.loads(self.run("-o", "json", *args).stdout)

    def write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path

    def links(self) -> set[str]:
        out = netns.run(self.ns, ["ip", "-o", "link", "show"]).stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}

    def new_ns(self, suffix: str) -> str:
        name = f"{self.ns}{suffix}"
        netns.create(name)
        self.extra_ns.append(name)
        return name

    def subprocess(self, *args: str, env: dict[str, str] | None = None,
                   timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The CLI in its own process (for concurrency and kill tests)."""
        argv = [sys.executable, "-c", "from virtnet.cli.main import main; main()",
                "--netns", self.ns, "--state-dir", str(self.state), *args]
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})


def dnsmasq_pids(state: Path) -> list[int]:
    """dnsmasq processes started for this state directory (found by their --conf-file)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if cmd.startswith("dnsmasq") and str(state) in cmd:
                pids.append(int(d.name))
    return pids


@contextlib.contextmanager
def cli_host(tmp_path: Path, mark: str) -> Iterator[CliHost]:
    ns = mark
    # dnsmasq re-reads its host files as the unprivileged 'dnsmasq' user on SIGHUP: the
    # state dir must be traversable by it, which pytest's 0700 tmp_path is not.
    base = Path(tempfile.mkdtemp(prefix=f"{mark}-"))
    base.chmod(0o755)
    netns.create(ns)
    host = CliHost(ns=ns, state=base / "state", tmp=tmp_path, mark=mark)
    try:
        yield host
    finally:
        _cleanup(host)
        shutil.rmtree(base, ignore_errors=True)


def _cleanup(host: CliHost) -> None:
    with contextlib.suppress(Exception):
        if (host.state / "virtnet.db").exists():
            with Engine(host.state, host.ns) as eng:
                for name in eng.store.list_runtime(host.ns):
                    with contextlib.suppress(Exception):
                        eng.stop(name)
    for pid in dnsmasq_pids(host.state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    for name in [*host.extra_ns, host.ns]:
        with contextlib.suppress(Exception):
            netns.delete(name)
        shutil.rmtree(ETC_NETNS / name, ignore_errors=True)


def dhcp_lease(client_ns: str, *, timeout: int = 8) -> str | None:
    """Run udhcpc once in CLIENT_NS (under unshare --uts, own resolv.conf); the address got."""
    etc = ETC_NETNS / client_ns
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text("# virtnet test client\n")
    script = Path(tempfile.gettempdir()) / f"{client_ns}-udhcpc.sh"
    script.write_text("#!/bin/sh\ncase \"$1\" in bound|renew)\n"
                      "  ip addr add \"$ip/${mask:-24}\" dev \"$interface\";;\nesac\nexit 0\n")
    script.chmod(0o755)
    netns.run(client_ns, ["ip", "link", "set", "eth0", "up"])
    try:
        subprocess.run(["ip", "netns", "exec", client_ns, "unshare", "--uts", "udhcpc", "-i",
                        "eth0", "-f", "-q", "-n", "-t", str(timeout), "-T", "1", "-A", "1",
                        "-s", str(script)],
                       capture_output=True, text=True, timeout=timeout * 3 + 10)
    finally:
        script.unlink(missing_ok=True)
    out = netns.run(client_ns, ["ip", "-j", "-4", "addr", "show", "dev", "eth0"]).stdout
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info", []):
            if a.get("scope") == "global":
                return str(a["local"])
    return None
