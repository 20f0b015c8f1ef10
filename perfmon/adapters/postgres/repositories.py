"""The repository ports over PostgreSQL: one short transaction per call, bound parameters only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from psycopg2 import errorcodes
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    Text,
    cast,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from perfmon.adapters.postgres import sample_reads
from perfmon.adapters.postgres.driver_errors import violates
from perfmon.adapters.postgres.group_commit import GroupCommitWriter
from perfmon.adapters.postgres.maintenance import PostgresHistoryMaintenance
from perfmon.adapters.postgres.series_ids import SeriesIds
from perfmon.adapters.postgres.tables import (
    ACCESS_CHANGES_ROW,
    USERS_NAME_UNIQUE,
    access_changes,
    access_keys,
    rollups,
    samples,
    series,
    sessions,
    users,
)
from perfmon.adapters.postgres.transactions import transaction
from perfmon.adapters.session_cache import SessionCache
from perfmon.domain.downsampling import zeros_ordered
from perfmon.domain.errors import StorageUnavailable, UsernameTaken
from perfmon.domain.model import (
    AccessKey,
    Point,
    Sample,
    SampleSeries,
    SampleSummary,
    Scope,
    Session,
    SessionStatus,
    TimeRange,
    User,
    Username,
)
from perfmon.domain.ports import (
    HistoryMaintenance,
    KeyRepository,
    PruneReport,
    SampleRepository,
    SessionRepository,
    UserRepository,
)
from perfmon.domain.rollups import DAY, RollupBucket, check_width

# Bounds the memory of the session cache; the least recently used make room (a miss only costs one
# indexed lookup).
SESSION_CACHE_LIMIT = 100_000


class PostgresUserRepository(UserRepository):
    """Users in the users table; the unique constraint on the name decides races."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, user: User) -> None:
        try:
            with transaction(self._engine) as connection:
                connection.execute(
                    insert(users).values(name=user.name.value, password_hash=user.password_hash)
                )
        except IntegrityError as error:
            if not violates(error, errorcodes.UNIQUE_VIOLATION, USERS_NAME_UNIQUE):
                raise
            raise UsernameTaken() from None

    def get(self, name: Username) -> User | None:
        query = select(users.c.name, users.c.password_hash).where(users.c.name == name.value)
        with transaction(self._engine) as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else User(Username(row.name), row.password_hash)

    def remove_unused(self, name: Username) -> None:
        has_session = exists().where(sessions.c.user_id == users.c.id)
        statement = delete(users).where(users.c.name == name.value, ~has_session)
        try:
            with transaction(self._engine) as connection:
                connection.execute(statement)
        except IntegrityError as error:
            # A session committed between the statement's snapshot and its delete: the foreign key
            # (no cascade) refuses to orphan it, and a user in use is to stay.
            if getattr(error.orig, "pgcode", None) != errorcodes.FOREIGN_KEY_VIOLATION:
                raise


class PostgresSessionRepository(SessionRepository):
    """Sessions in the sessions table, never deleted; a closed one keeps its row with its closed_at.

    get() goes through a SessionCache whose change mark is the access_changes row, which every logout and
    revocation moves in its own transaction (PROTOCOL.md part 4: a closed session is refused by every
    process within a second)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: SessionCache[Session] = SessionCache(self.read_mark, SESSION_CACHE_LIMIT)

    def add(self, session: Session) -> None:
        owner = select(users.c.id).where(users.c.name == session.user.value).scalar_subquery()
        statement = insert(sessions).values(
            token=session.token,
            user_id=owner,
            created_at=session.created_at,
            host=session.host,
            scope=session.scope.value,
            key_id=session.key_id,
        )
        with transaction(self._engine) as connection:
            connection.execute(statement)
        # Not cached here: only a load computes `closed` from the state of the key, and a login racing
        # a revocation of its key would otherwise cache its session open for good.

    def get(self, token: str) -> Session | None:
        return self._cache.get(token, self._load)

    def _load(self, token: str) -> Session | None:
        """The session as stored now, closed when logged out or when its key is revoked: one lookup by
        the two primary keys. Absent tokens are not cached: they cost a lookup each, but fill no memory."""
        with transaction(self._engine) as connection:
            row = connection.execute(_sessions_as_stored().where(sessions.c.token == token)).one_or_none()
        return None if row is None else _session(row)

    def for_user(self, user: Username) -> list[Session]:
        # No arrival order is stored for sessions: equal creation times (equal clock readings) are ordered
        # by token, which is stable but not "later added first" as the port asks.
        query = (
            _sessions_as_stored()
            .where(users.c.name == user.value)
            .order_by(sessions.c.created_at.desc(), sessions.c.token.desc())
        )
        with transaction(self._engine) as connection:
            return [_session(row) for row in connection.execute(query)]

    def close(self, token: str, at: float) -> None:
        statement = update(sessions).where(sessions.c.token == token, sessions.c.closed_at.is_(None))
        with transaction(self._engine) as connection:
            if connection.execute(statement.values(closed_at=at)).rowcount:
                _move_change_mark(connection)
        # Also when this closed nothing: another process may have closed it, and this one may still
        # hold it open.
        self.changed()

    def changed(self) -> None:
        """This process has just stored a closing (a logout, a revocation): forget every cached session."""
        self._cache.changed()

    def read_mark(self) -> int | None:
        """The change mark of closings (access_changes), None while no closing has been stored.
        Raises StorageUnavailable when the database cannot be reached."""
        with transaction(self._engine) as connection:
            return connection.execute(select(access_changes.c.mark)).scalar_one_or_none()


class PostgresKeyRepository(KeyRepository):
    """Access keys in the access_keys table (PROTOCOL.md part 4), by their digest, never the key; a
    revoked key keeps its row (its sessions refer to it) with revoked_at, and no read finds it."""

    def __init__(self, engine: Engine, sessions: PostgresSessionRepository) -> None:
        self._engine = engine
        self._sessions = sessions

    def add(self, key: AccessKey) -> None:
        owner = select(users.c.id).where(users.c.name == key.user.value).scalar_subquery()
        statement = insert(access_keys).values(
            id=key.id,
            user_id=owner,
            scope=key.scope.value,
            name=key.name,
            created_at=key.created_at,
            digest=key.digest,
            last_used=key.last_used,
        )
        try:
            with transaction(self._engine) as connection:
                connection.execute(statement)
        except IntegrityError as error:
            # As the port says: an id or digest in use is the caller's bug (random ones never repeat).
            if getattr(error.orig, "pgcode", None) != errorcodes.UNIQUE_VIOLATION:
                raise
            raise ValueError("key id or digest already in use") from None

    def by_digest(self, digest: str) -> AccessKey | None:
        query = _live_keys().where(access_keys.c.digest == digest)
        with transaction(self._engine) as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else _key(row)

    def for_user(self, user: Username) -> list[AccessKey]:
        # Of equal creation times (equal clock readings), the order of the ids: stable, not arrival.
        query = (
            _live_keys()
            .where(users.c.name == user.value)
            .order_by(access_keys.c.created_at, access_keys.c.id)
        )
        with transaction(self._engine) as connection:
            return [_key(row) for row in connection.execute(query)]

    def revoke(self, user: Username, key_id: str, at: float) -> bool:
        owner = select(users.c.id).where(users.c.name == user.value).scalar_subquery()
        revoke = (
            update(access_keys)
            .where(
                access_keys.c.id == key_id, access_keys.c.user_id == owner, access_keys.c.revoked_at.is_(None)
            )
            .values(revoked_at=at)
        )
        close = (
            update(sessions)
            .where(sessions.c.key_id == key_id, sessions.c.closed_at.is_(None))
            .values(closed_at=at)
        )
        with transaction(self._engine) as connection:
            if not connection.execute(revoke).rowcount:
                return False
            # A session stored after this commits, by a login that found the key live, reads closed
            # anyway: its load sees the key's revoked_at.
            connection.execute(close)
            _move_change_mark(connection)
        self._sessions.changed()
        return True

    def mark_used(self, key_id: str, at: float) -> None:
        # greatest() ignores NULL: the first use sets it; processes racing keep the latest.
        statement = (
            update(access_keys)
            .where(access_keys.c.id == key_id)
            .values(last_used=func.greatest(access_keys.c.last_used, at))
        )
        with transaction(self._engine) as connection:
            connection.execute(statement)


class PostgresSampleRepository(SampleRepository, HistoryMaintenance):
    """Named series (series), their samples in a table partitioned by day (samples), and their rollups
    (rollups), kept up to date in the transaction that stores the samples; see tables.py."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._series = SeriesIds()
        self._writer = GroupCommitWriter(engine, self._series)
        self._maintenance = PostgresHistoryMaintenance(engine)

    def status(self, tokens: Sequence[str]) -> dict[str, SessionStatus]:
        # One query for every session: its row's `seen` and `first`, its series rows' latest samples. Kept
        # by each append (group_commit.py), so a few rows a session, never a scan of samples.
        if not tokens:
            return {}
        query = (
            select(
                sessions.c.token,
                sessions.c.seen,
                sessions.c.first,
                series.c.metric,
                series.c.latest_value,
                series.c.latest_at,
            )
            .join_from(sessions, series, series.c.session_token == sessions.c.token)
            .where(
                sessions.c.token.in_(list(tokens)),
                sessions.c.first.is_not(None),
                series.c.latest_at.is_not(None),
            )
        )
        found: dict[str, tuple[float | None, float, dict[str, Point]]] = {}
        with transaction(self._engine) as connection:
            for token, seen, first, metric, value, moment in connection.execute(query):
                found.setdefault(token, (seen, first, {}))[2][metric] = Point(value, moment)
        return {token: SessionStatus(seen, first, latest) for token, (seen, first, latest) in found.items()}

    def append(self, token: str, samples: Sequence[Sample], received_at: float | None = None) -> None:
        # Concurrent requests share one statement and one commit; each returns once its samples are committed,
        # all of them or none, with identities in the order of the list, and the session's status moved.
        if samples:
            self._writer.append(token, samples, received_at)

    def between(self, token: str, metric: str, time_range: TimeRange) -> SampleSeries:
        # Every sample's doubles in one row of bytes, in the key's order (sample_reads.py): a read of
        # 100,000 samples makes two floats a sample and no other object. The time bounds are constants
        # to the planner, which reads only the partitions they meet.
        with transaction(self._engine) as connection:
            series_id = self._series_id(connection, token, metric)
            if series_id is None:
                return SampleSeries([], [])
            within = [samples.c.series_id == series_id, *_within(samples.c.taken_at, time_range)]
            return sample_reads.series_where(connection, within)

    def rollups(self, token: str, metric: str, width: float, time_range: TimeRange) -> list[RollupBucket]:
        check_width(width)
        with transaction(self._engine) as connection:
            series_id = self._series_id(connection, token, metric)
            if series_id is None:
                return []
            rows = connection.execute(_rollups_query(series_id, width, time_range)).all()
        # A few microseconds a bucket: a step read of a month of minutes reads 43,200 of them.
        buckets = []
        for start, count, mantissa, shift, low, high, negative_zero, positive_zero, first, last in rows:
            low, high = zeros_ordered(low, high, negative_zero, positive_zero)
            total = int(mantissa) << shift
            buckets.append(RollupBucket(width, start, count, total, low, high, first, last))
        return buckets

    def _series_id(self, connection: Connection, token: str, metric: str) -> int | None:
        """The id of the session's series of that metric, or None when it has none; cached, as series are
        never deleted. Looked up before the read rather than in it: with the id as a constant the planner
        reads each partition's statistics (in a partition where another series is the only one, a
        subquery's unknown id looked like every row, and the whole partition was scanned)."""
        series_id = self._series.get((token, metric))
        if series_id is None:
            lookup = select(series.c.id).where(series.c.session_token == token, series.c.metric == metric)
            series_id = connection.execute(lookup).scalar_one_or_none()
            if series_id is not None:
                self._series.remember({(token, metric): series_id})
        return series_id

    def summaries(self, tokens: Sequence[str], metric: str) -> dict[str, SampleSummary]:
        if not tokens:
            return {}
        # From the day rollups: a few rows per session, and still right after raw samples are pruned.
        query = (
            select(
                series.c.session_token,
                func.sum(rollups.c["count"]).label("samples"),
                func.min(rollups.c.first_at).label("first"),
                func.max(rollups.c.last_at).label("last"),
            )
            .join_from(series, rollups, rollups.c.series_id == series.c.id)
            .where(
                series.c.session_token.in_(list(tokens)),
                series.c.metric == metric,
                rollups.c.width == int(DAY),
            )
            .group_by(series.c.session_token)
        )
        with transaction(self._engine) as connection:
            return {
                row.session_token: SampleSummary(count=int(row.samples), first=row.first, last=row.last)
                for row in connection.execute(query)
            }

    def metrics(self, token: str) -> list[str]:
        query = select(series.c.metric).where(series.c.session_token == token)
        with transaction(self._engine) as connection:
            # Sorted here: the database's collation may order "_" otherwise than Python does.
            return sorted(connection.execute(query).scalars())

    def maintain(self, now: float) -> None:
        self._maintenance.maintain(now)

    def prune(self, raw_before: float | None, rollups_before: float | None, apply: bool) -> PruneReport:
        return self._maintenance.prune(raw_before, rollups_before, apply)


class DatabaseHealth:
    """The readiness probe of the db storage: can a connection from the pool write now."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def check(self) -> None:
        """Return when the database answers and accepts writes; raise StorageUnavailable when it does not
        (unreachable, or read-only: a standby, or `default_transaction_read_only` set)."""
        with transaction(self._engine) as connection:
            read_only = connection.execute(select(func.current_setting("transaction_read_only"))).scalar()
        if read_only == "on":
            raise StorageUnavailable("the database accepts no writes (read-only)")


def _sessions_as_stored() -> Select[tuple[str, str, float, str | None, str, str | None, bool]]:
    """Sessions with their user's name and whether they are closed, as a Session needs them: closed when
    logged out or when the key that opened it is revoked (PROTOCOL.md part 4)."""
    closed = or_(sessions.c.closed_at.is_not(None), access_keys.c.revoked_at.is_not(None))
    return (
        select(
            sessions.c.token,
            users.c.name,
            sessions.c.created_at,
            sessions.c.host,
            sessions.c.scope,
            sessions.c.key_id,
            closed.label("closed"),
        )
        .join_from(sessions, users, sessions.c.user_id == users.c.id)
        .outerjoin(access_keys, access_keys.c.id == sessions.c.key_id)
    )


def _session(row: Row[tuple[str, str, float, str | None, str, str | None, bool]]) -> Session:
    return Session(
        token=row.token,
        user=Username(row.name),
        created_at=row.created_at,
        host=row.host,
        scope=Scope(row.scope),
        key_id=row.key_id,
        closed=row.closed,
    )


def _live_keys() -> Select[tuple[str, str, str, str, float, str, float | None]]:
    """Unrevoked keys with their user's name, as an AccessKey needs them."""
    return (
        select(
            access_keys.c.id,
            users.c.name,
            access_keys.c.scope,
            access_keys.c.name.label("key_name"),
            access_keys.c.created_at,
            access_keys.c.digest,
            access_keys.c.last_used,
        )
        .join_from(access_keys, users, access_keys.c.user_id == users.c.id)
        .where(access_keys.c.revoked_at.is_(None))
    )


def _key(row: Row[tuple[str, str, str, str, float, str, float | None]]) -> AccessKey:
    return AccessKey(
        id=row.id,
        user=Username(row.name),
        scope=Scope(row.scope),
        name=row.key_name,
        created_at=row.created_at,
        digest=row.digest,
        last_used=row.last_used,
    )


def _move_change_mark(connection: Connection) -> None:
    """Move the change mark of closings, in the transaction of the closing: a process that reads the new
    mark reads the closing too. Inserts the row when it is missing (no closing yet, or tables emptied),
    from the database's clock in microseconds rather than 1, so that a row deleted and made again never
    repeats a mark that a running process last read (it would miss the closing)."""
    first_mark = cast(func.floor(func.extract("epoch", func.clock_timestamp()) * 1_000_000), BigInteger)
    statement = (
        pg_insert(access_changes)
        .values(id=ACCESS_CHANGES_ROW, mark=first_mark)
        .on_conflict_do_update(index_elements=[access_changes.c.id], set_={"mark": access_changes.c.mark + 1})
    )
    connection.execute(statement)


def _within(moment: ColumnElement[float], time_range: TimeRange) -> list[ColumnElement[bool]]:
    """The conditions that keep the moments within the inclusive range."""
    conditions = []
    if time_range.start is not None:
        conditions.append(moment >= time_range.start)
    if time_range.end is not None:
        conditions.append(moment <= time_range.end)
    return conditions


def _rollups_query(series_id: int, width: float, time_range: TimeRange) -> Select[*tuple[Any, ...]]:
    """The series' buckets of the width whose first..last span meets the range, oldest first."""
    conditions = [rollups.c.series_id == series_id, rollups.c.width == int(width)]
    # A bucket meets the range when its first..last span does. Its start lies within a width of its
    # samples (give or take rounding: the bounds allow a width more), so bounds on the start make a
    # range scan of the key, and the exact test on first and last then keeps the right buckets.
    if time_range.start is not None:
        conditions.append(rollups.c.last_at >= time_range.start)
        if math.isfinite(time_range.start - 2 * width):
            conditions.append(rollups.c.start >= time_range.start - 2 * width)
    if time_range.end is not None:
        conditions.append(rollups.c.first_at <= time_range.end)
        if math.isfinite(time_range.end + width):
            conditions.append(rollups.c.start <= time_range.end + width)
    return (
        select(
            rollups.c.start,
            rollups.c["count"],
            # As text: Python reads a whole number from text faster than from a Decimal.
            cast(rollups.c.total_mantissa, Text),
            rollups.c.total_shift,
            rollups.c.low,
            rollups.c.high,
            rollups.c.negative_zero,
            rollups.c.positive_zero,
            rollups.c.first_at,
            rollups.c.last_at,
        )
        .where(*conditions)
        .order_by(rollups.c.start)
    )
