"""Find other tables that will drop virtnet's traffic whatever virtnet's table says.

In nftables every base chain at a hook sees the packet; an ``accept`` only ends that one
chain, while a ``drop`` (policy or rule) in any table is final. So Docker's
``ip filter FORWARD`` with policy drop (iptables-nft), a firewalld/distribution table with a
drop policy at the forward or input hook, or any table's reject kills NAT and routed
networks even though ``inet virtnet`` accepts them (moby#39439, docker/for-linux#949). This
module only reads the ruleset and reports; it never edits another table. Rules loaded with
iptables-legacy are not visible to nft and are not reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from virtnet.errors import HostError
from virtnet.firewall.schema import TABLE
from virtnet.host import netns as netns_mod

# Hooks where a foreign drop hurts virtnet: forwarding (NAT/routed traffic; bridged frames
# too, via br_netfilter) and input (DHCP/DNS from VMs to the host's dnsmasq).
_HOOKS = {"forward": "forwarded VM traffic", "input": "DHCP/DNS from VMs to the host"}
_FAMILIES = {"ip", "ip6", "inet", "bridge"}
_TABLE_LINE = re.compile(r"^table (\S+) (\S+) \{")
_CHAIN_LINE = re.compile(r"^\tchain (\S+) \{")
_HANDLE = re.compile(r"^\t\t(.*) # handle (\d+)$")


def _rule_texts(text: str) -> dict[tuple[str, str, str, int], str]:
    """(family, table, chain, handle) -> rule text, from ``nft -a list ruleset``."""
    out: dict[tuple[str, str, str, int], str] = {}
    table: tuple[str, str] | None = None
    chain: str | None = None
    for line in text.splitlines():
        if m := _TABLE_LINE.match(line):
            table, chain = (m.group(1), m.group(2)), None
        elif m := _CHAIN_LINE.match(line):
            chain = m.group(1)
        elif table and chain and (m := _HANDLE.match(line)):
            out[(table[0], table[1], chain, int(m.group(2)))] = m.group(1)
    return out


def _verdicts(expr: Any) -> set[str]:
    """Verdict keywords anywhere in a rule's JSON expression list (drop, reject, jump...)."""
    found: set[str] = set()
    if isinstance(expr, dict):
        for key, value in expr.items():
            if key in ("drop", "reject", "accept"):
                found.add(key)
            elif key in ("jump", "goto") and isinstance(value, dict):
                found.add(f"{key}:{value.get('target')}")
            else:
                found |= _verdicts(value)
    elif isinstance(expr, list):
        for item in expr:
            found |= _verdicts(item)
    return found


# Which interface matches a chain at that hook needs, per bridge, to let VM traffic pass.
_SIDES = {"forward": ("iifname", "oifname"), "input": ("iifname",)}


def _accepts_bridges(rules: list[str], bridges: Sequence[str], sides: Sequence[str]) -> bool:
    """Does the chain explicitly accept each bridge on each side (the documented fix)?"""
    if not bridges:
        return False
    for br in bridges:
        for side in sides:
            if not any(f'{side} "{br}"' in r and r.rstrip().endswith("accept") for r in rules):
                return False
    return True


def foreign_drops(netns: str | None, *, bridges: Sequence[str] = ()) -> list[str]:
    """Other tables' input/forward chains whose drop policy or drop/reject rules would kill
    virtnet's traffic, one line each with the fix. Empty when there are none.

    A policy-drop chain that already accepts every one of BRIDGES in and out is not reported.
    """
    js = netns_mod.run(netns, ["nft", "-j", "list", "ruleset"], check=False)
    txt = netns_mod.run(netns, ["nft", "-a", "list", "ruleset"], check=False)
    if js.returncode != 0:
        raise HostError(f"cannot read the nftables ruleset: {js.stderr.strip()}")
    texts = _rule_texts(txt.stdout)
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for obj in json.loads(js.stdout or "{}").get("nftables", []):
        if "chain" in obj:
            c = obj["chain"]
            chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in obj:
            r = obj["rule"]
            rules.setdefault((r["family"], r["table"], r["chain"]), []).append(r)

    reports: list[str] = []
    for key, chain in chains.items():
        family, table, name = key
        hook = chain.get("hook")
        if (family, table) == TABLE or family not in _FAMILIES or hook not in _HOOKS:
            continue
        where = f"table {family} {table}, chain {name} (hook {hook}"
        what = _HOOKS[hook]
        texts_here = [texts.get((family, table, name, r["handle"]), "") for r in rules.get(key, [])]
        sides = _SIDES[hook]
        if chain.get("policy") == "drop" and not _accepts_bridges(texts_here, bridges, sides):
            examples = " ".join(
                f"'nft insert rule {family} {table} {name} {side} \"{br}\" accept'"
                for br in (bridges or ["BRIDGE"])
                for side in sides
            )
            reports.append(
                f"{where}, policy drop): drops {what} that it does not accept itself; "
                f"in nftables a drop in any table is final. fix: accept virtnet's bridges "
                f"there, e.g. {examples} (Docker: add the accepts to its DOCKER-USER chain)"
            )
        # Drop/reject rules in the base chain and in chains it jumps to.
        seen: set[tuple[str, str, str]] = set()
        todo = [key]
        while todo:
            ck = todo.pop()
            if ck in seen:
                continue
            seen.add(ck)
            for r in rules.get(ck, []):
                verdicts = _verdicts(r.get("expr", []))
                for v in verdicts:
                    if v.startswith(("jump:", "goto:")):
                        todo.append((family, table, v.split(":", 1)[1]))
                killing = verdicts & {"drop", "reject"}
                if killing:
                    text = texts.get((family, table, ck[2], r["handle"]), f"handle {r['handle']}")
                    reports.append(
                        f"{where}): rule in chain {ck[2]} {'/'.join(sorted(killing))}s "
                        f"matching packets: {text}; check it does not match virtnet's bridges "
                        f"or subnets (a drop in any table is final)"
                    )
    return reports
