"""Pure tests: the netlink parsers the guard's event sources use, on hand-built messages in
the kernel's layout, and the debounce and cause summary."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from virtnet.guard import DEBOUNCE, MAX_DELAY, _Pending, _summarize_nft
from virtnet.guard_events import (
    NLMSG_HDR,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_NEWLINK,
    NftChange,
    link_event,
    nft_event,
    parse_attrs,
    parse_messages,
)


def attr(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def msg(mtype: int, payload: bytes) -> bytes:
    raw = NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), mtype, 0, 0, 0) + payload
    return raw + b"\0" * (-len(raw) % 4)


def nft(cmd: int, family: int, *attrs: bytes) -> bytes:
    return msg((10 << 8) | cmd, struct.pack("=BBH", family, 0, 0) + b"".join(attrs))


def test_nft_transaction_of_a_flush() -> None:
    data = (nft(8, 1, attr(1, b"virtnet\0"), attr(2, b"masq_ports_1024_65535\0"))
            + nft(5, 1, attr(1, b"virtnet\0"), attr(3, b"forward\0"))
            + nft(2, 1, attr(1, b"virtnet\0"))
            + nft(2, 2, attr(1, b"filter\0"))
            + nft(15, 0, attr(1, struct.pack(">I", 7)), attr(2, struct.pack(">I", 4242)),
                  attr(3, b"nft\0")))
    changes = [c for m in parse_messages(data) if (c := nft_event(m)) is not None]
    assert [str(c) for c in changes] == [
        "delete rule inet virtnet masq_ports_1024_65535",
        "delete chain inet virtnet forward",
        "delete table inet virtnet",
        "delete table ip filter",
        "by nft (pid 4242)",
    ]
    ours = [c for c in changes if c.table == "virtnet"]
    assert _summarize_nft([*ours, changes[-1]]) == (
        "delete table inet virtnet, delete chain inet virtnet forward (+1 more) "
        "by nft (pid 4242)")


def test_nft_nested_flag_is_ignored_and_foreign_messages_are_not_events() -> None:
    assert parse_attrs(attr(0x8000 | 1, b"t\0")) == {1: b"t\0"}
    link_msg = next(parse_messages(msg(RTM_NEWLINK, b"\0" * 16)))
    assert nft_event(link_msg) is None
    set_elem = next(parse_messages(nft(12, 1, attr(1, b"virtnet\0"), attr(2, b"nat_src\0"))))
    assert nft_event(set_elem) == NftChange("add", "element", "inet", "virtnet", "nat_src")


def test_truncated_datagram_stops_cleanly() -> None:
    data = nft(2, 1, attr(1, b"virtnet\0"))
    assert list(parse_messages(data[:-3])) == []
    assert list(parse_messages(b"")) == []


def ifinfo(index: int, flags: int) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 1, index, flags, 0)


def test_link_and_address_events() -> None:
    dele = link_event(next(parse_messages(msg(RTM_DELLINK, ifinfo(7, 0) + attr(3, b"virbr0\0")))))
    assert dele is not None and str(dele) == "link virbr0 deleted" and dele.index == 7
    down = link_event(next(parse_messages(msg(RTM_NEWLINK, ifinfo(7, 0) + attr(3, b"virbr0\0")))))
    assert down is not None and not down.up and str(down) == "link virbr0 changed (down)"
    payload = struct.pack("=BBBBi", socket.AF_INET, 24, 0, 0, 7) + attr(
        2, socket.inet_aton("192.168.122.1"))
    addr = link_event(next(parse_messages(msg(RTM_DELADDR, payload))))
    assert addr is not None and addr.address == "192.168.122.1/24" and addr.op == "delete"


def test_debounce_waits_for_quiet_but_not_forever() -> None:
    p = _Pending()
    assert not p
    p.add("net", "bridge b deleted", 10.0)
    assert p and p.due(10.0) == 10.0 + DEBOUNCE
    p.add("net", "bridge b deleted", 10.03)  # same cause once
    assert p.causes == {"net": ["bridge b deleted"]}
    assert p.due(10.03) == 10.03 + DEBOUNCE
    for i in range(40):  # a storm of events: acted on after MAX_DELAY at the latest
        p.add("", f"e{i}", 10.0 + i * 0.03)
    assert p.due(11.2) == 10.0 + MAX_DELAY


def test_log_lines_for_people() -> None:
    from virtnet.cli.cmd_ops import _line

    entry = {"time": 0.25, "event": "repair", "network": "default",
             "repairs": ["bridge virbr0 recreated", "dnsmasq restarted (pid 9)"],
             "cause": ["bridge virbr0 deleted"], "seconds": 0.1234}
    text = _line(entry)
    assert text.endswith("repaired default: bridge virbr0 recreated; dnsmasq restarted (pid 9) "
                         "(after: bridge virbr0 deleted; 123 ms)")
    assert text[:12].count(":") == 2 and text[8] == "."  # HH:MM:SS.mmm
    table = _line({"time": 0.0, "event": "repair", "repairs": ["table restored"],
                   "cause": ["delete table inet virtnet by nft (pid 3)"], "seconds": 0.05})
    assert "repaired nftables: table restored (after: delete table" in table


def test_bad_interval_is_a_clear_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from virtnet.cli.main import cli

    result = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "guard", "--interval", "0"])
    assert result.exit_code == 1
    assert "--interval must be positive" in result.output and "Traceback" not in result.output
