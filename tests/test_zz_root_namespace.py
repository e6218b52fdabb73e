"""Runs last (by name): the root namespace is as the suite found it."""

import os

import pytest

from tests import conftest, rootns


@pytest.mark.skipif(os.geteuid() != 0, reason="snapshot needs root")
def test_root_namespace_untouched() -> None:
    assert conftest._BEFORE, "session start snapshot missing"
    assert rootns.diff(conftest._BEFORE, rootns.snapshot()) == []
