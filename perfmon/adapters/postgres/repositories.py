"""The repository ports over PostgreSQL: one short transaction per call, bound parameters only."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from psycopg2 import errorcodes
from sqlalchemy import Engine, Row, insert, literal, select
from sqlalchemy.exc import IntegrityError

from perfmon.adapters.postgres.tables import USERS_NAME_UNIQUE, cpu_samples, sessions, users
from perfmon.adapters.postgres.transactions import transaction
from perfmon.domain.errors import UsernameTaken
from perfmon.domain.model import CpuSample, Session, TimeRange, User, Username
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
            if not _violates(error, USERS_NAME_UNIQUE):
                raise
            raise UsernameTaken() from None

    def get(self, name: Username) -> User | None:
        query = select(users.c.name, users.c.password_hash).where(users.c.name == name.value)
        with transaction(self._engine) as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else User(Username(row.name), row.password_hash)


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
        query = (
            select(sessions.c.token, users.c.name, sessions.c.created_at)
            .join_from(sessions, users)
            .where(sessions.c.token == token)
        )
        with transaction(self._engine) as connection:
            row = connection.execute(query).one_or_none()
        # Absent tokens are not cached: they cost a lookup each, but cannot fill the memory.
        if row is None:
            return None
        session = Session(token=row.token, user=Username(row.name), created_at=row.created_at)
        self._remember(session)
        return session

    def _remember(self, session: Session) -> None:
        with self._cache_lock:
            if len(self._cache) >= SESSION_CACHE_LIMIT:
                del self._cache[next(iter(self._cache))]
            self._cache[session.token] = session


class PostgresSampleRepository(SampleRepository):
    """Samples in the cpu_samples table; the identity column records their arrival order."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(self, token: str, samples: Sequence[CpuSample]) -> None:
        if not samples:  # executemany refuses an empty list; there is nothing to store anyway
            return
        rows = [{"session_token": token, "taken_at": s.taken_at, "cpu": s.cpu} for s in samples]
        # One executemany (batched into multi-row INSERTs by SQLAlchemy) in one transaction:
        # all samples or none, and rows get their identities in the order of the list.
        with transaction(self._engine) as connection:
            connection.execute(insert(cpu_samples), rows)

    def between(self, token: str, time_range: TimeRange) -> list[CpuSample]:
        query = select(cpu_samples.c.cpu, cpu_samples.c.taken_at).where(cpu_samples.c.session_token == token)
        if time_range.start is not None:
            query = query.where(cpu_samples.c.taken_at >= time_range.start)
        if time_range.end is not None:
            query = query.where(cpu_samples.c.taken_at <= time_range.end)
        query = query.order_by(cpu_samples.c.taken_at, cpu_samples.c.id)
        with transaction(self._engine) as connection:
            return [_sample(row) for row in connection.execute(query)]


class DatabaseHealth:
    """The readiness probe of the db storage: can a connection from the pool run a query now."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def check(self) -> None:
        """Return when the database answers; raise StorageUnavailable when it does not."""
        with transaction(self._engine) as connection:
            connection.execute(select(literal(1)))


def _sample(row: Row[tuple[float, float]]) -> CpuSample:
    return CpuSample(cpu=row.cpu, taken_at=row.taken_at)


def _violates(error: IntegrityError, constraint: str) -> bool:
    """True when the error is a unique violation of that constraint (psycopg2 tells both)."""
    cause = error.orig
    return (
        getattr(cause, "pgcode", None) == errorcodes.UNIQUE_VIOLATION
        and getattr(getattr(cause, "diag", None), "constraint_name", None) == constraint
    )
