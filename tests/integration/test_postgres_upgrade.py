"""Upgrading in place: a database written by the release before named series (schema 0002, one
cpu_samples table) is migrated by `perfmon init-db` with nothing lost; one written by the release before
access keys (schema 0004) too, and back (migration 0005)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from perfmon.adapters.postgres.engine import create_engine_for
from perfmon.adapters.postgres.repositories import (
    PostgresKeyRepository,
    PostgresSampleRepository,
    PostgresSessionRepository,
)
from perfmon.adapters.postgres.schema import MIGRATIONS, create_database_if_missing, upgrade_to_head
from perfmon.domain.model import (
    EVERYTHING,
    AccessKey,
    Point,
    Sample,
    SampleSeries,
    SampleSummary,
    Scope,
    Session,
    SessionStatus,
    TimeRange,
    Username,
    key_digest,
)
from perfmon.domain.rollups import DAY, ROLLUP_WIDTHS, day_start, rollup
from tests.postgres_server import drop_database, unique_database_url

pytestmark = pytest.mark.postgres

# The upgrade's clock: partitions are made for the days with samples among the 400 before it.
NOW = 1_764_504_000.0  # 2025-11-30 12:00 UTC
ALICE = "6f1c2a4e-8b7d-4e0f-9a3c-5d2e1f0a9b8c"
BOB = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f"
IDLE = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


def _migrate(engine: Engine, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    # The clock of revision 0003, which makes the partitions of the days around it.
    config.attributes["now"] = NOW
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


@contextmanager
def _database_at(server_url: str, revision: str) -> Iterator[Engine]:
    """A database of its own migrated to the revision, dropped afterwards."""
    url = unique_database_url(server_url, prefix="perfmon_upgrade_")
    rendered = url.render_as_string(hide_password=False)
    create_database_if_missing(rendered)
    engine = create_engine_for(rendered, pool_size=4)
    try:
        _migrate(engine, revision)
        yield engine
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


@pytest.fixture
def old_database(postgres_server_url: str) -> Iterator[Engine]:
    """A database migrated to revision 0002 only, as the release before named series left it."""
    with _database_at(postgres_server_url, "0002") as engine:
        yield engine


@pytest.fixture
def database_0004(postgres_server_url: str) -> Iterator[Engine]:
    """A database migrated to revision 0004, as the release before access keys left it."""
    with _database_at(postgres_server_url, "0004") as engine:
        yield engine


def _old_release_writes(engine: Engine, rows: list[tuple[str, float, float]]) -> None:
    """Users, sessions and samples inserted as the old release's adapters did (identity = arrival)."""
    with engine.begin() as connection:
        users = "INSERT INTO users (name, password_hash) VALUES ('alice', 'h'), ('bob', 'h')"
        connection.execute(text(users))
        for token, name in ((ALICE, "alice"), (BOB, "bob"), (IDLE, "alice")):
            connection.execute(
                text(
                    "INSERT INTO sessions (token, user_id, created_at) "
                    "SELECT :token, id, 1.0 FROM users WHERE name = :name"
                ),
                {"token": token, "name": name},
            )
        for token, moment, cpu in rows:
            connection.execute(
                text("INSERT INTO cpu_samples (session_token, taken_at, cpu) VALUES (:token, :moment, :cpu)"),
                {"token": token, "moment": moment, "cpu": cpu},
            )


def _series(rows: list[tuple[str, float, float]], token: str) -> SampleSeries:
    """A session's samples as the new release reads them: by time, equal times in arrival order."""
    mine = [(moment, cpu) for owner, moment, cpu in rows if owner == token]
    ordered = sorted(range(len(mine)), key=lambda i: mine[i][0])
    return SampleSeries([mine[i][1] for i in ordered], [mine[i][0] for i in ordered])


def test_an_old_database_is_upgraded_with_every_sample_its_order_and_exact_rollups(
    old_database: Engine,
) -> None:
    today = day_start(NOW)
    rows = [
        # Two recent days, late and out of order, equal times in arrival order.
        (ALICE, today - DAY + 30.0, 0.1 + 0.2),
        (ALICE, today - 2 * DAY + 59.5, 100.0),
        (ALICE, today - DAY + 30.0, 5e-324),
        (BOB, today - DAY + 7.0, 1e308),
        (ALICE, today - DAY + 30.0, 0.0),
        (BOB, today - DAY + 8.0, 1e308),
        (ALICE, today + 3600.0, -0.0),
        # Long ago and an odd clock: the default partition.
        (ALICE, 1.0, 42.0),
        (BOB, 9e10, 3.5),
    ]
    _old_release_writes(old_database, rows)

    upgrade_to_head(old_database, now=NOW)

    repository = PostgresSampleRepository(old_database)
    for token in (ALICE, BOB):
        raw = _series(rows, token)
        assert repository.between(token, "cpu", EVERYTHING) == raw
        assert repository.metrics(token) == ["cpu"]
        for width in ROLLUP_WIDTHS:
            assert repository.rollups(token, "cpu", width, EVERYTHING) == rollup(raw, width)
    assert repository.summaries([ALICE, BOB, IDLE], "cpu") == {
        ALICE: SampleSummary(6, 1.0, today + 3600.0),
        BOB: SampleSummary(3, today - DAY + 7.0, 9e10),
    }
    assert repository.metrics(IDLE) == []
    with old_database.connect() as connection:
        tables = set(connection.execute(text("SELECT tablename FROM pg_tables")).scalars())
        rows_placed = connection.execute(text("SELECT taken_at, tableoid::regclass::text FROM samples"))
        placed = {moment: partition for moment, partition in rows_placed}
    assert "cpu_samples" not in tables
    # The days with samples have their partition; the rest is in the default one.
    assert placed[today - 2 * DAY + 59.5] == "samples_p20251128"
    assert placed[today - DAY + 7.0] == "samples_p20251129"
    assert placed[1.0] == placed[9e10] == "samples_default"


def test_samples_written_after_the_upgrade_come_after_the_old_ones_at_equal_times(
    old_database: Engine,
) -> None:
    moment = day_start(NOW) + 10.0
    _old_release_writes(old_database, [(ALICE, moment, 1.0), (ALICE, moment, 2.0)])
    upgrade_to_head(old_database, now=NOW)
    repository = PostgresSampleRepository(old_database)
    repository.append(ALICE, [Sample(moment, {"cpu": 3.0, "mem": 4.0})])
    assert repository.between(ALICE, "cpu", TimeRange(moment, moment)) == [
        Point(1.0, moment),
        Point(2.0, moment),
        Point(3.0, moment),
    ]
    assert repository.metrics(ALICE) == ["cpu", "mem"]
    (minute,) = repository.rollups(ALICE, "cpu", 60.0, EVERYTHING)
    assert (minute.count, minute.total) == (3, 6 << 1074)


def test_an_upgrade_of_a_database_without_samples_leaves_it_empty(old_database: Engine) -> None:
    _old_release_writes(old_database, [])
    upgrade_to_head(old_database, now=NOW)
    repository = PostgresSampleRepository(old_database)
    assert repository.summaries([ALICE, BOB], "cpu") == {}
    assert repository.metrics(ALICE) == []
    assert repository.between(ALICE, "cpu", EVERYTHING) == []
    token = str(uuid.UUID(ALICE))
    repository.append(token, [Sample(NOW, {"cpu": 1.0})])
    assert repository.between(token, "cpu", EVERYTHING) == [Point(1.0, NOW)]


def test_a_downgrade_gives_the_old_release_its_cpu_samples_back(old_database: Engine) -> None:
    rows = [(ALICE, NOW, 1.0), (ALICE, NOW, 2.0), (BOB, 3.0, 4.0)]
    _old_release_writes(old_database, rows)
    upgrade_to_head(old_database, now=NOW)
    PostgresSampleRepository(old_database).append(ALICE, [Sample(NOW, {"cpu": 5.0, "mem": 6.0})])
    _migrate(old_database, "0002", down=True)
    query = "SELECT session_token::text, taken_at, cpu FROM cpu_samples ORDER BY session_token, taken_at, id"
    with old_database.connect() as connection:
        back = [tuple(row) for row in connection.execute(text(query))]
    assert back == sorted([*rows, (ALICE, NOW, 5.0)], key=lambda row: (row[0], row[1]))


# --- migration 0005: access keys ---------------------------------------------------------------------------

HOST_SESSION = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"


def _release_0004_writes(engine: Engine) -> None:
    """Alice's three sessions as the 0004 release left them: one with a host and samples, one of the
    original client with samples, one without; Bob's one."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (name, password_hash) VALUES ('alice', 'h'), ('bob', 'h')")
        )
        for token, name, host in (
            (HOST_SESSION, "alice", "web-1"),
            (ALICE, "alice", None),
            (IDLE, "alice", None),
            (BOB, "bob", None),
        ):
            connection.execute(
                text(
                    "INSERT INTO sessions (token, user_id, created_at, host) "
                    "SELECT :token, id, 1.0, :host FROM users WHERE name = :name"
                ),
                {"token": token, "name": name, "host": host},
            )
    samples = PostgresSampleRepository(engine)
    samples.append(HOST_SESSION, [Sample(NOW, {"cpu": 1.0, "mem": 2.0})], received_at=NOW)
    samples.append(ALICE, [Sample(NOW - 10, {"cpu": 3.0})])


def test_migration_0005_keeps_every_session_open_with_every_right(database_0004: Engine) -> None:
    _release_0004_writes(database_0004)

    upgrade_to_head(database_0004, now=NOW)

    sessions = PostgresSessionRepository(database_0004)
    alice = Username("alice")
    assert sorted(sessions.for_user(alice), key=lambda session: session.token) == sorted(
        [
            Session(HOST_SESSION, alice, 1.0, host="web-1"),
            Session(ALICE, alice, 1.0),
            Session(IDLE, alice, 1.0),
        ],
        key=lambda session: session.token,
    )
    assert sessions.get(BOB) == Session(BOB, Username("bob"), 1.0)
    assert all(session.scope is Scope.ALL and not session.closed for session in sessions.for_user(alice))
    samples = PostgresSampleRepository(database_0004)
    assert samples.between(HOST_SESSION, "mem", EVERYTHING) == [Point(2.0, NOW)]
    # The new parts work on the migrated data: a key, a session it opens, a logout.
    keys = PostgresKeyRepository(database_0004, sessions)
    key = AccessKey("00000000000000a1", alice, Scope.INGEST, "web-1", NOW, key_digest("pmk_" + "A" * 43))
    keys.add(key)
    opened = Session(str(uuid.uuid4()), alice, NOW, host="web-1", scope=Scope.INGEST, key_id=key.id)
    sessions.add(opened)
    assert sessions.get(opened.token) == opened
    sessions.close(ALICE, NOW)
    assert sessions.get(ALICE) == Session(ALICE, alice, 1.0, closed=True)


def _columns(engine: Engine, table: str) -> set[str]:
    query = "SELECT column_name FROM information_schema.columns WHERE table_name = :table"
    with engine.connect() as connection:
        return set(connection.execute(text(query), {"table": table}).scalars())


def test_migration_0005_downgrades_to_0004_and_no_closed_or_key_token_opens_a_session(
    database_0004: Engine,
) -> None:
    _release_0004_writes(database_0004)
    upgrade_to_head(database_0004, now=NOW)
    sessions = PostgresSessionRepository(database_0004)
    keys = PostgresKeyRepository(database_0004, sessions)
    alice = Username("alice")
    key = AccessKey("00000000000000a1", alice, Scope.INGEST, "web-1", NOW, key_digest("pmk_" + "A" * 43))
    keys.add(key)
    of_key = str(uuid.uuid4())
    sessions.add(Session(of_key, alice, 2.0, host="web-2", scope=Scope.INGEST, key_id=key.id))
    samples = PostgresSampleRepository(database_0004)
    samples.append(of_key, [Sample(NOW + 1, {"cpu": 4.0})], received_at=NOW + 1)
    sessions.close(HOST_SESSION, NOW + 2)

    _migrate(database_0004, "0004", down=True)

    assert _columns(database_0004, "sessions") == {"token", "user_id", "created_at", "host", "seen", "first"}
    with database_0004.connect() as connection:
        tables = set(connection.execute(text("SELECT tablename FROM pg_tables")).scalars())
        rows = connection.execute(
            text(
                "SELECT token::text, sessions.created_at, host FROM sessions "
                "JOIN users ON users.id = user_id WHERE name = 'alice'"
            )
        ).all()
    assert not {"access_keys", "access_changes"} & tables
    # The old release would take them as sessions that may do everything: their tokens are gone, ...
    tokens = {token for token, _, _ in rows}
    assert ALICE in tokens and IDLE in tokens
    assert HOST_SESSION not in tokens and of_key not in tokens
    # ... their rows and samples kept, under tokens nobody holds.
    renamed = {host: token for token, _, host in rows if token not in (ALICE, IDLE)}
    assert sorted((host, created) for token, created, host in rows if token in renamed.values()) == [
        ("web-1", 1.0),
        ("web-2", 2.0),
    ]
    assert _samples_between(database_0004, renamed["web-1"], "mem") == [Point(2.0, NOW)]
    assert _samples_between(database_0004, renamed["web-2"], "cpu") == [Point(4.0, NOW + 1)]
    assert _samples_between(database_0004, ALICE, "cpu") == [Point(3.0, NOW - 10)]
    assert PostgresSampleRepository(database_0004).status([renamed["web-1"]]) == {
        renamed["web-1"]: SessionStatus(NOW, NOW, {"cpu": Point(1.0, NOW), "mem": Point(2.0, NOW)})
    }
    # And up again: every session there is open, with every right.
    upgrade_to_head(database_0004, now=NOW)
    again = PostgresSessionRepository(database_0004).for_user(alice)
    assert len(again) == 4
    assert all(
        session.scope is Scope.ALL and not session.closed and session.key_id is None for session in again
    )


def _samples_between(engine: Engine, token: str, metric: str) -> SampleSeries:
    """The series as a fresh repository reads it (no cached series ids from before the migration)."""
    return PostgresSampleRepository(engine).between(token, metric, EVERYTHING)
