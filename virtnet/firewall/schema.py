"""The fixed shape of virtnet's table ``inet virtnet``: its sets, maps and chains.

Nothing here depends on how many networks exist. Every network contributes only elements
to these sets and maps (see ``elements.py``), so a packet walks the same rules for one
network or a thousand, and starting or stopping one network is an element add or delete.

Rule order in ``filter_forward`` follows libvirt 9.0's chains (LIBVIRT_FWX, then FWI, then
FWO): VM<->VM on one bridge first (br_netfilter sends bridged frames through this hook),
then what may enter a bridge, reject the rest into bridges, then what may leave a bridge,
reject the rest out of bridges.

Rules are written exactly as ``nft list`` prints them back, so drift detection can compare
text; a host test asserts the round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE = ("inet", "virtnet")
TABLE_REF = "inet virtnet"

# Chain that lets replies (and only replies) into a NAT network's bridge, and rejects the
# rest itself: NAT's "not visible" holds even when the bridge's element of ``bridges`` (the
# catch-all reject below) is missing — fail closed, not open.
EST_CHAIN = "forward_established"

# Masquerading TCP/UDP into a port range. nft 1.0.6 loses the end of a range stored as the
# data of a map with a single ``interval inet_service`` value (measured: 2000-3000 is
# stored as 2000-0), so the range cannot come from a map. Instead a verdict map sends each
# subnet to a chain per port range: libvirt's default 1024-65535 always exists; a network
# with another ``<nat><port>`` range brings its own chain (created idempotently by its
# render_add, left in place by render_remove since other networks may use it).
DEFAULT_PORTS = (1024, 65535)
MASQ_PORTS_PREFIX = "masq_ports_"


def masq_ports_chain(lo: int, hi: int) -> str:
    return f"{MASQ_PORTS_PREFIX}{lo}_{hi}"


def masq_ports_rule(lo: int, hi: int) -> str:
    ports = f"{lo}-{hi}" if lo != hi else f"{lo}"
    return f"meta l4proto {{ tcp, udp }} masquerade to :{ports}"


@dataclass(frozen=True)
class SetSpec:
    name: str
    key: tuple[str, ...]
    data: tuple[str, ...] | None = None  # None: a set; ("verdict",): a verdict map
    interval: bool = False
    data_interval: bool = False
    purpose: str = ""

    @property
    def is_map(self) -> bool:
        return self.data is not None

    def declaration(self) -> str:
        """The ``type ...; flags ...;`` body of the set/map."""
        text = "type " + " . ".join(self.key)
        if self.data is not None:
            text += " : " + ("interval " if self.data_interval else "") + " . ".join(self.data)
        text += ";"
        if self.interval:
            text += " flags interval;"
        return text


@dataclass(frozen=True)
class ChainSpec:
    name: str
    base: str | None  # "type filter hook forward priority filter; policy accept;" or None
    rules: tuple[str, ...]


def _sets() -> tuple[SetSpec, ...]:
    v4, v6 = "ipv4_addr", "ipv6_addr"
    specs = [
        SetSpec("bridges", ("ifname",), purpose="bridges of nat/route/isolated networks"),
        SetSpec("same_bridge", ("ifname", "ifname"), purpose="BR . BR: VM<->VM on one bridge"),
        SetSpec("isolated", ("ifname",), purpose="bridges of isolated networks: nothing forwarded"),
        SetSpec("isolated4", (v4,), interval=True, purpose="subnets of isolated networks"),
        SetSpec("isolated6", (v6,), interval=True, purpose="subnets of isolated networks"),
    ]
    for f, addr in (("4", v4), ("6", v6)):
        specs += [
            SetSpec(f"out{f}", ("ifname", addr), interval=True, purpose="BR . S leaving BR"),
            SetSpec(
                f"out{f}_dev",
                ("ifname", "ifname", addr),
                interval=True,
                purpose="BR . DEV . S leaving BR via forward dev only",
            ),
            SetSpec(
                f"in{f}",
                ("ifname", addr),
                ("verdict",),
                interval=True,
                purpose="BR . S entering BR: accept (route) or replies only (nat)",
            ),
            SetSpec(
                f"in{f}_dev",
                ("ifname", "ifname", addr),
                ("verdict",),
                interval=True,
                purpose="DEV . BR . S entering BR from forward dev",
            ),
            SetSpec(
                f"nat{f}_skip",
                (addr, addr),
                interval=True,
                purpose="S . D not to masquerade (inside S, multicast, broadcast)",
            ),
            SetSpec(f"masq{f}", (addr,), interval=True, purpose="S masqueraded"),
            SetSpec(
                f"masq{f}_ports",
                (addr,),
                ("verdict",),
                interval=True,
                purpose="S : goto the chain masquerading TCP/UDP into S's port range",
            ),
            SetSpec(f"masq{f}_dev", (addr, "ifname"), interval=True, purpose="S . DEV"),
            SetSpec(
                f"masq{f}_dev_ports",
                (addr, "ifname"),
                ("verdict",),
                interval=True,
                purpose="S . DEV : goto port-range chain",
            ),
        ]
    specs += [
        SetSpec(
            "snat4",
            (v4,),
            (v4,),
            interval=True,
            data_interval=True,
            purpose="S : <nat><address> range (not TCP/UDP)",
        ),
        SetSpec(
            "snat4_ports",
            (v4,),
            (v4, "inet_service"),
            interval=True,
            data_interval=True,
            purpose="S : address range . port range (TCP/UDP)",
        ),
        SetSpec(
            "snat4_dev",
            (v4, "ifname"),
            (v4,),
            interval=True,
            data_interval=True,
            purpose="S . DEV : address range",
        ),
        SetSpec(
            "snat4_dev_ports",
            (v4, "ifname"),
            (v4, "inet_service"),
            interval=True,
            data_interval=True,
            purpose="S . DEV : address range . port range",
        ),
    ]
    return tuple(specs)


SETS: tuple[SetSpec, ...] = _sets()
SETS_BY_NAME = {s.name: s for s in SETS}

# In the order nft prints anonymous sets back.
_HOST_IN = "{ udp . 547, tcp . 53, udp . 53, tcp . 67, udp . 67, udp . 69 }"
_HOST_OUT = "{ udp . 546, tcp . 53, udp . 53, tcp . 68, udp . 68, udp . 69 }"


def _forward_rules() -> tuple[str, ...]:
    rules = ["iifname . oifname @same_bridge accept"]
    # Isolated networks forward nothing, whatever the destination (before any accept into
    # another network's bridge: libvirt 9.0 lets an isolated VM's packets into routed
    # networks). By bridge and by subnet, so one missing element does not open it. (Written
    # as nft prints them back: a family-specific reject shows its ICMP type.)
    rules += [
        "iifname @isolated reject",
        "oifname @isolated reject",
        "ip saddr @isolated4 reject with icmp port-unreachable",
        "ip daddr @isolated4 reject with icmp port-unreachable",
        "ip6 saddr @isolated6 reject with icmpv6 port-unreachable",
        "ip6 daddr @isolated6 reject with icmpv6 port-unreachable",
    ]
    rules += [
        "oifname . ip daddr vmap @in4",
        "oifname . ip6 daddr vmap @in6",
        "iifname . oifname . ip daddr vmap @in4_dev",
        "iifname . oifname . ip6 daddr vmap @in6_dev",
        "oifname @bridges reject",
        "iifname . ip saddr @out4 accept",
        "iifname . ip6 saddr @out6 accept",
        "iifname . oifname . ip saddr @out4_dev accept",
        "iifname . oifname . ip6 saddr @out6_dev accept",
        "iifname @bridges reject",
    ]
    return tuple(rules)


def _nat_rules() -> tuple[str, ...]:
    tu = "meta l4proto { tcp, udp }"
    return (
        "ip saddr . ip daddr @nat4_skip return",
        "ip6 saddr . ip6 daddr @nat6_skip return",
        f"{tu} snat ip to ip saddr map @snat4_ports",
        f"{tu} snat ip to ip saddr . oifname map @snat4_dev_ports",
        "snat ip to ip saddr map @snat4",
        "snat ip to ip saddr . oifname map @snat4_dev",
        f"{tu} ip saddr vmap @masq4_ports",
        f"{tu} ip saddr . oifname vmap @masq4_dev_ports",
        "ip saddr @masq4 masquerade",
        "ip saddr . oifname @masq4_dev masquerade",
        f"{tu} ip6 saddr vmap @masq6_ports",
        f"{tu} ip6 saddr . oifname vmap @masq6_dev_ports",
        "ip6 saddr @masq6 masquerade",
        "ip6 saddr . oifname @masq6_dev masquerade",
    )


def masq_ports_chain_spec(lo: int, hi: int) -> ChainSpec:
    return ChainSpec(masq_ports_chain(lo, hi), None, (masq_ports_rule(lo, hi),))


CHAINS: tuple[ChainSpec, ...] = (
    ChainSpec(EST_CHAIN, None, ("ct state established,related accept", "reject")),
    masq_ports_chain_spec(*DEFAULT_PORTS),
    ChainSpec(
        "filter_input",
        "type filter hook input priority filter; policy accept;",
        (f"iifname @bridges meta l4proto . th dport {_HOST_IN} accept",),
    ),
    ChainSpec(
        "filter_output",
        "type filter hook output priority filter; policy accept;",
        (f"oifname @bridges meta l4proto . th dport {_HOST_OUT} accept",),
    ),
    ChainSpec(
        "filter_forward",
        "type filter hook forward priority filter; policy accept;",
        _forward_rules(),
    ),
    ChainSpec(
        "nat_postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
        _nat_rules(),
    ),
    ChainSpec(
        "mangle_postrouting",
        "type filter hook postrouting priority mangle; policy accept;",
        # IPv4 only: a zero UDP checksum is invalid in IPv6.
        ("oifname @bridges meta nfproto ipv4 udp dport 68 udp checksum set 0",),
    ),
)

CHAINS_BY_NAME = {c.name: c for c in CHAINS}


def path_rule_count() -> dict[str, int]:
    """Rules in each chain of the table: fixed, whatever the number of networks."""
    return {c.name: len(c.rules) for c in CHAINS}
