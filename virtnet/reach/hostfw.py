"""What the host's own nftables rules do with a packet (open mode: "depends on the host's
firewall rules").

Reads ``nft -j list ruleset`` and walks the base chains at one hook, tables other than
virtnet's, in priority order, with nftables' semantics: an accept ends only its own base chain,
a drop or reject anywhere is final, a chain's policy applies when no rule decides. The common
matches are understood (interface names, addresses and prefixes, sets of them, layer-4 protocol,
TCP destination port, conntrack state); a rule using anything else gives "don't know" (None)
together with the rule's text, rather than a guess.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from virtnet.host import netns as netns_mod

VIRTNET_TABLE = ("inet", "virtnet")
PROBE_PORT = 47001  # the TCP port verify's listeners use (hostfw matches `tcp dport` against it)
_IGNORED = {"counter", "log", "limit", "quota", "notrack", "meta_set", "mangle"}


@dataclass(frozen=True)
class Packet:
    hook: str  # input | forward | output
    family: str  # ipv4 | ipv6
    proto: str  # icmp | tcp
    iif: str | None
    oif: str | None
    saddr: str
    daddr: str
    state: str = "new"  # new | established


class _Unknown(Exception):
    pass


def read_ruleset(netns: str | None) -> dict[str, Any]:
    """The namespace's whole ruleset as nft's JSON (empty when nftables has nothing)."""
    proc = netns_mod.run(netns, ["nft", "-j", "list", "ruleset"])
    text = proc.stdout.strip()
    return json.loads(text) if text else {"nftables": []}


def host_tables(ruleset: dict[str, Any]) -> list[tuple[str, str]]:
    """(family, name) of every table that is not virtnet's."""
    out = []
    for item in ruleset.get("nftables", []):
        t = item.get("table")
        if t and (t["family"], t["name"]) != VIRTNET_TABLE:
            out.append((t["family"], t["name"]))
    return out


def evaluate(ruleset: dict[str, Any], pkt: Packet) -> tuple[bool | None, str]:
    """(True, why) accepted / no rule; (False, why) dropped; (None, why) not understood.

    ``why`` is empty when no host rule looked at the packet at all.
    """
    fams = {"inet", "ip" if pkt.family == "ipv4" else "ip6"}
    items = ruleset.get("nftables", [])
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in items:
        if "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in item:
            r = item["rule"]
            rules.setdefault((r["family"], r["table"], r["chain"]), []).append(r)
    bases = sorted(
        (c for key, c in chains.items()
         if key[0] in fams and (key[0], key[1]) != VIRTNET_TABLE
         and c.get("hook") == pkt.hook and c.get("type", "filter") == "filter"),
        key=lambda c: int(c.get("prio", 0)),
    )
    why = ""
    for base in bases:
        key = (base["family"], base["table"], base["name"])
        where = f"table {base['family']} {base['table']} chain {base['name']}"
        try:
            verdict, rule = _run_chain(key, chains, rules, pkt, depth=0)
        except _Unknown as exc:
            return None, f"{where}: rule not understood: {exc}"
        if verdict is None:
            verdict = base.get("policy", "accept")
            rule = f"policy {verdict}"
        if verdict in ("drop", "reject"):
            return False, f"{where}: {rule}"
        why = f"{where}: {rule}"
    return True, why


def _run_chain(
    key: tuple[str, str, str],
    chains: dict[tuple[str, str, str], dict[str, Any]],
    rules: dict[tuple[str, str, str], list[dict[str, Any]]],
    pkt: Packet,
    depth: int,
) -> tuple[str | None, str]:
    if depth > 16:
        raise _Unknown("jumps nested too deep")
    for rule in rules.get(key, []):
        exprs = rule.get("expr", [])
        matched = True
        for e in exprs:
            (name, val), = e.items()
            if name == "match":
                if not _match(val, pkt):
                    matched = False
                    break
            elif name in ("accept", "drop", "reject"):
                return name, _text(exprs)
            elif name in ("jump", "goto"):
                target = (key[0], key[1], val["target"])
                verdict, why = _run_chain(target, chains, rules, pkt, depth + 1)
                if verdict is not None:
                    return verdict, why
                if name == "goto":
                    return None, ""
                break  # jump came back: next rule of this chain
            elif name == "return":
                return None, ""
            elif name in _IGNORED:
                continue
            else:
                raise _Unknown(_text(exprs))
        if not matched:
            continue
    return None, ""


def _field(left: dict[str, Any], pkt: Packet) -> Any:
    if "meta" in left:
        k = left["meta"]["key"]
        if k == "iifname":
            return pkt.iif
        if k == "oifname":
            return pkt.oif
        if k == "l4proto":
            return _l4(pkt)
        if k == "nfproto":
            return pkt.family
        raise _Unknown(f"meta {k}")
    if "payload" in left:
        p = left["payload"]
        proto, fld = p.get("protocol"), p.get("field")
        if proto in ("ip", "ip6"):
            if (proto == "ip") != (pkt.family == "ipv4"):
                return _Absent
            if fld == "saddr":
                return pkt.saddr
            if fld == "daddr":
                return pkt.daddr
            if fld in ("protocol", "nexthdr"):
                return _l4(pkt)
        if proto == "tcp" and fld == "dport":
            return PROBE_PORT if pkt.proto == "tcp" and pkt.state == "new" else _Absent
        if proto in ("tcp", "udp", "icmp", "icmpv6"):
            return _Absent if _l4(pkt) != proto else _unknown(f"{proto} {fld}")
        raise _Unknown(f"{proto} {fld}")
    if "ct" in left and left["ct"].get("key") == "state":
        return pkt.state
    raise _Unknown(json.dumps(left))


class _AbsentType:
    pass


_Absent = _AbsentType()


def _unknown(what: str) -> Any:
    raise _Unknown(what)


def _l4(pkt: Packet) -> str:
    if pkt.proto == "tcp":
        return "tcp"
    return "icmp" if pkt.family == "ipv4" else "ipv6-icmp"


def _one(value: Any, right: Any) -> bool:
    if isinstance(right, dict) and "prefix" in right:
        net = ipaddress.ip_network(f"{right['prefix']['addr']}/{right['prefix']['len']}")
        try:
            return ipaddress.ip_address(value) in net
        except ValueError:
            return False
    if isinstance(right, dict) and "range" in right:
        lo, hi = right["range"]
        return bool(lo <= value <= hi)
    if isinstance(value, str) and isinstance(right, str) and right.endswith("*"):
        return value.startswith(right[:-1])
    if value in ("icmpv6", "ipv6-icmp") and right in ("icmpv6", "ipv6-icmp"):
        return True
    if isinstance(right, str) and isinstance(value, str):
        try:
            return ipaddress.ip_address(value) == ipaddress.ip_address(right)
        except ValueError:
            return value == right
    return bool(value == right)


def _match(m: dict[str, Any], pkt: Packet) -> bool:
    value = _field(m["left"], pkt)
    op, right = m.get("op", "=="), m["right"]
    if value is _Absent or value is None:
        return op == "!="
    if isinstance(right, dict) and "set" in right:
        right = right["set"]
    if m["left"].get("ct"):
        states = right if isinstance(right, list) else [right]
        mapped = {"new": {"new"}, "established": {"established", "related"}}[pkt.state]
        hit = bool(mapped & set(states))
        return hit if op in ("==", "in") else not hit
    hit = any(_one(value, r) for r in right) if isinstance(right, list) else _one(value, right)
    if op in ("==", "in"):
        return hit
    if op == "!=":
        return not hit
    raise _Unknown(f"operator {op}")


def _text(exprs: list[dict[str, Any]]) -> str:
    """A compact, readable rendering of a rule's expressions."""
    parts = []
    for e in exprs:
        (name, val), = e.items()
        if name == "match":
            left = val["left"]
            lhs = (left.get("meta", {}).get("key")
                   or " ".join(str(v) for v in left.get("payload", {}).values())
                   or ("ct state" if "ct" in left else json.dumps(left)))
            op = val.get("op", "==")
            parts.append(f"{lhs} {'' if op in ('==', 'in') else op + ' '}{_rhs(val['right'])}")
        elif name in _IGNORED:
            continue
        elif val is None:
            parts.append(name)
        else:
            parts.append(f"{name} {json.dumps(val)}")
    return " ".join(parts)


def _rhs(right: Any) -> str:
    if isinstance(right, dict) and "prefix" in right:
        return f"{right['prefix']['addr']}/{right['prefix']['len']}"
    if isinstance(right, dict) and "set" in right:
        return "{ " + ", ".join(_rhs(r) for r in right["set"]) + " }"
    if isinstance(right, list):
        return "{ " + ", ".join(_rhs(r) for r in right) + " }"
    return str(right)
