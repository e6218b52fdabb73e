"""What the northbound database holds of virtnet's objects, read in one ovn-nbctl call.

The plan needs it only for rows without a name (DHCP_Options, DNS, ACLs, NATs, routes): to
create a missing row instead of updating it, and to remove rows a changed definition no
longer has. Everything named is handled by ``--may-exist``/``--if-exists`` alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from virtnet.errors import HostError
from virtnet.ovn import nbctl
from virtnet.ovn.topology import Acl, Snat, StaticRoute

_TABLES: dict[str, str] = {
    "Logical_Switch": "_uuid,name,ports,acls,other_config,external_ids",
    "Logical_Switch_Port": "_uuid,name,type,addresses,dynamic_addresses,external_ids",
    "Logical_Router": "_uuid,name,ports,nat,static_routes,external_ids",
    "Logical_Router_Port": "_uuid,name",
    "ACL": "_uuid,direction,priority,match,action",
    "NAT": "_uuid,type,external_ip,logical_ip",
    "Logical_Router_Static_Route": "_uuid,ip_prefix,nexthop",
    "DHCP_Options": "_uuid",
    "DNS": "_uuid",
}


@dataclass
class NbState:
    switches: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> row
    switch_ports: dict[str, list[str]] = field(default_factory=dict)  # switch -> port names
    ports: dict[str, dict[str, Any]] = field(default_factory=dict)  # LSP name -> row
    routers: set[str] = field(default_factory=set)
    router_ports: set[str] = field(default_factory=set)
    acls: dict[str, set[Acl]] = field(default_factory=dict)  # switch -> ACLs
    snats: dict[str, set[Snat]] = field(default_factory=dict)  # router -> SNATs
    routes: dict[str, set[StaticRoute]] = field(default_factory=dict)  # router -> routes
    dhcp_uuids: set[str] = field(default_factory=set)
    dns_uuids: set[str] = field(default_factory=set)


def _value(v: Any) -> Any:
    """An OVSDB JSON value as Python: uuid -> str, set -> list, map -> dict."""
    if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str):
        kind, body = v
        if kind == "uuid" or kind == "named-uuid":
            return body
        if kind == "set":
            return [_value(x) for x in body]
        if kind == "map":
            return {_value(k): _value(x) for k, x in body}
    return v


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def parse(text: str) -> dict[str, list[dict[str, Any]]]:
    """ovn-nbctl --format=json output of the ``list`` commands of ``_TABLES``, in order."""
    decoder = json.JSONDecoder()
    out: dict[str, list[dict[str, Any]]] = {}
    pos, tables = 0, iter(_TABLES)
    text = text.strip()
    while pos < len(text):
        obj, end = decoder.raw_decode(text, pos)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
        heads = obj["headings"]
        out[next(tables)] = [
            {h: _value(cell) for h, cell in zip(heads, row, strict=True)} for row in obj["data"]
        ]
    return out


def from_tables(t: dict[str, list[dict[str, Any]]]) -> NbState:
    st = NbState()
    lsp_name = {r["_uuid"]: r["name"] for r in t.get("Logical_Switch_Port", [])}
    acl = {
        r["_uuid"]: Acl(r["direction"], int(r["priority"]), r["match"], r["action"])
        for r in t.get("ACL", [])
    }
    nat = {
        r["_uuid"]: Snat(r["external_ip"], r["logical_ip"])
        for r in t.get("NAT", [])
        if r["type"] == "snat"
    }
    route = {
        r["_uuid"]: StaticRoute(r["ip_prefix"], r["nexthop"])
        for r in t.get("Logical_Router_Static_Route", [])
    }
    for r in t.get("Logical_Switch", []):
        st.switches[r["name"]] = r
        st.switch_ports[r["name"]] = sorted(
            lsp_name[u] for u in _as_list(r["ports"]) if u in lsp_name
        )
        st.acls[r["name"]] = {acl[u] for u in _as_list(r["acls"]) if u in acl}
    for r in t.get("Logical_Switch_Port", []):
        st.ports[r["name"]] = r
    for r in t.get("Logical_Router", []):
        st.routers.add(r["name"])
        st.snats[r["name"]] = {nat[u] for u in _as_list(r["nat"]) if u in nat}
        st.routes[r["name"]] = {route[u] for u in _as_list(r["static_routes"]) if u in route}
    st.router_ports = {r["name"] for r in t.get("Logical_Router_Port", [])}
    st.dhcp_uuids = {r["_uuid"] for r in t.get("DHCP_Options", [])}
    st.dns_uuids = {r["_uuid"] for r in t.get("DNS", [])}
    return st


def read(db: str) -> NbState:
    """The northbound database's current state, in one read-only ovn-nbctl call."""
    commands = [(f"--columns={cols}", "list", table) for table, cols in _TABLES.items()]
    out = nbctl.run(db, commands, timeout=10, options=("--format=json",))
    try:
        return from_tables(parse(out))
    except (ValueError, KeyError, StopIteration) as exc:
        raise HostError(f"cannot read ovn-nbctl's output from {db}: {exc}") from None
