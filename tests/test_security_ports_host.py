"""Who may plug into a VM's port: taps have an owner and/or group (root alone by default),
one MAC per network, and options that don't apply to a port kind are refused.

The unprivileged attacker is a real process: ``setpriv`` to uid 65534 with every capability
dropped, opening a private 0666 ``/dev/net/tun`` node (a private mount namespace, so the
test does not depend on, or change, the machine's own node) and asking TUNSETIFF for the tap.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.hostlab import Lab, nat_network
from virtnet.engine import Engine
from virtnet.errors import Conflict, InvalidDefinition, NotFound
from virtnet.host import netns
from virtnet.host.links import Netlink
from virtnet.model.network import Forward, ForwardMode, Network

pytestmark = pytest.mark.host

ATTACH = (
    "import fcntl,os,struct,sys\n"
    "fd=os.open('/dev/net/tun',os.O_RDWR)\n"
    "try:\n"
    "  fcntl.ioctl(fd,0x400454CA,struct.pack('16sH',sys.argv[1].encode(),0x0002|0x1000|0x4000))\n"
    "except OSError as e:\n"
    "  print('refused',e.errno);sys.exit(3)\n"
    "print('attached')\n"
)


def attach_as(ns: str, tap: str, uid: int, gid: int, *, groups: str = "") -> str:
    """Try to attach to TAP in NS as UID/GID with no capabilities; 'attached' or 'refused N'."""
    setpriv = ["setpriv", f"--reuid={uid}", f"--regid={gid}",
               f"--groups={groups}" if groups else "--clear-groups",
               "--inh-caps=-all", "--bounding-set=-all"]
    script = ("mount -t tmpfs tmpfs /dev/net && mknod -m 0666 /dev/net/tun c 10 200 && "
              "exec " + " ".join(setpriv) + ' /usr/bin/python3 -c "$0" "$1"')
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private",
         "sh", "-c", script, ATTACH, tap],
        capture_output=True, text=True, timeout=20)
    return (proc.stdout.strip() or proc.stderr.strip()).splitlines()[-1]


@pytest.fixture
def lab(unique_name: str) -> Iterator[Lab]:
    require_root()
    lab = Lab(unique_name)
    try:
        lab.build(outside=False)
        lab.engine.start(nat_network("p", f"{lab.mark}b", 6))
        yield lab
    finally:
        lab.close()


def test_a_tap_without_owner_is_root_only(lab: Lab) -> None:
    tap = lab.engine.add_port("p", kind="tap", name=f"{lab.mark}t")
    assert tap.owner == 0 and tap.group is None
    assert attach_as(lab.host, tap.name, 65534, 65534).startswith("refused 1")  # EPERM
    listed = {p.name: p for p in lab.engine.list_ports("p")}
    assert listed[tap.name].owner == 0


def test_only_the_owner_may_attach(lab: Lab) -> None:
    tap = lab.engine.add_port("p", kind="tap", name=f"{lab.mark}t", owner="nobody")
    assert tap.owner == 65534
    assert attach_as(lab.host, tap.name, 65534, 65534) == "attached"
    assert attach_as(lab.host, tap.name, 65533, 65533).startswith("refused 1")


def test_a_group_may_attach(lab: Lab) -> None:
    tap = lab.engine.add_port("p", kind="tap", name=f"{lab.mark}t", group="4321")
    assert tap.owner is None and tap.group == 4321
    assert attach_as(lab.host, tap.name, 65534, 4321) == "attached"
    assert attach_as(lab.host, tap.name, 65534, 65534).startswith("refused 1")
    listed = {p.name: p for p in lab.engine.list_ports("p")}
    assert (listed[tap.name].owner, listed[tap.name].group) == (None, 4321)


def test_one_mac_per_network(lab: Lab) -> None:
    mac = "52:54:00:aa:bb:cc"
    first = lab.engine.add_port("p", kind="tap", mac=mac)
    with pytest.raises(Conflict) as err:
        lab.engine.add_port("p", kind="tap", mac=mac.upper())
    assert first.name in str(err.value) and mac in str(err.value)
    assert [p.mac for p in lab.engine.list_ports("p")] == [mac]


def test_options_that_do_not_apply_are_refused(lab: Lab) -> None:
    with pytest.raises(InvalidDefinition) as err:
        lab.engine.add_port("p", kind="tap", peer_netns="nosuch")
    assert "--peer-netns" in str(err.value)
    vm_ns = lab.add_ns(f"{lab.mark}v")
    with pytest.raises(InvalidDefinition) as err:
        lab.engine.add_port("p", kind="veth", peer_netns=vm_ns, owner="nobody")
    assert "--owner" in str(err.value)
    with pytest.raises(NotFound) as err:
        lab.engine.add_port("p", kind="tap", owner="no-such-user-here")
    assert "no-such-user-here" in str(err.value)
    assert lab.engine.list_ports("p") == []


OPEN_NODE = (
    "import os,sys\n"
    "try:\n"
    "  os.close(os.open(sys.argv[1],os.O_RDWR))\n"
    "except OSError as e:\n"
    "  print('refused',e.errno);sys.exit(3)\n"
    "print('opened')\n"
)


def open_as(path: str, uid: int, gid: int) -> str:
    proc = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
         "--bounding-set=-all", "/usr/bin/python3", "-c", OPEN_NODE, path],
        capture_output=True, text=True, timeout=20)
    return (proc.stdout.strip() or proc.stderr.strip()).splitlines()[-1]


@pytest.fixture
def mvlab(unique_name: str, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """A VM host whose eth1 is a veth into a LAN namespace, and a macvtap network on it."""
    require_root()
    host, lan = unique_name + "h", unique_name + "l"
    engine = None
    try:
        for ns in (host, lan):
            netns.create(ns)
        netns.run(lan, ["ip", "link", "add", "p1", "type", "veth", "peer", "name", "eth1",
                        "netns", host])
        netns.run(host, ["ip", "link", "set", "eth1", "up"])
        engine = Engine(tmp_path / "state", host)
        engine.start(Network(name="mv", forward=Forward(mode=ForwardMode.BRIDGE,
                                                        interfaces=("eth1",))))
        yield engine, host
    finally:
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.stop("mv")
            engine.close()
        for ns in (host, lan):
            netns.delete(ns)


def _node(engine: Engine, host: str, port: str) -> str:
    with Netlink(host) as nl:
        link = nl.get(port)
    assert link is not None
    return f"/dev/tap{link.index}"


def test_a_macvtap_node_is_root_only_unless_given_away(mvlab: tuple[Engine, str]) -> None:
    engine, host = mvlab
    plain = engine.add_port("mv", kind="tap")
    path = _node(engine, host, plain.name)
    assert os.stat(path).st_uid == 0 and os.stat(path).st_mode & 0o077 == 0
    assert open_as(path, 65534, 65534) == "refused 13"  # EACCES
    given = engine.add_port("mv", kind="tap", owner="nobody")
    gpath = _node(engine, host, given.name)
    assert open_as(gpath, 65534, 65534) == "opened"
    assert open_as(gpath, 65533, 65533) == "refused 13"
    grouped = engine.add_port("mv", kind="tap", group="4321")
    assert open_as(_node(engine, host, grouped.name), 65534, 4321) == "opened"
    listed = {p.name: (p.owner, p.group) for p in engine.list_ports("mv")}
    assert listed == {plain.name: (0, None), given.name: (65534, None),
                      grouped.name: (0, 4321)}
