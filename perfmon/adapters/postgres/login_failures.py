"""A `limits` storage over PostgreSQL, so that every perfmon process on a database shares the counts.

limits ships storages for Redis, Memcached and MongoDB, not PostgreSQL; its Storage interface (a counter
per key with an expiry) fits one table and one upsert, so this is an adapter to it rather than a port
of our own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits.storage import Storage
from sqlalchemy import Delete, Engine, case, delete, select
from sqlalchemy.dialects.postgresql import insert

from perfmon.adapters.postgres.tables import login_failures
from perfmon.adapters.postgres.transactions import transaction
from perfmon.domain.errors import StorageUnavailable

# Expired counters deleted per increment: enough to keep up with the increments that make them.
_PRUNE_BATCH = 100


class PostgresLimitsStorage(Storage):
    """limits' fixed-window counters in the login_failures table; each call is one short transaction."""

    # Not registered under a URI scheme: bootstrap builds it with the engine it owns.
    STORAGE_SCHEME = None

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._engine = engine
        # Epoch seconds, as limits' own storages read them; injected so that a test can expire a key.
        self._clock = clock

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return StorageUnavailable

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add to the key's count, starting it anew (expiring after `expiry` seconds) if it had expired."""
        now = self._clock()
        table = login_failures
        fresh = insert(table).values(key=key, count=amount, expires_at=now + expiry)
        expired = table.c.expires_at <= now
        statement = fresh.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((expired, fresh.excluded.count), else_=table.c.count + fresh.excluded.count),
                "expires_at": case((expired, fresh.excluded.expires_at), else_=table.c.expires_at),
            },
        ).returning(table.c.count)
        with transaction(self._engine) as connection:
            count = connection.execute(statement).scalar_one()
            connection.execute(_prune(now))
        return int(count)

    def get(self, key: str) -> int:
        query = select(login_failures.c.count).where(
            login_failures.c.key == key, login_failures.c.expires_at > self._clock()
        )
        with transaction(self._engine) as connection:
            return int(connection.execute(query).scalar_one_or_none() or 0)

    def get_expiry(self, key: str) -> float:
        now = self._clock()
        query = select(login_failures.c.expires_at).where(
            login_failures.c.key == key, login_failures.c.expires_at > now
        )
        with transaction(self._engine) as connection:
            expires_at = connection.execute(query).scalar_one_or_none()
        return now if expires_at is None else float(expires_at)

    def check(self) -> bool:
        try:
            with transaction(self._engine) as connection:
                connection.execute(select(login_failures.c.key).limit(1))
        except StorageUnavailable:
            return False
        return True

    def reset(self) -> int | None:
        with transaction(self._engine) as connection:
            return connection.execute(delete(login_failures)).rowcount

    def clear(self, key: str) -> None:
        with transaction(self._engine) as connection:
            connection.execute(delete(login_failures).where(login_failures.c.key == key))


def _prune(now: float) -> Delete:
    """Delete some expired counters; SKIP LOCKED: increments running at once never wait for each other."""
    expired = (
        select(login_failures.c.key)
        .where(login_failures.c.expires_at <= now)
        .limit(_PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    return delete(login_failures).where(login_failures.c.key.in_(expired.scalar_subquery()))
