"""Fixtures for tests against real adapters and real servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.storage_kinds import Repositories, memory_repositories

STORAGE_KINDS = ["memory"]


@pytest.fixture(params=STORAGE_KINDS)
def repositories(request: pytest.FixtureRequest, tmp_path: Path) -> Repositories:
    """A fresh, empty storage of each kind in turn."""
    if request.param == "memory":
        return memory_repositories()
    raise AssertionError(f"unknown storage kind {request.param}")
