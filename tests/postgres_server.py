"""A PostgreSQL server for the integration tests, and throwaway databases on it that leave no trace."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import URL, Connection, Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from perfmon.adapters.postgres.engine import database_url
from perfmon.adapters.postgres.schema import create_database_if_missing, upgrade_to_head
from perfmon.adapters.postgres.tables import metadata

ENV_URL = "PERFMON_TEST_DATABASE_URL"
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOW_TO_RUN = (
    f"no PostgreSQL server for the postgres tests: set {ENV_URL}="
    "postgresql://user:password@host:port/postgres (a user allowed to CREATE DATABASE), "
    "run one on 127.0.0.1:5432 with user postgres and trust auth, "
    "or install the server binaries (initdb, pg_ctl) so that a throwaway cluster can be started"
)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a reachable server: the configured one, the local one, else a throwaway cluster."""
    configured = os.environ.get(ENV_URL)
    if configured:
        # An explicit URL that does not answer is a broken setup, not a reason to skip.
        if not is_reachable(configured):
            pytest.fail(f"{ENV_URL} is set but its server does not answer")
        yield configured
    elif is_reachable(LOCAL_URL):
        yield LOCAL_URL
    else:
        bin_dir = server_binaries()
        if bin_dir is None:
            give_up(HOW_TO_RUN)
        with throwaway_cluster(bin_dir) as url:
            yield url


def give_up(reason: str) -> NoReturn:
    # On CI a missing database must turn the build red, never quietly skip the postgres tests.
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(reason)
    pytest.skip(reason)


def is_reachable(url: str) -> bool:
    """True when a connection to the URL succeeds within two seconds."""
    engine = create_engine(database_url(url), poolclass=NullPool, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, when the server can be run from it by this user."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")  # initdb refuses root: the cluster runs as postgres
        except KeyError:
            return None
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster of the tests' own, on a free port: a test may stop it and start it again."""

    bin_dir: Path
    workdir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server on the same data folder and port, and wait until it accepts connections."""
        # fsync off: the cluster is thrown away, and durability is what slows tests most.
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.workdir / "server.log")
        self._pg_ctl("-l", log, "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m <mode>`, waiting until the server is gone."""
        self._pg_ctl("-m", mode, "-w", "stop")

    def _pg_ctl(self, *arguments: str) -> None:
        _run([*_as_postgres(), str(self.bin_dir / "pg_ctl"), "-D", str(self.workdir / "data"), *arguments])


@contextmanager
def throwaway_cluster(bin_dir: Path) -> Iterator[str]:
    """A new cluster on a free port in a temporary folder, stopped and deleted afterwards."""
    with own_cluster(bin_dir) as cluster:
        yield cluster.url


@contextmanager
def own_cluster(bin_dir: Path) -> Iterator[Cluster]:
    """A new, started cluster in a temporary folder; stopped (if running) and deleted afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="perfmon-pg-"))
    if _as_postgres():
        shutil.chown(workdir, "postgres")
    cluster = Cluster(bin_dir, workdir, _free_port())
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(workdir / "data"), "-U", "postgres", "--auth=trust"]
        _run([*_as_postgres(), *initdb, "-E", "UTF8", "--no-sync"])
        cluster.start()
        try:
            yield cluster
        finally:
            if (workdir / "data" / "postmaster.pid").exists():
                cluster.stop("immediate")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _as_postgres() -> list[str]:
    # initdb and postgres refuse to run as root: run them as the postgres user then.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[-1]} of the throwaway cluster failed: {result.stdout}{result.stderr}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unique_database_url(server_url: str, prefix: str = "perfmon_test_") -> URL:
    """The server's URL with a database name no other run uses."""
    return database_url(server_url).set(database=f"{prefix}{secrets.token_hex(6)}")


@contextmanager
def migrated_database(server_url: str) -> Iterator[str]:
    """A database of its own for this run, migrated to head, dropped with its connections afterwards."""
    url = unique_database_url(server_url)
    rendered = url.render_as_string(hide_password=False)
    try:
        create_database_if_missing(rendered)
        upgrade_to_head(rendered)
        yield rendered
    finally:
        drop_database(server_url, url.database or "")


@contextmanager
def _admin(server_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url(server_url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        engine.dispose()


def terminate_backends(server_url: str, database: str) -> int:
    """Kill every connection to the database, as a crash or an admin would; the number killed."""
    others = "FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
    name = {"name": database}
    with _admin(server_url) as admin, admin.connect() as connection:
        killed = len(connection.execute(text(f"SELECT pg_terminate_backend(pid) {others}"), name).all())
        # pg_terminate_backend only signals: wait until they are gone, so that callers see a dead connection.
        deadline = time.monotonic() + 10
        while connection.execute(text(f"SELECT count(*) {others}"), name).scalar_one():
            if time.monotonic() > deadline:
                raise RuntimeError(f"backends of {database} outlived pg_terminate_backend")
            time.sleep(0.05)
    return killed


def drop_database(server_url: str, database: str) -> None:
    """Drop the database if it exists, first ending the connections that would block the drop."""
    terminate_backends(server_url, database)
    with _admin(server_url) as admin, admin.connect() as connection:
        quoted = connection.dialect.identifier_preparer.quote_identifier(database)
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")


def delete_session(connection: Connection, token: str) -> None:
    """Delete a session and everything of it, as an operator would by hand (behind perfmon's back)."""
    for statement in (
        "DELETE FROM rollups WHERE series_id IN (SELECT id FROM series WHERE session_token = %s)",
        "DELETE FROM samples WHERE series_id IN (SELECT id FROM series WHERE session_token = %s)",
    ):
        connection.exec_driver_sql(statement, (token,))
    connection.exec_driver_sql("DELETE FROM series WHERE session_token = %s", (token,))
    connection.exec_driver_sql("DELETE FROM sessions WHERE token = %s", (token,))


def empty_tables(engine: Engine) -> None:
    """Remove every row and restart the identities, so that each test starts from a new database."""
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
