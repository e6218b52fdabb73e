"""Plans: the ovn-nbctl commands that make the northbound database carry some networks.

Pure functions of the translated networks and, optionally, the database's current state
(virtnet.ovn.state). Without a state, a plan is what an empty database needs; every command
is safe to repeat (``--may-exist``/``--if-exists``, ``set`` of whole values), so running it
again changes nothing. With a state, the plan also updates rows without a name (DHCP
options, DNS) in place and removes ACLs, SNATs and routes the definitions no longer have.
All of a plan runs as one ovn-nbctl transaction (virtnet.ovn.nbctl.run).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from virtnet.errors import Conflict, InvalidDefinition, NotFound
from virtnet.ovn import names
from virtnet.ovn.names import EXT_GATEWAY, EXT_HOSTS, EXT_MODE, EXT_NETWORK, EXT_ROLE, q
from virtnet.ovn.nbctl import Command
from virtnet.ovn.state import NbState
from virtnet.ovn.topology import OvnNetwork, OvnOptions, OvnRouter

_MAC_CHARS = set("0123456789abcdef:")


def _ext(name: str) -> str:
    return f"external_ids:{EXT_NETWORK}={q(name)}"


def _map(items: Sequence[tuple[str, str]], *, quote_keys: bool = False) -> str:
    return "{" + ", ".join(f"{q(k) if quote_keys else k}={q(v)}" for k, v in items) + "}"


def _outside(opts: OvnOptions) -> list[Command]:
    sw = opts.outside_switch
    cmds: list[Command] = [
        ("--may-exist", "ls-add", sw),
        ("set", "Logical_Switch", sw, f"external_ids:{EXT_ROLE}=outside"),
    ]
    if opts.physical_network:
        # The outside switch meets the physical network where ovn-bridge-mappings say.
        lp = names.localnet_port(sw)
        cmds += [
            ("--may-exist", "lsp-add", sw, lp),
            ("lsp-set-type", lp, "localnet"),
            ("lsp-set-addresses", lp, "unknown"),
            ("lsp-set-options", lp, f"network_name={opts.physical_network}"),
        ]
    return cmds


def _router(n: OvnNetwork, r: OvnRouter, opts: OvnOptions, st: NbState | None) -> list[Command]:
    cmds: list[Command] = [
        ("--may-exist", "lr-add", r.name),
        (
            "set",
            "Logical_Router",
            r.name,
            *([f"options:chassis={q(r.chassis)}"] if r.chassis else []),
            # Many routers share the outside switch: learn neighbours by ARP instead of
            # northd pre-computing every router's MAC in every other router (N^2 flows).
            "options:dynamic_neigh_routers=true",
            _ext(n.name),
            f"external_ids:{EXT_MODE}={q(n.mode.value)}",
        ),
        # lrp-add --may-exist refuses a port whose MAC or networks changed: update it first.
        (
            "--if-exists",
            "set",
            "Logical_Router_Port",
            r.port,
            f"mac={q(r.mac)}",
            f"networks=[{','.join(q(x) for x in r.networks)}]",
        ),
        ("--may-exist", "lrp-add", r.name, r.port, r.mac, *r.networks),
        ("--may-exist", "lsp-add", n.switch, r.switch_port),
        ("lsp-set-type", r.switch_port, "router"),
        ("lsp-set-addresses", r.switch_port, "router"),
        ("lsp-set-options", r.switch_port, f"router-port={r.port}"),
    ]
    if r.ra:
        # SLAAC: ovn-controller answers router solicitations and advertises the prefix.
        cmds.append(("set", "Logical_Router_Port", r.port, f"ipv6_ra_configs={_map(r.ra)}"))
    elif st is not None and r.port in st.router_ports:
        cmds.append(("clear", "Logical_Router_Port", r.port, "ipv6_ra_configs"))
    g = r.gateway
    if g is not None:
        gnets = [a for a in (g.address, g.address6) if a]
        cmds += [
            (
                "--if-exists",
                "set",
                "Logical_Router_Port",
                g.port,
                f"mac={q(g.mac)}",
                f"networks=[{','.join(q(a) for a in gnets)}]",
            ),
            ("--may-exist", "lrp-add", r.name, g.port, g.mac, *gnets),
            ("--may-exist", "lsp-add", opts.outside_switch, g.outside_port),
            ("lsp-set-type", g.outside_port, "router"),
            ("lsp-set-addresses", g.outside_port, "router"),
            ("lsp-set-options", g.outside_port, f"router-port={g.port}"),
        ]
    elif st is not None and r.name in st.routers:
        # A router that lost its way out (now isolated): a distributed router again.
        cmds += [
            ("remove", "Logical_Router", r.name, "options", "chassis"),
            ("--if-exists", "lrp-del", names.gateway_port(n.name)),
            ("--if-exists", "lsp-del", names.outside_port(n.name)),
        ]
    have_nat = st.snats.get(r.name, set()) if st else set()
    for s in sorted(have_nat - set(r.snat)):
        cmds.append(("--if-exists", "lr-nat-del", r.name, "snat", s.logical_ip))
    for s in r.snat:
        cmds.append(("--may-exist", "lr-nat-add", r.name, "snat", s.external_ip, s.logical_ip))
    have_routes = st.routes.get(r.name, set()) if st else set()
    for rt in sorted(have_routes - set(r.routes)):
        cmds.append(("--if-exists", "lr-route-del", r.name, rt.prefix, rt.nexthop))
    for rt in r.routes:
        cmds.append(("--may-exist", "lr-route-add", r.name, rt.prefix, rt.nexthop))
    return cmds


def _no_router(n: OvnNetwork, st: NbState | None) -> list[Command]:
    """A network that lost its router (now isolated, or no <ip>): remove what is left."""
    if st is None or names.router(n.name) not in st.routers:
        return []
    return [
        ("--if-exists", "lr-del", names.router(n.name)),
        ("--if-exists", "lsp-del", names.switch_router_port(n.name)),
        ("--if-exists", "lsp-del", names.outside_port(n.name)),
    ]


def _network(n: OvnNetwork, opts: OvnOptions, st: NbState | None) -> list[Command]:
    sw = n.switch
    cmds: list[Command] = [("--may-exist", "ls-add", sw)]
    ext = [_ext(n.name), f"external_ids:{EXT_MODE}={q(n.mode.value)}"]
    if n.gateway:
        ext.append(f"external_ids:{EXT_GATEWAY}={q(n.gateway)}")
    if n.hosts:
        ext.append(f"external_ids:{EXT_HOSTS}={q(' '.join(f'{m}={ip}' for m, ip in n.hosts))}")
    other = []
    if n.subnet and n.exclude_ips is not None:
        other.append(f"other_config:subnet={q(n.subnet)}")
        if n.exclude_ips:
            other.append(f"other_config:exclude_ips={q(n.exclude_ips)}")
    if n.ipv6_prefix:
        other.append(f"other_config:ipv6_prefix={q(n.ipv6_prefix)}")
    cmds.append(("set", "Logical_Switch", sw, *ext, *other))
    # Keys a changed definition no longer has (a fresh database has none to remove).
    row = st.switches.get(sw) if st is not None else None
    if row is not None:
        wanted = {"subnet": n.subnet, "exclude_ips": n.exclude_ips, "ipv6_prefix": n.ipv6_prefix}
        gone = [k for k, v in wanted.items() if not v and k in row["other_config"]]
        if gone:
            cmds.append(("remove", "Logical_Switch", sw, "other_config", *gone))
        stale = [
            k
            for k, v in ((EXT_HOSTS, n.hosts), (EXT_GATEWAY, n.gateway))
            if not v and k in row["external_ids"]
        ]
        if stale:
            cmds.append(("remove", "Logical_Switch", sw, "external_ids", *stale))

    if n.dhcp is not None:
        d = n.dhcp
        body = (f"cidr={q(d.cidr)}", f"options={_map(d.options)}")
        if st is not None and d.uuid in st.dhcp_uuids:
            cmds.append(("set", "DHCP_Options", d.uuid, *body))
        else:
            cmds.append((f"--id={d.uuid}", "create", "DHCP_Options", *body, _ext(n.name)))
    elif st is not None and names.dhcp_uuid(n.name) in st.dhcp_uuids:
        cmds.append(("--if-exists", "destroy", "DHCP_Options", names.dhcp_uuid(n.name)))

    if n.dns_records:
        records = f"records={_map(n.dns_records, quote_keys=True)}"
        if st is not None and n.dns_uuid in st.dns_uuids:
            cmds.append(("set", "DNS", n.dns_uuid, records))
        else:
            cmds.append((f"--id={n.dns_uuid}", "create", "DNS", records, _ext(n.name)))
        cmds.append(("set", "Logical_Switch", sw, f"dns_records={n.dns_uuid}"))
    elif st is not None and n.dns_uuid in st.dns_uuids:
        cmds.append(("--if-exists", "destroy", "DNS", n.dns_uuid))

    cmds += _router(n, n.router, opts, st) if n.router else _no_router(n, st)

    have_acls = st.acls.get(sw, set()) if st else set()
    for a in sorted(have_acls - set(n.acls)):
        cmds.append(("acl-del", sw, a.direction, str(a.priority), a.match))
    for a in n.acls:
        cmds.append(("--may-exist", "acl-add", sw, a.direction, str(a.priority), a.match, a.action))
    return cmds


def apply_commands(
    nets: Sequence[OvnNetwork], opts: OvnOptions | None = None, state: NbState | None = None
) -> list[Command]:
    """The commands that make the database carry ``nets`` (other networks are left alone)."""
    opts = opts or OvnOptions()
    cmds: list[Command] = []
    if any(n.router and n.router.gateway for n in nets):
        cmds += _outside(opts)
    for n in nets:
        cmds += _network(n, opts, state)
    return cmds


def owned(name: str, st: NbState) -> bool:
    """Whether the database holds anything of network ``name``."""
    return (
        names.switch(name) in st.switches
        or names.router(name) in st.routers
        or names.dhcp_uuid(name) in st.dhcp_uuids
        or names.dns_uuid(name) in st.dns_uuids
    )


def delete_commands(name: str, st: NbState) -> list[Command]:
    """The commands that remove every object of network ``name`` (and an emptied outside
    switch virtnet made)."""
    names.check_name(name)
    if not owned(name, st):
        raise NotFound(
            f"the northbound database has no OVN network '{name}'",
            hint="'virtnet ovn list --db ...' shows the networks virtnet put there",
        )
    op = names.outside_port(name)
    cmds: list[Command] = [
        ("--if-exists", "lr-del", names.router(name)),
        ("--if-exists", "lsp-del", op),
        ("--if-exists", "ls-del", names.switch(name)),
        ("--if-exists", "destroy", "DHCP_Options", names.dhcp_uuid(name)),
        ("--if-exists", "destroy", "DNS", names.dns_uuid(name)),
    ]
    for sw, ports in st.switch_ports.items():
        row = st.switches[sw]
        if op in ports and row["external_ids"].get(EXT_ROLE) == "outside":
            rest = [p for p in ports if p not in (op, names.localnet_port(sw))]
            if not rest:
                cmds.append(("--if-exists", "ls-del", sw))
    return cmds


def networks(st: NbState) -> dict[str, str]:
    """The networks virtnet put in the database: name -> mode."""
    out = {}
    for row in st.switches.values():
        ext = row["external_ids"]
        if EXT_NETWORK in ext:
            out[ext[EXT_NETWORK]] = ext.get(EXT_MODE, "")
    return dict(sorted(out.items()))


def _norm_mac(mac: str) -> str:
    m = mac.strip().lower().replace("-", ":")
    parts = m.split(":")
    if len(parts) != 6 or not set(m) <= _MAC_CHARS or any(len(p) != 2 for p in parts):
        raise InvalidDefinition(
            f"--mac {mac!r} is not a MAC address",
            element="--mac",
            hint="write it as 52:54:00:12:34:56",
        )
    if int(parts[0], 16) & 1:
        raise InvalidDefinition(
            f"--mac {mac} is a multicast address",
            element="--mac",
            hint="the first octet must be even, e.g. 52:54:00:...",
        )
    return m


def _check_free(
    network: str,
    port: str,
    ip: str,
    mac: str | None,
    row: dict[str, Any],
    hosts: dict[str, str],
    st: NbState,
) -> None:
    """``ip`` is not the gateway, nor reserved for another MAC, nor another port's."""
    if ip == row["external_ids"].get(EXT_GATEWAY):
        raise Conflict(
            f"{ip} is network '{network}'s gateway address",
            element="--ip",
            hint="give the VM another address",
        )
    owner = next((m for m, a in hosts.items() if a == ip), None)
    if owner is not None and owner != mac:
        raise Conflict(
            f"{ip} is reserved for MAC {owner} (<host> of network '{network}')",
            element="--ip",
            hint=f"use --mac {owner}, or another address",
        )
    for other in st.switch_ports.get(names.switch(network), []):
        if other == port:
            continue
        prow = st.ports.get(other, {})
        taken = " ".join(
            _as_list(prow.get("addresses", [])) + _as_list(prow.get("dynamic_addresses", []))
        )
        if ip in taken.split():
            raise Conflict(
                f"{ip} is already port '{other}'s address on network '{network}'",
                element="--ip",
                hint="give the VM another address",
            )


def _as_list(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else [str(v)] if v else []


def port_commands(
    network: str, port: str, st: NbState, *, mac: str | None = None, ip: str | None = None
) -> list[Command]:
    """The commands that attach VM port ``port`` to network ``network`` (already applied).

    Its address: a ``<host>`` reservation for its MAC, else ``--ip``, else OVN's dynamic pool
    (the DHCP range); it is served the network's DHCP options.
    """
    names.check_name(network)
    names.check_name(port, element="PORT", what="port name")
    sw = names.switch(network)
    row = st.switches.get(sw)
    if row is None:
        raise NotFound(
            f"the northbound database has no OVN network '{network}'",
            hint="apply its definition first: virtnet ovn apply FILE --db ...",
        )
    existing = st.ports.get(port)
    if existing is not None and port not in st.switch_ports.get(sw, []):
        raise Conflict(
            f"port '{port}' already exists on another switch",
            hint="pick another port name or delete that port",
        )
    mac = _norm_mac(mac) if mac else None
    hosts = dict(tok.split("=", 1) for tok in row["external_ids"].get(EXT_HOSTS, "").split())
    if ip is None and mac is not None:
        ip = hosts.get(mac)
    subnet = row["other_config"].get("subnet")
    if ip is not None:
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            raise InvalidDefinition(
                f"--ip {ip!r} is not an IPv4 address",
                element="--ip",
                hint="write it as e.g. 192.168.122.50",
            ) from None
        _check_free(network, port, str(addr), mac, row, hosts, st)
        if subnet and addr not in ipaddress.IPv4Network(subnet):
            raise InvalidDefinition(
                f"--ip {ip} is not in network '{network}' ({subnet})",
                element="--ip",
                hint=f"pick an address in {subnet}",
            )
    elif not subnet:
        raise InvalidDefinition(
            f"network '{network}' has no DHCP range, so OVN has no pool to pick from",
            element="--ip",
            hint="give the port an address with --ip (and --mac)",
        )
    if mac and ip:
        addresses = f"{mac} {ip}"
    elif mac:
        addresses = f"{mac} dynamic"
    elif ip:
        addresses = f"dynamic {ip}"
    else:
        addresses = "dynamic"
    cmds: list[Command] = [
        ("--may-exist", "lsp-add", sw, port),
        ("lsp-set-addresses", port, addresses),
        ("set", "Logical_Switch_Port", port, _ext(network)),
    ]
    dhcp = names.dhcp_uuid(network)
    if dhcp in st.dhcp_uuids:
        cmds.append(("set", "Logical_Switch_Port", port, f"dhcpv4_options={dhcp}"))
    else:
        cmds.append(("clear", "Logical_Switch_Port", port, "dhcpv4_options"))
    return cmds


def port_delete_commands(network: str, port: str, st: NbState) -> list[Command]:
    names.check_name(network)
    if port not in st.switch_ports.get(names.switch(network), []):
        raise NotFound(
            f"network '{network}' has no OVN port '{port}'",
            hint="'virtnet ovn list --db ...' shows the ports",
        )
    return [("--if-exists", "lsp-del", port)]
