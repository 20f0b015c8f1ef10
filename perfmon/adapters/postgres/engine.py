"""The engine: one connection pool per process, with timeouts so that a dead database fails fast."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
from sqlalchemy import URL, Engine, create_engine, make_url

logger = logging.getLogger(__name__)

POOL_TIMEOUT_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 3
STATEMENT_TIMEOUT_MS = 10_000

# libpq settings (psycopg2 passes them through): give up on connecting after a few seconds,
# cap every statement on the server, and notice a peer that vanished mid-query through TCP
# keepalives and tcp_user_timeout instead of waiting for the kernel's default of minutes.
# extra_float_digits=1 (the default since PostgreSQL 12, but a server or role may set another) makes a
# float8's text its shortest exact decimal, as Python's repr, wherever the server prints a double.
CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c extra_float_digits=1",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}


class _NoRows(logging.Filter):
    """Drops SQLAlchemy's DEBUG records of the engine, which print result rows (tokens, password hashes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_NO_ROWS = _NoRows()


def keep_rows_out_of_the_log() -> None:
    """Keep result rows out of the log even when the sqlalchemy logger is set to DEBUG; hide_parameters
    covers parameters only. Its statement lines (INFO) stay, with parameters hidden."""
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    if _NO_ROWS not in engine_logger.filters:
        engine_logger.addFilter(_NO_ROWS)


def database_url(url: str) -> URL:
    """Parse the URL, pinning a bare postgresql:// to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def create_engine_for(url: str, pool_size: int) -> Engine:
    """A pool sized for the server's threads that fails within seconds, not hangs, when the database dies."""
    parsed = database_url(url)
    logger.info("Database %s, pool of %d connections", parsed.render_as_string(hide_password=True), pool_size)
    keep_rows_out_of_the_log()
    return create_engine(
        parsed,
        # Statements' parameters are session tokens and password hashes: never in an error's text
        # (which the server logs) nor in SQLAlchemy's statement log.
        hide_parameters=True,
        # Checks each connection on checkout, so that a restart of Postgres costs no failed request.
        pool_pre_ping=True,
        pool_size=pool_size,
        # Waitress never runs more requests at once than it has threads: more connections would idle.
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args=CONNECT_ARGS,
    )


def connect_outside_the_pool(engine: Engine) -> psycopg2.extensions.connection:
    """A new psycopg2 connection to the engine's database with the pool's settings (CONNECT_ARGS), owned by
    the caller: not counted in the pool's size, and never pinged on use. Raises psycopg2.OperationalError
    when the database cannot be reached (within CONNECT_TIMEOUT_SECONDS)."""
    arguments, options = engine.dialect.create_connect_args(engine.url)
    connection: psycopg2.extensions.connection = psycopg2.connect(*arguments, **{**options, **CONNECT_ARGS})
    return connection


def engine_resource(url: str, pool_size: int) -> Iterator[Engine]:
    """The engine for the lifetime of a dependency-injector Resource: closes the pool at shutdown."""
    engine = create_engine_for(url, pool_size)
    try:
        yield engine
    finally:
        engine.dispose()
