"""The storages under test, reached in-process through perfmon's own adapters.

The bench fills them before a server starts (10,000 sessions through the API would take minutes of
Argon2), creates fresh sessions for each write run, and reads back what a run stored to compare it
with what wrk saw acknowledged. Each db storage is a throwaway database `perfmon_bench_<random>...`
made by `perfmon init-db` and dropped at the end.
"""

from __future__ import annotations

import io
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
from sqlalchemy import Engine, create_engine, text

from perfmon.adapters.filesystem import FileStorage
from perfmon.adapters.postgres.engine import create_engine_for, database_url
from perfmon.adapters.postgres.repositories import (
    PostgresSampleRepository,
    PostgresSessionRepository,
    PostgresUserRepository,
)
from perfmon.domain.model import CpuSample, Session, TimeRange, User, Username
from perfmon.domain.ports import SampleRepository, SessionRepository, UserRepository

AGENTS_USER = "bench-agents"
# Not a real Argon2 hash: nobody logs in as the agents' user, sessions are added directly.
_UNUSABLE_HASH = "$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtc2FsdA$bm90LWEtaGFzaA"
_APPEND_CHUNK = 10_000
_READ_WORKERS = 4


class Store:
    """One storage (a data dir, or a database) with the three repositories over it."""

    kind: str
    users: UserRepository
    sessions: SessionRepository
    samples: SampleRepository

    def serve_flags(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the bench holds on the storage (the storage itself stays until cleanup)."""

    def ensure_user(self, name: str, password_hash: str = _UNUSABLE_HASH) -> Username:
        username = Username(name)
        if self.users.get(username) is None:
            self.users.add(User(username, password_hash))
        return username

    def new_sessions(self, count: int, user: str = AGENTS_USER) -> list[str]:
        """`count` fresh sessions of the user, created through the adapter; their tokens."""
        username = self.ensure_user(user)
        tokens = [str(uuid.uuid4()) for _ in range(count)]
        now = time.time()

        def add(token: str) -> None:
            self.sessions.add(Session(token=token, user=username, created_at=now))

        with ThreadPoolExecutor(_READ_WORKERS) as pool:
            list(pool.map(add, tokens))
        return tokens

    def fill(self, token: str, samples: Sequence[tuple[float, float]]) -> None:
        """Append the (cpu, time) samples to the session in chunks of 10,000 (the batch limit)."""
        for offset in range(0, len(samples), _APPEND_CHUNK):
            chunk = samples[offset : offset + _APPEND_CHUNK]
            self.samples.append(token, [CpuSample(cpu, taken_at) for cpu, taken_at in chunk])

    def stored_times(self, tokens: Iterable[str], start: float, end: float) -> list[float]:
        """The times of every sample in these sessions within [start, end], all sessions together."""
        time_range = TimeRange(start, end)

        def read(token: str) -> list[float]:
            return [sample.taken_at for sample in self.samples.between(token, time_range)]

        with ThreadPoolExecutor(_READ_WORKERS) as pool:
            return [moment for times in pool.map(read, list(tokens)) for moment in times]

    def existing_sessions(self, tokens: Iterable[str]) -> int:
        """How many of the tokens name a stored session (read by a fresh repository: no cache)."""
        sessions = self.fresh_sessions()
        return sum(1 for token in tokens if sessions.get(token) is not None)

    def existing_users(self, names: Iterable[str]) -> int:
        return sum(1 for name in names if self.users.get(Username(name)) is not None)

    def sessions_of(self, user: str) -> int:
        return len(self.fresh_sessions().for_user(Username(user)))

    def fresh_sessions(self) -> SessionRepository:
        raise NotImplementedError


class FileStore(Store):
    """A data dir of the file storage."""

    kind = "file"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        storage = FileStorage(data_dir, fsync=False)
        self.users, self.sessions, self.samples = storage.users, storage.sessions, storage.samples

    def serve_flags(self) -> list[str]:
        return ["--storage", "file", "--data-dir", str(self.data_dir)]

    def fresh_sessions(self) -> SessionRepository:
        # The bench's own repository caches what it read; a new one reads the files again.
        return FileStorage(self.data_dir, fsync=False).sessions


class DatabaseStore(Store):
    """A throwaway database of the db storage, created and migrated by `perfmon init-db`."""

    kind = "db"

    def __init__(self, url: str) -> None:
        self.url = url
        initialised = subprocess.run(
            [sys.executable, "-m", "perfmon", "init-db", "--database-url", url, "--log-level", "WARNING"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if initialised.returncode != 0:
            raise RuntimeError(f"perfmon init-db failed: {initialised.stderr}")
        self.engine: Engine = create_engine_for(url, pool_size=_READ_WORKERS)
        self.users = PostgresUserRepository(self.engine)
        self.sessions = PostgresSessionRepository(self.engine)
        self.samples = PostgresSampleRepository(self.engine)

    def serve_flags(self) -> list[str]:
        return ["--storage", "db", "--database-url", self.url]

    def fresh_sessions(self) -> SessionRepository:
        return PostgresSessionRepository(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def throwaway_database_url(server_url: str, name: str) -> str:
    """The server URL with its database replaced by `name`."""
    return database_url(server_url).set(database=name).render_as_string(hide_password=False)


def new_database_prefix() -> str:
    return f"perfmon_bench_{secrets.token_hex(4)}"


def drop_databases(server_url: str, names: Iterable[str]) -> list[str]:
    """DROP the databases (closing their connections); the names it could not drop."""
    engine = create_engine(database_url(server_url), isolation_level="AUTOCOMMIT")
    failed = []
    try:
        with engine.connect() as connection:
            for name in names:
                try:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                except Exception:  # keep dropping the others; the caller reports what is left
                    failed.append(name)
    finally:
        engine.dispose()
    return failed


def copy_rate(url: str, *, connections: int, batch_size: int, seconds: float) -> float:
    """Rows per second that `connections` COPYs of `batch_size`-row batches (one transaction each)
    store into a scratch table shaped like cpu_samples (same columns, identity and indexes, no foreign
    key), from in-memory buffers."""
    parameters = database_url(url).translate_connect_args(username="user", database="dbname")
    with psycopg2.connect(**parameters) as setup, setup.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute("CREATE TABLE bench_copy (LIKE cpu_samples INCLUDING ALL)")
    setup.close()
    buffers = [_copy_buffer(batch_size, offset) for offset in range(8)]
    copied = [0] * connections
    start_barrier = threading.Barrier(connections + 1)
    deadline = [0.0]

    def copier(index: int) -> None:
        connection = psycopg2.connect(**parameters)
        try:
            start_barrier.wait()
            batch = 0
            while time.monotonic() < deadline[0]:
                with connection.cursor() as cursor:
                    cursor.copy_expert(
                        "COPY bench_copy (session_token, taken_at, cpu) FROM STDIN",
                        io.StringIO(buffers[(index + batch) % len(buffers)]),
                    )
                connection.commit()
                copied[index] += batch_size
                batch += 1
        finally:
            connection.close()

    workers = [threading.Thread(target=copier, args=(index,)) for index in range(connections)]
    for worker in workers:
        worker.start()
    start = time.monotonic()
    deadline[0] = start + seconds
    start_barrier.wait()
    for worker in workers:
        worker.join(timeout=seconds + 60)
    elapsed = time.monotonic() - start
    with psycopg2.connect(**parameters) as cleanup, cleanup.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy")
    cleanup.close()
    return sum(copied) / elapsed


def _copy_buffer(batch_size: int, offset: int) -> str:
    token = str(uuid.uuid4())
    base = 2e9 + offset * batch_size
    return "".join(f"{token}\t{base + row + 0.25!r}\t{row % 1000 / 10!r}\n" for row in range(batch_size))
