"""GET /readyz says ready only when serving works: when writes fail, it fails with them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from perfmon.adapters.postgres.engine import database_url
from perfmon.config import Settings
from tests.postgres_server import terminate_backends
from tests.servers import threaded_server


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    settings = Settings(storage="file", data_dir=tmp_path / "data", threads=4)
    with threaded_server(settings) as url:
        yield url, settings


def test_readyz_fails_while_the_sessions_folder_cannot_be_written_and_recovers(
    file_server: tuple[str, Settings],
) -> None:
    url, settings = file_server
    token = requests.post(f"{url}/register", json={"user": "ready", "passwd": "pw"}, timeout=10).json()[
        "hash"
    ]
    sessions = settings.data_dir / "sessions"
    saved = settings.data_dir / "sessions-saved"
    # As root, permissions stop nothing: a regular file where the folder was breaks writes for anyone.
    sessions.rename(saved)
    sessions.write_bytes(b"")
    try:
        post = requests.post(f"{url}/cpu", json={"hash": token, "cpu": 1, "time": 1}, timeout=10)
        ready = requests.get(f"{url}/readyz", timeout=10)
        assert post.status_code == 503
        assert (ready.status_code, ready.json()["reason"]) == (503, "Storage unavailable, retry later")
    finally:
        sessions.unlink()
        saved.rename(sessions)
    assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
    assert (
        requests.post(f"{url}/cpu", json={"hash": token, "cpu": 1, "time": 1}, timeout=10).status_code == 200
    )


@pytest.mark.postgres
def test_readyz_fails_while_the_database_is_read_only_and_recovers(
    postgres_server_url: str, postgres_url: str
) -> None:
    name = make_url(postgres_url).database or ""
    settings = Settings(storage="db", database_url=postgres_url, threads=4)
    with threaded_server(settings) as url:
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
        token = requests.post(f"{url}/register", json={"user": "rw", "passwd": "pw"}, timeout=10).json()[
            "hash"
        ]
        _set_read_only(postgres_server_url, name, True)
        try:
            # New connections start read-only: the pool reconnects after its connections were cut.
            terminate_backends(postgres_server_url, name)
            ready = requests.get(f"{url}/readyz", timeout=10)
            register = requests.post(f"{url}/register", json={"user": "ro", "passwd": "pw"}, timeout=10)
            assert (ready.status_code, ready.json()["reason"]) == (503, "Storage unavailable, retry later")
            post = requests.post(f"{url}/cpu", json={"hash": token, "cpu": 1, "time": 1}, timeout=10)
            assert register.status_code == 503
            assert post.status_code == 503
        finally:
            _set_read_only(postgres_server_url, name, False)
            terminate_backends(postgres_server_url, name)
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
        again = requests.post(f"{url}/register", json={"user": "ro", "passwd": "pw"}, timeout=10)
        assert again.status_code == 200


def _set_read_only(server_url: str, database: str, read_only: bool) -> None:
    admin = create_engine(database_url(server_url), isolation_level="AUTOCOMMIT")
    setting = "SET default_transaction_read_only = on" if read_only else "RESET default_transaction_read_only"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{database}" {setting}'))
    finally:
        admin.dispose()
