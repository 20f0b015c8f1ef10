"""The engine: one connection pool per process, with timeouts so that a dead database fails fast."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy import URL, Engine, create_engine, make_url

logger = logging.getLogger(__name__)

POOL_TIMEOUT_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 3
STATEMENT_TIMEOUT_MS = 10_000

# libpq settings (psycopg2 passes them through): give up on connecting after a few seconds,
# cap every statement on the server, and notice a peer that vanished mid-query through TCP
# keepalives and tcp_user_timeout instead of waiting for the kernel's default of minutes.
CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}


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
    return create_engine(
        parsed,
        # Checks each connection on checkout, so that a restart of Postgres costs no failed request.
        pool_pre_ping=True,
        pool_size=pool_size,
        # Waitress never runs more requests at once than it has threads: more connections would idle.
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args=CONNECT_ARGS,
    )


def engine_resource(url: str, pool_size: int) -> Iterator[Engine]:
    """The engine for the lifetime of a dependency-injector Resource: closes the pool at shutdown."""
    engine = create_engine_for(url, pool_size)
    try:
        yield engine
    finally:
        engine.dispose()
