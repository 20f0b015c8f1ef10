"""Builds each storage adapter behind the ports, so one contract suite can run against all of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from perfmon.adapters.filesystem import FileStorage
from perfmon.adapters.memory import (
    InMemoryKeyRepository,
    InMemorySampleRepository,
    InMemorySessionRepository,
    InMemoryUserRepository,
)
from perfmon.adapters.postgres.repositories import (
    PostgresKeyRepository,
    PostgresSampleRepository,
    PostgresSessionRepository,
    PostgresUserRepository,
)
from perfmon.domain.model import Bucket, SampleSeries, TimeRange
from perfmon.domain.ports import (
    HistoryMaintenance,
    KeyRepository,
    SampleRepository,
    SessionRepository,
    UserRepository,
)
from perfmon.domain.rollups import RollupBucket, stepped_buckets


@dataclass
class Repositories:
    """The repositories of one storage, and its maintenance (the same object as its samples).

    `another_process()` gives the same storage's repositories as a second process has them: its own
    caches, the same data dir or database (the memory storage, one process's by nature, gives itself)."""

    users: UserRepository
    sessions: SessionRepository
    samples: SampleRepository
    maintenance: HistoryMaintenance
    keys: KeyRepository
    another_process: Callable[[], Repositories]


def memory_repositories() -> Repositories:
    sessions = InMemorySessionRepository()
    samples = InMemorySampleRepository(sessions)
    keys = InMemoryKeyRepository(sessions)
    repos = Repositories(InMemoryUserRepository(sessions), sessions, samples, samples, keys, lambda: repos)
    return repos


def postgres_repositories(engine: Engine) -> Repositories:
    """The Postgres adapters over one engine; the caller owns the engine and the database's contents."""
    samples = PostgresSampleRepository(engine)
    sessions = PostgresSessionRepository(engine)
    return Repositories(
        PostgresUserRepository(engine),
        sessions,
        samples,
        samples,
        PostgresKeyRepository(engine, sessions),
        lambda: postgres_repositories(engine),
    )


def filesystem_repositories(data_dir: Path) -> Repositories:
    """The file adapters over a data dir; fsync off, as durability against power cuts is not under test."""
    storage = FileStorage(data_dir, fsync=False)
    return Repositories(
        storage.users,
        storage.sessions,
        storage.samples,
        storage.samples,
        storage.keys,
        lambda: filesystem_repositories(data_dir),
    )


class StoredSeries:
    """One series of a storage, as the domain's step read uses it (rollups.SeriesSource)."""

    def __init__(self, repos: Repositories, token: str, metric: str) -> None:
        self._repos, self._token, self._metric = repos, token, metric

    def between(self, time_range: TimeRange) -> SampleSeries:
        return self._repos.samples.between(self._token, self._metric, time_range)

    def rollups(self, width: float, time_range: TimeRange) -> list[RollupBucket]:
        return self._repos.samples.rollups(self._token, self._metric, width, time_range)


def stored_buckets(repos: Repositories, token: str, time_range: TimeRange, step: float) -> list[Bucket]:
    """The `cpu` series of the session downsampled as GET /cpu?step= does: from the stored rollups."""
    return stepped_buckets(StoredSeries(repos, token, "cpu"), time_range, step)


def seconds_until_closed(sessions: SessionRepository, token: str) -> float:
    """How long, from now, until the session store reads the session closed (as a second process sees a
    logout or a revocation elsewhere); fails after 5 s."""
    started = time.monotonic()
    while True:
        session = sessions.get(token)
        if session is not None and session.closed:
            return time.monotonic() - started
        assert time.monotonic() - started < 5, "the other process never saw the session closed"
        time.sleep(0.01)
