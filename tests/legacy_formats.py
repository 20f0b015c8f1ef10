"""Data in the original PerformanceMonitor's two storage formats, written the way the original wrote it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from perfmon.adapters.postgres.engine import database_url
from perfmon.adapters.postgres.schema import create_database_if_missing
from tests.postgres_server import drop_database, unique_database_url

# The original's init_db.py, verbatim in substance.
ORIGINAL_SCHEMA = (
    """
    CREATE TABLE users (
        "user_name" character varying NOT NULL,
        user_passwd character varying NOT NULL,
        user_id bigserial,
        PRIMARY KEY ("user_name")
    )
    """,
    """
    CREATE TABLE sessions (
        user_id integer NOT NULL,
        user_session uuid,
        user_cpu double precision,
        user_timestamp double precision
    )
    """,
)


@dataclass
class OriginalUser:
    """A user of the original with its sessions: hash (as the original client holds it) -> samples."""

    name: str
    password: str
    sessions: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # How the original's file storage separated name and password; some copies have a blank after it.
    separator: str = ","


def write_original_files(root: Path, users: Sequence[OriginalUser]) -> Path:
    """`root/users/<name>.txt` and `root/users_data/<hash>.csv`, as the original's FileStorage wrote them."""
    (root / "users").mkdir(parents=True)
    (root / "users_data").mkdir()
    for user in users:
        lines = [f"{user.name}{user.separator}{user.password}", *user.sessions]
        (root / "users" / f"{user.name}.txt").write_text("".join(f"{line}\n" for line in lines))
        for token, samples in user.sessions.items():
            rows = "".join(f"{cpu},{time}\n" for cpu, time in samples)
            (root / "users_data" / f"{token}.csv").write_text(f"cpu,time\n{rows}")
    return root


@contextmanager
def original_database(server_url: str, users: Sequence[OriginalUser]) -> Iterator[str]:
    """A fresh database with the original's two tables holding the users, dropped afterwards."""
    url = unique_database_url(server_url, prefix="perfmon_legacy_")
    rendered = url.render_as_string(hide_password=False)
    try:
        create_database_if_missing(rendered)
        engine = create_engine(database_url(rendered), poolclass=NullPool)
        try:
            with engine.begin() as connection:
                for statement in ORIGINAL_SCHEMA:
                    connection.execute(text(statement))
                for user in users:
                    _insert_user(connection, user)
        finally:
            engine.dispose()
        yield rendered
    finally:
        drop_database(server_url, url.database or "")


def _insert_user(connection: Connection, user: OriginalUser) -> None:
    user_id = connection.execute(
        text("INSERT INTO users (user_name, user_passwd) VALUES (:name, :password) RETURNING user_id"),
        {"name": user.name, "password": user.password},
    ).scalar_one()
    insert = text(
        "INSERT INTO sessions (user_id, user_session, user_cpu, user_timestamp)"
        " VALUES (:user_id, :token, :cpu, :time)"
    )
    for token, samples in user.sessions.items():
        # The original wrote a row without a sample when the session started, then a row per sample.
        rows = [(None, None), *samples]
        connection.execute(
            insert, [{"user_id": user_id, "token": token, "cpu": c, "time": t} for c, t in rows]
        )


def insert_session_rows(url: str, rows: Sequence[dict[str, object]]) -> None:
    """Rows the original never wrote but a damaged copy may hold: keys user_id, token, cpu, time."""
    engine = create_engine(database_url(url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO sessions (user_id, user_session, user_cpu, user_timestamp)"
                    " VALUES (:user_id, :token, :cpu, :time)"
                ),
                list(rows),
            )
    finally:
        engine.dispose()
