"""The raw rtnetlink batches: bridges made right, kernel errors reported with their text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require_root
from tests.hostlab import sh
from virtnet.errors import HostError
from virtnet.host import netns
from virtnet.host.links import Netlink
from virtnet.plan import BridgeSpec

pytestmark = pytest.mark.host


@pytest.fixture
def ns(unique_name: str) -> Iterator[str]:
    require_root()
    netns.create(unique_name)
    try:
        yield unique_name
    finally:
        netns.delete(unique_name)


def spec(name: str, **kw: object) -> BridgeSpec:
    base = dict(network="n", name=name, mac="52:54:00:01:02:03", mtu=1400, stp=False, delay=0,
                addresses=("10.9.8.1/24", "fd00:98::1/64"))
    base.update(kw)
    return BridgeSpec(**base)  # type: ignore[arg-type]


def test_bridge_by_batch(ns: str) -> None:
    with Netlink(ns) as nl:
        s = spec("br9")
        index = nl.create_bridge(s)
        nl.configure_bridge(index, s)
        seen = nl.observe_bridge("br9")
    assert seen is not None
    assert (seen.mac, seen.mtu, seen.stp, seen.up, seen.alias) == (
        "52:54:00:01:02:03", 1400, False, True, "virtnet:n")
    assert seen.addresses == {"10.9.8.1/24", "fd00:98::1/64"}
    assert "brd 10.9.8.255" in sh(ns, "ip", "-4", "addr", "show", "br9")


def test_kernel_errors_are_host_errors_with_the_kernels_words(ns: str) -> None:
    with Netlink(ns) as nl:
        nl.create_bridge(spec("br9"))
        with pytest.raises(HostError, match="cannot create bridge br9: .*(exists|File exists)"):
            nl.create_bridge(spec("br9"))
        with pytest.raises(HostError, match="cannot create bridge br8: .*"):
            nl.create_bridge(spec("br8", mtu=10))  # below the minimum MTU
        assert nl.get("br8") is None  # nothing half-made
