"""Applying virtnet's table in a namespace, reading it back, and finding drift.

Every call is one nft run inside the target namespace (``None`` = root namespace, which
only production use should pass): in-process through libnftables where it is installed,
else an ``nft`` process (``nftlib``). A script runs as one transaction: when any line fails
nothing of it is applied, so a HostError here never leaves the table half-changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from virtnet.errors import HostError
from virtnet.firewall import nftlib
from virtnet.firewall.elements import merged_elements, merged_extra_chains
from virtnet.firewall.parts import canon_json_element
from virtnet.firewall.render import render_delete_table
from virtnet.firewall.schema import (
    CHAINS,
    MASQ_PORTS_PREFIX,
    SETS,
    TABLE_REF,
    ChainSpec,
    masq_ports_chain_spec,
)
from virtnet.model.network import Network

_ABSENT = "No such file or directory"


def _where(netns: str | None) -> str:
    return f"namespace {netns}" if netns else "the root namespace"


def apply_script(netns: str | None, script: str) -> None:
    """Run SCRIPT with ``nft -f -`` in NETNS as one transaction; HostError with nft's message."""
    if not script.strip():
        return
    proc = nftlib.run(netns, script)
    if proc.returncode != 0:
        raise HostError(
            f"nft refused the firewall change in {_where(netns)}; nothing of it was applied:\n"
            + (proc.stderr.strip() or proc.stdout.strip()),
            element=f"table {TABLE_REF}",
            hint="if the table is missing or damaged, re-apply the whole table (reconcile)",
        )


def check_script(netns: str | None, script: str) -> None:
    """``nft -c -f -``: parse and validate against the kernel without changing anything."""
    proc = nftlib.run(netns, script, check_only=True)
    if proc.returncode != 0:
        raise HostError(
            f"nft rejects the script (check only, nothing changed):\n{proc.stderr.strip()}",
            element=f"table {TABLE_REF}",
        )


def _list(netns: str | None, *, as_json: bool) -> str | None:
    proc = nftlib.run(netns, f"list table {TABLE_REF}", json=as_json)
    if proc.returncode != 0:
        if _ABSENT in proc.stderr:
            return None
        raise HostError(f"cannot list table {TABLE_REF} in {_where(netns)}: {proc.stderr.strip()}")
    return proc.stdout


def read_table(netns: str | None) -> str | None:
    """The live table as ``nft list`` prints it, or None when it does not exist."""
    return _list(netns, as_json=False)


def table_digest(netns: str | None) -> str | None:
    """A cheap fingerprint of the live table (None when absent): store it after an apply,
    compare later; a different value means someone changed the table."""
    text = read_table(netns)
    return hashlib.sha256(text.encode()).hexdigest() if text is not None else None


def delete_table(netns: str | None) -> None:
    """Remove virtnet's table; a no-op when it does not exist."""
    apply_script(netns, render_delete_table())


# --- drift ---------------------------------------------------------------------------------


@dataclass
class LiveTable:
    chains: dict[str, tuple[str | None, list[str]]] = field(default_factory=dict)
    sets: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # name -> (decl, elems)


_CHAIN_START = re.compile(r"^\tchain (\S+) \{$")


def parse_chains(text: str) -> dict[str, tuple[str | None, list[str]]]:
    """Chains of an ``nft list table`` listing: name -> (base line or None, rules)."""
    chains: dict[str, tuple[str | None, list[str]]] = {}
    current: str | None = None
    base: str | None = None
    rules: list[str] = []
    for line in text.splitlines():
        if current is None:
            m = _CHAIN_START.match(line)
            if m:
                current, base, rules = m.group(1), None, []
            continue
        if line == "\t}":
            chains[current] = (base, rules)
            current = None
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("type ") and " hook " in stripped and base is None and not rules:
            base = stripped
        else:
            rules.append(stripped)
    return chains


def _types(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def parse_sets(data: dict[str, Any]) -> dict[str, tuple[str, set[str]]]:
    """Sets and maps of an ``nft -j list table`` listing: name -> (declaration, elements)."""
    out: dict[str, tuple[str, set[str]]] = {}
    for obj in data.get("nftables", []):
        kind = "map" if "map" in obj else "set" if "set" in obj else None
        if kind is None:
            continue
        s = obj[kind]
        key = _types(s["type"])
        data_types = [t.strip() for t in s["map"].split(".")] if kind == "map" else None
        decl = " . ".join(key) + (" : " + " . ".join(data_types) if data_types else "")
        if "interval" in s.get("flags", []):
            decl += " interval"
        elems = {canon_json_element(e, key, data_types) for e in s.get("elem", [])}
        out[s["name"]] = (decl, elems)
    return out


def _spec_decl(key: Sequence[str], data: Sequence[str] | None, interval: bool) -> str:
    decl = " . ".join(key) + (" : " + " . ".join(data) if data else "")
    return decl + (" interval" if interval else "")


# nft prints layer-4 protocols by name only when /etc/protocols (netbase) exists; a minimal
# system prints numbers. Compare both sides in numbers so drift does not depend on it.
_PROTO_NUMBERS = {"icmp": "1", "tcp": "6", "udp": "17", "icmpv6": "58"}
_PROTO_WORD = re.compile(r"\b(" + "|".join(_PROTO_NUMBERS) + r")\b")


def canon_rule(rule: str) -> str:
    """A rule's text with protocol names as numbers, the same whatever the system prints."""
    return _PROTO_WORD.sub(lambda m: _PROTO_NUMBERS[m.group(1)], rule)


def read_live(netns: str | None) -> LiveTable | None:
    text = _list(netns, as_json=False)
    if text is None:
        return None
    js = _list(netns, as_json=True)
    if js is None:
        return None
    return LiveTable(chains=parse_chains(text), sets=parse_sets(json.loads(js)))


def _harmless_extra_chain(name: str, base: str | None, rules: list[str]) -> bool:
    """A port-range chain left by render_remove (other networks may still use it)."""
    m = re.fullmatch(re.escape(MASQ_PORTS_PREFIX) + r"(\d+)_(\d+)", name)
    if not m or base is not None:
        return False
    spec = masq_ports_chain_spec(int(m.group(1)), int(m.group(2)))
    return [canon_rule(r) for r in spec.rules] == [canon_rule(r) for r in rules]


def compare(live: LiveTable | None, nets: Sequence[Network]) -> list[str]:
    """Differences between a live table and the one rendered for NETS (empty: in sync)."""
    if live is None:
        return [f"table {TABLE_REF} is missing"]
    problems: list[str] = []
    want_chains: dict[str, ChainSpec] = {c.name: c for c in CHAINS}
    for chain in merged_extra_chains(list(nets)):
        want_chains.setdefault(chain.name, chain)
    for name, spec in want_chains.items():
        if name not in live.chains:
            problems.append(f"chain {name} is missing")
            continue
        base, rules = live.chains[name]
        if base != spec.base:
            problems.append(f"chain {name}: hook is {base!r}, want {spec.base!r}")
        # Matched in canonical form; reported as written (ours) or as listed (live).
        want = [canon_rule(r) for r in spec.rules]
        have = [canon_rule(r) for r in rules]
        for raw, rule in zip(spec.rules, want, strict=True):
            if have.count(rule) < want.count(rule):
                problems.append(f"chain {name}: rule missing: {raw}")
        for raw, rule in zip(rules, have, strict=True):
            if rule not in want or have.count(rule) > want.count(rule):
                problems.append(f"chain {name}: extra rule: {raw}")
        if sorted(have) == sorted(want) and have != want:
            problems.append(f"chain {name}: rules out of order")
    for name, (base, rules) in live.chains.items():
        if name not in want_chains and not _harmless_extra_chain(name, base, rules):
            problems.append(f"chain {name} is extra")

    want_elems = merged_elements(list(nets))
    for sspec in SETS:
        kind = "map" if sspec.is_map else "set"
        if sspec.name not in live.sets:
            problems.append(f"{kind} {sspec.name} is missing")
            continue
        decl, elems = live.sets[sspec.name]
        want_decl = _spec_decl(sspec.key, sspec.data, sspec.interval)
        if decl != want_decl:
            problems.append(f"{kind} {sspec.name}: type is {decl!r}, want {want_decl!r}")
        wanted = {e.canon() for e in want_elems.get(sspec.name, [])}
        problems += [f"{kind} {sspec.name}: element missing: {e}" for e in sorted(wanted - elems)]
        problems += [f"{kind} {sspec.name}: extra element: {e}" for e in sorted(elems - wanted)]
    known = {s.name for s in SETS}
    problems += [f"set {name} is extra" for name in sorted(set(live.sets) - known)]
    return problems


def drift(netns: str | None, nets: Sequence[Network]) -> list[str]:
    """What the live table lacks or has beyond the one rendered for NETS; empty when in sync.

    Repair by applying ``render_table(nets)`` (one transaction)."""
    return compare(read_live(netns), nets)
