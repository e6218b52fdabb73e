"""virtnet's nftables table applied for real, inside namespaces these tests create.

Apply, read back, drift after someone flushes the ruleset or deletes one rule/element,
atomic failure, incremental == full, foreign drop diagnosis, and real packets: a host
namespace with a bridge, VM namespaces on veths, and an outside host on TEST-NET-2
(198.51.100.0/24) that routes the VM subnet via the host.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import require_root
from tests.firewall_cases import CASES, NAT, ROUTE, net
from virtnet.errors import HostError
from virtnet.firewall import (
    add_network,
    apply_script,
    check_script,
    delete_table,
    drift,
    foreign_drops,
    read_table,
    remove_network,
    render_add,
    render_remove,
    render_table,
    table_digest,
)
from virtnet.firewall.live import canon_rule, parse_chains, read_live
from virtnet.firewall.schema import CHAINS
from virtnet.host import netns
from virtnet.model.network import Nat, NatAddressRange

pytestmark = pytest.mark.host


def sh(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return netns.run(ns, list(argv), check=check)


@pytest.fixture
def ns(unique_name: str) -> Iterator[str]:
    require_root()
    name = f"{unique_name}fw"
    netns.create(name)
    try:
        yield name
    finally:
        netns.delete(name)


# --- table lifecycle ---------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_nft_check_accepts_every_rendered_table(ns: str, case: str) -> None:
    check_script(ns, render_table(CASES[case]))
    assert read_table(ns) is None  # -c changed nothing
    apply_script(ns, render_table([]))
    for n in CASES[case]:
        check_script(ns, render_add(n))
    assert drift(ns, []) == []


def test_apply_read_back_exactly_as_rendered(ns: str) -> None:
    nets = CASES["mix"]
    apply_script(ns, render_table(nets))
    text = read_table(ns)
    assert text is not None
    live = parse_chains(text)
    for chain in CHAINS:
        base, rules = live[chain.name]
        assert (base, [canon_rule(r) for r in rules]) == (
            chain.base,
            [canon_rule(r) for r in chain.rules],
        ), chain.name
    assert drift(ns, nets) == []
    # Applying the same table again is idempotent.
    digest = table_digest(ns)
    apply_script(ns, render_table(nets))
    assert table_digest(ns) == digest and drift(ns, nets) == []


def test_incremental_add_remove_equals_full_render(ns: str, unique_name: str) -> None:
    nets = CASES["mix"]
    other = f"{unique_name}fx"
    netns.create(other)
    try:
        apply_script(ns, render_table([]))
        for n in nets:
            apply_script(ns, render_add(n))
        apply_script(other, render_table(nets))
        assert read_live(ns) == read_live(other)
        assert drift(ns, nets) == []
        keep = [n for n in nets if n.name not in ("default", "routed", "natports")]
        for n in nets:
            if n not in keep:
                apply_script(ns, render_remove(n))
        apply_script(other, render_table(keep))
        # The custom port-range chain stays after its network left (others may share it)...
        assert drift(ns, keep) == []
        live_ns, live_other = read_live(ns), read_live(other)
        assert live_ns is not None and live_other is not None
        assert live_ns.sets == live_other.sets
        assert "masq_ports_4000_5000" in live_ns.chains
        assert "masq_ports_4000_5000" not in live_other.chains
        # ...and adding the network again reuses it.
        apply_script(ns, render_add(CASES["nat_ports"][0]))
        assert drift(ns, [*keep, CASES["nat_ports"][0]]) == []
    finally:
        netns.delete(other)


def test_drift_after_flush_ruleset_and_repair(ns: str) -> None:
    nets = CASES["mix"]
    apply_script(ns, render_table(nets))
    sh(ns, "nft", "flush", "ruleset")
    assert drift(ns, nets) == ["table inet virtnet is missing"]
    apply_script(ns, render_table(nets))
    assert drift(ns, nets) == []


def test_drift_after_one_rule_or_element_is_deleted(ns: str) -> None:
    nets = CASES["mix"]
    apply_script(ns, render_table(nets))
    listing = sh(ns, "nft", "-a", "list", "chain", "inet", "virtnet", "filter_forward").stdout
    handle = next(
        line.split("# handle ")[1]
        for line in listing.splitlines()
        if line.strip().startswith("oifname @bridges reject")
    )
    sh(ns, "nft", "delete", "rule", "inet", "virtnet", "filter_forward", "handle", handle)
    sh(ns, "nft", "delete", "element", "inet", "virtnet", "masq4", "{ 192.168.122.0/24 }")
    sh(ns, "nft", "add", "rule", "inet", "virtnet", "filter_input", "tcp", "dport", "22", "drop")
    sh(ns, "nft", "add", "element", "inet", "virtnet", "bridges", '{ "intruder" }')
    assert drift(ns, nets) == [
        "chain filter_input: extra rule: tcp dport 22 drop",
        "chain filter_forward: rule missing: oifname @bridges reject",
        'set bridges: extra element: "intruder"',
        "set masq4: element missing: 192.168.122.0/24",
    ]
    sh(ns, "nft", "delete", "chain", "inet", "virtnet", "mangle_postrouting")
    assert "chain mangle_postrouting is missing" in drift(ns, nets)
    apply_script(ns, render_table(nets))
    assert drift(ns, nets) == []


def test_failed_apply_changes_nothing(ns: str) -> None:
    nets = CASES["mix"]
    apply_script(ns, render_table(nets))
    before = read_table(ns)
    broken = render_add(net("x", NAT, "vbx", "10.99.0.1/24")) + "add rule inet virtnet nope drop\n"
    with pytest.raises(HostError) as err:
        apply_script(ns, broken)
    assert "nothing of it was applied" in str(err.value) and "nope" in str(err.value)
    assert read_table(ns) == before
    # Removing a network that is not there fails the same way, leaving the table intact.
    with pytest.raises(HostError):
        apply_script(ns, render_remove(net("y", ROUTE, "vby", "10.98.0.1/24")))
    assert read_table(ns) == before
    # Element adds need the table: without it, an error and still nothing created.
    delete_table(ns)
    with pytest.raises(HostError):
        apply_script(ns, render_add(CASES["nat"][0]))
    assert read_table(ns) is None


def test_add_remove_network_fall_back_to_full_table_and_repair(ns: str) -> None:
    a, b, c = CASES["nat"][0], CASES["route"][0], CASES["nat_dev"][0]
    assert add_network(ns, a, []) == "full"  # no table yet
    assert add_network(ns, b, [a]) == "incremental"
    assert add_network(ns, CASES["open"][0], [a, b]) == "none"
    assert drift(ns, [a, b]) == []
    sh(ns, "nft", "delete", "element", "inet", "virtnet", "masq4", "{ 192.168.122.0/24 }")
    assert remove_network(ns, a, [b]) == "full"  # increment refused: an element was gone
    assert drift(ns, [b]) == []
    assert add_network(ns, c, [b]) == "incremental"
    sh(ns, "nft", "flush", "ruleset")
    assert remove_network(ns, c, [b]) == "full"
    assert drift(ns, [b]) == []


def test_delete_table_is_a_noop_when_absent_and_touches_nothing_else(ns: str) -> None:
    sh(ns, "nft", "add", "table", "ip", "filter")
    delete_table(ns)
    apply_script(ns, render_table(CASES["nat"]))
    delete_table(ns)
    assert read_table(ns) is None
    assert "table ip filter" in sh(ns, "nft", "list", "ruleset").stdout


def test_foreign_drops_reports_docker_style_forward_drop(ns: str) -> None:
    apply_script(ns, render_table(CASES["mix"]))
    assert foreign_drops(ns) == []  # our own rejects are not foreign
    sh(ns, "nft", "add", "table", "ip", "filter")
    sh(
        ns, "nft", "add", "chain", "ip", "filter", "FORWARD",
        "{ type filter hook forward priority filter; policy drop; }",
    )  # fmt: skip
    reports = foreign_drops(ns, bridges=["virbr0"])
    assert len(reports) == 1
    assert "table ip filter, chain FORWARD (hook forward, policy drop)" in reports[0]
    assert 'nft insert rule ip filter FORWARD iifname "virbr0" accept' in reports[0]
    # With the documented fix in place the chain is no longer reported.
    for side in ("iifname", "oifname"):
        sh(ns, "nft", "insert", "rule", "ip", "filter", "FORWARD", side, '"virbr0"', "accept")
    assert foreign_drops(ns, bridges=["virbr0"]) == []
    # A drop rule in a chain jumped to from a forward chain is found too.
    sh(ns, "nft", "add", "chain", "ip", "filter", "DOCKER-USER")
    sh(ns, "nft", "add", "rule", "ip", "filter", "DOCKER-USER", "ip", "saddr", "10.0.0.0/8", "drop")
    sh(ns, "nft", "add", "rule", "ip", "filter", "FORWARD", "jump", "DOCKER-USER")
    (report,) = foreign_drops(ns, bridges=["virbr0"])
    assert "rule in chain DOCKER-USER drops" in report and "ip saddr 10.0.0.0/8 drop" in report
    # A host firewall dropping input blocks DHCP/DNS to dnsmasq; accepting the bridge fixes it.
    sh(ns, "nft", "add", "table", "inet", "hostfw")
    sh(
        ns, "nft", "add", "chain", "inet", "hostfw", "input",
        "{ type filter hook input priority filter; policy drop; }",
    )  # fmt: skip
    assert any("DHCP/DNS" in r and "hostfw" in r for r in foreign_drops(ns, bridges=["virbr0"]))
    sh(ns, "nft", "add", "rule", "inet", "hostfw", "input", "iifname", '"virbr0"', "accept")
    assert not any("hostfw" in r for r in foreign_drops(ns, bridges=["virbr0"]))


# --- real packets ------------------------------------------------------------------------

SUBNET_HOST = "10.77.0.1"
VM1, VM2 = "10.77.0.10", "10.77.0.11"
HOST_UP, OUTSIDE = "198.51.100.1", "198.51.100.2"
SNAT_ADDR = "198.51.100.5"
# IPv6: documentation prefix 2001:db8::/32 only.
SUBNET6_HOST, VM1_6 = "2001:db8:77::1", "2001:db8:77::10"
HOST_UP6, OUTSIDE6 = "2001:db8:100::1", "2001:db8:100::2"

_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1]))); s.listen(1); s.settimeout(5)
print("ready", flush=True)
try:
    c, peer = s.accept(); print(peer[0].removeprefix("::ffff:"), peer[1], flush=True); c.close()
except OSError as e:
    print("none", e, flush=True)
"""
_CLIENT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5).close(); print("ok")
except OSError as e:
    print("fail", e)
"""


@dataclass
class Lab:
    host: str
    vm1: str
    vm2: str
    outside: str
    bridge: str

    def ping(self, src: str, dst: str) -> bool:
        return sh(src, "ping", "-c1", "-W1", "-n", dst, check=False).returncode == 0

    def tcp(self, src: str, dst_ns: str, dst: str, port: int) -> tuple[bool, str | None]:
        """Connect SRC to DST:PORT served in DST_NS: (connected, "addr port" the server saw)."""
        server = subprocess.Popen(
            ["ip", "netns", "exec", dst_ns, sys.executable, "-c", _SERVER, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            out = sh(src, sys.executable, "-c", _CLIENT, dst, str(port)).stdout.strip()
            if out != "ok":
                return False, None
            peer = server.stdout.readline().split()
            return True, f"{peer[0]} {peer[1]}"
        finally:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def lab(run_mark: str) -> Iterator[Lab]:
    require_root()
    suffix = str(int(time.time() * 1000) % 4096)
    names = [f"{run_mark}{suffix}{role}" for role in ("h", "v1", "v2", "o")]
    host, vm1, vm2, outside = names
    br = "vnbr0"
    try:
        for name in names:
            netns.create(name)
        batch = [
            f"link add {br} type bridge",
            f"link set {br} up",
            f"addr add {SUBNET_HOST}/24 dev {br}",
            f"link add up0 type veth peer name eth0 netns {outside}",
            "link set up0 up",
            f"addr add {HOST_UP}/24 dev up0",
            f"addr add {SNAT_ADDR}/32 dev up0",
        ]
        for i, vm in enumerate((vm1, vm2), 1):
            batch += [
                f"link add vm{i} type veth peer name eth0 netns {vm}",
                f"link set vm{i} master {br}",
                f"link set vm{i} up",
            ]
        netns.run(host, ["ip", "-batch", "-"], input="\n".join(batch) + "\n")
        sh(host, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        sh(host, "ip", "addr", "add", f"{SUBNET6_HOST}/64", "dev", br, "nodad")
        sh(host, "ip", "addr", "add", f"{HOST_UP6}/64", "dev", "up0", "nodad")
        sh(vm1, "ip", "addr", "add", f"{VM1_6}/64", "dev", "eth0", "nodad")
        for vm, addr in ((vm1, VM1), (vm2, VM2)):
            sh(vm, "ip", "addr", "add", f"{addr}/24", "dev", "eth0")
            sh(vm, "ip", "link", "set", "eth0", "up")
            sh(vm, "ip", "route", "add", "default", "via", SUBNET_HOST)
            sh(vm, "ip", "-6", "route", "add", "default", "via", SUBNET6_HOST, check=False)
        sh(outside, "ip", "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        sh(outside, "ip", "link", "set", "eth0", "up")
        # The outside knows the way to the VMs: NAT must still keep it out.
        sh(outside, "ip", "route", "add", "10.77.0.0/24", "via", HOST_UP)
        sh(outside, "ip", "addr", "add", f"{OUTSIDE6}/64", "dev", "eth0", "nodad")
        sh(outside, "ip", "route", "add", "2001:db8:77::/64", "via", HOST_UP6)
        yield Lab(host, vm1, vm2, outside, br)
    finally:
        for name in names:
            netns.delete(name)


def _apply(lab: Lab, mode: object, *, v6: bool = False, **kw: object) -> None:
    ips = [f"{SUBNET_HOST}/24", *([f"{SUBNET6_HOST}/64"] if v6 else [])]
    n = net("lab", mode, lab.bridge, *ips, **kw)  # type: ignore[arg-type]
    apply_script(lab.host, render_table([n]))  # atomic replace; each test uses its own ports


def test_nat_masquerades_out_and_keeps_outside_out(lab: Lab) -> None:
    _apply(lab, NAT)
    assert lab.ping(lab.vm1, OUTSIDE)
    ok, peer = lab.tcp(lab.vm1, lab.outside, OUTSIDE, 8101)
    assert ok and peer is not None
    addr, port = peer.split()
    assert addr == HOST_UP  # the outside sees the host, not 10.77.0.10
    assert 1024 <= int(port) <= 65535
    # Even with a route to the VM subnet via the host, no connection comes in.
    assert lab.tcp(lab.outside, lab.vm1, VM1, 8102) == (False, None)
    assert not lab.ping(lab.outside, VM1)
    # VM <-> VM on the bridge works (br_netfilter sends it through our forward chain).
    assert lab.ping(lab.vm1, VM2)
    ok, peer = lab.tcp(lab.vm1, lab.vm2, VM2, 8103)
    assert ok and peer is not None and peer.startswith(f"{VM1} ")


def test_nat_address_range_and_custom_ports(lab: Lab) -> None:
    snat = Nat(addresses=(NatAddressRange(SNAT_ADDR, SNAT_ADDR),), port_start=20000, port_end=20100)
    _apply(lab, NAT, nat=snat)
    ok, peer = lab.tcp(lab.vm1, lab.outside, OUTSIDE, 8111)
    assert ok and peer is not None
    addr, port = peer.split()
    assert addr == SNAT_ADDR and 20000 <= int(port) <= 20100
    assert lab.ping(lab.vm1, OUTSIDE)  # ICMP: SNAT without ports
    _apply(lab, NAT, nat=Nat(port_start=30000, port_end=30010))
    ok, peer = lab.tcp(lab.vm1, lab.outside, OUTSIDE, 8112)
    assert ok and peer is not None
    addr, port = peer.split()
    assert addr == HOST_UP and 30000 <= int(port) <= 30010


def test_forward_dev_limits_where_vm_traffic_may_go(lab: Lab) -> None:
    _apply(lab, NAT, dev="up0")
    ok, peer = lab.tcp(lab.vm1, lab.outside, OUTSIDE, 8151)
    assert ok and peer is not None and peer.split()[0] == HOST_UP
    assert lab.tcp(lab.outside, lab.vm1, VM1, 8152) == (False, None)
    _apply(lab, NAT, dev="other0")  # the uplink is not the forward dev: rejected
    assert lab.tcp(lab.vm1, lab.outside, OUTSIDE, 8153) == (False, None)
    assert lab.ping(lab.vm1, VM2)  # VM <-> VM unaffected
    _apply(lab, ROUTE, dev="up0")
    ok, peer = lab.tcp(lab.outside, lab.vm1, VM1, 8154)
    assert ok and peer is not None and peer.split()[0] == OUTSIDE


def test_route_lets_the_outside_in_without_nat(lab: Lab) -> None:
    _apply(lab, ROUTE)
    ok, peer = lab.tcp(lab.outside, lab.vm1, VM1, 8121)
    assert ok and peer is not None and peer.startswith(f"{OUTSIDE} ")
    ok, peer = lab.tcp(lab.vm1, lab.outside, OUTSIDE, 8122)
    assert ok and peer is not None and peer.startswith(f"{VM1} ")  # no masquerade


def test_isolated_blocks_both_ways_but_not_vm_to_vm(lab: Lab) -> None:
    _apply(lab, None)
    assert not lab.ping(lab.vm1, OUTSIDE)
    assert lab.tcp(lab.vm1, lab.outside, OUTSIDE, 8131) == (False, None)
    assert lab.tcp(lab.outside, lab.vm1, VM1, 8132) == (False, None)
    assert lab.ping(lab.vm1, VM2)
    ok, peer = lab.tcp(lab.vm1, lab.vm2, VM2, 8133)
    assert ok and peer is not None and peer.startswith(f"{VM1} ")
    # The host itself still answers its VMs (DHCP/DNS live there).
    assert lab.ping(lab.vm1, SUBNET_HOST)


def test_ipv6_masqueraded_only_with_nat_ipv6_yes(lab: Lab) -> None:
    _apply(lab, NAT, v6=True, nat=Nat(ipv6=True))
    ok, peer = lab.tcp(lab.vm1, lab.outside, OUTSIDE6, 8141)
    assert ok and peer is not None and peer.split()[0] == HOST_UP6
    assert lab.tcp(lab.outside, lab.vm1, VM1_6, 8142) == (False, None)
    # Without ipv6='yes' libvirt routes the IPv6 subnet: no NAT, and open from outside.
    _apply(lab, NAT, v6=True)
    ok, peer = lab.tcp(lab.vm1, lab.outside, OUTSIDE6, 8143)
    assert ok and peer is not None and peer.split()[0] == VM1_6
    ok, peer = lab.tcp(lab.outside, lab.vm1, VM1_6, 8144)
    assert ok and peer is not None and peer.split()[0] == OUTSIDE6
    # IPv4 stays NATed and closed meanwhile.
    assert lab.tcp(lab.outside, lab.vm1, VM1, 8145) == (False, None)


_SNIFF_UDP68 = """
import socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind(("eth0", 0)); s.settimeout(3)
print("ready", flush=True)
while True:
    pkt = s.recv(2048)
    ihl = (pkt[0] & 15) * 4
    if pkt[9] == 17 and struct.unpack("!H", pkt[ihl + 2:ihl + 4])[0] == 68:
        print(struct.unpack("!H", pkt[ihl + 6:ihl + 8])[0], flush=True)
        break
"""
_SEND_67_TO_68 = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 67)); s.sendto(b"x" * 64, (sys.argv[2], 68))
"""


def _udp68_checksum(lab: Lab) -> int:
    """Send host:67 -> VM:68 over the bridge; the UDP checksum the VM receives."""
    sniff = subprocess.Popen(
        ["ip", "netns", "exec", lab.vm1, sys.executable, "-c", _SNIFF_UDP68],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sniff.stdout is not None and sniff.stdout.readline().strip() == "ready"
        sh(lab.host, sys.executable, "-c", _SEND_67_TO_68, SUBNET_HOST, VM1)
        return int(sniff.stdout.readline())
    finally:
        sniff.kill()
        sniff.wait()


def test_dhcp_replies_get_checksum_zeroed_like_libvirt(lab: Lab) -> None:
    apply_script(lab.host, render_table([]))
    assert _udp68_checksum(lab) != 0  # a real checksum without our rule
    _apply(lab, NAT)
    assert _udp68_checksum(lab) == 0  # "no checksum": guests that drop bad ones accept it


def test_foreign_forward_drop_breaks_nat_and_is_diagnosed(lab: Lab) -> None:
    _apply(lab, NAT)
    assert lab.ping(lab.vm1, OUTSIDE)
    sh(lab.host, "nft", "add", "table", "ip", "dockerish")
    try:
        sh(
            lab.host, "nft", "add", "chain", "ip", "dockerish", "FORWARD",
            "{ type filter hook forward priority filter; policy drop; }",
        )  # fmt: skip
        # Our table accepts it, the other table drops it: the drop wins.
        assert not lab.ping(lab.vm1, OUTSIDE)
        assert any("dockerish" in r for r in foreign_drops(lab.host, bridges=[lab.bridge]))
        for side in ("iifname", "oifname"):
            rule = [side, lab.bridge, "accept"]
            sh(lab.host, "nft", "insert", "rule", "ip", "dockerish", "FORWARD", *rule)
        assert lab.ping(lab.vm1, OUTSIDE)
        assert foreign_drops(lab.host, bridges=[lab.bridge]) == []
    finally:
        sh(lab.host, "nft", "delete", "table", "ip", "dockerish", check=False)
