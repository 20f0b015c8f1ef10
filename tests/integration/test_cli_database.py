"""`perfmon init-db` and `perfmon serve --storage db` as an operator runs them: real processes, a real
server, exit codes and what stderr tells the operator (never a password, never a traceback)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.pool import NullPool

from perfmon.adapters.postgres.engine import database_url
from perfmon.adapters.postgres.schema import create_database_if_missing
from perfmon.adapters.postgres.tables import users
from tests.postgres_server import drop_database, unique_database_url
from tests.servers import run_perfmon, start_server_process

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Trust authentication ignores it, so it can ride in every URL and be looked for in every output.
PASSWORD = "s3cretpw"
# "Within a few seconds": a refusal must not wait for a timeout of minutes.
QUICKLY = 10


def _assert_tells_without_secrets(result: subprocess.CompletedProcess[str], secret: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert secret not in result.stderr + result.stdout


@pytest.fixture
def new_database(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    """(URL, password) of a database that does not exist yet, dropped at the end whoever created it."""
    url = unique_database_url(postgres_server_url)
    password = url.password or PASSWORD
    url = url.set(drivername="postgresql", password=password)
    try:
        yield url.render_as_string(hide_password=False), password
    finally:
        drop_database(postgres_server_url, url.database or "")


def _schema_snapshot(url: str) -> tuple[object, ...]:
    """What a migration would change: the relations with their identity and catalog row version, the
    columns, the revision, and the rows of users."""
    engine = create_engine(database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            relations = connection.execute(
                text(
                    "SELECT c.oid, c.xmin::text, c.relname, c.relkind FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "ORDER BY c.relname"
                )
            ).all()
            columns = connection.execute(
                text(
                    "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
                    "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
                )
            ).all()
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            rows = connection.execute(select(users.c.name, users.c.password_hash)).all()
    finally:
        engine.dispose()
    return tuple(relations), tuple(columns), tuple(revision), tuple(rows)


def _database_exists(server_url: str, name: str) -> bool:
    engine = create_engine(database_url(server_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            return found.first() is not None
    finally:
        engine.dispose()


def test_init_db_twice_on_a_new_database_then_serve(
    postgres_server_url: str, new_database: tuple[str, str]
) -> None:
    url, password = new_database
    name = database_url(url).database or ""
    assert not _database_exists(postgres_server_url, name)

    first = run_perfmon("init-db", "--database-url", url)
    assert first.returncode == 0, first.stderr
    _assert_tells_without_secrets(first, password)
    assert "created database" in first.stderr
    assert _database_exists(postgres_server_url, name)

    # Data written between the runs must survive the second one, which must not touch the schema.
    engine = create_engine(database_url(url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(insert(users).values(name="kept", password_hash="h"))
    finally:
        engine.dispose()
    before = _schema_snapshot(url)

    second = run_perfmon("init-db", "--database-url", url)
    assert second.returncode == 0, second.stderr
    _assert_tells_without_secrets(second, password)
    assert "existing database" in second.stderr
    assert "Running upgrade" not in second.stderr
    assert _schema_snapshot(url) == before
    assert before[3] == (("kept", "h"),)

    server = start_server_process("--storage", "db", "--database-url", url)
    try:
        ready = requests.get(f"{server.url}/readyz", timeout=10)
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "storage": "db"})
        registered = requests.post(f"{server.url}/register", json={"user": "u", "passwd": "p"}, timeout=10)
        assert registered.status_code == 200
    finally:
        assert server.stop() == 0
    assert password not in "".join(server.log)


def test_serve_refuses_a_database_that_was_never_migrated(
    postgres_server_url: str, new_database: tuple[str, str]
) -> None:
    url, password = new_database
    assert create_database_if_missing(url)

    started = time.monotonic()
    result = run_perfmon("serve", "--port", "0", "--storage", "db", "--database-url", url)
    assert time.monotonic() - started < QUICKLY
    assert result.returncode != 0
    assert "perfmon init-db" in result.stderr, result.stderr
    _assert_tells_without_secrets(result, password)
    # Serving never migrates by itself: the database is still empty.
    engine = create_engine(database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            tables = connection.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert tables == 0


def test_init_db_without_a_url_says_which_setting_is_missing() -> None:
    result = run_perfmon("init-db")
    assert result.returncode != 0
    assert "database URL" in result.stderr and "--database-url" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"not a url:{PASSWORD}",
        f"mysql://postgres:{PASSWORD}@127.0.0.1:3306/perfmon",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/perfmon",
    ],
    ids=["not-a-url", "another-database", "port-not-a-number"],
)
@pytest.mark.parametrize("command", ["init-db", "serve"])
def test_a_malformed_url_is_refused_with_the_expected_form(command: str, url: str) -> None:
    flags = ["--storage", "db", "--port", "0"] if command == "serve" else []
    result = run_perfmon(command, *flags, "--database-url", url)
    assert result.returncode != 0
    assert "postgresql://user:password@host:port/database" in result.stderr, result.stderr
    _assert_tells_without_secrets(result, PASSWORD)


def test_init_db_needs_a_database_name_in_the_url() -> None:
    result = run_perfmon("init-db", "--database-url", f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/")
    assert result.returncode != 0
    assert "database name" in result.stderr, result.stderr
    _assert_tells_without_secrets(result, PASSWORD)


@pytest.mark.parametrize("command", ["init-db", "serve"])
def test_a_closed_port_fails_fast_with_a_clear_message(command: str) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/perfmon"
    flags = ["--storage", "db", "--port", "0"] if command == "serve" else []
    started = time.monotonic()
    result = run_perfmon(command, *flags, "--database-url", url)
    assert time.monotonic() - started < QUICKLY
    assert result.returncode != 0
    assert "database unavailable" in result.stderr and "port 1 failed" in result.stderr, result.stderr
    _assert_tells_without_secrets(result, PASSWORD)
