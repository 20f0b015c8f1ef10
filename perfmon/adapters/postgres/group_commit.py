"""Group commit: the samples of many concurrent requests go to PostgreSQL in one statement and one commit.

A monitoring server is mostly small concurrent writes. One transaction per request costs several
round trips and a WAL flush each; here whichever request thread finds the writer free writes
everything queued so far, so N waiting requests share one transaction. Every request still returns
only after the transaction holding its samples has committed: a 200 is never answered early.

A group's transaction: the ids of its series (cached; found or created in the transaction otherwise,
where a request that would pass a session's 256 series is refused alone: series_ids.py), then one
prepared statement that inserts every value of every sample into the samples table in arrival order,
merges them into the stored rollups (rollup_sql.py) and moves the status of each session written
(SessionStatus: its row's `seen` and `first`, each series row's latest sample), the values passed as
arrays. Rollups and status are therefore always complete: what a commit stores, every read sees.

Why not COPY, as before stored rollups: a COPY is a round trip of its own, and the merge would need
another, with the values staged in a temporary table in between; for the single-sample posts that
make most of the traffic, that cost a third more time per write than this one statement, which costs
what the COPY alone did. For batches of 10,000 samples the two are alike.
"""

from __future__ import annotations

import math
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
from perfmon.domain.errors import PerfmonError, StorageUnavailable, UnknownSession
from perfmon.domain.model import Sample

# The group's values as arrays in arrival order: series ids, times, values. WITH ORDINALITY numbers them,
# and the identity of samples.id is drawn row by row in that order: equal times keep their arrival order.
_STAGED = (
    "SELECT * FROM unnest($1::bigint[], $2::double precision[], $3::double precision[]) WITH ORDINALITY "
    "AS staged (series_id, taken_at, value, seq)"
)
# Each series' latest sample (model.moved_status): the greatest time, of equal times the greatest id, the
# order reads list samples in; it replaces the stored one only if it comes after it in that order, which
# the update compares again on the row a concurrent writer of another process may have just committed.
_LATEST = (
    "newest AS (SELECT DISTINCT ON (series_id) series_id, taken_at, id, value FROM moved "
    "ORDER BY series_id, taken_at DESC, id DESC), "
    "latest AS (UPDATE series SET latest_value = newest.value, latest_at = newest.taken_at, "
    "latest_id = newest.id FROM newest WHERE series.id = newest.series_id "
    "AND series.session_token = ANY($4::uuid[]) "
    "AND (series.latest_at IS NULL OR (newest.taken_at, newest.id) > (series.latest_at, series.latest_id)))"
)
# Each session's `first` and `seen`, from arrays by token (sorted: sessions' rows are locked in token
# order, as series_ids.claim locks them) of the sessions whose status moves (writes with a receive time;
# the latest-sample update above is limited to their series too): the earliest time of the group's
# samples, and the server's clock at the write. least() passes over a NULL `first`.
_STATUS = (
    "status AS (UPDATE sessions SET first = least(sessions.first, moving.first), "
    "seen = moving.seen "
    "FROM unnest($4::uuid[], $5::double precision[], $6::double precision[]) AS moving (token, first, seen) "
    "WHERE sessions.token = moving.token)"
)
# Constant SQL, no data in it.
_STORE_STATEMENT = (
    f"WITH staged AS MATERIALIZED ({_STAGED}), moved AS ("  # noqa: S608
    "INSERT INTO samples (series_id, taken_at, value) SELECT series_id, taken_at, value FROM staged "
    f"ORDER BY seq RETURNING series_id, taken_at, id, value), {_LATEST}, {_STATUS} "
    f"{merge_into_rollups('staged')}"
)
# Prepared once per connection: planning the rollups' merge takes longer than running it for one sample.
# The name changes with the statement's parameters.
_PREPARED = "perfmon_store_status"
_PREPARE = f"PREPARE {_PREPARED} (text, text, text, text, text, text) AS {_STORE_STATEMENT}"
_IS_PREPARED = "SELECT count(*) FROM pg_prepared_statements WHERE name = %s"
# The values travel as parameters, six array literals: never as SQL text.
_STORE = f"EXECUTE {_PREPARED} (%s, %s, %s, %s, %s, %s)"
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
    # The server's clock when the request came (seconds since the epoch), None for an import.
    received_at: float | None
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

    def append(self, token: str, samples: Sequence[Sample], received_at: float | None) -> None:
        """Return once the samples are committed, and the session's status moved with them
        (SampleRepository.append); raise what made their transaction fail, or TooManySeries when they
        would give the session more than 256 series (nothing of them stored)."""
        write = _Write(token, samples, received_at)
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
            refused = self._store(group)
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
                    self._finish([write], self._store([write]).get(0))
                except Exception as error:
                    self._finish([write], error)
        else:
            # The requests refused (too many series, a session gone) get their error; the others are stored.
            for index, write in enumerate(group):
                self._finish([write], refused.get(index))

    def _store(self, group: list[_Write]) -> dict[int, PerfmonError]:
        """Commit the group's writes but those refused, which it returns by their index in the group."""
        metrics = [{metric for sample in write.samples for metric in sample.values} for write in group]
        keys = {(write.token, name) for write, names in zip(group, metrics, strict=True) for name in names}
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return self._transaction(group, metrics, keys)
            except _TryAgain as retry:
                if retry.stale_series:
                    self._series.forget(keys)
                if attempt == _ATTEMPTS:
                    raise retry.error from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _transaction(
        self, group: list[_Write], metrics: list[set[str]], keys: set[SeriesKey]
    ) -> dict[int, PerfmonError]:
        ids, missing = self._series.cached(keys)
        refused: dict[int, PerfmonError] = {}
        claimed: dict[SeriesKey, int] = {}
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
                # Only a request with a series not cached may add one: those go through the limit.
                unknown = set(missing)
                claiming = [
                    index
                    for index, write in enumerate(group)
                    if any((write.token, metric) in unknown for metric in metrics[index])
                ]
                try:
                    claimed, refusals = self._series.claim(
                        cursor, [(group[index].token, metrics[index]) for index in claiming]
                    )
                except psycopg2.IntegrityError as error:
                    if not violates(error, errorcodes.FOREIGN_KEY_VIOLATION, SERIES_SESSION_FK):
                        raise
                    # A session deleted since the domain found it. Without the driver's error, whose DETAIL
                    # line names the session's token: a credential.
                    raise UnknownSession() from None
                refused = {claiming[position]: error for position, error in refusals.items()}
                ids.update(claimed)
            admitted = [write for index, write in enumerate(group) if index not in refused]
            if admitted:
                cursor.execute(_STORE, _parameters(admitted, ids))
        # Committed: the series found or created are there for good.
        if claimed:
            self._series.remember(claimed)
        return refused

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


def _parameters(group: list[_Write], ids: dict[SeriesKey, int]) -> tuple[str, str, str, str, str, str]:
    """The store statement's six array literals. First the group's values (series ids, times, values), one
    element per value in arrival order: requests in the order of the group, samples in the order of the
    request, metrics in the order of the sample. Then per session written, in token order: its token, the
    earliest time of its samples, and the greatest receive time of its requests (the group's requests
    came at once, so the greatest is the latest). Only the sessions of writes that tell a receive time
    are there: the others' status does not move (SampleRepository.append)."""
    id_texts = {key: str(series_id) for key, series_id in ids.items()}
    series: list[str] = []
    moments: list[str] = []
    values: list[str] = []
    earliest: dict[str, float] = {}
    seen: dict[str, float | None] = {}
    for write in group:
        token = write.token
        first = earliest.get(token, math.inf)
        for sample in write.samples:
            first = min(first, sample.taken_at)
            # repr() is the shortest text that reads back as the same double, -0.0 and 5e-324 included.
            moment = repr(sample.taken_at)
            for metric, value in sample.values.items():
                series.append(id_texts[token, metric])
                moments.append(moment)
                values.append(repr(value))
        earliest[token] = first
        known, received = seen.get(token), write.received_at
        seen[token] = known if received is None or (known is not None and known >= received) else received
    tokens = sorted(token for token in earliest if seen[token] is not None)
    return (
        _array(series),
        _array(moments),
        _array(values),
        _array(tokens),
        _array([repr(earliest[token]) for token in tokens]),
        _array(["NULL" if seen[token] is None else repr(seen[token]) for token in tokens]),
    )


def _array(elements: list[str]) -> str:
    return "{" + ",".join(elements) + "}"


def _driver_cursor(connection: Connection) -> Any:
    """A cursor of the DBAPI connection under SQLAlchemy's: the write runs on psycopg2's own cursor, whose
    errors carry the SQLSTATE and constraint that decide what a failure means."""
    driver = connection.connection.driver_connection
    if driver is None:  # only a connection that was closed under us has none
        raise sa_exc.InvalidRequestError("the pooled connection has no DBAPI connection")
    return driver.cursor()
