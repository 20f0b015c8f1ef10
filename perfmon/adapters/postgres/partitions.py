"""The daily partitions of the samples table: their names, the ones made ahead of time, and the SQL that
makes, lists, measures and drops them.

The samples table is partitioned by RANGE on taken_at (tables.py). Each partition holds one UTC day,
[d, d + 86400) with d = rollups.day_start(t), and is named after it: `samples_p20231114`. Partitions are
made for the days around now only (DAYS_BEHIND before today to DAYS_AHEAD after); every other time lands
in the DEFAULT partition, so that a client's odd clock never makes perfmon create thousands of
partitions, and no sample is ever refused for want of one.

Making a partition never holds a lock that stops ingest for long: the table is made on its own, the
rows of its day are moved out of the default partition into it while samples keep arriving, and only the
last rows and the ATTACH run under a lock on the default partition, with lock_timeout so that a busy
database makes the next pass try again rather than queue everybody behind it.
"""

from __future__ import annotations

import datetime
import logging
import re

from psycopg2 import errorcodes
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from perfmon.domain.rollups import DAY, day_start

logger = logging.getLogger(__name__)

PARENT = "samples"
DEFAULT_PARTITION = "samples_default"
_PREFIX = "samples_p"
_NAME = re.compile(r"samples_p(\d{8})")
# Days before and after today that have their partition: a late sample of yesterday, and two days made
# ahead, so that a maintenance pass that fails or is late for a day leaves nothing in the default.
DAYS_BEHIND = 1
DAYS_AHEAD = 2
# How long a maintenance statement waits for a lock before giving up until the next pass: the most
# that ingest and reads may queue behind a DDL statement waiting for its lock.
LOCK_TIMEOUT = "1s"


def partition_name(day: float) -> str:
    """The name of the partition of the UTC day that starts at `day` (seconds since the epoch)."""
    return _PREFIX + datetime.datetime.fromtimestamp(day, datetime.UTC).strftime("%Y%m%d")


def partition_day(name: str) -> float | None:
    """The start of the day a partition's name stands for, or None for a name not made by partition_name."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    date = datetime.datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=datetime.UTC)
    return date.timestamp()


def days_around(now: float) -> list[float]:
    """The starts of the days that have a partition at time `now`: yesterday, today and the days ahead."""
    today = day_start(now)
    return [today + offset * DAY for offset in range(-DAYS_BEHIND, DAYS_AHEAD + 1)]


def daily_partitions(connection: Connection) -> dict[float, str]:
    """The attached daily partitions of the samples table, by the start of their day."""
    rows = connection.execute(
        text(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = CAST(:parent AS regclass)"
        ),
        {"parent": PARENT},
    ).scalars()
    found: dict[float, str] = {}
    for name in rows:
        day = partition_day(name)
        if day is not None:
            found[day] = name
    return found


def set_maintenance_limits(connection: Connection) -> None:
    """For the current transaction: wait at most LOCK_TIMEOUT for a lock, and no limit on the statements
    (a move or a delete of many rows may rightly take longer than a request may)."""
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    connection.execute(text("SET LOCAL statement_timeout = 0"))


def make_partition(connection: Connection, day: float) -> int:
    """In the caller's transaction: make the partition of the day, moving the day's rows out of the
    default partition into it; the number of rows moved. The caller commits."""
    name = _quoted(connection, partition_name(day))
    bounds = f"FROM ({day!r}) TO ({day + DAY!r})"
    # Names, not data: the partition's name is made by partition_name() and quoted.
    move = text(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608 - names only
        "WHERE taken_at >= :low AND taken_at < :high RETURNING series_id, taken_at, id, value) "
        f"INSERT INTO {name} (series_id, taken_at, id, value) "
        "SELECT series_id, taken_at, id, value FROM moved"
    )
    # Made on its own and attached afterwards: CREATE TABLE ... PARTITION OF would lock the whole samples
    # table against every read and write, ATTACH only against other DDL.
    connection.execute(text(f"CREATE TABLE {name} (LIKE {PARENT})"))
    # Most rows move while samples keep arriving in the default partition...
    moved = connection.execute(move, {"low": day, "high": day + DAY}).rowcount
    # ...and the few that arrived meanwhile under a lock that holds off new ones until the commit: the
    # ATTACH checks that the default partition holds none of the day's rows. An insert that was already
    # routed to the default partition fails its partition check after the commit; the writer retries it.
    connection.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN SHARE ROW EXCLUSIVE MODE"))
    moved += connection.execute(move, {"low": day, "high": day + DAY}).rowcount
    connection.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES {bounds}"))
    return moved


def make_partitions_for_now(connection: Connection, now: float) -> list[str]:
    """Make the partitions of the days around `now` that are missing, each in a transaction of its own
    on the caller's connection (which must have none open); the names of those made.

    A day whose partition cannot be made now (a lock not granted within LOCK_TIMEOUT) is left for the
    next call: its samples wait in the default partition meanwhile. Other errors propagate.
    """
    made: list[str] = []
    existing = daily_partitions(connection)
    connection.commit()
    for day in days_around(now):
        if day in existing:
            continue
        try:
            with connection.begin():
                set_maintenance_limits(connection)
                moved = make_partition(connection, day)
        except OperationalError as error:
            if not is_lock_timeout(error):
                raise
            logger.info(
                "partition %s not made: the database is busy; the next pass tries again", partition_name(day)
            )
            continue
        logger.info("made partition %s (%d samples moved into it)", partition_name(day), moved)
        made.append(partition_name(day))
    return made


def is_lock_timeout(error: OperationalError) -> bool:
    """True when the statement gave up waiting for a lock (lock_timeout): try again later."""
    return getattr(error.orig, "pgcode", None) == errorcodes.LOCK_NOT_AVAILABLE


def distinct_series(connection: Connection, partition: str) -> int:
    """How many series have samples in the partition: a skip scan of its key, one probe per series."""
    name = _quoted(connection, partition)
    query = text(
        "WITH RECURSIVE found (series_id) AS ("  # noqa: S608 - a quoted name only
        f"(SELECT series_id FROM ONLY {name} ORDER BY series_id LIMIT 1) "
        f"UNION ALL SELECT (SELECT series_id FROM ONLY {name} WHERE series_id > found.series_id "
        "ORDER BY series_id LIMIT 1) FROM found WHERE found.series_id IS NOT NULL"
        ") SELECT count(series_id) FROM found"
    )
    return int(connection.execute(query).scalar_one())


def total_size(connection: Connection, relation: str) -> int:
    """Bytes on disk of the relation with its indexes and TOAST (pg_total_relation_size)."""
    query = text("SELECT pg_total_relation_size(CAST(:relation AS regclass))")
    return int(connection.execute(query, {"relation": relation}).scalar_one())


def drop_partition(connection: Connection, partition: str) -> None:
    """In the caller's transaction: drop the partition and its samples (it takes a brief exclusive lock
    on the samples table, within LOCK_TIMEOUT)."""
    connection.execute(text(f"DROP TABLE {_quoted(connection, partition)}"))


def _quoted(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)
