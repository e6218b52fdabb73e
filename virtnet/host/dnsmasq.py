"""One dnsmasq process per network: start it inside a namespace, signal it, stop it.

dnsmasq daemonizes itself: its parent exits only once the daemon has read its configuration
and bound its sockets, so a bad configuration or a busy port is reported synchronously.
A PID is only ever signalled after /proc/PID/cmdline shows our own configuration path, and
through a pidfd, so a recycled PID is never hit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import select
import signal
import subprocess
from pathlib import Path

from virtnet.errors import HostError
from virtnet.host.nsenter import entered

DNSMASQ = "dnsmasq"


@functools.cache
def run_user() -> str:
    """The unprivileged user dnsmasq switches to: 'dnsmasq' (Debian's dnsmasq-base) or nobody."""
    try:
        pwd.getpwnam("dnsmasq")
        return "dnsmasq"
    except KeyError:
        return "nobody"


def conf_arg(conf: Path) -> str:
    return f"--conf-file={conf}"


def start(netns: str | None, conf: Path, pidfile: Path) -> int:
    """Start dnsmasq for CONF inside NETNS; returns the daemon's PID."""
    return finish(launch(netns, conf, pidfile), conf, pidfile)


def launch(netns: str | None, conf: Path, pidfile: Path) -> subprocess.Popen[str]:
    """Begin starting dnsmasq for CONF inside NETNS; ``finish`` waits for it to be up."""
    argv = [DNSMASQ, conf_arg(conf), f"--user={run_user()}"]
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    with entered(netns):
        try:
            return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, text=True)
        except OSError as exc:
            raise HostError(f"cannot run dnsmasq: {exc}", hint="install dnsmasq-base") from None


def finish(proc: subprocess.Popen[str], conf: Path, pidfile: Path) -> int:
    """Wait until the launched dnsmasq has daemonized (its configuration read, its sockets
    bound) and return the daemon's PID; HostError with dnsmasq's words if it refused."""
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise HostError(f"dnsmasq for {conf} did not start within 30 s") from None
    if proc.returncode != 0:
        text = (err or out).strip()
        hint = "check the network's dnsmasq:options and that its addresses are not in use"
        if "inotify" in text:
            # Each dnsmasq that reads the host's resolv.conf watches it with one inotify
            # instance; the kernel allows 128 per user by default (libvirt hits this too).
            hint = ("too many dnsmasq instances for the inotify limit: raise it "
                    "(sysctl -w fs.inotify.max_user_instances=2048), or give the network "
                    "a <dns><forwarder addr=.../> so its dnsmasq does not watch resolv.conf")
        raise HostError(f"dnsmasq refused to start for {conf}: {text}", hint=hint)
    pid = read_pid(pidfile)
    if pid is None:
        raise HostError(f"dnsmasq for {conf} started but wrote no pid file {pidfile}")
    return pid


def abort(proc: subprocess.Popen[str], conf: Path, pidfile: Path) -> None:
    """Undo a launch: wait for the starter, then stop the daemon if it came up."""
    if proc.returncode is None:  # not waited for yet
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    pids = set(find(conf))
    pid = read_pid(pidfile)
    if pid is not None:
        pids.add(pid)
    for pid in sorted(pids):
        stop(pid, conf)


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_ours(pid: int, conf: Path) -> bool:
    """True when PID is a live (not zombie) dnsmasq started with CONF."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().split(b"\0")
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != b"Z" and conf_arg(conf).encode() in args


def find(conf: Path) -> list[int]:
    """PIDs of dnsmasq processes running CONF (used to clean up after a crash)."""
    needle = conf_arg(conf).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return [pid for pid in found if is_ours(pid, conf)]


def wait_gone(pid: int, *, timeout: float = 2.0) -> None:
    """Wait until a dying dnsmasq PID has really exited. While a killed process exits, its
    cmdline is already empty but its sockets are still open: a new dnsmasq would find its
    addresses in use."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            if b"(dnsmasq)" not in fh.read():
                return
        fd = os.pidfd_open(pid)
    except (FileNotFoundError, ProcessLookupError):
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(int(timeout * 1000))
    finally:
        os.close(fd)


def signal_pid(pid: int, conf: Path, sig: int) -> bool:
    """Send SIG to PID if it is our dnsmasq for CONF; False if it is not (or gone)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        if not is_ours(pid, conf):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


class Stopping:
    """A SIGTERM sent to our dnsmasq; ``wait()`` for it to be gone (SIGKILL if it lingers).
    Splitting the two lets the caller tear other things down meanwhile."""

    def __init__(self, pid: int, conf: Path) -> None:
        self.pid = pid
        self.fd: int | None = None
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            if is_ours(pid, conf):
                signal.pidfd_send_signal(fd, signal.SIGTERM)
                self.fd, fd = fd, -1
        except ProcessLookupError:
            pass
        finally:
            if fd >= 0:
                os.close(fd)

    @property
    def sent(self) -> bool:
        return self.fd is not None

    def wait(self, timeout: float = 2.0) -> bool:
        if self.fd is None:
            return False
        try:
            poller = select.poll()
            poller.register(self.fd, select.POLLIN)
            if not poller.poll(int(timeout * 1000)):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self.fd, signal.SIGKILL)
                poller.poll(int(timeout * 1000))
            return True
        finally:
            os.close(self.fd)
            self.fd = None


def stop(pid: int, conf: Path, *, timeout: float = 2.0) -> bool:
    """Terminate our dnsmasq PID and wait for it to exit; False if it was not running."""
    return Stopping(pid, conf).wait(timeout)
