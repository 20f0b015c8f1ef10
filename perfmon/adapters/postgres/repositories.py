"""The repository ports over PostgreSQL: one short transaction per call, bound parameters only."""

from __future__ import annotations

import threading
import typing
from collections.abc import Sequence
from typing import Any

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
from sqlalchemy.dialects.postgresql import BIT, aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import case
from sqlalchemy.types import BigInteger, Numeric

from perfmon.adapters.postgres.driver_errors import violates
from perfmon.adapters.postgres.group_commit import GroupCommitWriter
from perfmon.adapters.postgres.tables import USERS_NAME_UNIQUE, cpu_samples, sessions, users
from perfmon.adapters.postgres.transactions import transaction
from perfmon.domain.downsampling import BucketTotals, zeros_ordered
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
            row = connection.execute(query).one()
        # array_agg of double precision columns: psycopg2 gives lists of floats (None when no row matched).
        cpu, taken_at = (typing.cast(list[float], column or []) for column in row)
        return SampleSeries(cpu, taken_at)

    def buckets(self, token: str, time_range: TimeRange, step: float) -> list[Bucket]:
        # Postgres returns each bucket's exact totals and the domain turns them into figures, as it does
        # for the other storages: the same buckets bit for bit (perfmon.domain.downsampling).
        query = _bucket_totals_query(token, time_range, step)
        with transaction(self._engine) as connection:
            return [_bucket_totals(row).bucket() for row in connection.execute(query)]

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


def _bucket_totals_query(token: str, time_range: TimeRange, step: float) -> Select[tuple[Any, ...]]:
    """start, samples, total, low, high, negative_zero, positive_zero of each bucket (BucketTotals)."""
    # Bound as a double, the step makes Postgres compute bucket_start() in IEEE-754 doubles, bit for bit.
    # The first bucket is spelt out as bucket_start() does: Postgres's float8 division raises "value out
    # of range: underflow" where a quotient rounds to 0 (a subnormal time), and from the second bucket
    # on the quotient is >= 1. CASE evaluates the division only on that branch.
    step_seconds = cast(literal(step), Double)
    taken_at, cpu = cpu_samples.c.taken_at, cpu_samples.c.cpu
    start = case(
        (taken_at < step_seconds, cast(literal(0.0), Double)),
        else_=func.floor(taken_at / step_seconds) * step_seconds,
    )
    # The exact sum, in units of 2^-1074 as exact_sum() counts it: float8 arithmetic (avg) underflows,
    # overflows and rounds, and float8::numeric keeps only 15 digits. A double's IEEE-754 bits give its
    # value exactly: (2^52 + fraction) * 2^(exponent - 1) units, or fraction units when exponent is 0.
    bits = cast(cast(literal("x") + func.encode(func.float8send(cpu), "hex"), BIT(64)), BigInteger)
    exponent = (bits.op(">>")(52)).op("&")(2047)
    fraction = bits.op("&")(2**52 - 1)
    # First per bucket and exponent: sum(bigint) is numeric, exact, and 2^k is computed once per group.
    by_exponent = (
        select(
            start.label("start"),
            exponent.label("exponent"),
            func.count().label("samples"),
            func.sum(fraction).label("fractions"),
            func.min(cpu).label("low"),
            func.max(cpu).label("high"),
            # min() and max() take -0.0 and 0.0 as equal and return either: say which zeros there are.
            func.bool_or((cpu == 0) & (bits < 0)).label("negative_zero"),
            func.bool_or((cpu == 0) & (bits >= 0)).label("positive_zero"),
        )
        .where(*_samples_within(token, time_range))
        .group_by("start", "exponent")
        .subquery()
    )
    group = by_exponent.c
    mantissas = group.fractions + case((group.exponent > 0, group.samples * 2**52), else_=0)
    scale = func.power(cast(literal(2), Numeric), func.greatest(group.exponent, 1) - 1)
    return (
        select(
            group.start,
            # Not labelled "count": Row.count is the tuple method.
            func.sum(group.samples).label("samples"),
            func.sum(mantissas * scale, type_=Numeric(asdecimal=True)).label("total"),
            func.min(group.low).label("low"),
            func.max(group.high).label("high"),
            func.bool_or(group.negative_zero).label("negative_zero"),
            func.bool_or(group.positive_zero).label("positive_zero"),
        )
        .group_by(group.start)
        .order_by(group.start)
    )


def _bucket_totals(row: Row[Any]) -> BucketTotals:
    low, high = zeros_ordered(row.low, row.high, row.negative_zero, row.positive_zero)
    # The numeric sum of whole numbers comes as a Decimal, exactly (possibly with a zero fraction).
    return BucketTotals(start=row.start, count=int(row.samples), total=int(row.total), low=low, high=high)


def _samples_within(token: str, time_range: TimeRange) -> list[ColumnElement[bool]]:
    """The conditions on a session's samples that keep those within the inclusive range."""
    conditions = [cpu_samples.c.session_token == token]
    if time_range.start is not None:
        conditions.append(cpu_samples.c.taken_at >= time_range.start)
    if time_range.end is not None:
        conditions.append(cpu_samples.c.taken_at <= time_range.end)
    return conditions
