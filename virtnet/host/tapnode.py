"""Who may open a macvtap port's character device, ``/dev/tap<ifindex>``.

QEMU uses a macvtap port by opening that node. The kernel creates it with the device
(devtmpfs; udev may then apply the host's rules) as root:root 0600: root alone, which is
also virtnet's default. ``--owner``/``--group`` hand it to QEMU's user or group: the node is
chowned and its mode set to 0600 (owner) or 0660 (group), nothing wider. The node goes away
with the device, so nothing is left to undo at port deletion.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from virtnet.errors import HostError

_DEV = Path("/dev")


def node(ifindex: int) -> Path:
    return _DEV / f"tap{ifindex}"


def own(ifindex: int, uid: int | None, gid: int | None, *, wait: float = 1.0) -> Path:
    """Give /dev/tapIFINDEX to UID and/or GID (None: root keeps it)."""
    path = node(ifindex)
    deadline = time.monotonic() + wait
    while not path.exists():  # devtmpfs makes it with the device; udev may be slower
        if time.monotonic() > deadline:
            raise HostError(f"the macvtap device's node {path} did not appear",
                            hint="is devtmpfs mounted on /dev (or udev running)?")
        time.sleep(0.01)
    os.chown(path, 0 if uid is None else uid, 0 if gid is None else gid)
    os.chmod(path, 0o660 if gid is not None else 0o600)
    return path


def owner_of(ifindex: int) -> tuple[int | None, int | None]:
    """(uid, gid) of /dev/tapIFINDEX as port-list shows them; (None, None) without a node."""
    try:
        st = node(ifindex).stat()
    except OSError:
        return None, None
    group = st.st_gid if st.st_mode & 0o060 else None
    return st.st_uid, group
