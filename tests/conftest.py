"""Suite-wide safety: the root namespace is identical before and after, and a per-run mark."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from tests import rootns

# Short, so device names (15 characters at most) can carry it: "vt" + 4 hex digits.
RUN_MARK = "vt" + secrets.token_hex(2)

_BEFORE: dict[str, str] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.geteuid() == 0:
        _BEFORE.update(rootns.snapshot())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _BEFORE:
        return
    changed = rootns.diff(_BEFORE, rootns.snapshot())
    if changed:
        print(f"\nROOT NAMESPACE CHANGED by the suite: {', '.join(changed)}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def run_mark() -> str:
    """A mark unique to this test run, for namespace and device names."""
    return RUN_MARK


@pytest.fixture
def unique_name(run_mark: str) -> Iterator[str]:
    """A fresh short name per test: RUN_MARK + 3 hex digits."""
    yield run_mark + secrets.token_hex(2)[:3]


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
