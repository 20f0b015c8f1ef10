"""PostgreSQL's group commit with several writers in one process: groups written at once on connections of
their own, touching the same sessions' rows, keep every guarantee of one writer (every sample stored once,
status and rollups exact, one request's failure its own), take their row locks in one order, and replace a
connection the server closed without failing a request."""

from __future__ import annotations

import logging
import os
import random
import resource
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, make_url, text

from perfmon.adapters.postgres.group_commit import GroupCommitWriter
from perfmon.adapters.postgres.repositories import (
    PostgresSampleRepository,
    PostgresSessionRepository,
    PostgresUserRepository,
)
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.model import EVERYTHING, Point, Sample, Session, User, Username
from perfmon.domain.rollups import ROLLUP_WIDTHS, RollupBucket, rollup
from tests.postgres_server import empty_tables, terminate_backends
from tests.writers import writers_busy

pytestmark = pytest.mark.postgres

NOON = 1_699_963_200.0
DAY = 86_400.0
WAIT = 30  # seconds: a bound on every wait of these tests, never reached unless something hangs


@pytest.fixture
def engine(postgres_engine: Engine) -> Engine:
    empty_tables(postgres_engine)
    return postgres_engine


def _sessions(engine: Engine, count: int, host: str | None = "web-1") -> list[str]:
    """New sessions of alice on the host, in token order."""
    if PostgresUserRepository(engine).get(Username("alice")) is None:
        PostgresUserRepository(engine).add(User(Username("alice"), "hash"))
    tokens = sorted(str(uuid.uuid4()) for _ in range(count))
    for token in tokens:
        PostgresSessionRepository(engine).add(Session(token, Username("alice"), 1.0, host))
    return tokens


def _opened_connections(writer: GroupCommitWriter) -> int:
    """How many connections the writer has made: a second only while a first was busy with a group."""
    return sum(connection._driver is not None for connection in writer._idle)


# --- many threads, a few sessions --------------------------------------------------------------------------


def test_many_threads_writing_to_a_few_sessions_store_each_sample_once_with_exact_status_and_rollups(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    hosted = _sessions(engine, 3)
    plain = _sessions(engine, 1, host=None)
    repository = PostgresSampleRepository(engine)
    # Per session and metric, the (time, value) of every sample written; per session, its receive times.
    written: dict[tuple[str, str], list[tuple[float, float]]] = {}
    received: dict[str, list[float]] = {token: [] for token in hosted}
    errors: list[BaseException] = []
    bookkeeping = threading.Lock()
    start = threading.Barrier(16)

    def write(thread: int) -> None:
        chooser = random.Random(thread)
        try:
            start.wait(timeout=WAIT)
            for index in range(25):
                token = chooser.choice(hosted + plain)
                # Three days, so that groups of one session meet in some buckets and not in others; a new
                # metric now and then, so that series are created (and the session's row locked) midway.
                metrics = ["cpu", "mem", "temp"][: chooser.randint(1, 3)]
                if index % 8 == thread % 8:
                    metrics.append(f"new{thread}")
                batch = [
                    Sample(
                        NOON + DAY * chooser.randint(0, 2) + chooser.uniform(0, 7200),
                        {metric: thread * 1000 + index + part / 10 for metric in metrics},
                    )
                    for part in range(chooser.randint(1, 3))
                ]
                received_at = NOON + 10 * DAY + thread * 100 + index if token in hosted else None
                repository.append(token, batch, received_at)
                with bookkeeping:
                    for sample in batch:
                        for metric, value in sample.values.items():
                            written.setdefault((token, metric), []).append((sample.taken_at, value))
                    if received_at is not None:
                        received[token].append(received_at)
        except BaseException as error:  # reported in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(thread,)) for thread in range(16)]
    with caplog.at_level(logging.WARNING, logger="perfmon.adapters.postgres.group_commit"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors
    # The premise: groups were written at once (a second connection is made only while another is busy).
    assert _opened_connections(repository._writer) > 1

    for (token, metric), samples in written.items():
        stored = repository.between(token, metric, EVERYTHING)
        assert sorted(zip(stored.taken_at, stored.values, strict=True)) == sorted(samples)
        for width in ROLLUP_WIDTHS:
            assert repository.rollups(token, metric, width, EVERYTHING) == rollup(stored, width)
    statuses = repository.status(hosted + plain)
    assert set(statuses) == set(hosted)
    for token in hosted:
        status = statuses[token]
        metrics = {metric for (owner, metric) in written if owner == token}
        # The latest sample is the last that reads list (the greatest time, of equal times the greatest id).
        assert status.latest == {
            metric: repository.between(token, metric, EVERYTHING)[-1] for metric in metrics
        }
        assert status.first == min(
            moment for (owner, _), samples in written.items() if owner == token for moment, _ in samples
        )
        assert status.seen in received[token]
    # Every group took its row locks in one order: the server never had to break a deadlock.
    assert not [record for record in caplog.records if "DEADLOCK" in record.getMessage()]


# --- rollups: a group's samples merged, or each its own partial bucket ----------------------------------

EDGE_VALUES = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
]
# Ints too, as the model allows them: 2**53 + 1 is no double, and is stored as the one its text reads as.
numbers = st.one_of(
    st.sampled_from(EDGE_VALUES),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**60), 2**60),
)
# Few moments, so that the writes meet in buckets of every width.
moments = st.sampled_from([0.0, 59.5, NOON, NOON + 30.0, NOON + 3599.0, NOON + DAY])


def _exact(buckets: list[RollupBucket]) -> list[tuple[object, ...]]:
    """The buckets with every float as its exact hex text: -0.0 and 0.0 differ."""
    return [
        tuple(field.hex() if isinstance(field, float) else field for field in bucket) for bucket in buckets
    ]


@settings(max_examples=40, deadline=None)
@given(writes=st.lists(st.lists(st.tuples(numbers, moments), min_size=1, max_size=3), min_size=1, max_size=8))
def test_rollups_are_exact_whether_a_write_merges_its_samples_or_adds_each_alone(
    postgres_engine: Engine, writes: list[list[tuple[float, float]]]
) -> None:
    # A session of its own per example: the database is shared by the examples. A write of one sample
    # adds it as its own partial bucket; a write of several to one series merges them first.
    (token,) = _sessions(postgres_engine, 1)
    repository = PostgresSampleRepository(postgres_engine)
    for batch in writes:
        repository.append(token, [Sample(moment, {"cpu": value}) for value, moment in batch], None)
    stored = repository.between(token, "cpu", EVERYTHING)
    assert len(stored) == sum(map(len, writes))
    for width in ROLLUP_WIDTHS:
        assert _exact(repository.rollups(token, "cpu", width, EVERYTHING)) == _exact(rollup(stored, width))


# --- one writer waits, the others write ---------------------------------------------------------------------


@contextmanager
def _row_locked(url: str, token: str) -> Iterator[None]:
    """The session's row locked by another transaction (as a writer of another process, or an operator),
    on a connection of its own, closed at the end (which ends the transaction)."""
    connection = psycopg2.connect(
        make_url(url).render_as_string(hide_password=False).replace("+psycopg2", "")
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM sessions WHERE token = %s FOR UPDATE", (token,))
        yield
    finally:
        connection.close()


def _wait_for_queue(writer: GroupCommitWriter, length: int) -> None:
    """Wait until that many appends are queued (in the order they came)."""
    deadline = time.monotonic() + WAIT
    while len(writer._queue) < length:
        assert time.monotonic() < deadline, "the appends never queued"
        time.sleep(0.001)


def _wait_until_a_writer_waits_for_a_lock(engine: Engine) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + WAIT
    while True:
        with engine.connect() as connection:
            if connection.execute(query).scalar_one():
                return
        assert time.monotonic() < deadline, "no writer ever waited for the lock"
        time.sleep(0.01)


class _InThread:
    """A call run in a thread of its own: what it returned or raised, once it is done."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self.done = threading.Event()

        def run() -> None:
            try:
                call()
            except BaseException as error:  # reported by the test
                self.error = error
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def wait(self) -> BaseException | None:
        assert self.done.wait(WAIT), "the call never returned"
        self.thread.join()
        return self.error


class _TextRefused(float):
    """A number whose text the database refuses: it stands for a value that the database cannot store."""

    def __repr__(self) -> str:
        return "not a number"


def test_while_one_writer_waits_for_a_locked_session_the_others_write_and_fail_alone(
    engine: Engine, postgres_url: str
) -> None:
    waiting, other = _sessions(engine, 2)
    repository = PostgresSampleRepository(engine)
    writer = repository._writer
    with _row_locked(postgres_url, waiting):
        held = _InThread(lambda: repository.append(waiting, [Sample(NOON, {"cpu": 1.0})], NOON + 1))
        _wait_until_a_writer_waits_for_a_lock(engine)
        # Meanwhile another writer commits a group of three requests, one of which the database refuses.
        batches = [
            [Sample(NOON + 2, {"cpu": 2.0})],
            [Sample(NOON, {"cpu": _TextRefused(1.0)})],
            [Sample(NOON + 3, {"cpu": 3.0})],
        ]
        appends: list[_InThread] = []
        with writers_busy(writer):
            for batch in batches:
                appends.append(_InThread(lambda batch=batch: repository.append(other, batch, NOON + 2)))
                _wait_for_queue(writer, len(appends))
        outcomes = [append.wait() for append in appends]
        assert not held.done.is_set()
    assert held.wait() is None

    assert (outcomes[0], outcomes[2]) == (None, None)
    assert isinstance(outcomes[1], psycopg2.DataError)
    assert repository.between(other, "cpu", EVERYTHING) == [Point(2.0, NOON + 2), Point(3.0, NOON + 3)]
    assert repository.between(waiting, "cpu", EVERYTHING) == [Point(1.0, NOON)]
    statuses = repository.status([waiting, other])
    assert (statuses[waiting].seen, statuses[other].seen) == (NOON + 1, NOON + 2)


# --- lock order -------------------------------------------------------------------------------------------


# Rows that a writer locks, locked at once or not at all (NOWAIT).
SESSION_ROW = "SELECT 1 FROM sessions WHERE token = :token FOR UPDATE NOWAIT"
SERIES_ROWS = "SELECT 1 FROM series WHERE session_token = ANY(CAST(:tokens AS uuid[])) FOR UPDATE NOWAIT"
ROLLUP_ROWS = (
    "SELECT 1 FROM rollups JOIN series ON series.id = rollups.series_id "
    "WHERE series.session_token = ANY(CAST(:tokens AS uuid[])) FOR UPDATE OF rollups NOWAIT"
)


def _lockable(connection: Connection, query: str, **parameters: object) -> bool:
    """Whether this transaction can lock the rows at once, none of them held by another."""
    savepoint = connection.begin_nested()
    try:
        connection.execute(text(query), parameters)
    except Exception as error:
        savepoint.rollback()
        if getattr(getattr(error, "orig", None), "pgcode", None) != "55P03":  # lock_not_available
            raise
        return False
    savepoint.rollback()
    return True


@pytest.mark.parametrize("creates_a_series", [False, True], ids=["cached series", "a new series"])
def test_a_group_waiting_for_a_session_holds_no_row_of_its_later_sessions_nor_any_rollup(
    engine: Engine, postgres_url: str, creates_a_series: bool
) -> None:
    first, second = _sessions(engine, 2)
    repository = PostgresSampleRepository(engine)
    for token in (first, second):
        repository.append(token, [Sample(NOON, {"cpu": 1.0})], NOON)
    writer = repository._writer
    metric = "new" if creates_a_series else "cpu"
    tokens = {"tokens": [first, second]}
    with _row_locked(postgres_url, first):
        # One group of both sessions, the later one's request first, in the buckets of the stored samples.
        with writers_busy(writer):
            appends = [
                _InThread(lambda: repository.append(second, [Sample(NOON + 1, {metric: 2.0})], NOON + 1))
            ]
            _wait_for_queue(writer, 1)
            appends.append(
                _InThread(lambda: repository.append(first, [Sample(NOON + 1, {"cpu": 3.0})], NOON + 1))
            )
            _wait_for_queue(writer, 2)
        _wait_until_a_writer_waits_for_a_lock(engine)
        # The group waits for the first session's row, and holds nothing that another writer might wait
        # for meanwhile (which might wait for it in turn: a deadlock).
        with engine.connect() as checker, checker.begin():
            assert _lockable(checker, SESSION_ROW, token=second)
            assert _lockable(checker, SERIES_ROWS, **tokens)
            assert _lockable(checker, ROLLUP_ROWS, **tokens)
    assert [append.wait() for append in appends] == [None, None]
    assert repository.between(first, "cpu", EVERYTHING) == [Point(1.0, NOON), Point(3.0, NOON + 1)]
    assert repository.between(second, metric, EVERYTHING)[-1] == Point(2.0, NOON + 1)


# --- the writers' own connections ---------------------------------------------------------------------------


def test_writer_connections_the_server_closed_while_idle_are_made_again_without_a_failed_append(
    engine: Engine, postgres_server_url: str, postgres_url: str
) -> None:
    (token,) = _sessions(engine, 1)
    repository = PostgresSampleRepository(engine)
    repository.append(token, [Sample(NOON, {"cpu": 1.0})], NOON)
    assert terminate_backends(postgres_server_url, make_url(postgres_url).database or "") >= 1
    repository.append(token, [Sample(NOON + 1, {"cpu": 2.0})], NOON + 1)
    assert repository.between(token, "cpu", EVERYTHING) == [Point(1.0, NOON), Point(2.0, NOON + 1)]


def test_a_writer_connection_lost_in_a_write_fails_that_write_only_and_is_made_again(
    engine: Engine, postgres_server_url: str, postgres_url: str
) -> None:
    (token,) = _sessions(engine, 1)
    repository = PostgresSampleRepository(engine)
    with _row_locked(postgres_url, token):
        lost = _InThread(lambda: repository.append(token, [Sample(NOON, {"cpu": 1.0})], NOON))
        _wait_until_a_writer_waits_for_a_lock(engine)
        # Every connection of the database killed, the writer's amid its statement: its commit is
        # unknown to it, so the request gets StorageUnavailable (a 503, which the client retries).
        terminate_backends(postgres_server_url, make_url(postgres_url).database or "")
        assert isinstance(lost.wait(), StorageUnavailable)
    repository.append(token, [Sample(NOON + 1, {"cpu": 2.0})], NOON + 1)
    assert repository.between(token, "cpu", EVERYTHING) == [Point(2.0, NOON + 1)]


@pytest.fixture
def descriptors_past_1024() -> Iterator[None]:
    """The descriptors up to 1100 in use, so that the next socket is numbered past select()'s limit (a
    server holding a thousand agents' connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the open-file limit ({hard}) is below 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    taken = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for descriptor in taken:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("descriptors_past_1024")
def test_a_closed_writer_connection_is_seen_whatever_its_descriptor_number(
    engine: Engine, postgres_server_url: str, postgres_url: str
) -> None:
    (token,) = _sessions(engine, 1)
    repository = PostgresSampleRepository(engine)
    repository.append(token, [Sample(NOON, {"cpu": 1.0})], NOON)
    # The premise: the writer's one connection is numbered past 1024.
    assert [c._driver.fileno() > 1024 for c in repository._writer._idle if c._driver] == [True]
    assert terminate_backends(postgres_server_url, make_url(postgres_url).database or "") >= 1
    repository.append(token, [Sample(NOON + 1, {"cpu": 2.0})], NOON + 1)
    assert repository.between(token, "cpu", EVERYTHING) == [Point(1.0, NOON), Point(2.0, NOON + 1)]
