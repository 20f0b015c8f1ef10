"""The PostgreSQL sample storage's own machinery: daily partitions made ahead and filled from the default
partition, retention by dropping partitions, and one maintainer per database however many processes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from perfmon.adapters.postgres.engine import create_engine_for
from perfmon.adapters.postgres.maintenance import MAINTENANCE_LOCK_KEY
from perfmon.adapters.postgres.partitions import DEFAULT_PARTITION, partition_name
from perfmon.adapters.postgres.repositories import (
    PostgresSampleRepository,
    PostgresSessionRepository,
    PostgresUserRepository,
)
from perfmon.domain.model import EVERYTHING, Point, Sample, SampleSeries, Session, User, Username
from perfmon.domain.ports import PruneReport
from perfmon.domain.rollups import DAY, day_start, rollup
from tests.postgres_server import empty_tables

pytestmark = pytest.mark.postgres

# Before the days of the other tests' samples and partitions (the contract suites' 2023, the clock's), so
# that pruning here drops none of theirs: 2020-03-20 12:00 UTC.
NOW = 1_584_705_600.0
TODAY = day_start(NOW)


@pytest.fixture
def samples(postgres_engine: Engine) -> Iterator[PostgresSampleRepository]:
    """The sample storage on an empty database, with one session (TOKEN) and none of NOW's partitions."""
    empty_tables(postgres_engine)
    _drop_partitions_near_now(postgres_engine)
    PostgresUserRepository(postgres_engine).add(User(Username("alice"), "hash"))
    PostgresSessionRepository(postgres_engine).add(Session(TOKEN, Username("alice"), 1.0))
    yield PostgresSampleRepository(postgres_engine)
    _drop_partitions_near_now(postgres_engine)


TOKEN = str(uuid.UUID(int=11))


def _drop_partitions_near_now(engine: Engine) -> None:
    with engine.begin() as connection:
        for offset in range(-5, 6):
            connection.execute(text(f"DROP TABLE IF EXISTS {partition_name(TODAY + offset * DAY)}"))


def _partitions(engine: Engine) -> set[str]:
    query = "SELECT relname FROM pg_class WHERE relispartition AND relkind = 'r'"
    with engine.connect() as connection:
        return set(connection.execute(text(query)).scalars())


def _where_stored(engine: Engine) -> dict[float, str]:
    """The partition holding each sample, by its time."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT taken_at, tableoid::regclass::text FROM samples"))
        return {moment: partition for moment, partition in rows}


def test_maintenance_makes_the_partitions_of_the_days_around_now(
    samples: PostgresSampleRepository, postgres_engine: Engine
) -> None:
    samples.maintain(NOW)
    days = [TODAY + offset * DAY for offset in (-1, 0, 1, 2)]
    assert {partition_name(day) for day in days} <= _partitions(postgres_engine)
    assert partition_name(TODAY - 2 * DAY) not in _partitions(postgres_engine)
    ahead, behind = Sample(TODAY + 2 * DAY + 5.0, {"cpu": 1.0}), Sample(TODAY - 3 * DAY, {"cpu": 2.0})
    samples.append(TOKEN, [ahead, behind])
    assert _where_stored(postgres_engine) == {
        TODAY + 2 * DAY + 5.0: partition_name(TODAY + 2 * DAY),
        TODAY - 3 * DAY: DEFAULT_PARTITION,
    }


def test_a_new_partition_takes_its_days_samples_out_of_the_default_partition_in_their_order(
    samples: PostgresSampleRepository, postgres_engine: Engine
) -> None:
    # Samples of a day without a partition yet, equal times among them, wait in the default partition.
    moments = [TODAY + 60.0, TODAY + 30.0, TODAY + 60.0, TODAY + DAY - 0.5, TODAY + DAY]
    samples.append(TOKEN, [Sample(moment, {"cpu": float(i)}) for i, moment in enumerate(moments[:3])])
    samples.append(TOKEN, [Sample(moment, {"cpu": float(i + 3)}) for i, moment in enumerate(moments[3:])])
    before = samples.between(TOKEN, "cpu", EVERYTHING)
    assert set(_where_stored(postgres_engine).values()) == {DEFAULT_PARTITION}

    samples.maintain(NOW)

    assert _where_stored(postgres_engine) == {
        TODAY + 30.0: partition_name(TODAY),
        TODAY + 60.0: partition_name(TODAY),
        TODAY + DAY - 0.5: partition_name(TODAY),
        TODAY + DAY: partition_name(TODAY + DAY),
    }
    assert samples.between(TOKEN, "cpu", EVERYTHING) == before
    assert before == [Point(1.0, TODAY + 30.0), Point(0.0, TODAY + 60.0), Point(2.0, TODAY + 60.0)] + [
        Point(3.0, TODAY + DAY - 0.5),
        Point(4.0, TODAY + DAY),
    ]


def test_pruning_drops_whole_partitions_and_a_dry_run_drops_nothing(
    samples: PostgresSampleRepository, postgres_engine: Engine
) -> None:
    samples.maintain(NOW)
    yesterday = TODAY - DAY
    # Two series in yesterday's partition, one of them also in the default partition (long ago).
    samples.append(TOKEN, [Sample(yesterday + 10.0, {"cpu": 1.0, "mem": 2.0}), Sample(1.0, {"cpu": 3.0})])
    samples.append(TOKEN, [Sample(TODAY + 10.0, {"cpu": 4.0})])

    dry = samples.prune(TODAY + 5.0, None, apply=False)
    assert (dry.applied, dry.raw_units, dry.rollup_units) == (False, 3, 0)
    assert dry.raw_bytes > 0
    assert partition_name(yesterday) in _partitions(postgres_engine)
    assert len(samples.between(TOKEN, "cpu", EVERYTHING)) == 3

    applied = samples.prune(TODAY + 5.0, None, apply=True)
    assert applied == PruneReport(True, dry.raw_units, dry.raw_bytes, 0, 0)
    assert partition_name(yesterday) not in _partitions(postgres_engine)
    assert samples.between(TOKEN, "cpu", EVERYTHING) == [Point(4.0, TODAY + 10.0)]
    # The rollups still hold what went, and a sample of the dropped day lands in the default partition.
    assert sum(bucket.count for bucket in samples.rollups(TOKEN, "cpu", DAY, EVERYTHING)) == 3
    samples.append(TOKEN, [Sample(yesterday + 20.0, {"cpu": 5.0})])
    assert _where_stored(postgres_engine)[yesterday + 20.0] == DEFAULT_PARTITION


def test_pruning_rollups_reports_each_series_width_and_day(
    samples: PostgresSampleRepository, postgres_engine: Engine
) -> None:
    samples.append(TOKEN, [Sample(TODAY - DAY + 10.0, {"cpu": 1.0, "mem": 2.0}), Sample(TODAY, {"cpu": 3.0})])
    report = samples.prune(TODAY, TODAY, apply=True)
    # Two series, three widths, one day.
    assert (report.rollup_units, report.raw_units) == (6, 2)
    assert report.rollup_bytes > 0
    assert [bucket.start for bucket in samples.rollups(TOKEN, "cpu", 60.0, EVERYTHING)] == [TODAY]
    assert samples.rollups(TOKEN, "mem", 60.0, EVERYTHING) == []


@pytest.fixture
def other_engine(postgres_url: str) -> Iterator[Engine]:
    """A second engine on the same database, as a second perfmon process has."""
    engine = create_engine_for(postgres_url, pool_size=2)
    yield engine
    engine.dispose()


def test_a_process_skips_maintenance_and_pruning_while_another_holds_the_maintenance_lock(
    samples: PostgresSampleRepository, postgres_engine: Engine, other_engine: Engine
) -> None:
    samples.append(TOKEN, [Sample(1.0, {"cpu": 1.0})])
    with other_engine.connect() as holder:
        assert holder.execute(text(f"SELECT pg_try_advisory_lock({MAINTENANCE_LOCK_KEY})")).scalar_one()
        samples.maintain(NOW)
        assert partition_name(TODAY) not in _partitions(postgres_engine)
        assert samples.prune(TODAY, TODAY, apply=True) == PruneReport(applied=False)
        assert samples.between(TOKEN, "cpu", EVERYTHING) == [Point(1.0, 1.0)]
        # A dry run changes nothing, and needs no lock.
        assert samples.prune(TODAY, TODAY, apply=False).raw_units == 1
        holder.execute(text(f"SELECT pg_advisory_unlock({MAINTENANCE_LOCK_KEY})"))
        holder.commit()
    samples.maintain(NOW)
    assert partition_name(TODAY) in _partitions(postgres_engine)


def test_two_processes_maintaining_at_once_make_each_partition_once(
    samples: PostgresSampleRepository, postgres_engine: Engine, other_engine: Engine
) -> None:
    repositories = [samples, PostgresSampleRepository(other_engine)]
    start = threading.Barrier(len(repositories) * 4)
    failures: list[BaseException] = []

    def maintain(repository: PostgresSampleRepository) -> None:
        start.wait(timeout=10)
        try:
            repository.maintain(NOW)
        except Exception as error:  # noqa: BLE001 - recorded and asserted on below
            failures.append(error)

    threads = [threading.Thread(target=maintain, args=(r,)) for r in repositories for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    made = {partition_name(TODAY + offset * DAY) for offset in (-1, 0, 1, 2)}
    assert made <= _partitions(postgres_engine)


def test_a_sample_routed_to_the_default_partition_while_its_day_is_attached_is_stored(
    samples: PostgresSampleRepository, postgres_engine: Engine, other_engine: Engine
) -> None:
    # A maintainer half-way through making today's partition: the default partition locked, as
    # partitions.make_partition locks it for the last rows and the ATTACH.
    name = partition_name(TODAY)
    with other_engine.connect() as maintainer:
        maintainer.execute(text(f"CREATE TABLE {name} (LIKE samples)"))
        maintainer.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN SHARE ROW EXCLUSIVE MODE"))
        writer = threading.Thread(target=samples.append, args=(TOKEN, [Sample(TODAY + 1.0, {"cpu": 7.0})]))
        writer.start()
        _wait_until_a_backend_waits_for_a_lock(postgres_engine)
        bounds = f"FROM ({TODAY!r}) TO ({TODAY + DAY!r})"
        maintainer.execute(text(f"ALTER TABLE samples ATTACH PARTITION {name} FOR VALUES {bounds}"))
        maintainer.commit()
        writer.join(timeout=30)
    # The write routed to the default partition failed its partition check at the commit, and was
    # written again into the new partition.
    assert samples.between(TOKEN, "cpu", EVERYTHING) == [Point(7.0, TODAY + 1.0)]
    assert _where_stored(postgres_engine) == {TODAY + 1.0: name}


def _wait_until_a_backend_waits_for_a_lock(engine: Engine) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 10
    # A transaction sees one snapshot of pg_stat_activity: one transaction per look.
    while True:
        with engine.connect() as connection:
            if connection.execute(query).scalar_one():
                return
        assert time.monotonic() < deadline, "the write never waited for the default partition"
        time.sleep(0.01)


def test_rollup_totals_stay_exact_when_merged_across_writes(samples: PostgresSampleRepository) -> None:
    # Each write merges into the stored buckets: zeros first (a zero total), values that cancel out,
    # then a subnormal and huge values, which change the scale the stored total is kept at.
    writes = [[0.0, -0.0], [1.0, -1.0], [0.1], [5e-324], [1e308, 1e308], [-2.5, 12.75]]
    moments = iter(TODAY + 0.5 * i for i in range(100))
    raw = SampleSeries([], [])
    for values in writes:
        batch = [Sample(next(moments), {"cpu": value}) for value in values]
        samples.append(TOKEN, batch)
        raw.values.extend(values)
        raw.taken_at.extend(sample.taken_at for sample in batch)
        for width in (60.0, 3600.0, DAY):
            assert samples.rollups(TOKEN, "cpu", width, EVERYTHING) == rollup(raw, width)
