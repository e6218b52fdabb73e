"""The OVN backend against a real OVN central: NB/SB ovsdb-servers and ovn-northd run by hand
in a temporary directory, ovn-trace for the packets' paths. No kernel datapath is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.ovn_cases import OUTSIDE_HOST, XML, all_nets, net, options
from tests.ovn_central import OvnCentral, require_ovn
from virtnet import ovn
from virtnet.cli.main import cli
from virtnet.errors import HostError, InvalidDefinition
from virtnet.loader import load_text
from virtnet.model.network import ForwardMode
from virtnet.ovn import names, nbctl, state

VM = {  # one VM per network: (port, MAC, IP)
    "natnet": ("nat-vm", "52:54:00:00:00:10", "192.168.122.10"),
    "routenet": ("route-vm", "52:54:00:00:00:20", "192.168.100.150"),
    "isonet": ("iso-vm", "52:54:00:00:00:30", "192.168.150.15"),
    "opennet": ("open-vm", "52:54:00:00:00:40", "192.168.160.40"),
}


@pytest.fixture
def central(tmp_path: Path) -> Iterator[OvnCentral]:
    require_ovn()
    c = OvnCentral(tmp_path).start()
    pids = c.pids()
    try:
        yield c
    finally:
        c.stop()
        for pid in pids:  # ended, by PID, before the next test starts its own
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _list(c: OvnCentral, table: str, *cols: str) -> list[dict[str, object]]:
    out = c.nbctl("--format=json", f"--columns={','.join(cols)}", "list", table)
    data = json.loads(out)
    return [
        {h: state._value(v) for h, v in zip(data["headings"], row, strict=True)}
        for row in data["data"]
    ]


def _apply_all(c: OvnCentral) -> None:
    ovn.apply(all_nets(), c.nb, options())


def test_apply_creates_the_objects_of_each_mode(central: OvnCentral) -> None:
    _apply_all(central)
    switches = {
        r["name"]: r for r in _list(central, "Logical_Switch", "name", "other_config", "acls")
    }
    assert set(switches) == {"vn-natnet", "vn-routenet", "vn-isonet", "vn-opennet", "vn-outside"}
    assert switches["vn-natnet"]["other_config"] == {
        "subnet": "192.168.122.0/24",
        "exclude_ips": "192.168.122.1 192.168.122.10",
    }
    routers = {r["name"]: r for r in _list(central, "Logical_Router", "name", "options")}
    assert set(routers) == {
        "vn-natnet-router",
        "vn-routenet-router",
        "vn-opennet-router",
        "vn-isonet-router",
    }
    assert routers["vn-natnet-router"]["options"] == {
        "chassis": "virtnet-gateway",
        "dynamic_neigh_routers": "true",
    }
    # isolated: a distributed router with the gateway port only
    assert routers["vn-isonet-router"]["options"] == {"dynamic_neigh_routers": "true"}
    lrps = {
        r["name"]: r["networks"] for r in _list(central, "Logical_Router_Port", "name", "networks")
    }
    assert lrps["vn-natnet-rtr"] == "192.168.122.1/24"
    assert lrps["vn-natnet-rtr-out"] == "203.0.113.10/24"
    assert lrps["vn-routenet-rtr-out"] == "203.0.113.11/24"
    nats = _list(central, "NAT", "type", "external_ip", "logical_ip")
    assert nats == [
        {"type": "snat", "external_ip": "203.0.113.10", "logical_ip": "192.168.122.0/24"}
    ]
    acls = _list(central, "ACL", "direction", "priority", "match", "action")
    assert sorted((a["direction"], a["action"]) for a in acls) == [
        ("from-lport", "allow-related"),
        ("to-lport", "reject"),
    ]
    dhcp = {r["cidr"]: r["options"] for r in _list(central, "DHCP_Options", "cidr", "options")}
    assert set(dhcp) == {
        "192.168.122.0/24",
        "192.168.100.0/24",
        "192.168.150.0/24",
        "192.168.160.0/24",
    }
    assert "router" not in dhcp["192.168.150.0/24"]  # isolated
    assert dhcp["192.168.100.0/24"]["router"] == "192.168.100.1"
    assert dhcp["192.168.100.0/24"]["lease_time"] == "7200"
    dns = _list(central, "DNS", "records")
    assert dns == [{"records": {"web": "192.168.122.10"}}]
    show = central.nbctl("show")
    assert "router-port: vn-natnet-rtr-out" in show and "snat" in show


def test_apply_twice_changes_nothing_and_delete_removes_everything(central: OvnCentral) -> None:
    _apply_all(central)
    central.sync()
    before = (central.nbctl("show"), central.nb_file.stat().st_size)
    cmds = ovn.plan(all_nets(), options(), central.nb)
    assert not any("create" in c for c in cmds)  # rows without names are updated, not added
    ovn.apply(all_nets(), central.nb, options())
    time.sleep(0.3)  # room for northd to react, had anything changed (sync itself writes)
    # The database file is an append-only log: no transaction, not one byte more.
    assert (central.nbctl("show"), central.nb_file.stat().st_size) == before
    for n in all_nets():
        ovn.delete(n.name, central.nb)
    assert central.nbctl("show") == ""
    for table in ("DHCP_Options", "DNS", "ACL", "NAT", "Logical_Router_Static_Route"):
        assert central.nbctl("--bare", "--columns=_uuid", "list", table).strip() == "", table


def test_changed_definitions_update_in_place(central: OvnCentral) -> None:
    _apply_all(central)
    nat2 = load_text(XML["nat"].replace("192.168.122.", "192.168.123."))  # renumbered
    dhcp_uuid = names.dhcp_uuid("natnet")
    ovn.apply([nat2], central.nb, options(external_ips={"natnet": "203.0.113.20/24"}))
    lrps = {
        r["name"]: r["networks"] for r in _list(central, "Logical_Router_Port", "name", "networks")
    }
    assert lrps["vn-natnet-rtr"] == "192.168.123.1/24"
    assert lrps["vn-natnet-rtr-out"] == "203.0.113.20/24"
    nats = _list(central, "NAT", "external_ip", "logical_ip")
    assert nats == [{"external_ip": "203.0.113.20", "logical_ip": "192.168.123.0/24"}]
    dhcp = {r["_uuid"]: r for r in _list(central, "DHCP_Options", "_uuid", "cidr", "options")}
    assert dhcp[dhcp_uuid]["cidr"] == "192.168.123.0/24" and len(dhcp) == 4
    # nat -> route: SNAT and the ACLs go, the router stays
    assert nat2.forward is not None
    as_route = replace(nat2, forward=replace(nat2.forward, mode=ForwardMode.ROUTE))
    ovn.apply([as_route], central.nb, options(external_ips={"natnet": "203.0.113.20/24"}))
    assert _list(central, "NAT", "logical_ip") == []
    switches = {r["name"]: r for r in _list(central, "Logical_Switch", "name", "acls")}
    assert switches["vn-natnet"]["acls"] == []
    # route -> isolated: the way out goes (chassis, gateway port, outside port, routes); the
    # router keeps the gateway address
    ovn.apply([replace(as_route, forward=None)], central.nb, options(external_ips={}))
    assert "vn-natnet-router" in central.nbctl("lr-list")
    assert central.nbctl("lrp-list", "vn-natnet-router").split()[1:] == ["(vn-natnet-rtr)"]
    assert "chassis" not in central.nbctl("get", "Logical_Router", "vn-natnet-router", "options")
    assert central.nbctl("lr-route-list", "vn-natnet-router").strip() == ""
    assert "vn-natnet-gw" not in central.nbctl("lsp-list", "vn-outside")
    dhcp = {r["_uuid"]: r["options"] for r in _list(central, "DHCP_Options", "_uuid", "options")}
    assert "router" not in dhcp[dhcp_uuid]


def test_one_transaction_is_all_or_nothing(central: OvnCentral) -> None:
    cmds = ovn.apply_commands(ovn.translate_all(all_nets(), options()), options())
    with pytest.raises(HostError, match="nothing was changed"):
        nbctl.run(central.nb, [*cmds, ("lsp-del", "no-such-port")])
    assert central.nbctl("show") == ""


def test_ports_get_reserved_static_and_dynamic_addresses(central: OvnCentral) -> None:
    _apply_all(central)
    ovn.port_add("natnet", "vm-web", central.nb, mac="52:54:00:00:00:10")
    ovn.port_add("natnet", "vm-any", central.nb)
    ovn.port_add("isonet", "vm-iso", central.nb, mac="52:54:00:00:00:31")
    central.sync()
    ports = {
        r["name"]: r
        for r in _list(
            central,
            "Logical_Switch_Port",
            "name",
            "addresses",
            "dynamic_addresses",
            "dhcpv4_options",
        )
    }
    assert ports["vm-web"]["addresses"] == "52:54:00:00:00:10 192.168.122.10"
    assert ports["vm-web"]["dhcpv4_options"] == names.dhcp_uuid("natnet")
    mac, ip = str(ports["vm-any"]["dynamic_addresses"]).split()
    assert ip == "192.168.122.2"  # first of the range; .1 (gateway) and .10 (reserved) excluded
    _, iso_ip = str(ports["vm-iso"]["dynamic_addresses"]).split()
    assert iso_ip == "192.168.150.10"  # the range starts at .10, not at the subnet's start
    # re-adding is a no-op, and deleting the network takes its ports
    ovn.port_add("natnet", "vm-web", central.nb, mac="52:54:00:00:00:10")
    ovn.delete("natnet", central.nb)
    assert "vm-web" not in central.nbctl("show") and "vm-iso" in central.nbctl("show")


def _vm_ports(c: OvnCentral) -> None:
    for name, (port, mac, ip) in VM.items():
        ovn.port_add(name, port, c.nb, mac=mac, ip=ip)
    c.nbctl(
        "lsp-add", "vn-outside", "ext1", "--", "lsp-set-addresses", "ext1", " ".join(OUTSIDE_HOST)
    )
    c.sync()


def _from_vm(name: str, dst: str, dst_mac: str | None = None) -> tuple[str, str]:
    port, mac, ip = VM[name]
    eth_dst = dst_mac or (names.mac(name, "gateway"))
    return (
        names.switch(name),
        f'inport == "{port}" && eth.src == {mac} && eth.dst == {eth_dst} && '
        f"ip4.src == {ip} && ip4.dst == {dst} && ip.ttl == 64 && tcp && tcp.dst == 80",
    )


def _from_outside(name: str) -> tuple[str, str]:
    mac, ip = OUTSIDE_HOST
    return (
        "vn-outside",
        f'inport == "ext1" && eth.src == {mac} && eth.dst == {names.mac(name, "outside")} && '
        f"ip4.src == {ip} && ip4.dst == {VM[name][2]} && ip.ttl == 64 && tcp && tcp.dst == 22",
    )


NEW = ("trk,new",) * 6  # every conntrack lookup on the way sees a new connection


def test_trace_nat_vm_to_outside_is_snatted_route_is_not(central: OvnCentral) -> None:
    _apply_all(central)
    _vm_ports(central)
    out = central.trace(*_from_vm("natnet", OUTSIDE_HOST[1]))
    assert "ct_snat(ip4.src=203.0.113.10)" in out and 'output("ext1")' in out
    for name in ("routenet", "opennet"):
        out = central.trace(*_from_vm(name, OUTSIDE_HOST[1]))
        assert 'output("ext1")' in out and "ct_snat(ip4.src=" not in out, name


def test_trace_outside_reaches_route_vm_but_not_nat_vm(central: OvnCentral) -> None:
    _apply_all(central)
    _vm_ports(central)
    nat = central.trace(*_from_outside("natnet"), *NEW)
    # rejected by the to-lport ACL (a TCP RST back to the sender): NAT is not visible
    assert 'output("nat-vm")' not in nat and "tcp_reset" in nat
    full = central.trace(*_from_outside("natnet"), *NEW, minimal=False)
    acl = full[full.index("ls_out_acl ") :]
    assert 'inport == "vn-natnet-to-rtr" && ip4 && ct.new' in acl.splitlines()[0]
    assert "reject" in acl
    routed = central.trace(*_from_outside("routenet"), *NEW)
    assert 'output("route-vm")' in routed
    # replies to the nat VM's own connections (as they are after un-SNAT) do come back in
    reply = central.trace(*_from_outside("natnet"), *("trk,est,rpl",) * 6)
    assert 'output("nat-vm")' in reply


def test_trace_isolated_has_no_way_out_but_reaches_its_peers(central: OvnCentral) -> None:
    _apply_all(central)
    _vm_ports(central)
    ovn.port_add("isonet", "iso-peer", central.nb, mac="52:54:00:00:00:32", ip="192.168.150.16")
    central.sync()
    out = central.trace(*_from_vm("isonet", OUTSIDE_HOST[1]))
    assert "output(" not in out
    peer = central.trace(*_from_vm("isonet", "192.168.150.16", "52:54:00:00:00:32"))
    assert 'output("iso-peer")' in peer


def _dhcp_offer(c: OvnCentral, name: str) -> str:
    port, mac, _ = VM[name]
    flow = (
        f'inport == "{port}" && eth.src == {mac} && eth.dst == ff:ff:ff:ff:ff:ff && '
        "ip4.src == 0.0.0.0 && ip4.dst == 255.255.255.255 && udp.src == 68 && udp.dst == 67"
    )
    out = subprocess.run(
        ["ovn-trace", f"--db={c.sb}", names.switch(name), flow],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line for line in out.splitlines() if "put_dhcp_opts" in line)


def test_trace_dhcp_offers_follow_libvirt(central: OvnCentral) -> None:
    _apply_all(central)
    _vm_ports(central)
    nat = _dhcp_offer(central, "natnet")
    assert "offerip = 192.168.122.10" in nat and "router = 192.168.122.1" in nat
    assert "lease_time = 3600" in nat
    iso = _dhcp_offer(central, "isonet")
    assert "offerip = 192.168.150.15" in iso and "router" not in iso
    assert 'domain_name = "iso.test"' in iso


def test_cli_apply_finds_the_gateway_chassis_in_the_sb_database(
    central: OvnCentral, tmp_path: Path
) -> None:
    f = tmp_path / "nat.xml"
    f.write_text(XML["nat"])
    args = ["ovn", "apply", str(f), "--db", central.nb, "--sb-db", central.sb,
            "--external-ip", "203.0.113.10/24"]
    run = CliRunner().invoke
    res = run(cli, args)  # no chassis at all
    assert res.exit_code == InvalidDefinition.exit_status and "no chassis" in res.output

    def sbctl(*a: str) -> None:
        subprocess.run(["ovn-sbctl", f"--db={central.sb}", *a], check=True, capture_output=True)

    sbctl("chassis-add", "hv1", "geneve", "192.0.2.1")
    sbctl("chassis-add", "hv2", "geneve", "192.0.2.2")
    res = run(cli, args)  # two, neither marked: which one?
    assert res.exit_code == InvalidDefinition.exit_status
    assert "hv1, hv2" in res.output and "enable-chassis-as-gw" in res.output
    sbctl("set", "Chassis", "hv2", "other_config:ovn-cms-options=enable-chassis-as-gw")
    res = run(cli, args)
    assert res.exit_code == 0, res.output
    assert "hv2" in central.nbctl("get", "Logical_Router", "vn-natnet-router", "options:chassis")


def test_cli_apply_list_port_delete(central: OvnCentral, tmp_path: Path) -> None:
    files = []
    for mode in ("nat", "isolated"):
        f = tmp_path / f"{mode}.xml"
        f.write_text(XML[mode])
        files.append(str(f))
    run = CliRunner().invoke
    apply = ["ovn", "apply", *files, "--db", central.nb, "--external-ip", "natnet=203.0.113.10/24"]
    # without --chassis the routers would bind nowhere: refused, nothing written
    res = run(cli, apply)
    assert res.exit_code == InvalidDefinition.exit_status, res.output
    assert "--chassis" in res.output and "natnet" in res.output
    assert central.nbctl("--bare", "--columns=name", "list", "Logical_Router").split() == []
    res = run(cli, [*apply, "--chassis", "gw1"])
    assert res.exit_code == 0, res.output
    assert "applied 2 network(s)" in res.output
    assert "gw1" in central.nbctl("get", "Logical_Router", "vn-natnet-router", "options:chassis")
    res = run(
        cli, ["ovn", "port-add", "natnet", "vm1", "--mac", "52:54:00:00:00:10", "--db", central.nb]
    )
    assert res.exit_code == 0 and "192.168.122.10" in res.output, res.output
    res = run(cli, ["-o", "json", "ovn", "list", "--db", central.nb])
    rows = json.loads(res.output)
    assert [(r["network"], r["mode"]) for r in rows] == [("isonet", "isolated"), ("natnet", "nat")]
    assert rows[1]["ports"][0]["port"] == "vm1"
    res = run(cli, ["ovn", "port-del", "natnet", "vm1", "--db", central.nb])
    assert res.exit_code == 0, res.output
    for name in ("natnet", "isonet"):
        res = run(cli, ["ovn", "delete", name, "--db", central.nb])
        assert res.exit_code == 0, res.output
    assert central.nbctl("show") == ""
    res = run(cli, ["ovn", "delete", "natnet", "--db", central.nb])
    assert res.exit_code == 4 and "no OVN network" in res.output


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    require_ovn()
    with pytest.raises(HostError, match="listens on that address"):
        ovn.apply([net("isolated")], f"unix:{tmp_path}/none.sock", options(external_ips={}))
    assert os.listdir(tmp_path) == []


def test_host_names_reach_the_southbound_dns_table(central: OvnCentral) -> None:
    # ovn-trace does not simulate dns_lookup; the records ovn-controller answers from are
    # the SB DNS rows northd derives from ours, bound to the network's datapath.
    _apply_all(central)
    central.sync()
    out = subprocess.run(
        ["ovn-sbctl", f"--db={central.sb}", "--format=json", "--columns=records", "list", "DNS"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [state._value(r[0]) for r in json.loads(out)["data"]]
    assert rows == [{"web": "192.168.122.10"}]


def test_a_plan_made_against_an_older_state_fails_whole(central: OvnCentral) -> None:
    # Two applies racing: both planned against an empty database, the second one's creates
    # collide with the first's rows (same derived UUIDs), and none of it runs.
    stale = ovn.apply_commands(ovn.translate_all([net("isolated")], options(external_ips={})))
    ovn.apply([net("isolated")], central.nb, options(external_ips={}))
    central.sync()
    before = central.nb_file.stat().st_size
    with pytest.raises(HostError, match="apply again"):
        nbctl.run(central.nb, stale)
    assert central.nb_file.stat().st_size == before
    ovn.apply([net("isolated")], central.nb, options(external_ips={}))  # re-reads: fine
    assert len(_list(central, "DHCP_Options", "_uuid")) == 1
