"""Group commit: the samples of many concurrent requests go to PostgreSQL in one COPY and one commit.

A monitoring server is mostly small concurrent writes. One transaction per request costs several
round trips and a WAL flush each; here whichever request thread finds the writer free writes
everything queued so far, so N waiting requests share one transaction. Every request still returns
only after the transaction holding its samples has committed: a 200 is never answered early.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2 import errorcodes
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from perfmon.adapters.postgres.driver_errors import violates
from perfmon.adapters.postgres.tables import CPU_SAMPLES_SESSION_FK
from perfmon.adapters.postgres.transactions import driver_outages_as_storage_unavailable, transaction
from perfmon.domain.errors import StorageUnavailable, UnknownSession
from perfmon.domain.model import CpuSample

# A constant statement: the rows travel as COPY data, never as SQL text.
_COPY_SAMPLES = "COPY cpu_samples (session_token, taken_at, cpu) FROM STDIN WITH (FORMAT csv)"


@dataclass
class _Write:
    """One request's samples, and what became of them."""

    token: str
    samples: Sequence[CpuSample]
    done: bool = False
    error: BaseException | None = None


class GroupCommitWriter:
    """Appends samples through one COPY per group of concurrent requests, all or nothing per request."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: list[_Write] = []
        self._queue_lock = threading.Lock()
        # Held by the thread writing a group; the others queue behind it and find their write done.
        self._writer_lock = threading.Lock()

    def append(self, token: str, samples: Sequence[CpuSample]) -> None:
        """Return once the samples are committed; raise what made their transaction fail."""
        write = _Write(token, samples)
        with self._queue_lock:
            self._queue.append(write)
        with self._writer_lock:
            if not write.done:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit(group)
        if write.error is not None:
            raise write.error

    def _commit(self, group: list[_Write]) -> None:
        try:
            self._copy(group)
        except StorageUnavailable as error:
            self._finish(group, error)
        except Exception as error:
            if len(group) == 1:
                self._finish(group, error)
                return
            # Not an outage: some write of the group is at fault (say, one to a session deleted by hand).
            # Commit each alone, so one request's failure never fails the others.
            for write in group:
                try:
                    self._copy([write])
                    self._finish([write], None)
                except Exception as error:
                    self._finish([write], error)
        else:
            self._finish(group, None)

    def _copy(self, group: list[_Write]) -> None:
        # repr() is the shortest text that reads back as the same double, so values round-trip exactly.
        rows = "".join(
            f"{write.token},{sample.taken_at!r},{sample.cpu!r}\n"
            for write in group
            for sample in write.samples
        )
        try:
            with (
                transaction(self._engine) as connection,
                driver_outages_as_storage_unavailable(connection),
                _driver_cursor(connection) as cursor,
            ):
                cursor.copy_expert(_COPY_SAMPLES, io.StringIO(rows))
        except psycopg2.IntegrityError as error:
            if not violates(error, errorcodes.FOREIGN_KEY_VIOLATION, CPU_SAMPLES_SESSION_FK):
                raise
            # A session deleted since the domain found it. Without the driver's error, whose DETAIL
            # line names the session's token: a credential.
            raise UnknownSession() from None

    @staticmethod
    def _finish(group: list[_Write], error: BaseException | None) -> None:
        for write in group:
            write.error, write.done = error, True


def _driver_cursor(connection: Connection) -> Any:
    """A cursor of the DBAPI connection under SQLAlchemy's, for COPY (psycopg2's copy_expert)."""
    driver = connection.connection.driver_connection
    if driver is None:  # only a connection that was closed under us has none
        raise sa_exc.InvalidRequestError("the pooled connection has no DBAPI connection")
    return driver.cursor()
