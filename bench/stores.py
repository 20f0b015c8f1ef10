"""The storages under test, reached in-process through perfmon's own adapters.

The bench fills them before a server starts (10,000 sessions through the API would take minutes of
Argon2), creates fresh sessions for each write run, and reads back what a run stored to compare it
with what wrk saw acknowledged. Each db storage is a throwaway database `perfmon_bench_<random>...`
made by `perfmon init-db` and dropped at the end.

It also runs under the perfmon of a `--baseline` tree (bench/baseline.py): the release before issue 11
(70a4571) stores CpuSamples of one series, so `fill` and `stored_times` speak whichever ports they find.
"""

from __future__ import annotations

import inspect
import io
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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

# Issue 11's ports store Samples of named series and read one series by its metric; the baseline's
# (70a4571) store CpuSamples and read the one series there is.
NAMED_SERIES = "metric" in inspect.signature(SampleRepository.between).parameters
CPU = "cpu"

AGENTS_USER = "bench-agents"
# Not a real Argon2 hash: nobody logs in as the agents' user, sessions are added directly.
_UNUSABLE_HASH = "$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtc2FsdA$bm90LWEtaGFzaA"
_APPEND_CHUNK = 10_000
_READ_WORKERS = 4


@dataclass(frozen=True)
class DiskUse:
    """Bytes on disk (allocated blocks, as du counts them) of raw samples and of their rollups."""

    raw: int
    rollups: int


class Store:
    """One storage (a data dir, or a database) with the three repositories over it."""

    kind: str
    # Threads that append batches of one session at once (Store.load): as many as help.
    load_workers = 1
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

    def new_sessions(self, count: int, user: str = AGENTS_USER, hosts: bool = False) -> list[str]:
        """`count` fresh sessions of the user, created through the adapter; their tokens. With `hosts`,
        each on a host of its own, `bench-host-<token>`, as an agent's session is (PROTOCOL.md part 3)."""
        username = self.ensure_user(user)
        tokens = [str(uuid.uuid4()) for _ in range(count)]
        now = time.time()

        def add(token: str) -> None:
            if hosts:
                session = Session(token=token, user=username, created_at=now, host=f"bench-host-{token}")
            else:
                session = Session(token=token, user=username, created_at=now)  # the baseline's has no host
            self.sessions.add(session)

        with ThreadPoolExecutor(_READ_WORKERS) as pool:
            list(pool.map(add, tokens))
        return tokens

    def fill(self, token: str, samples: Sequence[tuple[float, float]]) -> None:
        """Append the (cpu, time) samples to the session in chunks of 10,000 (the batch limit)."""
        for offset in range(0, len(samples), _APPEND_CHUNK):
            self.append(token, samples[offset : offset + _APPEND_CHUNK])

    def append(self, token: str, samples: Sequence[tuple[float, float]]) -> None:
        """Append one batch of (cpu, time) samples to the session's `cpu` series, all or nothing."""
        readings = [CpuSample(cpu, taken_at) for cpu, taken_at in samples]
        if NAMED_SERIES:
            self.samples.append(token, [reading.sample() for reading in readings])
        else:
            self.samples.append(token, readings)  # type: ignore[arg-type]  # the baseline's port

    def load(self, token: str, batches: Iterable[Sequence[tuple[float, float]]]) -> None:
        """Append the batches to the session, `load_workers` at a time, each all or nothing; the first
        error stops the load and is raised. A batch is made when a worker is free: a month of samples
        is never held at once."""
        slots = threading.BoundedSemaphore(self.load_workers)
        failed = threading.Event()

        def append(batch: Sequence[tuple[float, float]]) -> None:
            try:
                self.append(token, batch)
            except BaseException:
                failed.set()
                raise
            finally:
                slots.release()

        with ThreadPoolExecutor(self.load_workers) as pool:
            pending = []
            for batch in batches:
                slots.acquire()
                if failed.is_set():
                    slots.release()
                    break
                pending.append(pool.submit(append, batch))
            for future in pending:
                future.result()

    def maintain(self, now: float) -> None:
        """One pass of the storage's background work at `now`, as the server runs it on its timer:
        rollups brought up to date, closed segments compacted or partitions made ahead."""
        self.samples.maintain(now)  # type: ignore[attr-defined]  # the samples are the maintenance

    def disk_use(self, tokens: Sequence[str]) -> DiskUse:
        """Bytes on disk of the sessions' samples and rollups (the whole sample storage for db)."""
        raise NotImplementedError

    def stored_times(self, tokens: Iterable[str], start: float, end: float) -> list[float]:
        """The times of every sample in these sessions within [start, end], all sessions together."""
        time_range = TimeRange(start, end)

        def read(token: str) -> list[float]:
            if NAMED_SERIES:
                return list(self.samples.between(token, CPU, time_range).taken_at)
            return [sample.taken_at for sample in self.samples.between(token, time_range)]  # type: ignore[call-arg]

        with ThreadPoolExecutor(_READ_WORKERS) as pool:
            return [moment for times in pool.map(read, list(tokens)) for moment in times]

    def stored_points(
        self, tokens: Iterable[str], metric: str, start: float, end: float
    ) -> list[tuple[float, float]]:
        """The (time, value) of every sample of `metric` in these sessions within [start, end], all
        sessions together: any series, read through the storage's own adapter (issue 11's ports on)."""
        time_range = TimeRange(start, end)

        def read(token: str) -> list[tuple[float, float]]:
            series = self.samples.between(token, metric, time_range)
            return list(zip(series.taken_at, series.values, strict=True))

        with ThreadPoolExecutor(_READ_WORKERS) as pool:
            return [point for points in pool.map(read, list(tokens)) for point in points]

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


# A raw file of one UTC day of a series: its name begins with the day, `YYYY-MM-DD`.
_DAY_FILE = re.compile(r"\d{4}-\d{2}-\d{2}\.")


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

    def disk_use(self, tokens: Sequence[str], closed_before: float | None = None) -> DiskUse:
        """The files of the sessions' folders, by what du counts: allocated blocks. Rollups are the
        files of a series' rollup folders and its roll-up mark; the rest, raw samples (with the
        session's lock and journal). With `closed_before`, only the raw files of the UTC days before
        the one holding it (and every rollup file)."""
        from perfmon.adapters.filesystem.series_files import ROLLED, ROLLUP_FILES, day_name  # not in 70a4571

        rollup_folders = {folder for folder, _ in ROLLUP_FILES.values()}
        first_open = None if closed_before is None else day_name(closed_before)
        raw = rollups = 0
        for token in tokens:
            folder = self.data_dir / "sessions" / token
            for path in folder.rglob("*"):
                if not path.is_file():
                    continue
                size = path.stat().st_blocks * 512
                if path.name == ROLLED or rollup_folders & set(path.relative_to(folder).parts[:-1]):
                    rollups += size
                elif first_open is None or (_DAY_FILE.match(path.name) and path.name[:10] < first_open):
                    raw += size
        return DiskUse(raw, rollups)


# The tables (partitioned or not) that hold raw samples; rollups are the tables named *rollup*.
RAW_SAMPLE_TABLES = ("samples",)
# Every table with storage of its own (a partition, or a table that is not partitioned) in the public
# schema, by the table it is a partition of (itself when it is none).
_RELATION_SIZES = """
    SELECT coalesce(pg_partition_root(c.oid), c.oid)::regclass::text, pg_total_relation_size(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind = 'r'
"""


class DatabaseStore(Store):
    """A throwaway database of the db storage, created and migrated by `perfmon init-db`."""

    kind = "db"
    # PostgreSQL does the work of an append in its own processes: 4 connections keep 2 cores busy.
    load_workers = _READ_WORKERS

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

    def disk_use(self, tokens: Sequence[str]) -> DiskUse:
        """pg_total_relation_size (heap, indexes, TOAST, free space and visibility maps) of every
        partition of the samples table and of the rollup tables: every session's, not only these."""
        sizes = {"raw": 0, "rollups": 0}
        with self.engine.connect() as connection:
            rows = connection.execute(text(_RELATION_SIZES)).all()
        for root, size in rows:
            if root in RAW_SAMPLE_TABLES:
                sizes["raw"] += size
            elif "rollup" in root:
                sizes["rollups"] += size
        return DiskUse(sizes["raw"], sizes["rollups"])

    def vacuum(self) -> None:
        """VACUUM (ANALYZE) the database, as autovacuum would have by the time a month had been written."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE)"))

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


# The COPY ceiling's scratch table is shaped like the raw samples table (perfmon/adapters/postgres/
# tables.py: series_id, taken_at, an identity id, value; its primary key the one index), and is filled
# through these columns. It is one plain table where perfmon's is partitioned by day, and it holds no
# rollups where perfmon's batches also merge theirs: the ceiling is the raw rows alone.
COPY_LIKE = "samples"
COPY_COLUMNS = "(series_id, taken_at, value)"


def copy_rate(url: str, *, connections: int, batch_size: int, seconds: float) -> float:
    """Rows per second that `connections` COPYs of `batch_size`-row batches (one transaction each)
    store into a scratch table shaped like the samples table (same columns, identity and key, no
    partitions), from in-memory buffers."""
    parameters = database_url(url).translate_connect_args(username="user", database="dbname")
    with psycopg2.connect(**parameters) as setup, setup.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(f"CREATE TABLE bench_copy (LIKE {COPY_LIKE} INCLUDING ALL)")
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
                        f"COPY bench_copy {COPY_COLUMNS} FROM STDIN",
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
    """A batch of COPY_COLUMNS rows: one series (a run's batches go to 16 series), one second apart."""
    series = offset % 16 + 1
    base = 2e9 + offset * batch_size
    return "".join(f"{series}\t{base + row + 0.25!r}\t{row % 1000 / 10!r}\n" for row in range(batch_size))
