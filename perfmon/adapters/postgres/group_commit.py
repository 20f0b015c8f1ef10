"""Group commit: the samples of many concurrent requests go to PostgreSQL in one COPY and one commit.

A monitoring server is mostly small concurrent writes. One transaction per request costs several
round trips and a WAL flush each; here whichever request thread finds the writer free writes
everything queued so far, so N waiting requests share one transaction. Every request still returns
only after the transaction holding its samples has committed: a 200 is never answered early.

A group's transaction: the ids of its series (cached; found or created in the transaction otherwise),
one COPY of every value of every sample into a temporary staging table, then one round trip that moves
them into the samples table in arrival order and merges them into the stored rollups (rollup_sql.py).
Rollups are therefore always complete: what a commit stores, every rollup read sees.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2 import errorcodes
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from perfmon.adapters.postgres.driver_errors import violates
from perfmon.adapters.postgres.rollup_sql import merge_into_rollups
from perfmon.adapters.postgres.series_ids import SeriesIds, SeriesKey
from perfmon.adapters.postgres.tables import ROLLUPS_SERIES_FK, SERIES_SESSION_FK
from perfmon.adapters.postgres.transactions import driver_outages_as_storage_unavailable, transaction
from perfmon.domain.errors import StorageUnavailable, UnknownSession
from perfmon.domain.model import Sample

# A table of each connection's own, emptied at every commit: the group's rows, numbered in arrival order.
# Made once per connection; temporary tables write no WAL.
_CREATE_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS perfmon_staging ("
    "seq integer NOT NULL, series_id bigint NOT NULL, taken_at double precision NOT NULL, "
    "value double precision NOT NULL) ON COMMIT DELETE ROWS"
)
# Constant statements: the rows travel as COPY data, never as SQL text.
_COPY_STAGING = "COPY pg_temp.perfmon_staging (seq, series_id, taken_at, value) FROM STDIN"
# The statements that store the staged rows, prepared once per connection: planning the rollups' merge
# took longer than running it for a single sample. The identity of samples.id is drawn row by row in
# the order of the SELECT: the arrival order.
_PREPARED = {
    "perfmon_move_staged": (
        "INSERT INTO samples (series_id, taken_at, value) "
        "SELECT series_id, taken_at, value FROM pg_temp.perfmon_staging ORDER BY seq"
    ),
    "perfmon_roll_up_staged": merge_into_rollups("pg_temp.perfmon_staging"),
}
_FIND_PREPARED = "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)"
# Both in one round trip.
_STORE = "; ".join(f"EXECUTE {name}" for name in _PREPARED)
# Marks a pooled DBAPI connection that has its staging table and prepared statements (SQLAlchemy keeps
# `info` per DBAPI connection, across checkouts).
_READY = "perfmon_staging_ready"
# A group's transaction is tried again, at most this many times in all, after a failure that a new
# attempt avoids: a deadlock, a partition attached while the rows were routed (partitions.py), cached
# series ids that proved wrong.
_ATTEMPTS = 3
_TRANSIENT = {errorcodes.DEADLOCK_DETECTED, errorcodes.CHECK_VIOLATION}


@dataclass
class _Write:
    """One request's samples, and what became of them."""

    token: str
    samples: Sequence[Sample]
    done: bool = False
    error: BaseException | None = None


class GroupCommitWriter:
    """Appends samples through one COPY per group of concurrent requests, all or nothing per request."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._series = SeriesIds()
        self._queue: list[_Write] = []
        self._queue_lock = threading.Lock()
        # Held by the thread writing a group; the others queue behind it and find their write done.
        self._writer_lock = threading.Lock()

    def append(self, token: str, samples: Sequence[Sample]) -> None:
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
            self._store(group)
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
                    self._store([write])
                    self._finish([write], None)
                except Exception as error:
                    self._finish([write], error)
        else:
            self._finish(group, None)

    def _store(self, group: list[_Write]) -> None:
        keys = {
            (write.token, metric) for write in group for sample in write.samples for metric in sample.values
        }
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self._transaction(group, keys)
                return
            except _TryAgain as retry:
                if retry.stale_series:
                    self._series.forget(keys)
                if attempt == _ATTEMPTS:
                    raise retry.error from None

    def _transaction(self, group: list[_Write], keys: set[SeriesKey]) -> None:
        ids, missing = self._series.cached(keys)
        with (
            transaction(self._engine) as connection,
            driver_outages_as_storage_unavailable(connection),
            _driver_cursor(connection) as cursor,
            _transient_errors_tried_again(),
        ):
            info = connection.connection.info
            if not info.get(_READY):
                _prepare(cursor)
            if missing:
                try:
                    created = self._series.find_or_create(cursor, missing)
                except psycopg2.IntegrityError as error:
                    if not violates(error, errorcodes.FOREIGN_KEY_VIOLATION, SERIES_SESSION_FK):
                        raise
                    # A session deleted since the domain found it. Without the driver's error, whose DETAIL
                    # line names the session's token: a credential.
                    raise UnknownSession() from None
                ids.update(created)
            cursor.copy_expert(_COPY_STAGING, io.StringIO(_rows(group, ids)))
            cursor.execute(_STORE)
        # Committed: the staging table and the new series are there for good.
        info[_READY] = True
        if missing:
            self._series.remember({key: ids[key] for key in missing})

    @staticmethod
    def _finish(group: list[_Write], error: BaseException | None) -> None:
        for write in group:
            write.error, write.done = error, True


def _prepare(cursor: Any) -> None:
    """Make the connection's staging table and prepare the statements it lacks. The table lasts once
    committed; prepared statements outlive even a rollback, hence the look first."""
    cursor.execute(_CREATE_STAGING)
    cursor.execute(_FIND_PREPARED, (list(_PREPARED),))
    prepared = {name for (name,) in cursor.fetchall()}
    for name, statement in _PREPARED.items():
        if name not in prepared:
            cursor.execute(f"PREPARE {name} AS {statement}")


class _TryAgain(Exception):
    """The group's transaction failed in a way that another attempt avoids."""

    def __init__(self, error: psycopg2.Error, stale_series: bool) -> None:
        super().__init__("transient failure")
        self.error = error
        self.stale_series = stale_series


@contextmanager
def _transient_errors_tried_again() -> Iterator[None]:
    """Turn the driver's transient failures into _TryAgain, before the outage translation sees them (a
    deadlock is an OperationalError to psycopg2, yet no outage)."""
    try:
        yield
    except psycopg2.Error as error:
        if violates(error, errorcodes.FOREIGN_KEY_VIOLATION, ROLLUPS_SERIES_FK):
            # A cached series deleted behind perfmon's back: look the series up again (and find the
            # session gone, most likely).
            raise _TryAgain(error, stale_series=True) from error
        if error.pgcode in _TRANSIENT:
            raise _TryAgain(error, stale_series=False) from error
        raise


def _rows(group: list[_Write], ids: dict[SeriesKey, int]) -> str:
    """The group's values as COPY text, one line per value, numbered in arrival order: requests in the
    order of the group, samples in the order of the request, metrics in the order of the sample."""
    # repr() is the shortest text that reads back as the same double, so values round-trip exactly.
    lines = []
    seq = 0
    for write in group:
        for sample in write.samples:
            moment = repr(sample.taken_at)
            for metric, value in sample.values.items():
                lines.append(f"{seq}\t{ids[write.token, metric]}\t{moment}\t{value!r}\n")
                seq += 1
    return "".join(lines)


def _driver_cursor(connection: Connection) -> Any:
    """A cursor of the DBAPI connection under SQLAlchemy's, for COPY (psycopg2's copy_expert)."""
    driver = connection.connection.driver_connection
    if driver is None:  # only a connection that was closed under us has none
        raise sa_exc.InvalidRequestError("the pooled connection has no DBAPI connection")
    return driver.cursor()
