"""The defaults libvirt fills in when a network is defined (``virsh net-define``).

Parsing keeps what the user wrote; defining a network completes it the way libvirt's
network driver does (networkValidate / networkFindUnusedBridgeName /
virNetworkSetBridgeMacAddr in libvirt 9.0):

- a UUID is generated when none was given; a bare ``<forward>`` becomes ``mode='nat'``;
- for the modes that own a bridge (nat, route, open, isolated): a bridge name is chosen when
  none was given — ``virbrN`` with the lowest free N from 0 — or a name template with one
  ``%d`` (e.g. ``vnet%d``) is expanded the same way; STP defaults on and the forward delay 0;
  and a bridge MAC ``52:54:00:xx:xx:xx`` is generated when none was given, so the bridge keeps
  one address however its ports come and go.

Everything else is left as written. Explicit bridge names are not checked against
``taken_bridges`` here: a clash is a validation problem (virtnet.model.validate).
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid as uuidlib
from collections.abc import Collection

from virtnet.errors import Conflict
from virtnet.model.network import Bridge, Network

DEFAULT_TEMPLATE = "virbr%d"
MAX_BRIDGE_ID = 256  # libvirt gives up after virbr256


def bridge_template(name: str | None) -> str | None:
    """The template libvirt expands for ``name``, or None when ``name`` is a plain name.

    A name with exactly one ``%`` followed by ``d`` is used as given; any other name holding
    ``%d`` makes libvirt fall back to ``virbr%d``; a missing name also means ``virbr%d``.
    """
    if name is None:
        return DEFAULT_TEMPLATE
    if "%d" not in name:
        return None
    first = name.find("%")
    if first == name.rfind("%") and name[first + 1 : first + 2] == "d":
        return name
    return DEFAULT_TEMPLATE


def free_bridge_name(template: str, taken: Collection[str]) -> str:
    """The first ``template`` % N (N = 0, 1, ... 256) not in ``taken``."""
    taken_set = set(taken)
    for n in range(MAX_BRIDGE_ID + 1):
        candidate = template.replace("%d", str(n), 1)
        if candidate not in taken_set:
            return candidate
    raise Conflict(
        f"no free bridge name: {template.replace('%d', '0')} .. "
        f"{template.replace('%d', str(MAX_BRIDGE_ID))} are all taken",
        element="network/bridge",
        hint="give the network an explicit <bridge name='...'/> that is not in use",
    )


def generate_mac() -> str:
    """A random bridge MAC in QEMU/KVM's locally administered 52:54:00 range (as libvirt)."""
    tail = secrets.token_bytes(3)
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)


def fill_defaults(net: Network, *, taken_bridges: Collection[str] = ()) -> Network:
    """``net`` completed as libvirt completes a definition; ``taken_bridges`` are bridge names
    (of other networks, or devices already on the host) a generated name must avoid."""
    changes: dict[str, object] = {}
    if not net.uuid:
        changes["uuid"] = str(uuidlib.uuid4())
    if net.forward is not None and not net.forward.mode_given:
        # libvirt stores a bare <forward> as mode='nat' and prints it that way from then on.
        changes["forward"] = dataclasses.replace(net.forward, mode_given=True)
    if net.mode.has_own_bridge:
        bridge = net.bridge or Bridge()
        template = bridge_template(bridge.name)
        name = bridge.name if template is None else free_bridge_name(template, taken_bridges)
        changes["bridge"] = dataclasses.replace(
            bridge,
            name=name,
            stp=True if bridge.stp is None else bridge.stp,
            delay=0 if bridge.delay is None else bridge.delay,
        )
        if not net.mac:
            changes["mac"] = generate_mac()
    return dataclasses.replace(net, **changes) if changes else net  # type: ignore[arg-type]
