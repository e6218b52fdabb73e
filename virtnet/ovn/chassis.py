"""Which chassis hosts the gateway routers: given (``--chassis``) or found in the SB database.

A gateway router binds to the chassis named in its ``options:chassis``. A name no chassis
carries (the ``plan`` placeholder) is accepted by OVN without a word, and then the router's
ports bind nowhere: VMs do not even reach their gateway. So ``apply`` of a network that
needs a gateway takes ``--chassis``, or asks the southbound ``Chassis`` table (``--sb-db``):
the one chassis marked as a gateway (``ovn-cms-options=enable-chassis-as-gw``, the mark
ovn-kubernetes and neutron use), else the only chassis there is. Anything else is refused
with the names to choose from.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from virtnet.errors import HostError, InvalidDefinition, NotSupported
from virtnet.ovn.nbctl import check_db

GATEWAY_MARK = "enable-chassis-as-gw"


@dataclass(frozen=True)
class Chassis:
    name: str
    hostname: str
    gateway: bool  # ovn-cms-options has enable-chassis-as-gw


def read(sb: str, timeout: int = 10) -> list[Chassis]:
    """The southbound database's chassis (one ovn-sbctl call)."""
    check_db(sb)
    exe = shutil.which("ovn-sbctl")
    if exe is None:
        raise NotSupported("ovn-sbctl is not installed",
                           hint="install Debian's ovn-common (scripts/setup.sh does)")
    proc = subprocess.run([exe, f"--db={sb}", f"--timeout={timeout}", "--format=json",
                           "--columns=name,hostname,other_config,external_ids", "list",
                           "Chassis"], capture_output=True, text=True, timeout=timeout + 5)
    if proc.returncode != 0:
        raise HostError(f"cannot read the chassis from {sb}: {proc.stderr.strip()}",
                        hint="check that the southbound ovsdb-server listens on that address")
    data = json.loads(proc.stdout)
    out = []
    for row in data["data"]:
        name, hostname, other, ext = row
        opts = dict(other[1]) | dict(ext[1])  # 23.03 keeps it in other_config
        cms = str(opts.get("ovn-cms-options", ""))
        out.append(Chassis(str(name), str(hostname), GATEWAY_MARK in cms.split(",")))
    return sorted(out, key=lambda c: c.name)


def pick(chassis: Sequence[Chassis]) -> str:
    """The gateway chassis among CHASSIS, or a clear refusal naming the candidates."""
    gws = [c for c in chassis if c.gateway]
    if len(gws) == 1:
        return gws[0].name
    if not gws and len(chassis) == 1:
        return chassis[0].name
    if not chassis:
        raise InvalidDefinition(
            "the southbound database has no chassis to host the gateway routers",
            element="--chassis",
            hint="start ovn-controller on the gateway hypervisor, or pass --chassis NAME",
        )
    names = ", ".join(c.name for c in (gws or chassis))
    raise InvalidDefinition(
        f"cannot tell which chassis hosts the gateway routers: {names}",
        element="--chassis",
        hint="pass --chassis NAME, or mark one chassis with "
        f"ovs-vsctl set open . external-ids:ovn-cms-options={GATEWAY_MARK}",
    )


def required(network_names: Sequence[str]) -> InvalidDefinition:
    return InvalidDefinition(
        f"network(s) {', '.join(network_names)} need a gateway chassis, and none was given",
        element="--chassis",
        hint="pass --chassis NAME (ovn-sbctl --bare --columns=name list Chassis), or "
        "--sb-db CONN to pick the chassis marked enable-chassis-as-gw",
    )
