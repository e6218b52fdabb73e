"""Pure tests of doctor's parsing and fix texts (no namespace needed)."""

from __future__ import annotations

from virtnet.doctor import Finding, _foreign_finding, bridged_findings, exit_status, parse_ss
from virtnet.hostcfg import BondSettings, HostView, Link, LinkKind, parse_mode
from virtnet.model.network import Bridge, Forward, ForwardMode, Network

SS_UDP = """\
UNCONN 0      0          10.77.5.1:53        0.0.0.0:*    users:(("dnsmasq",pid=7855,fd=6))
UNCONN 0      0      0.0.0.0%virbr0:67        0.0.0.0:*    users:(("dnsmasq",pid=7855,fd=4))
UNCONN 0      0              [::]:547          [::]:*
UNCONN 0      0                 *:5353            *:*    users:(("avahi",pid=12,fd=3))
"""


def test_parse_ss() -> None:
    socks = parse_ss(SS_UDP, "udp")
    assert [(s.addr, s.dev, s.port, s.pid, s.comm) for s in socks] == [
        ("10.77.5.1", None, 53, 7855, "dnsmasq"),
        ("0.0.0.0", "virbr0", 67, 7855, "dnsmasq"),
        ("::", None, 547, None, ""),
        ("*", None, 5353, 12, "avahi"),
    ]


def test_policy_drop_line_becomes_an_error_with_commands() -> None:
    line = ("table ip filter, chain FORWARD (hook forward, policy drop): drops forwarded VM "
            "traffic that it does not accept itself; in nftables a drop in any table is final. "
            "fix: accept virtnet's bridges there")
    f = _foreign_finding(line, ["virbr0"], {("ip", "filter", "DOCKER-USER")})
    assert f.severity == "error" and f.code == "foreign-forward-drop"
    assert f.what == ("table ip filter, chain FORWARD (hook forward) has policy drop and does "
                      "not accept virtnet's bridges")
    assert "iptables -I DOCKER-USER -i virbr0 -j ACCEPT" in f.fix
    assert 'nft insert rule ip filter FORWARD oifname "virbr0" accept' in f.fix
    no_docker = _foreign_finding(line, ["virbr0"], set())
    assert "iptables -I DOCKER-USER -i" not in no_docker.fix


def test_drop_rule_line_is_a_warning_for_input() -> None:
    line = ("table inet fw, chain input (hook input): rule in chain input drops matching "
            "packets: udp dport 67 drop; check it does not match virtnet's bridges or subnets")
    f = _foreign_finding(line, ["br1"], set())
    assert f.severity == "warning" and f.code == "foreign-input-drop"
    assert "udp dport 67 drop" in f.what
    assert 'insert rule inet fw input iifname "br1"' in f.fix and "53, 67" in f.fix


def test_exit_status() -> None:
    def f(sev: str) -> Finding:
        return Finding(sev, "x", None, "w", "y", "z")

    assert exit_status([]) == 0
    assert exit_status([f("info")]) == 0
    assert exit_status([f("info"), f("warning")]) == 1
    assert exit_status([f("warning"), f("error")]) == 2
    assert "why: y" in str(f("error")) and "fix: z" in str(f("error"))


def _lan(bridge: str = "br0") -> Network:
    return Network(name="lan", forward=Forward(mode=ForwardMode.BRIDGE),
                   bridge=Bridge(name=bridge))


def test_bridged_over_wifi_and_bad_bond_modes() -> None:
    wifi = HostView({
        "br0": Link("br0", LinkKind.BRIDGE, "up", ports=("wlan0", "vnet1")),
        "wlan0": Link("wlan0", LinkKind.WIRELESS, "up"),
        "vnet1": Link("vnet1", LinkKind.TAP, "up"),
    }, source="test")
    (f,) = bridged_findings(_lan(), wifi)
    assert (f.severity, f.code, f.network) == ("error", "bridged-wireless", "lan")
    assert "Wi-Fi" in f.what and "wired interface" in f.fix
    assert "own MAC address" in f.why

    rr = HostView({
        "br0": Link("br0", LinkKind.BRIDGE, "up", ports=("bond0",)),
        "bond0": Link("bond0", LinkKind.BOND, "up", ports=("eth0", "eth1"),
                      bond=BondSettings(parse_mode("balance-rr"), arp_interval=100)),
    }, source="test")
    found = {x.code: x for x in bridged_findings(_lan(), rr)}
    assert set(found) == {"bridged-bond-mode", "bridged-arp-monitoring"}
    assert "mode 0 (balance-rr)" in found["bridged-bond-mode"].what
    assert "active-backup" in found["bridged-bond-mode"].fix
    assert "miimon=100" in found["bridged-arp-monitoring"].fix

    good = HostView({
        "br0": Link("br0", LinkKind.BRIDGE, "up", ports=("bond0",)),
        "bond0": Link("bond0", LinkKind.BOND, "up", ports=("eth0",),
                      bond=BondSettings(parse_mode("active-backup"), miimon=100)),
    }, source="test")
    assert bridged_findings(_lan(), good) == []
    missing = bridged_findings(_lan("br9"), good)
    assert [x.code for x in missing] == ["bridged-bridge-missing"]


def test_text_report_ends_with_counts() -> None:
    from virtnet.cli.cmd_ops import _doctor_text

    def f(sev: str) -> Finding:
        return Finding(sev, "x", None, "w", "y", "z")

    assert _doctor_text([]) == "no problems found\n"
    text = _doctor_text([f("error"), f("warning"), f("warning")])
    assert text.endswith("\n1 error, 2 warnings\n") and text.startswith("error x: w\n")
