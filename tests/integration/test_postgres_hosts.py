"""PostgreSQL's own side of part 3 (hosts and metrics): the session status that each group commit moves,
kept right by writers in several processes, the 256-series limit decided per request inside a group,
and migration 0004, which computes the status of the sessions a 0003 database holds."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from perfmon.adapters.postgres.engine import create_engine_for
from perfmon.adapters.postgres.group_commit import GroupCommitWriter
from perfmon.adapters.postgres.repositories import (
    PostgresSampleRepository,
    PostgresSessionRepository,
    PostgresUserRepository,
)
from perfmon.adapters.postgres.schema import MIGRATIONS, create_database_if_missing, upgrade_to_head
from perfmon.adapters.postgres.series_ids import SeriesIds
from perfmon.domain.errors import PerfmonError, TooManySeries
from perfmon.domain.model import (
    EVERYTHING,
    MAX_SERIES_PER_SESSION,
    Point,
    Sample,
    Session,
    SessionStatus,
    User,
    Username,
    moved_status,
)
from tests.postgres_server import drop_database, empty_tables, unique_database_url
from tests.writers import writers_busy

pytestmark = pytest.mark.postgres

NOON = 1_699_963_200.0
NOW = 1_764_504_000.0
ALICE = "6f1c2a4e-8b7d-4e0f-9a3c-5d2e1f0a9b8c"
BOB = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f"
IDLE = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
PRUNED = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"


def _bits(status: SessionStatus | None) -> object:
    """The status with every float as exact hex for values (so -0.0 and 0.0 differ), times as numbers."""
    if status is None:
        return None
    latest = {metric: (point.value.hex(), point.taken_at) for metric, point in status.latest.items()}
    return status.seen, status.first, latest


def _session(engine: Engine, token: str | None = None, host: str | None = "web-1") -> str:
    """A new session of alice (added if need be) on the host."""
    if PostgresUserRepository(engine).get(Username("alice")) is None:
        PostgresUserRepository(engine).add(User(Username("alice"), "hash"))
    token = token or str(uuid.uuid4())
    PostgresSessionRepository(engine).add(Session(token, Username("alice"), 1.0, host))
    return token


@pytest.fixture
def engine(postgres_engine: Engine) -> Engine:
    empty_tables(postgres_engine)
    return postgres_engine


@pytest.fixture
def second_engine(postgres_url: str) -> Iterator[Engine]:
    """Another engine on the same database: another process's worth of connections and caches."""
    other = create_engine_for(postgres_url, pool_size=4)
    yield other
    other.dispose()


# --- the status matches moved_status for any sequence of appends -----------------------------------------

EDGE_VALUES = [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 0.1 + 0.2]
values = st.one_of(st.sampled_from(EDGE_VALUES), st.floats(allow_nan=False, allow_infinity=False))
# Few moments, so that equal times (in one append and across appends) are common.
moments = st.sampled_from([0.0, 5e-324, NOON - 86_400.0, NOON, NOON + 0.5, 9.99e10])
samples_ = st.builds(
    Sample, moments, st.dictionaries(st.sampled_from(["cpu", "mem", "temp"]), values, min_size=1, max_size=3)
)
appends = st.lists(
    st.tuples(
        st.lists(samples_, min_size=1, max_size=5),
        st.one_of(st.none(), st.floats(min_value=0.0, max_value=1e11, exclude_max=True)),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(appends=appends)
def test_the_status_is_what_moved_status_makes_of_the_appends(
    postgres_engine: Engine, appends: list[tuple[list[Sample], float | None]]
) -> None:
    # A session of its own per example: the database is shared by the examples.
    token = _session(postgres_engine)
    repository = PostgresSampleRepository(postgres_engine)
    expected = None
    for batch, received_at in appends:
        repository.append(token, batch, received_at=received_at)
        if received_at is not None:  # a write without a receive time moves no status
            expected = moved_status(expected, batch, received_at)

    assert _bits(repository.status([token]).get(token)) == _bits(expected)


# --- several processes -----------------------------------------------------------------------------------


def test_two_processes_appending_to_one_session_keep_its_status_right(
    engine: Engine, second_engine: Engine
) -> None:
    token = _session(engine)
    repositories = [PostgresSampleRepository(engine), PostgresSampleRepository(second_engine)]
    last_received: list[float] = [0.0, 0.0]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def write(writer: int, thread: int) -> None:
        chooser = random.Random(writer * 10 + thread)
        try:
            start.wait(timeout=30)
            for index in range(60):
                # Few times, so that the two processes write equal times to one series all along.
                moment = NOON + chooser.choice([0.0, 1.0, 2.0, 3.0])
                received = NOON + 100 * writer + index
                sample = Sample(moment, {"cpu": float(writer * 1000 + thread * 100 + index), "mem": 1.0})
                repositories[writer].append(token, [sample], received_at=received)
                last_received[writer] = max(last_received[writer], received)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w, t)) for w in (0, 1) for t in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors

    status = repositories[0].status([token])[token]
    for metric in ("cpu", "mem"):
        stored = repositories[1].between(token, metric, EVERYTHING)
        assert len(stored) == 240
        # The latest is the last that reads list: the greatest time, of equal times the greatest id,
        # whichever process committed last.
        assert status.latest[metric] == stored[-1]
    assert status.first == min(stored.taken_at)
    # `seen` is the receive time of the last commit, the last write of one of the processes.
    assert status.seen in last_received


def _add_series(
    repository: PostgresSampleRepository,
    token: str,
    prefix: str,
    start: threading.Barrier,
    outcomes: dict[str, BaseException | None],
) -> None:
    """Append one sample of 200 new metrics named from the prefix, once the other thread is ready too."""
    names = {f"{prefix}{index}": 1.0 for index in range(200)}
    start.wait(timeout=30)
    try:
        repository.append(token, [Sample(NOON, names)], received_at=NOON)
        outcomes[prefix] = None
    except BaseException as error:  # reported in the test's thread
        outcomes[prefix] = error


def test_two_processes_adding_series_at_once_never_pass_the_limit(
    engine: Engine, second_engine: Engine
) -> None:
    # Each write fits alone, not both: the session's row is locked while its series are counted.
    repositories = [PostgresSampleRepository(engine), PostgresSampleRepository(second_engine)]
    for _ in range(3):
        token = _session(engine)
        start = threading.Barrier(2)
        outcomes: dict[str, BaseException | None] = {}
        threads = [
            threading.Thread(target=_add_series, args=(repository, token, prefix, start, outcomes))
            for prefix, repository in zip(("a", "b"), repositories, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        stored = [prefix for prefix, error in outcomes.items() if error is None]
        refused = [error for error in outcomes.values() if error is not None]
        assert len(stored) == 1
        assert [type(error) for error in refused] == [TooManySeries]
        assert repositories[0].metrics(token) == sorted(f"{stored[0]}{index}" for index in range(200))


# --- one group, one refusal ------------------------------------------------------------------------------


def _appended_as_one_group(
    writer: GroupCommitWriter, writes: list[tuple[str, list[Sample], float]]
) -> list[PerfmonError | None]:
    """Append the writes from threads of their own while the writer is busy, so that the next group holds
    them all (in this order), then let it write; what each append raised."""
    outcomes: list[PerfmonError | None] = [None] * len(writes)

    def append(index: int, token: str, batch: list[Sample], received_at: float) -> None:
        try:
            writer.append(token, batch, received_at)
        except PerfmonError as error:
            outcomes[index] = error

    threads = []
    with writers_busy(writer):
        for index, write in enumerate(writes):
            thread = threading.Thread(target=append, args=(index, *write))
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 30
            # Queued one by one, so that the group keeps their order.
            while len(writer._queue) < index + 1 and time.monotonic() < deadline:
                time.sleep(0.001)
        assert len(writer._queue) == len(writes)
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_in_a_group_commit_a_request_past_the_limit_is_refused_alone(engine: Engine) -> None:
    small, full = _session(engine), _session(engine)
    repository = PostgresSampleRepository(engine)
    nearly = {f"m{index}": 1.0 for index in range(MAX_SERIES_PER_SESSION - 6)}
    repository.append(full, [Sample(NOON, nearly)], received_at=NOON)
    full_before = repository.status([full])[full]
    writer = GroupCommitWriter(engine, SeriesIds())

    outcomes = _appended_as_one_group(
        writer,
        [
            (small, [Sample(NOON + 1, {"cpu": 1.0})], NOON + 10),
            # 250 + 10 new: refused.
            (full, [Sample(NOON + 1, {f"x{index}": 2.0 for index in range(10)} | {"m0": 9.0})], NOON + 11),
            # 250 + 3 new: fits.
            (full, [Sample(NOON + 2, {"y0": 3.0, "y1": 3.0, "y2": 3.0})], NOON + 12),
            # 253 + 4 new, counting the request before it: refused.
            (full, [Sample(NOON + 3, {f"z{index}": 4.0 for index in range(4)})], NOON + 13),
            (small, [Sample(NOON + 4, {"cpu": 5.0})], NOON + 14),
        ],
    )

    assert [type(outcome) if outcome else None for outcome in outcomes] == [
        None,
        TooManySeries,
        None,
        TooManySeries,
        None,
    ]
    assert repository.metrics(full) == sorted([*nearly, "y0", "y1", "y2"])
    assert repository.between(full, "m0", EVERYTHING) == [Point(1.0, NOON)]
    assert repository.between(small, "cpu", EVERYTHING) == [Point(1.0, NOON + 1), Point(5.0, NOON + 4)]
    assert repository.status([small, full]) == {
        small: SessionStatus(NOON + 14, NOON + 1, {"cpu": Point(5.0, NOON + 4)}),
        full: SessionStatus(
            NOON + 12, NOON, {**full_before.latest, **dict.fromkeys(["y0", "y1", "y2"], Point(3.0, NOON + 2))}
        ),
    }


# --- migration 0004 --------------------------------------------------------------------------------------


def _migrate(engine: Engine, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["now"] = NOW
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


@pytest.fixture
def database_0003(postgres_server_url: str) -> Iterator[Engine]:
    """A database migrated to revision 0003, as the release before hosts left it."""
    url = unique_database_url(postgres_server_url, prefix="perfmon_0003_")
    rendered = url.render_as_string(hide_password=False)
    create_database_if_missing(rendered)
    engine = create_engine_for(rendered, pool_size=4)
    try:
        _migrate(engine, "0003")
        yield engine
    finally:
        engine.dispose()
        drop_database(postgres_server_url, url.database or "")


# (token, metric, time, value) in arrival order: equal times, late samples, the edge values.
OLD_SAMPLES = [
    (ALICE, "cpu", NOON + 30.0, 0.1 + 0.2),
    (ALICE, "cpu", NOON - 86_400.0, 100.0),
    (ALICE, "mem", NOON + 30.0, -0.0),
    (ALICE, "cpu", NOON + 30.0, 5e-324),
    (BOB, "cpu", NOON, 1.7976931348623157e308),
    (ALICE, "cpu", NOON + 10.0, 7.0),
    (BOB, "temp", NOON, -3.5),
    (BOB, "cpu", NOON, 2.0),
    (PRUNED, "cpu", NOON, 4.0),
]


def _old_release_writes(engine: Engine) -> None:
    """Users, sessions, series and samples as the 0003 release's adapters left them (identity = arrival);
    PRUNED's series `disk` has only a day rollup left, from before its other samples."""
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO users (name, password_hash) VALUES ('alice', 'h')"))
        for token in (ALICE, BOB, IDLE, PRUNED):
            connection.execute(
                text("INSERT INTO sessions (token, user_id, created_at) SELECT :token, id, 1.0 FROM users"),
                {"token": token},
            )
        for token, metric in sorted(
            {(token, metric) for token, metric, _, _ in OLD_SAMPLES} | {(PRUNED, "disk")}
        ):
            connection.execute(
                text("INSERT INTO series (session_token, metric) VALUES (:token, :metric)"),
                {"token": token, "metric": metric},
            )
        for token, metric, moment, value in OLD_SAMPLES:
            connection.execute(
                text(
                    "INSERT INTO samples (series_id, taken_at, value) "
                    "SELECT id, CAST(:moment AS float8), CAST(:value AS float8) FROM series "
                    "WHERE session_token = :token AND metric = :metric"
                ),
                # As text: psycopg2 sends a float as a numeric literal, which has no -0.
                {"token": token, "metric": metric, "moment": repr(moment), "value": repr(value)},
            )
        connection.execute(
            text(
                "INSERT INTO rollups (series_id, width, total_shift, start, count, low, high, first_at, "
                "last_at, negative_zero, positive_zero, total_mantissa) SELECT id, 86400, 0, :day, 1, 1, 1, "
                ":moment, :moment, false, false, 1 FROM series WHERE metric = 'disk'"
            ),
            {"day": NOON - 2 * 86_400.0, "moment": NOON - 2 * 86_400.0 + 5.0},
        )


def _status_of_old_samples(token: str, first: float | None = None) -> SessionStatus:
    status = None
    for owner, metric, moment, value in OLD_SAMPLES:
        if owner == token:
            status = moved_status(status, [Sample(moment, {metric: value})], None)
    assert status is not None
    return status if first is None else SessionStatus(status.seen, first, status.latest)


def test_migration_0004_computes_the_status_of_the_sessions_a_0003_database_holds(
    database_0003: Engine,
) -> None:
    _old_release_writes(database_0003)

    upgrade_to_head(database_0003, now=NOW)

    repository = PostgresSampleRepository(database_0003)
    found = repository.status([ALICE, BOB, IDLE, PRUNED])
    assert {token: _bits(status) for token, status in found.items()} == {
        ALICE: _bits(_status_of_old_samples(ALICE)),
        BOB: _bits(_status_of_old_samples(BOB)),
        # `first` from the day rollup of a series whose raw samples are gone; it has no latest sample.
        PRUNED: _bits(_status_of_old_samples(PRUNED, first=NOON - 2 * 86_400.0 + 5.0)),
    }
    assert found[ALICE].latest["cpu"] == Point(5e-324, NOON + 30.0)
    assert [
        session.host for session in PostgresSessionRepository(database_0003).for_user(Username("alice"))
    ] == [None] * 4
    # Appends go on from the computed status: an equal time arriving later is the latest.
    repository.append(ALICE, [Sample(NOON + 30.0, {"cpu": 8.0})], received_at=NOW)
    repository.append(ALICE, [Sample(NOON + 29.0, {"cpu": 9.0})], received_at=NOW + 1)
    assert repository.status([ALICE])[ALICE] == SessionStatus(
        NOW + 1, NOON - 86_400.0, {"cpu": Point(8.0, NOON + 30.0), "mem": Point(-0.0, NOON + 30.0)}
    )


def _columns(engine: Engine, table: str) -> set[str]:
    query = "SELECT column_name FROM information_schema.columns WHERE table_name = :table"
    with engine.connect() as connection:
        return set(connection.execute(text(query), {"table": table}).scalars())


def test_migration_0004_downgrades_to_0003_keeping_every_sample(database_0003: Engine) -> None:
    _old_release_writes(database_0003)
    upgrade_to_head(database_0003, now=NOW)
    repository = PostgresSampleRepository(database_0003)
    repository.append(ALICE, [Sample(NOW, {"cpu": 1.0})], received_at=NOW)

    _migrate(database_0003, "0003", down=True)

    assert _columns(database_0003, "sessions") == {"token", "user_id", "created_at"}
    assert _columns(database_0003, "series") == {"id", "session_token", "metric"}
    with database_0003.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM samples")).scalar() == len(OLD_SAMPLES) + 1
    # And up again: the status is computed anew, `seen` unknown.
    upgrade_to_head(database_0003, now=NOW)
    status = PostgresSampleRepository(database_0003).status([ALICE])[ALICE]
    assert status == SessionStatus(
        None, NOON - 86_400.0, {"cpu": Point(1.0, NOW), "mem": Point(-0.0, NOON + 30.0)}
    )
