"""The engine's fast paths: nft in-process through libnftables (the nft tool as fallback), and
links deleted together as one link group, touching no other link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.firewall_cases import CASES, NAT, net
from tests.hostlab import sh
from virtnet.errors import HostError
from virtnet.firewall import nftlib, render_add, render_table
from virtnet.firewall.live import apply_script, read_live, read_table
from virtnet.host import netns
from virtnet.host.links import Netlink

pytestmark = pytest.mark.host


@pytest.fixture
def ns(unique_name: str) -> Iterator[str]:
    require_root()
    netns.create(unique_name)
    try:
        yield unique_name
    finally:
        netns.delete(unique_name)


def test_libnftables_is_used_and_agrees_with_the_nft_tool(
    ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert nftlib.library() is not None  # Debian's nftables package brings libnftables1
    apply_script(ns, render_table(CASES["mix"]))
    text, live = read_table(ns), read_live(ns)
    assert text is not None and "chain filter_forward" in text
    monkeypatch.setenv(nftlib.ENV, "process")
    assert nftlib.library() is None
    assert read_table(ns) == text  # the same listing through the nft tool
    assert read_live(ns) == live  # and the same JSON


@pytest.mark.parametrize("path", ["library", "process"])
def test_a_refused_script_names_the_failing_command_and_changes_nothing(
    ns: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path == "process":
        monkeypatch.setenv(nftlib.ENV, "process")
    apply_script(ns, render_table(CASES["mix"]))
    before = read_table(ns)
    broken = render_add(net("x", NAT, "vbx", "10.99.0.1/24")) + "add rule inet virtnet nope drop\n"
    with pytest.raises(HostError) as err:
        apply_script(ns, broken)
    # the kernel's error points at the rule, not at the first command of the transaction
    assert "add rule inet virtnet nope drop" in err.value.message
    assert "/dev/stdin:" in err.value.message
    assert read_table(ns) == before


def test_missing_namespace_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    require_root()
    from virtnet.errors import NotFound

    with pytest.raises(NotFound, match="does not exist"):
        nftlib.run("virtnet-no-such-ns", "list ruleset")


def test_links_deleted_as_one_group_leave_others_alone(ns: str) -> None:
    for name in ("vfa", "vfb", "vfc", "keep0", "keep1"):
        sh(ns, "ip", "link", "add", name, "type", "bridge")
    sh(ns, "ip", "link", "add", "vfv", "type", "veth", "peer", "name", "vfw")
    sh(ns, "ip", "link", "set", "keep1", "group", "7")
    with Netlink(ns) as nl:
        seen = {link.name: link for link in nl.rtnl.dump_links()}
        assert {"vfa", "vfb", "vfc", "keep0", "keep1", "vfv", "vfw", "lo"} <= set(seen)
        assert seen["keep1"].group == 7 and seen["keep0"].group == 0
        assert nl.delete_many(["vfa", "vfb", "vfc", "vfv", "gone"]) == []
        left = {link.name: link for link in nl.rtnl.dump_links()}
    assert set(left) == {"lo", "keep0", "keep1"}  # the veth's peer went with it
    assert (left["keep0"].group, left["keep1"].group) == (0, 7)


def test_raw_lookup_reads_alias(ns: str) -> None:
    sh(ns, "ip", "link", "add", "vfa", "type", "bridge")
    sh(ns, "ip", "link", "set", "vfa", "alias", "virtnet:demo")
    with Netlink(ns) as nl:
        link = nl.get_raw("vfa")
        assert link is not None and link.alias == "virtnet:demo" and link.name == "vfa"
        assert nl.get_raw("nosuch") is None
        assert nl.delete_many(["vfa"]) == []
        assert nl.get_raw("vfa") is None


def test_hundreds_of_links_in_one_deletion(ns: str, tmp_path: Path) -> None:
    # more marks than one netlink send may carry acks for: they go in chunks
    batch = tmp_path / "links"
    batch.write_text("".join(f"link add vfv{i} type veth peer name vfw{i}\n" for i in range(300)))
    sh(ns, "ip", "-batch", str(batch))
    with Netlink(ns) as nl:
        assert nl.delete_many([f"vfv{i}" for i in range(300)]) == []
        assert {link.name for link in nl.rtnl.dump_links()} == {"lo"}
