"""Pure tests of doctor's parsing and fix texts (no namespace needed)."""

from __future__ import annotations

from virtnet.doctor import Finding, _foreign_finding, exit_status, parse_ss

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
