"""HistoryMaintenance over PostgreSQL: partitions made ahead, and retention by whole daily partitions.

Rollups need no pass here: every write merges its samples into them in its own transaction
(group_commit.py). Maintenance and pruning run in one process of a deployment at a time: each pass
takes a session-level advisory lock without waiting for it, and a process that does not get it skips
the pass (another process is doing the same work). The DDL waits at most partitions.LOCK_TIMEOUT for its
locks; what it cannot do now, the next pass does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from perfmon.adapters.postgres import partitions
from perfmon.adapters.postgres.transactions import outages_as_storage_unavailable
from perfmon.domain.ports import PruneReport
from perfmon.domain.rollups import DAY, day_start

logger = logging.getLogger(__name__)

# Shared by every perfmon process on a database, and other than schema.MIGRATION_LOCK_KEY: it elects the
# process that maintains the samples' partitions and prunes them.
MAINTENANCE_LOCK_KEY = 0x706572666D6F6E + 1  # "perfmon" in ASCII, plus one

# The UTC day of a time as rollups.day_start computes it: a quotient that rounds up to a whole number
# must not put a time just before midnight into the next day. The first day is spelt out, as
# bucket_start() does: PostgreSQL's float8 division raises "underflow" where a quotient rounds to 0
# (a subnormal time, which the protocol accepts); CASE divides only on the branches that need it.
_DAY_OF = """(CASE
    WHEN {t} < 86400.0 THEN 0.0::float8
    WHEN floor({t} / 86400.0) * 86400.0 > {t} THEN floor({t} / 86400.0) * 86400.0 - 86400.0
    WHEN {t} >= floor({t} / 86400.0) * 86400.0 + 86400.0 THEN floor({t} / 86400.0) * 86400.0 + 86400.0
    ELSE floor({t} / 86400.0) * 86400.0 END)"""


@contextmanager
def maintenance_lock(engine: Engine) -> Iterator[Connection | None]:
    """A connection holding the maintenance lock, or None when another process holds it.

    A session-level lock: it outlives the transactions of the pass, and dies with the connection if the
    process does. Outages raise StorageUnavailable."""
    with outages_as_storage_unavailable(), engine.connect() as connection:
        query = text("SELECT pg_try_advisory_lock(:key)")
        held = connection.execute(query, {"key": MAINTENANCE_LOCK_KEY}).scalar_one()
        connection.commit()
        if not held:
            yield None
            return
        try:
            yield connection
        finally:
            _unlock(connection)


def _unlock(connection: Connection) -> None:
    try:
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MAINTENANCE_LOCK_KEY})
        connection.commit()
    except SQLAlchemyError:
        # The connection is broken: discard it, which ends its server process and so the lock.
        connection.invalidate()


# Units (one UTC day of one series, raw; of one series and width, rollups) and bytes on disk.
_Measure = tuple[int, int]


@dataclass(frozen=True)
class _Plan:
    """What a prune drops, measured: the old daily partitions, the default partition's old rows and
    the old rollups."""

    raw_cutoff: float | None
    rollup_cutoff: float | None
    partitions: dict[str, _Measure] = field(default_factory=dict)
    default: _Measure = (0, 0)
    rollups: _Measure = (0, 0)

    def report(self, applied: bool, dropped: Iterable[str] | None = None) -> PruneReport:
        """The report of the plan, or of the part of it done (`dropped`: the partitions that went)."""
        names = self.partitions if dropped is None else dropped
        raw = [self.partitions[name] for name in names] + [self.default]
        return PruneReport(
            applied=applied,
            raw_units=sum(units for units, _ in raw),
            raw_bytes=sum(size for _, size in raw),
            rollup_units=self.rollups[0],
            rollup_bytes=self.rollups[1],
        )


class PostgresHistoryMaintenance:
    """maintain() and prune() of the PostgreSQL sample storage."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def maintain(self, now: float) -> None:
        with maintenance_lock(self._engine) as connection:
            if connection is None:
                logger.debug("maintenance skipped: another perfmon process is doing it")
                return
            with outages_as_storage_unavailable():
                partitions.make_partitions_for_now(connection, now)

    def prune(self, raw_before: float | None, rollups_before: float | None, apply: bool) -> PruneReport:
        if not apply:
            # Changes nothing, so needs no lock.
            with outages_as_storage_unavailable(), self._engine.connect() as connection:
                return _plan(connection, raw_before, rollups_before).report(applied=False)
        with maintenance_lock(self._engine) as connection:
            if connection is None:
                logger.warning("prune skipped: another perfmon process is maintaining the database now")
                return PruneReport(applied=False)
            with outages_as_storage_unavailable():
                return _apply(connection, _plan(connection, raw_before, rollups_before))


def _plan(connection: Connection, raw_before: float | None, rollups_before: float | None) -> _Plan:
    """What a prune at these cutoffs drops, measured in one transaction."""
    raw_cutoff = None if raw_before is None else day_start(raw_before)
    rollup_cutoff = None if rollups_before is None else day_start(rollups_before)
    old: dict[str, _Measure] = {}
    default = rollups = (0, 0)
    with connection.begin():
        # Counting what goes may read much of the default partition: no statement timeout.
        partitions.set_maintenance_limits(connection)
        if raw_cutoff is not None:
            for day, name in sorted(partitions.daily_partitions(connection).items()):
                if day + DAY <= raw_cutoff:
                    old[name] = (
                        partitions.distinct_series(connection, name),
                        partitions.total_size(connection, name),
                    )
            default = _old_rows(connection, partitions.DEFAULT_PARTITION, "taken_at", "series_id", raw_cutoff)
        if rollup_cutoff is not None:
            rollups = _old_rows(connection, "rollups", "start", "series_id, width", rollup_cutoff)
    return _Plan(raw_cutoff, rollup_cutoff, old, default, rollups)


def _old_rows(connection: Connection, relation: str, moment: str, series: str, cutoff: float) -> _Measure:
    """The units (distinct series and day) of a relation's rows before the cutoff, and their share of its
    size on disk: in proportion to its rows, counted, or estimated from the planner's statistics when
    they are there (counting a big table would take long)."""
    # Names, not data: the callers pass constants of this module.
    query = text(
        "SELECT count(*) AS units, coalesce(sum(rows), 0) AS rows FROM ("  # noqa: S608 - names only
        f"SELECT count(*) AS rows FROM {relation} WHERE {moment} < :cutoff "
        f"GROUP BY {series}, {_DAY_OF.format(t=moment)}) AS old"
    )
    found = connection.execute(query, {"cutoff": cutoff}).one()
    rows = int(found.rows)
    if not rows:
        return 0, 0
    estimate = text("SELECT reltuples FROM pg_class WHERE oid = CAST(:relation AS regclass)")
    everything = connection.execute(estimate, {"relation": relation}).scalar_one()
    if everything < rows:
        count = text(f"SELECT count(*) FROM {relation}")  # noqa: S608 - a name only
        everything = connection.execute(count).scalar_one()
    size = partitions.total_size(connection, relation)
    return int(found.units), size * rows // max(int(everything), rows)


def _apply(connection: Connection, plan: _Plan) -> PruneReport:
    """Drop what the plan found: whole partitions, then old rows of the default partition and rollups."""
    dropped: list[str] = []
    for name in plan.partitions:
        try:
            with connection.begin():
                partitions.set_maintenance_limits(connection)
                partitions.drop_partition(connection, name)
        except OperationalError as error:
            if not partitions.is_lock_timeout(error):
                raise
            logger.info("partition %s not dropped: the database is busy; the next pass tries again", name)
            continue
        dropped.append(name)
    # Nothing old found, nothing to delete: what a backfill of days long gone adds meanwhile, the next
    # pass finds.
    if plan.raw_cutoff is not None and plan.default[0]:
        with connection.begin():
            partitions.set_maintenance_limits(connection)
            connection.execute(
                text(f"DELETE FROM {partitions.DEFAULT_PARTITION} WHERE taken_at < :cutoff"),  # noqa: S608
                {"cutoff": plan.raw_cutoff},
            )
    if plan.rollup_cutoff is not None and plan.rollups[0]:
        with connection.begin():
            partitions.set_maintenance_limits(connection)
            connection.execute(
                text("DELETE FROM rollups WHERE start < :cutoff"), {"cutoff": plan.rollup_cutoff}
            )
    return plan.report(applied=True, dropped=dropped)
