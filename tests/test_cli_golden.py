"""Golden files for what people and scripts read: virsh-layout tables and the JSON shapes.

Set VIRTNET_UPDATE_GOLDEN=1 to rewrite the files after an intended change (then review the
diff). Pure cases need no root; the live ones run the real commands in a namespace.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_env import CliHost, cli_host, net_xml
from tests.conftest import require_root
from virtnet.cli.cmd_lifecycle import (
    filter_networks,
    lease_row,
    render_info,
    render_leases,
    render_list,
)
from virtnet.cli.output import table
from virtnet.declarative import ApplyPlan, NetworkAction
from virtnet.host.leases import DhcpLease, parse
from virtnet.model.network import IPDef, Network
from virtnet.plan import Change
from virtnet.service import NetworkInfo

GOLDEN = Path(__file__).resolve().parent / "golden" / "cli"

NETS = [
    NetworkInfo("default", "3e3fce45-4f53-4fa7-bb32-11f34168b82b", True, True, True, "virbr0",
                "nat"),
    NetworkInfo("isolated-lab", "0b2f7c7e-9a55-4c7e-9d3e-000000000002", False, True, False,
                "virbr2", "isolated"),
    NetworkInfo("scratch", "0b2f7c7e-9a55-4c7e-9d3e-000000000003", True, False, False,
                "virbr3", "route"),
]


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("VIRTNET_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path} (run with VIRTNET_UPDATE_GOLDEN=1)"
    assert text == path.read_text(), f"output differs from {path}"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_table_layout_is_virsh_vshtable() -> None:
    # One space before each cell, columns padded to width + 2, dashes (width + 3) each.
    assert table(["Name", "State"], [["default", "active"]]) == (
        " Name      State\n"
        "-------------------\n"
        " default   active\n"
    )


def test_net_list_tables() -> None:
    check("net-list-all.txt", render_list(filter_networks(NETS, all_=True)))
    check("net-list.txt", render_list(filter_networks(NETS)))
    check("net-list-inactive.txt", render_list(filter_networks(NETS, inactive=True)))
    check("net-list-empty.txt", render_list([]))
    check("net-list-name.txt", render_list(filter_networks(NETS, all_=True), names=True))
    check("net-list-name-uuid.txt",
          render_list(filter_networks(NETS, all_=True), names=True, uuids=True))


def test_net_list_filters() -> None:
    def names(**kw: bool) -> list[str]:
        return [n.name for n in filter_networks(NETS, **kw)]

    assert names() == ["default", "scratch"]
    assert names(all_=True, persistent=True) == ["default", "isolated-lab"]
    assert names(all_=True, transient=True) == ["scratch"]
    assert names(all_=True, autostart=True) == ["default"]
    assert names(no_autostart=True) == ["scratch"]
    assert names(inactive=True, persistent=True) == ["isolated-lab"]
    assert names(all_=True, persistent=True, transient=True) == [n.name for n in NETS]


def test_net_list_json() -> None:
    check("net-list.json", json.dumps([n.as_dict() for n in NETS], indent=2) + "\n")


def test_net_info() -> None:
    check("net-info.txt", render_info(NETS[0]))


def test_net_dhcp_leases(utc: None) -> None:
    lease_file = (
        "1795826703 52:54:00:aa:bb:01 192.168.122.50 vm1 01:52:54:00:aa:bb:01\n"
        "1795826800 52:54:00:aa:bb:02 192.168.122.77 * *\n"
        "duid 00:01:00:01:2c:00:00:01:52:54:00:00:00:01\n"
        "1795827000 1234 2001:db8::20 vm6 00:04:11:22:33:44:55:66:77:88\n"
    )
    net = Network(name="default", ips=(IPDef(address="192.168.122.1", prefix=24),
                                       IPDef(address="2001:db8::1", family="ipv6", prefix=64)))
    rows = [lease_row(lease, net) for lease in parse(lease_file)]
    check("net-dhcp-leases.txt", render_leases(rows))
    check("net-dhcp-leases.json", json.dumps(rows, indent=2) + "\n")
    assert rows[2]["protocol"] == "ipv6" and rows[2]["prefix"] == 64
    infinite = lease_row(DhcpLease(0, "52:54:00:aa:bb:03", "192.168.122.9", None, None), net)
    assert infinite["expiry"] == 0  # dnsmasq's "infinite"; virsh prints the epoch for it


def test_plan_render() -> None:
    plan = ApplyPlan(
        actions=[
            NetworkAction("web", "add", ("new network",), "nets/web.xml"),
            NetworkAction("db", "change", ("definition: ips",), "nets/db.yaml"),
            NetworkAction("old", "remove", ("not in the files (--prune)",)),
            NetworkAction("cache", "unchanged", (), "nets/cache.xml"),
        ],
        host_groups={
            "web": [Change("+", "bridge", "virbr1", "alias virtnet:web, stp off"),
                    Change("+", "dnsmasq", "web", "--conf-file=/var/lib/virtnet/web.conf")],
            "db": [Change("~", "file", "/var/lib/virtnet/dnsmasq/db.conf", "content differs")],
            "": [Change("~", "sysctl", "net.ipv4.ip_forward", "0 -> 1"),
                 Change("~", "sysctl", "net.ipv4.ip_forward", "0 -> 1")],
        },
    )
    check("plan.txt", plan.render())
    check("plan.json", json.dumps(plan.as_dict(), indent=2) + "\n")


# -- live: the real commands in a namespace -------------------------------------------------


@pytest.fixture
def host(tmp_path: Path, unique_name: str) -> Iterator[CliHost]:
    require_root()
    with cli_host(tmp_path, unique_name) as h:
        yield h


@pytest.mark.host
def test_live_outputs(host: CliHost) -> None:
    host.run("net-undefine", "default")
    for name, br, third, uuid, mac in [
        ("alpha", "a", 71, "0b2f7c7e-9a55-4c7e-9d3e-00000000000a", "52:54:00:00:71:01"),
        ("beta", "b", 72, "0b2f7c7e-9a55-4c7e-9d3e-00000000000b", "52:54:00:00:72:01"),
    ]:
        xml = net_xml(name, f"{host.mark}{br}", third, uuid=uuid, mac=mac)
        host.run("net-define", str(host.write(f"{name}.xml", xml)))
    host.run("net-start", "alpha")
    host.run("net-autostart", "beta")
    mark = host.mark

    def norm(text: str) -> str:
        return text.replace(mark, "MARK")

    check("live-net-list-all.txt", norm(host.run("net-list", "--all").stdout))
    check("live-net-list-all.json", norm(host.run("-o", "json", "net-list", "--all").stdout))
    check("live-net-list-all.yaml", norm(host.run("-o", "yaml", "net-list", "--all").stdout))
    check("live-net-info.txt", norm(host.run("net-info", "alpha").stdout))
    check("live-net-dumpxml.xml", norm(host.run("net-dumpxml", "alpha").stdout))
    check("live-net-update.json", norm(host.run(
        "-o", "json", "net-update", "alpha", "add", "ip-dhcp-host",
        "<host mac='52:54:00:00:71:10' ip='10.71.0.50'/>", "--live", "--config").stdout))
