"""Group commit: the samples of many concurrent requests go to PostgreSQL in one statement and one commit.

A monitoring server is mostly small concurrent writes. One transaction per request costs a round trip and
a WAL flush each; here a request that finds every writer busy queues, and the next writer free writes the
whole queue, so N waiting requests share one transaction. WRITERS groups are written at once, each on a
connection of its own: while one group's commit waits for its WAL flush, the next is sent on another
connection. Every request still returns only after the transaction holding its samples has committed: a
200 is never answered early.

A group's transaction: the ids of its series (cached; found or created in the transaction otherwise,
where a request that would pass a session's 256 series is refused alone: series_ids.py), then one
prepared statement that inserts every value of every sample into the samples table in arrival order,
merges them into the stored rollups (rollup_sql.py: summed per bucket, or, when no series has two of
them, each value as a partial bucket of its own) and moves the status of each session written
(SessionStatus: its row's `seen` and `first`, each series row's latest sample), the values passed as
arrays. Rollups and status are therefore always complete: what a commit stores, every read sees.

When every series is cached (nearly always), that statement is the transaction: sent alone on a
connection in autocommit, it commits before the server answers it, so a group costs one round trip. The
writers' connections are their own, outside the pool, whose checkout pings the server (another round trip
per group): a connection the server has closed (a restart, a killed backend) has its closing message
waiting to be read, and is replaced before it is used (_Connection.cursor).

Lock order. Groups of several writers, in this process and others, touch the same rows at once; each takes
its row locks in one order, so that none waits for another that waits for it: first the rows of the
sessions whose status moves and, in a group that creates series, of all its sessions (series_ids.claim),
in token order; then rollup rows in key order (rollup_sql.py); then the series rows of the sessions
already locked. Two writers of one session's status are thereby one after the other; a deadlock, should
one come all the same, is tried again.

Why not COPY, as before stored rollups: a COPY is a round trip of its own, and the merge would need
another, with the values staged in a temporary table in between; for the single-sample posts that
make most of the traffic, that cost a third more time per write than this one statement, which costs
what the COPY alone did. For batches of 10,000 samples the two are alike.
"""

from __future__ import annotations

import contextlib
import logging
import math
import select
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions
from psycopg2 import errorcodes
from sqlalchemy import Engine

from perfmon.adapters.postgres.driver_errors import violates
from perfmon.adapters.postgres.engine import connect_outside_the_pool
from perfmon.adapters.postgres.rollup_sql import insert_each_into_rollups, merge_into_rollups, value_total
from perfmon.adapters.postgres.series_ids import SeriesIds, SeriesKey
from perfmon.adapters.postgres.tables import ROLLUPS_SERIES_FK, SERIES_SESSION_FK
from perfmon.adapters.postgres.transactions import driver_outages_as_storage_unavailable
from perfmon.domain.errors import PerfmonError, StorageUnavailable, UnknownSession
from perfmon.domain.model import Sample

logger = logging.getLogger(__name__)

# Groups written at once, each on its own connection (besides the pool's). Each group costs the database
# a share of CPU beside its samples' (as much as some 5 single-metric samples), so more writers, making
# smaller groups, cost CPU where it is short and gain where commits wait on the disk. Issue 14, 2 cores,
# 8 threads: 3 writers served `post` as 2 did (1.04x side by side) with more database CPU per write.
WRITERS = 2

# The rows of the sessions whose status moves ($4, sorted), locked before anything else (the module's
# docstring: lock order); `staged` waits for them, and every other part of the statement reads `staged`.
_LOCKED = (
    "locked AS MATERIALIZED (SELECT token FROM sessions WHERE token = ANY($4::uuid[]) ORDER BY token "
    "FOR NO KEY UPDATE)"
)
# The group's values as arrays in arrival order: series ids, times, values. WITH ORDINALITY numbers them,
# and the identity of samples.id is drawn row by row in that order: equal times keep their arrival order.
_VALUES = "$1::bigint[], $2::double precision[], $3::double precision[]"
_INSERT = (
    "INSERT INTO samples (series_id, taken_at, value) "
    "SELECT series_id, taken_at, value FROM staged ORDER BY seq"
)
# Each series' latest sample (model.moved_status): the greatest time, of equal times the greatest id, the
# order reads list samples in; it replaces the stored one only if it comes after it in that order, which
# the update compares again on the row a concurrent writer of another process may have just committed.
# Only the series of sessions whose status moves ($7, their ids: each series row then found by its key;
# the sessions' tokens were planned as a scan of every series, or a join that read `newest` once a row).
_LATEST = (
    "newest AS (SELECT DISTINCT ON (series_id) series_id, taken_at, id, value FROM moved "
    "WHERE series_id = ANY($7::bigint[]) ORDER BY series_id, taken_at DESC, id DESC), "
    "latest AS (UPDATE series SET latest_value = newest.value, latest_at = newest.taken_at, "
    "latest_id = newest.id FROM newest WHERE series.id = newest.series_id "
    "AND (series.latest_at IS NULL OR (newest.taken_at, newest.id) > (series.latest_at, series.latest_id)))"
)
# Each session's `first` and `seen`, from arrays by token (sorted, and locked by `locked`) of the sessions
# whose status moves (writes with a receive time; the latest-sample update above is limited to their
# series too): the earliest time of the group's samples, and the server's clock at the write. least()
# passes over a NULL `first`. The rows are found through `= ANY`, by the key, whatever the statistics
# were when the plan was made (a join alone was planned as a scan of every session in a new database).
_STATUS = (
    "status AS (UPDATE sessions SET first = least(sessions.first, moving.first), "
    "seen = moving.seen "
    "FROM unnest($4::uuid[], $5::double precision[], $6::double precision[]) AS moving (token, first, seen) "
    "WHERE sessions.token = moving.token AND sessions.token = ANY($4::uuid[]))"
)


def _store_statement(status: bool, each: bool) -> str:
    """The statement that stores a group: with the status of its sessions (parameters $4 to $7) or for
    a group that moves none (the original client's posts, imports: a third cheaper to run); merging
    the group's samples into the rollups, or, when no two of them are of one series (`each`: most
    groups), adding each as its own partial bucket (a third cheaper again). Constant SQL, no data."""
    arrays, columns = _VALUES, "series_id, taken_at, value"
    if each:
        # Each value's exact total (rollup_sql.value_total), as two arrays after the statement's others.
        after = 8 if status else 4
        arrays += f", ${after}::numeric[], ${after + 1}::integer[]"
        columns += ", mantissa, shift"
    staged = f"SELECT * FROM unnest({arrays}) WITH ORDINALITY AS staged ({columns}, seq)"  # noqa: S608
    rollups = insert_each_into_rollups("staged") if each else merge_into_rollups("staged")
    if not status:
        return f"WITH staged AS MATERIALIZED ({staged}), moved AS ({_INSERT}) {rollups}"
    return (
        f"WITH {_LOCKED}, staged AS MATERIALIZED ({staged} WHERE (SELECT count(*) FROM locked) >= 0), "  # noqa: S608
        f"moved AS ({_INSERT} RETURNING series_id, taken_at, id, value), {_LATEST}, {_STATUS} {rollups}"
    )


# The statements by (status, each): their names, and how many parameters they take (array literals).
_STATEMENTS = {
    (False, False): ("perfmon_store", 3),
    (False, True): ("perfmon_store_each", 5),
    (True, False): ("perfmon_store_status", 7),
    (True, True): ("perfmon_store_status_each", 9),
}
# Prepared once per connection, all in one round trip: planning the rollups' merge takes longer than
# running it for one sample. A name changes with its statement's parameters.
_PREPARE = "; ".join(
    f"PREPARE {name} ({', '.join(['text'] * count)}) AS {_store_statement(*kind)}"
    for kind, (name, count) in _STATEMENTS.items()
)
# The values travel as parameters: never as SQL text.
_EXECUTE = {
    kind: f"EXECUTE {name} ({', '.join(['%s'] * count)})" for kind, (name, count) in _STATEMENTS.items()
}
# A group's transaction is tried again, at most this many times in all, after a failure that a new
# attempt avoids: a deadlock, a partition attached while the rows were routed (partitions.py), cached
# series ids that proved wrong.
_ATTEMPTS = 3
_TRANSIENT = {errorcodes.DEADLOCK_DETECTED, errorcodes.CHECK_VIOLATION}


@dataclass(eq=False)
class _Write:
    """One request's samples, and what became of them."""

    token: str
    samples: Sequence[Sample]
    # The server's clock when the request came (seconds since the epoch), None for an import.
    received_at: float | None
    done: bool = False
    error: BaseException | None = None
    # Held (locked) while the request waits in the queue: released when its write is done, or when a
    # writer hands it a connection (`lead`) to write the group it heads.
    wake: threading.Lock | None = None
    lead: tuple[_Connection, list[_Write]] | None = None


class GroupCommitWriter:
    """Appends samples through one statement per group of concurrent requests, all or nothing per request,
    with at most `writers` groups (and connections of their own) at once."""

    def __init__(self, engine: Engine, series_ids: SeriesIds, writers: int = WRITERS) -> None:
        self._series = series_ids
        self._lock = threading.Lock()
        # Guarded by _lock: the writes waiting for a connection, in arrival order, and the connections no
        # group holds. One of them is always empty: a connection freed while writes wait takes them.
        self._queue: list[_Write] = []
        self._idle = [_Connection(engine) for _ in range(writers)]

    def append(self, token: str, samples: Sequence[Sample], received_at: float | None) -> None:
        """Return once the samples are committed, and the session's status moved with them
        (SampleRepository.append); raise what made their transaction fail, or TooManySeries when they
        would give the session more than 256 series (nothing of them stored)."""
        write = _Write(token, samples, received_at)
        with self._lock:
            if self._idle:
                lead: tuple[_Connection, list[_Write]] | None = (self._idle.pop(), [write])
            else:
                write.wake = threading.Lock()
                write.wake.acquire()
                self._queue.append(write)
                lead = None
        if write.wake is not None:
            write.wake.acquire()
            # Taken out of the write, which the group it leads holds: no reference cycle to collect.
            lead, write.lead = write.lead, None
        if lead is not None:
            self._write(*lead)
        if write.error is not None:
            raise write.error

    def _write(self, connection: _Connection, group: list[_Write]) -> None:
        """Commit the group (its first write's thread runs this), then hand the connection to the writes
        queued meanwhile, then wake the group's other requests."""
        try:
            self._commit(connection, group)
        finally:
            self._hand_over(connection)
            for write in group:
                if not write.done:  # only when the commit was interrupted (a BaseException)
                    self._finish([write], StorageUnavailable("the write was interrupted"))
            for write in group[1:]:
                if write.wake is not None:
                    write.wake.release()

    def _hand_over(self, connection: _Connection) -> None:
        with self._lock:
            if not self._queue:
                self._idle.append(connection)
                return
            group, self._queue = self._queue, []
        leader = group[0]
        leader.lead = (connection, group)
        if leader.wake is not None:
            leader.wake.release()

    def _commit(self, connection: _Connection, group: list[_Write]) -> None:
        try:
            refused = self._store(connection, group)
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
                    self._finish([write], self._store(connection, [write]).get(0))
                except Exception as error:
                    self._finish([write], error)
        else:
            # The requests refused (too many series, a session gone) get their error; the others are stored.
            for index, write in enumerate(group):
                self._finish([write], refused.get(index))

    def _store(self, connection: _Connection, group: list[_Write]) -> dict[int, PerfmonError]:
        """Commit the group's writes but those refused, which it returns by their index in the group."""
        metrics = [{metric for sample in write.samples for metric in sample.values} for write in group]
        keys = {(write.token, name) for write, names in zip(group, metrics, strict=True) for name in names}
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return self._transaction(connection, group, metrics, keys)
            except _TryAgain as retry:
                if retry.stale_series:
                    self._series.forget(keys)
                if attempt == _ATTEMPTS:
                    raise retry.error from None
                # By its SQLSTATE's name alone: the driver's message quotes rows (session tokens).
                logger.warning(
                    "Group commit of %d requests failed (%s), trying again",
                    len(group),
                    errorcodes.lookup(retry.error.pgcode or "") if retry.error.pgcode else "?",
                )
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _transaction(
        self, connection: _Connection, group: list[_Write], metrics: list[set[str]], keys: set[SeriesKey]
    ) -> dict[int, PerfmonError]:
        ids, missing = self._series.cached(keys)
        refused: dict[int, PerfmonError] = {}
        claimed: dict[SeriesKey, int] = {}
        with driver_outages_as_storage_unavailable(connection.drop), _transient_errors_tried_again():
            cursor = connection.cursor()
            if not missing:
                # One statement, its own transaction: committed when the server answers it.
                cursor.execute(*_statement(group, ids))
            else:
                with connection.transaction(cursor):
                    claimed, refused = self._claim(cursor, group, metrics, missing)
                    ids.update(claimed)
                    admitted = [write for index, write in enumerate(group) if index not in refused]
                    if admitted:
                        cursor.execute(*_statement(admitted, ids))
        # Committed: the series found or created are there for good.
        if claimed:
            self._series.remember(claimed)
        return refused

    def _claim(
        self,
        cursor: psycopg2.extensions.cursor,
        group: list[_Write],
        metrics: list[set[str]],
        missing: list[SeriesKey],
    ) -> tuple[dict[SeriesKey, int], dict[int, PerfmonError]]:
        """The ids of the series of the requests with a series not cached (only those may add one, so
        only those go through the limit), and the requests refused by their index in the group. Every
        session of the group has its row locked (lock order: the module's docstring)."""
        unknown = set(missing)
        claiming = [
            index
            for index, write in enumerate(group)
            if any((write.token, metric) in unknown for metric in metrics[index])
        ]
        try:
            claimed, refusals = self._series.claim(
                cursor,
                [(group[index].token, metrics[index]) for index in claiming],
                also_locked=[write.token for write in group],
            )
        except psycopg2.IntegrityError as error:
            if not violates(error, errorcodes.FOREIGN_KEY_VIOLATION, SERIES_SESSION_FK):
                raise
            # A session deleted since the domain found it. Without the driver's error, whose DETAIL line
            # names the session's token: a credential.
            raise UnknownSession() from None
        return claimed, {claiming[position]: error for position, error in refusals.items()}

    @staticmethod
    def _finish(group: list[_Write], error: BaseException | None) -> None:
        for write in group:
            write.error, write.done = error, True


class _Connection:
    """A writer's own connection to the database, in autocommit, with the store statement prepared: made
    when first used, made again after the server closed it or after it was lost (drop())."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._driver: psycopg2.extensions.connection | None = None
        # Watches the driver's socket for input (poll(2): any descriptor number, where select's stop at 1024).
        self._input = select.poll()

    def cursor(self) -> psycopg2.extensions.cursor:
        """A cursor of the connection, made (and its statement prepared) if there is none or if the server
        has closed it. Raises psycopg2.OperationalError when the database cannot be reached."""
        driver = self._driver
        if driver is not None and (driver.closed or self._input.poll(0)):
            # An idle connection has nothing to read unless the server said goodbye (a restart, a killed
            # backend, idle_session_timeout): its FATAL message and end of stream wait there.
            self.drop()
            driver = None
        if driver is None:
            driver = connect_outside_the_pool(self._engine)
            try:
                driver.autocommit = True
                with driver.cursor() as cursor:
                    # Prepared once per connection: planning the merge takes longer than running it.
                    cursor.execute(_PREPARE)
            except BaseException:
                driver.close()
                raise
            self._driver = driver
            self._input = select.poll()
            self._input.register(driver.fileno(), select.POLLIN)
        return driver.cursor()

    @contextmanager
    def transaction(self, cursor: psycopg2.extensions.cursor) -> Iterator[None]:
        """A transaction of several statements on the cursor: committed when the block ends, rolled back
        when it raises (the connection dropped if even that fails)."""
        cursor.execute("BEGIN")
        try:
            yield
        except BaseException:
            try:
                cursor.execute("ROLLBACK")
            except psycopg2.Error:
                self.drop()
            raise
        cursor.execute("COMMIT")

    def drop(self) -> None:
        """Close the connection (if it is still open): the next cursor() makes another."""
        driver, self._driver = self._driver, None
        if driver is not None:
            with contextlib.suppress(psycopg2.Error):
                driver.close()


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


def _statement(group: list[_Write], ids: dict[SeriesKey, int]) -> tuple[str, tuple[str, ...]]:
    """The store statement of the group (_store_statement) and its parameters, array literals. First the
    group's values (series ids, times, values), one element per value in arrival order: requests in the
    order of the group, samples in the order of the request, metrics in the order of the sample. Then,
    when the status of some session moves, per such session, in token order: its token, the earliest
    time of its samples, and the greatest receive time of its requests (the group's requests came at
    once, so the greatest is the latest); and the ids of their series, one a value. Only the sessions of
    writes that tell a receive time are there: the others' status does not move
    (SampleRepository.append). Last, when no series has two values, each value's exact total."""
    seen: dict[str, float] = {}
    for write in group:
        received = write.received_at
        if received is not None and received > seen.get(write.token, -math.inf):
            seen[write.token] = received
    id_texts = {key: str(series_id) for key, series_id in ids.items()}
    series: list[str] = []
    moments: list[str] = []
    values: list[str] = []
    numbers: list[float] = []
    moving: list[str] = []
    earliest: dict[str, float] = {}
    for write in group:
        token = write.token
        first = earliest.get(token, math.inf)
        start = len(series)
        for sample in write.samples:
            first = min(first, sample.taken_at)
            # repr() is the shortest text that reads back as the same double, -0.0 and 5e-324 included.
            moment = repr(sample.taken_at)
            for metric, value in sample.values.items():
                series.append(id_texts[token, metric])
                moments.append(moment)
                values.append(repr(value))
                # float(): an int (the model allows them) as the double the database makes of its text.
                numbers.append(float(value))
        earliest[token] = first
        if token in seen:
            moving += series[start:]
    parameters = [_array(series), _array(moments), _array(values)]
    if seen:
        tokens = sorted(seen)
        parameters += [
            _array(tokens),
            _array([repr(earliest[token]) for token in tokens]),
            _array([repr(seen[token]) for token in tokens]),
            _array(moving),
        ]
    each = len(set(series)) == len(series)
    if each:
        totals = [value_total(number) for number in numbers]
        parameters += [
            _array([str(mantissa) for mantissa, _ in totals]),
            _array([str(shift) for _, shift in totals]),
        ]
    return _EXECUTE[bool(seen), each], tuple(parameters)


def _array(elements: list[str]) -> str:
    return "{" + ",".join(elements) + "}"
