"""The repository ports over PostgreSQL: one short transaction per call, bound parameters only."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from psycopg2 import errorcodes
from sqlalchemy import (
    ColumnElement,
    Double,
    Engine,
    Row,
    Select,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError

from perfmon.adapters.postgres.group_commit import GroupCommitWriter
from perfmon.adapters.postgres.tables import USERS_NAME_UNIQUE, cpu_samples, sessions, users
from perfmon.adapters.postgres.transactions import transaction
from perfmon.domain.errors import StorageUnavailable, UsernameTaken
from perfmon.domain.model import (
    Bucket,
    CpuSample,
    SampleSeries,
    SampleSummary,
    Session,
    TimeRange,
    User,
    Username,
)
from perfmon.domain.ports import SampleRepository, SessionRepository, UserRepository

# Bounds the memory of the session cache; the oldest entries make room (FIFO is enough:
# a client uses its newest session, and a miss only costs one indexed lookup).
SESSION_CACHE_LIMIT = 100_000
_AVERAGE_SCALE = 2.0**-64


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
            if not _violates(error, USERS_NAME_UNIQUE):
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
    """Sessions in the sessions table, with found sessions cached: they are never deleted."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._cache: dict[str, Session] = {}
        # Waitress serves from a thread pool; evicting while another thread inserts needs the lock.
        self._cache_lock = threading.Lock()

    def add(self, session: Session) -> None:
        owner = select(users.c.id).where(users.c.name == session.user.value).scalar_subquery()
        statement = insert(sessions).values(token=session.token, user_id=owner, created_at=session.created_at)
        with transaction(self._engine) as connection:
            connection.execute(statement)
        # A client posts right after logging in: remember the session it is about to use.
        self._remember(session)

    def get(self, token: str) -> Session | None:
        with self._cache_lock:
            cached = self._cache.get(token)
        if cached is not None:
            return cached
        with transaction(self._engine) as connection:
            row = connection.execute(_sessions_with_owner().where(sessions.c.token == token)).one_or_none()
        # Absent tokens are not cached: they cost a lookup each, but cannot fill the memory.
        if row is None:
            return None
        session = _session(row)
        self._remember(session)
        return session

    def for_user(self, user: Username) -> list[Session]:
        # No arrival order is stored for sessions: equal creation times (equal clock readings) are ordered
        # by token, which is stable but not "later added first" as the port asks.
        query = (
            _sessions_with_owner()
            .where(users.c.name == user.value)
            .order_by(sessions.c.created_at.desc(), sessions.c.token.desc())
        )
        with transaction(self._engine) as connection:
            return [_session(row) for row in connection.execute(query)]

    def _remember(self, session: Session) -> None:
        with self._cache_lock:
            if len(self._cache) >= SESSION_CACHE_LIMIT:
                del self._cache[next(iter(self._cache))]
            self._cache[session.token] = session


class PostgresSampleRepository(SampleRepository):
    """Samples in the cpu_samples table; the identity column records their arrival order."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = GroupCommitWriter(engine)

    def append(self, token: str, samples: Sequence[CpuSample]) -> None:
        # Concurrent requests share one COPY and one commit; each returns once its samples are committed,
        # all of them or none, with identities in the order of the list.
        if samples:
            self._writer.append(token, samples)

    def between(self, token: str, time_range: TimeRange) -> SampleSeries:
        # Two arrays in one row instead of a row per sample: the driver hands back two lists of floats,
        # so a read of 100,000 samples makes no Python object per sample.
        in_order = (cpu_samples.c.taken_at, cpu_samples.c.id)
        query = select(
            func.array_agg(aggregate_order_by(cpu_samples.c.cpu, *in_order)),
            func.array_agg(aggregate_order_by(cpu_samples.c.taken_at, *in_order)),
        ).where(*_samples_within(token, time_range))
        with transaction(self._engine) as connection:
            cpu, taken_at = connection.execute(query).one()
        return SampleSeries(cpu or [], taken_at or [])

    def buckets(self, token: str, time_range: TimeRange, step: float) -> list[Bucket]:
        # Bound as a double, the step makes Postgres compute floor(t / step) * step in IEEE-754 doubles,
        # as bucket_start() does in Python: the same start, bit for bit. The same bound parameter is
        # rendered in the select list and in GROUP BY, so the two expressions match.
        step_seconds = cast(literal(step), Double)
        start = (func.floor(cpu_samples.c.taken_at / step_seconds) * step_seconds).label("start")
        cpu = cpu_samples.c.cpu
        query = (
            select(
                start,
                # Scaled by a power of two, which is exact: a plain avg() raises on values whose sum
                # passes the largest double, and the protocol puts no upper bound on cpu.
                (func.avg(cpu * _AVERAGE_SCALE) / _AVERAGE_SCALE).label("mean"),
                func.min(cpu).label("low"),
                func.max(cpu).label("high"),
                # Not labelled "count": Row.count is the tuple method.
                func.count().label("samples"),
            )
            .where(*_samples_within(token, time_range))
            .group_by(start)
            .order_by(start)
        )
        with transaction(self._engine) as connection:
            return [
                Bucket(start=row.start, mean=row.mean, low=row.low, high=row.high, count=row.samples)
                for row in connection.execute(query)
            ]

    def summaries(self, tokens: Sequence[str]) -> dict[str, SampleSummary]:
        if not tokens:
            return {}
        taken_at = cpu_samples.c.taken_at
        # One query for all the sessions; the (session_token, taken_at, id) index answers it.
        query = (
            select(
                cpu_samples.c.session_token,
                func.count().label("samples"),
                func.min(taken_at).label("first"),
                func.max(taken_at).label("last"),
            )
            .where(cpu_samples.c.session_token.in_(list(tokens)))
            .group_by(cpu_samples.c.session_token)
        )
        with transaction(self._engine) as connection:
            return {
                row.session_token: SampleSummary(count=row.samples, first=row.first, last=row.last)
                for row in connection.execute(query)
            }


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


def _sessions_with_owner() -> Select[tuple[str, str, float]]:
    """Sessions with their user's name, as a Session needs them."""
    return select(sessions.c.token, users.c.name, sessions.c.created_at).join_from(sessions, users)


def _session(row: Row[tuple[str, str, float]]) -> Session:
    return Session(token=row.token, user=Username(row.name), created_at=row.created_at)


def _samples_within(token: str, time_range: TimeRange) -> list[ColumnElement[bool]]:
    """The conditions on a session's samples that keep those within the inclusive range."""
    conditions = [cpu_samples.c.session_token == token]
    if time_range.start is not None:
        conditions.append(cpu_samples.c.taken_at >= time_range.start)
    if time_range.end is not None:
        conditions.append(cpu_samples.c.taken_at <= time_range.end)
    return conditions


def _violates(error: IntegrityError, constraint: str) -> bool:
    """True when the error is a unique violation of that constraint (psycopg2 tells both)."""
    cause = error.orig
    return (
        getattr(cause, "pgcode", None) == errorcodes.UNIQUE_VIOLATION
        and getattr(getattr(cause, "diag", None), "constraint_name", None) == constraint
    )
