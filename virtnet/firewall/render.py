"""nft scripts for virtnet's table (pure: text in, text out, no host access).

``render_table`` replaces the whole table in one transaction (``add table`` makes the
following ``delete table`` safe when it does not exist yet). ``render_add`` and
``render_remove`` touch only one network's elements, so network #1000 costs what #1 costs;
they expect the table to exist (apply ``render_table`` first). ``nft -f`` runs a file as one
transaction, so a failing line leaves the table as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from virtnet.firewall.elements import (
    Elements,
    check_disjoint,
    extra_chains,
    merged_elements,
    merged_extra_chains,
    network_elements,
)
from virtnet.firewall.parts import Element
from virtnet.firewall.schema import CHAINS, SETS, TABLE_REF, ChainSpec
from virtnet.model.network import Network

_WRAP = 8  # elements per line, to keep scripts readable and lines short


def _element_block(elems: Sequence[Element]) -> str:
    rendered = [e.render() for e in elems]
    lines = [", ".join(rendered[i : i + _WRAP]) for i in range(0, len(rendered), _WRAP)]
    return "{ " + ",\n\t\t\t".join(lines) + " }"


def render_definition(elements: Elements, chains: Sequence[ChainSpec] = ()) -> str:
    """``table inet virtnet { ... }`` (sets, then chains), then the elements.

    Elements come last, as ``add element`` lines: verdict map elements name chains
    (``goto masq_ports_...``), which must exist by then.
    """
    out = [f"table {TABLE_REF} {{"]
    for spec in SETS:
        kind = "map" if spec.is_map else "set"
        out.append(f"\t{kind} {spec.name} {{")
        out.append(f"\t\t{spec.declaration()}")
        out.append("\t}")
    for chain in (*CHAINS, *chains):
        out.append(f"\tchain {chain.name} {{")
        if chain.base:
            out.append(f"\t\t{chain.base}")
        out.extend(f"\t\t{rule}" for rule in chain.rules)
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n" + _element_script("add", elements)


def render_table(nets: Sequence[Network]) -> str:
    """One script that atomically replaces virtnet's whole table for these active networks."""
    body = render_definition(merged_elements(list(nets)), merged_extra_chains(list(nets)))
    return f"add table {TABLE_REF}\ndelete table {TABLE_REF}\n{body}"


def _element_script(verb: str, elements: Elements) -> str:
    lines = [
        f"{verb} element {TABLE_REF} {name} {_element_block(elems)}"
        for name, elems in elements.items()
        if elems
    ]
    return "\n".join(lines) + "\n" if lines else ""


def _chain_script(chain: ChainSpec) -> str:
    """Create-or-reset a plain chain: idempotent, so two networks may share it."""
    ref = f"{TABLE_REF} {chain.name}"
    lines = [f"add chain {ref}", f"flush chain {ref}"]
    lines += [f"add rule {ref} {rule}" for rule in chain.rules]
    return "\n".join(lines) + "\n"


def render_add(net: Network) -> str:
    """Add this network's elements (one transaction). Empty for modes without rules.

    Overlaps with networks already in the table are refused by nft (HostError, nothing
    applied); check_disjoint(all active networks) reports them with names beforehand."""
    check_disjoint([net])
    chains = "".join(_chain_script(c) for c in extra_chains(net))
    return chains + _element_script("add", network_elements(net))


def render_remove(net: Network) -> str:
    """Delete this network's elements (one transaction). Fails, changing nothing, if absent."""
    return _element_script("delete", network_elements(net))


def render_delete_table() -> str:
    """Remove the table, a no-op when it does not exist."""
    return f"add table {TABLE_REF}\ndelete table {TABLE_REF}\n"
