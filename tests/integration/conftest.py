"""Fixtures for tests against real adapters and real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine

from perfmon.adapters.postgres.engine import create_engine_for
from perfmon.config import Settings
from tests.browser import CHROMIUM, launch_chromium
from tests.postgres_server import empty_tables, give_up, migrated_database, postgres_server
from tests.servers import threaded_server
from tests.storage_kinds import (
    Repositories,
    filesystem_repositories,
    memory_repositories,
    postgres_repositories,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

STORAGE_KINDS = ["memory", "postgres", "filesystem"]


@pytest.fixture(params=STORAGE_KINDS)
def repositories(request: pytest.FixtureRequest, tmp_path: Path) -> Repositories:
    """A fresh, empty storage of each kind in turn."""
    if request.param == "memory":
        return memory_repositories()
    if request.param == "filesystem":
        return filesystem_repositories(tmp_path / "data")
    if request.param == "postgres":
        # Looked up lazily, so that runs without the postgres kind never start a server.
        engine = request.getfixturevalue("postgres_engine")
        empty_tables(engine)
        return postgres_repositories(engine)
    raise AssertionError(f"unknown storage kind {request.param}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that runs on the postgres storage kind, so `-m "not postgres"` can leave it out."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgres" in callspec.params.values():
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A reachable PostgreSQL server's URL for the whole run (skips, or fails on CI, when there is none)."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """This run's own database, migrated to head, dropped when the run ends."""
    with migrated_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """One engine on this run's database, as the server process has one."""
    engine = create_engine_for(postgres_url, pool_size=8)
    yield engine
    engine.dispose()


# The storage modes of a served perfmon, as `--storage` names them.
SERVED_STORAGE = ["file", pytest.param("db", marks=pytest.mark.postgres)]


@pytest.fixture(params=SERVED_STORAGE)
def storage_kind(request: pytest.FixtureRequest) -> str:
    """Each storage mode of the server in turn."""
    return request.param


@pytest.fixture
def server_settings(storage_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings of a server on an empty storage of the kind under test."""
    if storage_kind == "db":
        url = request.getfixturevalue("postgres_url")
        empty_tables(request.getfixturevalue("postgres_engine"))
        return Settings(storage="db", database_url=url, threads=16)
    return Settings(storage="file", data_dir=tmp_path / "data", threads=16)


@pytest.fixture
def server_url(server_settings: Settings) -> Iterator[str]:
    """The base URL of a real waitress server, in this test's thread, on a free port."""
    with threaded_server(server_settings) as url:
        yield url


@pytest.fixture
def server_flags(server_settings: Settings) -> list[str]:
    """`perfmon serve` flags for a server process on the same storage as server_settings."""
    if server_settings.storage == "db":
        return ["--storage", "db", "--database-url", server_settings.database_url or ""]
    return ["--storage", "file", "--data-dir", str(server_settings.data_dir)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright, for a module of browser tests; skips off CI when either
    is missing, fails on CI."""
    if not CHROMIUM.exists():
        give_up(f"{CHROMIUM} is missing: apt-get install --no-install-recommends chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        give_up("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()
