"""Group commit: the samples of many concurrent requests go to PostgreSQL in one statement and one commit.

A monitoring server is mostly small concurrent writes. One transaction per request costs several
round trips and a WAL flush each; here whichever request thread finds the writer free writes
everything queued so far, so N waiting requests share one transaction. Every request still returns
only after the transaction holding its samples has committed: a 200 is never answered early.

A group's transaction: the ids of its series (cached; found or created in the transaction otherwise),
then one prepared statement that inserts every value of every sample into the samples table in arrival
order and merges them into the stored rollups (rollup_sql.py), the values passed as three arrays. Rollups
are therefore always complete: what a commit stores, every rollup read sees.

Why not COPY, as before stored rollups: a COPY is a round trip of its own, and the merge would need
another, with the values staged in a temporary table in between; for the single-sample posts that
make most of the traffic, that cost a third more time per write than this one statement, which costs
what the COPY alone did. For batches of 10,000 samples the two are alike.
"""

from __future__ import annotations

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

# The group's values as arrays in arrival order: series ids, times, values. WITH ORDINALITY numbers them,
# and the identity of samples.id is drawn row by row in that order: equal times keep their arrival order.
_STAGED = (
    "SELECT * FROM unnest($1::bigint[], $2::double precision[], $3::double precision[]) WITH ORDINALITY "
    "AS staged (series_id, taken_at, value, seq)"
)
# Constant SQL, no data in it.
_STORE_STATEMENT = (
    f"WITH staged AS MATERIALIZED ({_STAGED}), moved AS ("  # noqa: S608
    "INSERT INTO samples (series_id, taken_at, value) SELECT series_id, taken_at, value FROM staged "
    f"ORDER BY seq) {merge_into_rollups('staged')}"
)
# Prepared once per connection: planning the rollups' merge takes longer than running it for one sample.
_PREPARED = "perfmon_store"
_PREPARE = f"PREPARE {_PREPARED} (text, text, text) AS {_STORE_STATEMENT}"
_IS_PREPARED = "SELECT count(*) FROM pg_prepared_statements WHERE name = %s"
# The values travel as parameters, three array literals: never as SQL text.
_STORE = f"EXECUTE {_PREPARED} (%s, %s, %s)"
# Marks a pooled DBAPI connection that has the statement prepared (SQLAlchemy keeps `info` per DBAPI
# connection, across checkouts).
_READY = "perfmon_store_prepared"
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
    """Appends samples through one statement per group of concurrent requests, all or nothing per request."""

    def __init__(self, engine: Engine, series_ids: SeriesIds) -> None:
        self._engine = engine
        self._series = series_ids
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
                # A prepared statement is no part of the transaction: it outlives a rollback.
                info[_READY] = True
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
            cursor.execute(_STORE, _arrays(group, ids))
        # Committed: the new series are there for good.
        if missing:
            self._series.remember({key: ids[key] for key in missing})

    @staticmethod
    def _finish(group: list[_Write], error: BaseException | None) -> None:
        for write in group:
            write.error, write.done = error, True


def _prepare(cursor: Any) -> None:
    """Prepare the store statement on the cursor's connection unless it is already (a rollback since the
    last PREPARE left it there, but not the mark in `info`)."""
    cursor.execute(_IS_PREPARED, (_PREPARED,))
    if not cursor.fetchone()[0]:
        cursor.execute(_PREPARE)


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


def _arrays(group: list[_Write], ids: dict[SeriesKey, int]) -> tuple[str, str, str]:
    """The group's values as three array literals (series ids, times, values), one element per value in
    arrival order: requests in the order of the group, samples in the order of the request, metrics in
    the order of the sample."""
    id_texts = {key: str(series_id) for key, series_id in ids.items()}
    series: list[str] = []
    moments: list[str] = []
    values: list[str] = []
    for write in group:
        token = write.token
        for sample in write.samples:
            # repr() is the shortest text that reads back as the same double, -0.0 and 5e-324 included.
            moment = repr(sample.taken_at)
            for metric, value in sample.values.items():
                series.append(id_texts[token, metric])
                moments.append(moment)
                values.append(repr(value))
    return _array(series), _array(moments), _array(values)


def _array(elements: list[str]) -> str:
    return "{" + ",".join(elements) + "}"


def _driver_cursor(connection: Connection) -> Any:
    """A cursor of the DBAPI connection under SQLAlchemy's: the write runs on psycopg2's own cursor, whose
    errors carry the SQLSTATE and constraint that decide what a failure means."""
    driver = connection.connection.driver_connection
    if driver is None:  # only a connection that was closed under us has none
        raise sa_exc.InvalidRequestError("the pooled connection has no DBAPI connection")
    return driver.cursor()
