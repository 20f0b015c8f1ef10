"""Upgrading in place: a database written by the release before named series (schema 0002, one
cpu_samples table) is migrated by `perfmon init-db` with nothing lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from perfmon.adapters.postgres.engine import create_engine_for
from perfmon.adapters.postgres.repositories import PostgresSampleRepository
from perfmon.adapters.postgres.schema import MIGRATIONS, create_database_if_missing, upgrade_to_head
from perfmon.domain.model import EVERYTHING, Point, Sample, SampleSeries, SampleSummary, TimeRange
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
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


@pytest.fixture
def old_database(postgres_server_url: str) -> Iterator[Engine]:
    """A database migrated to revision 0002 only, as the release before this one left it."""
    url = unique_database_url(postgres_server_url, prefix="perfmon_upgrade_")
    rendered = url.render_as_string(hide_password=False)
    create_database_if_missing(rendered)
    engine = create_engine_for(rendered, pool_size=4)
    try:
        _migrate(engine, "0002")
        yield engine
    finally:
        engine.dispose()
        drop_database(postgres_server_url, url.database or "")


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
