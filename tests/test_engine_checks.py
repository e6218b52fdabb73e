"""What the engine refuses before it touches any host (no root needed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.hostlab import nat_network
from virtnet.engine import Engine
from virtnet.errors import Conflict, InvalidDefinition, NotFound, NotSupported
from virtnet.model.network import Bridge, Forward, ForwardMode

NS = "virtnet-test-no-such-namespace"


def test_start_many_refuses_duplicates(tmp_path: Path) -> None:
    with Engine(tmp_path, NS) as engine:
        a = nat_network("a", "vtb0", 1)
        with pytest.raises(Conflict, match="named twice"):
            engine.start_many([a, a])
        with pytest.raises(Conflict, match="share bridge"):
            engine.start_many([a, replace(nat_network("b", "vtb0", 2))])


def test_bad_definitions_fail_before_the_host(tmp_path: Path) -> None:
    with Engine(tmp_path, NS) as engine:
        with pytest.raises(InvalidDefinition, match="no bridge name"):
            engine.start(replace(nat_network("a", "x", 1), bridge=Bridge(name=None)))
        with pytest.raises(NotSupported):
            engine.start_many([replace(nat_network("a", "x", 1),
                                       forward=Forward(mode=ForwardMode.PASSTHROUGH))])
        with pytest.raises(NotFound, match="does not exist"):
            engine.start(nat_network("a", "vtb0", 1))  # a good definition, a missing netns
        assert engine.active() == []


def test_queries_on_nothing_running(tmp_path: Path) -> None:
    with Engine(tmp_path, NS) as engine:
        assert engine.active() == [] and not engine.is_active("a")
        assert engine.interrupted_bridge("a") is None
        for call in (lambda: engine.stop("a"), lambda: engine.leases("a"),
                     lambda: engine.definition("a"), lambda: engine.stop_many(["a"])):
            with pytest.raises(NotFound, match="not active"):
                call()
