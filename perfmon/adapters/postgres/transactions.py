"""The one place where driver failures become StorageUnavailable, wrapped around short transactions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg2
from psycopg2 import errorcodes
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from perfmon.adapters.postgres.driver_errors import first_line
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.redaction import redact

# Failures of the database's reachability rather than of the statement: a refused or dropped
# connection, a server shutting down, a statement or pool timeout, a full disk.
_OUTAGES = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
# SQLSTATEs of a database that is up but takes no writes now: a standby, or default_transaction_read_only
# set (25006); the server's disk full (53100) and out of memory (53200) come as OperationalError already.
_UNWRITABLE = {errorcodes.READ_ONLY_SQL_TRANSACTION}


@contextmanager
def outages_as_storage_unavailable() -> Iterator[None]:
    """Turn a lost or unreachable database into StorageUnavailable, which the HTTP layer answers with 503."""
    try:
        yield
    except _OUTAGES as error:
        raise _unavailable(error) from error
    except sa_exc.DBAPIError as error:
        if not (error.connection_invalidated or getattr(error.orig, "pgcode", None) in _UNWRITABLE):
            raise
        raise _unavailable(error) from error


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One short transaction: committed when the block ends, rolled back when it raises."""
    with outages_as_storage_unavailable(), engine.begin() as connection:
        yield connection


@contextmanager
def driver_outages_as_storage_unavailable(lost: Callable[[], object]) -> Iterator[None]:
    """The same for work done on a driver's connection (psycopg2's own), which SQLAlchemy does not wrap.
    On a lost connection, `lost()` is called first, to drop it (from the pool, or from the writer that
    owns it), so that the next use makes a fresh one."""
    try:
        yield
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
        lost()
        raise _unavailable(error) from error
    except psycopg2.Error as error:
        if error.pgcode not in _UNWRITABLE:
            raise
        raise _unavailable(error) from error


def _unavailable(error: Exception) -> StorageUnavailable:
    # The HTTP layer logs this message. Only the driver's first line goes in it, redacted: the lines
    # after it (DETAIL, the statement) are where values such as session tokens are.
    return StorageUnavailable(f"database unavailable: {redact(first_line(error))}")
