"""Names, MACs and row UUIDs virtnet gives its OVN objects, all derived from the network name.

Derived, not stored: a plan is a function of the definition alone, so applying it twice names
the same rows, and ``delete`` finds them again without any bookkeeping of its own. The UUIDs of
DHCP_Options and DNS rows (tables without a name column) are UUIDv5s of the network name, which
ovn-nbctl's ``--id=UUID create`` accepts.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid

from virtnet.errors import InvalidDefinition

PREFIX = "vn-"
# Names end up inside ACL match strings (inport == "..."), so quotes and backslashes are out.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_UUID_NS = uuid.UUID("6f1c5a52-6a8e-4d56-9a57-7b1f0c0e7a11")

# external_ids keys on every row virtnet creates
EXT_NETWORK = "virtnet_network"
EXT_MODE = "virtnet_mode"
EXT_ROLE = "virtnet_role"
EXT_HOSTS = "virtnet_dhcp_hosts"
EXT_GATEWAY = "virtnet_gateway"


def check_name(name: str, *, element: str = "name", what: str = "network name") -> str:
    """``name`` if it can name OVN objects safely, else a clear error."""
    if not _NAME_RE.match(name):
        raise InvalidDefinition(
            f"{what} {name!r} cannot name OVN objects",
            element=element,
            hint="use letters, digits, '_', '.' and '-' (at most 63, starting with a letter "
            "or digit)",
        )
    return name


def switch(net: str) -> str:
    return f"{PREFIX}{net}"


def router(net: str) -> str:
    return f"{PREFIX}{net}-router"


def router_port(net: str) -> str:
    """The router's port on the network's switch: holds the network's gateway address."""
    return f"{PREFIX}{net}-rtr"


def switch_router_port(net: str) -> str:
    """The switch's port of type router that patches it to router_port."""
    return f"{PREFIX}{net}-to-rtr"


def gateway_port(net: str) -> str:
    """The router's port on the outside switch: holds the network's external address."""
    return f"{PREFIX}{net}-rtr-out"


def outside_port(net: str) -> str:
    """The outside switch's port of type router that patches it to gateway_port."""
    return f"{PREFIX}{net}-gw"


def localnet_port(outside_switch: str) -> str:
    return f"{outside_switch}-localnet"


def mac(net: str, role: str) -> str:
    """A stable, locally administered unicast MAC for ``role`` of network ``net``."""
    digest = hashlib.sha256(f"virtnet-ovn/{role}/{net}".encode()).digest()
    octets = [0x0A, *digest[:5]]  # 0x0a: locally administered, unicast
    return ":".join(f"{o:02x}" for o in octets)


def dhcp_uuid(net: str) -> str:
    return str(uuid.uuid5(_UUID_NS, f"dhcpv4/{net}"))


def dns_uuid(net: str) -> str:
    return str(uuid.uuid5(_UUID_NS, f"dns/{net}"))


def q(text: str) -> str:
    """``text`` as an OVSDB string literal for ovn-nbctl's database commands."""
    return json.dumps(text)
