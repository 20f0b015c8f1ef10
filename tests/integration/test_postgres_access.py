"""PostgreSQL's own side of part 4 (access): processes with engines of their own on one database, each
caching sessions, see a revocation or a logout of another within a second (the access_changes mark); a
login racing a revocation never leaves an open session; the mark's row is made by the first closing and
moved by each; a database that goes away while the mark is read gives StorageUnavailable, then recovers.

Migration 0005 with existing sessions (they become scope 'all', open) is tested with the other migrations,
in test_postgres_upgrade.py."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event

from perfmon.adapters.postgres.engine import create_engine_for
from perfmon.adapters.postgres.repositories import PostgresSessionRepository
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.model import AccessKey, Scope, Session, User, Username, key_digest
from perfmon.domain.ports import CLOSED_EVERYWHERE_WITHIN
from tests.postgres_server import (
    Cluster,
    empty_tables,
    give_up,
    migrated_database,
    own_cluster,
    server_binaries,
)
from tests.storage_kinds import postgres_repositories

pytestmark = pytest.mark.postgres

ALICE = Username("alice")
NOW = 1_764_504_000.0
# The issue of part 4: another process refuses a closed session within a second.
WITHIN_A_SECOND = 1.0
# Bounds of the race test: rounds, and seconds for all of them.
RACE_ROUNDS = 300
RACE_SECONDS = 60.0


def _key(number: int, scope: Scope = Scope.INGEST) -> AccessKey:
    return AccessKey(
        id=f"{number:016x}",
        user=ALICE,
        scope=scope,
        name=f"agent {number}",
        created_at=NOW + number,
        digest=key_digest("pmk_" + f"{number:A>43}"),
    )


def _session(key: AccessKey | None = None) -> Session:
    token = str(uuid.uuid4())
    if key is None:
        return Session(token, ALICE, NOW, host="web-1")
    return Session(token, ALICE, NOW, host="web-1", scope=key.scope, key_id=key.id)


class Process:
    """A perfmon process on the database as far as storage goes: an engine (a pool) and repositories of
    its own, so its caches are its own. Counts the statements its engine sends."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine_for(url, pool_size=4)
        self.repos = postgres_repositories(self.engine)
        self.statements = 0
        event.listen(self.engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.statements += 1

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def two_processes(postgres_url: str, postgres_engine: Engine) -> Iterator[tuple[Process, Process]]:
    """Two processes on this run's database, emptied, with user alice."""
    empty_tables(postgres_engine)
    here, there = Process(postgres_url), Process(postgres_url)
    try:
        here.repos.users.add(User(ALICE, "argon2id-hash"))
        yield here, there
    finally:
        here.close()
        there.close()


def test_a_revocation_is_refused_by_another_process_within_a_second_while_it_serves_from_its_cache(
    two_processes: tuple[Process, Process],
) -> None:
    here, there = two_processes
    key = _key(1)
    here.repos.keys.add(key)
    of_key, of_password = _session(key), _session()
    for session in (of_key, of_password):
        here.repos.sessions.add(session)
    # What `there` reads while it serves both sessions' requests: (when, token, closed).
    seen: list[tuple[float, str, bool]] = []
    serving = threading.Event()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            for session in (of_key, of_password):
                found = there.repos.sessions.get(session.token)
                assert found is not None
                seen.append((time.monotonic(), session.token, found.closed))
            serving.set()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        assert serving.wait(10)
        # Serving for longer than a look at the mark is apart, from the cache: a few statements for
        # thousands of reads.
        statements_before = there.statements
        reads_before = len(seen)
        time.sleep(3 * CLOSED_EVERYWHERE_WITHIN)
        assert len(seen) - reads_before > 100
        assert there.statements - statements_before <= 10

        revoking = time.monotonic()
        assert here.repos.keys.revoke(ALICE, key.id, NOW + 60)
        revoked = time.monotonic()
        deadline = revoked + 5
        while not any(closed for _, token, closed in seen[-4:] if token == of_key.token):
            assert time.monotonic() < deadline, "the other process never saw the key's session closed"
            time.sleep(0.01)
    finally:
        stop.set()
        server.join(10)
    assert not server.is_alive()

    of_key_reads = [(moment, closed) for moment, token, closed in seen if token == of_key.token]
    first_closed = min(moment for moment, closed in of_key_reads if closed)
    assert first_closed - revoked < WITHIN_A_SECOND
    # Open until the revocation, closed for good once seen closed; the password session never closed.
    assert not any(closed for moment, closed in of_key_reads if moment < revoking)
    assert all(closed for moment, closed in of_key_reads if moment >= first_closed)
    assert not any(closed for _, token, closed in seen if token == of_password.token)
    assert there.repos.keys.by_digest(key.digest) is None


def test_a_logout_is_refused_by_another_process_within_a_second(
    two_processes: tuple[Process, Process],
) -> None:
    here, there = two_processes
    session = _session()
    here.repos.sessions.add(session)
    assert there.repos.sessions.get(session.token) == session
    here.repos.sessions.close(session.token, NOW + 60)
    closed = time.monotonic()
    while not there.repos.sessions.get(session.token).closed:  # type: ignore[union-attr]
        assert time.monotonic() - closed < 5, "the other process never saw the session closed"
        time.sleep(0.01)
    assert time.monotonic() - closed < WITHIN_A_SECOND


def _race(
    login: Process, revoking: Process, key: AccessKey, pauses: tuple[float, float]
) -> tuple[bool, list[Session]]:
    """A login with the key in one thread and its revocation in another, each after its pause (seconds);
    whether the revocation revoked it, and the session the login stored (none when it found no live key)."""
    barrier = threading.Barrier(2)
    revoked: list[bool] = []
    opened: list[Session] = []

    def log_in() -> None:
        # As Accounts.log_in_with_key: find the key live, store a session of it, serve it at once.
        barrier.wait(10)
        time.sleep(pauses[0])
        found = login.repos.keys.by_digest(key.digest)
        if found is not None:
            session = _session(found)
            login.repos.sessions.add(session)
            login.repos.sessions.get(session.token)
            opened.append(session)

    def revoke() -> None:
        barrier.wait(10)
        time.sleep(pauses[1])
        revoked.append(revoking.repos.keys.revoke(ALICE, key.id, NOW))

    threads = [threading.Thread(target=log_in, daemon=True), threading.Thread(target=revoke, daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    return revoked == [True], opened


@pytest.mark.parametrize("revoked_by", ["the same process", "another process"])
def test_a_login_racing_a_revocation_never_leaves_an_open_session(
    two_processes: tuple[Process, Process], revoked_by: str
) -> None:
    login, other = two_processes
    revoking = login if revoked_by == "the same process" else other
    jitter = random.Random(13)
    opened: list[Session] = []
    rounds = 0
    started = time.monotonic()
    while rounds < RACE_ROUNDS and time.monotonic() - started < RACE_SECONDS:
        key = _key(rounds)
        login.repos.keys.add(key)
        revoked, round_opened = _race(
            login, revoking, key, (jitter.uniform(0, 0.002), jitter.uniform(0, 0.002))
        )
        assert revoked
        if revoking is login:
            # In the process that revoked: closed as soon as the revocation has returned.
            for session in round_opened:
                assert login.repos.sessions.get(session.token).closed  # type: ignore[union-attr]
        opened += round_opened
        rounds += 1
    assert rounds >= 10
    # The race was run: logins that found the key live stored their sessions.
    assert opened
    # In every process, after the time a cache may lag behind the mark: all closed.
    time.sleep(CLOSED_EVERYWHERE_WITHIN + 0.1)
    fresh = postgres_repositories(login.engine)
    for repos in (login.repos, other.repos, fresh):
        open_ones = [s.token for s in opened if not repos.sessions.get(s.token).closed]  # type: ignore[union-attr]
        assert open_ones == []


def test_the_first_closing_makes_the_mark_and_each_closing_moves_it(
    two_processes: tuple[Process, Process],
) -> None:
    here, there = two_processes
    sessions = here.repos.sessions
    assert isinstance(sessions, PostgresSessionRepository)
    # The tables were emptied: no closing yet, no mark row.
    assert sessions.read_mark() is None
    # The first closing starts the mark from the database's clock (microseconds), not from 1: a row
    # deleted and made again never repeats a mark a running process has read.
    before = time.time() * 1_000_000
    tokens = [_session() for _ in range(20)]
    for session in tokens:
        here.repos.sessions.add(session)
    barrier = threading.Barrier(len(tokens))

    def close(index: int) -> None:
        # Half in each process, all at once: the upserts of a missing row race.
        barrier.wait(10)
        (here, there)[index % 2].repos.sessions.close(tokens[index].token, NOW)

    threads = [threading.Thread(target=close, args=(index,), daemon=True) for index in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    first = sessions.read_mark()
    assert first is not None
    start = first - (len(tokens) - 1)
    # Made once by one of the racing closings, moved by one by each of the others.
    assert before - 60_000_000 < start < time.time() * 1_000_000 + 60_000_000
    # What changes nothing moves nothing: a closed session closed again, an unknown or another's key.
    sessions.close(tokens[0].token, NOW + 1)
    assert not here.repos.keys.revoke(ALICE, "00000000000000ff", NOW)
    assert sessions.read_mark() == first
    key = _key(1)
    here.repos.keys.add(key)
    assert here.repos.keys.revoke(ALICE, key.id, NOW)
    assert sessions.read_mark() == first + 1
    # The row deleted by hand: the next closing's mark is none that was read before.
    with here.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM access_changes")
    late = _session()
    here.repos.sessions.add(late)
    here.repos.sessions.close(late.token, NOW)
    assert sessions.read_mark() not in (None, start, first, first + 1)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A cluster of this test's own, since the test stops it."""
    bin_dir = server_binaries()
    if bin_dir is None:
        give_up("stopping the database needs a PostgreSQL cluster of the test's own: initdb and pg_ctl")
    with own_cluster(bin_dir) as own:
        yield own


@pytest.mark.slow
def test_a_database_that_goes_away_while_the_mark_is_read_gives_storage_unavailable_then_recovers(
    cluster: Cluster,
) -> None:
    with migrated_database(cluster.url) as url:
        here, there = Process(url), Process(url)
        try:
            here.repos.users.add(User(ALICE, "argon2id-hash"))
            session = _session()
            here.repos.sessions.add(session)
            assert there.repos.sessions.get(session.token) == session
            # The session is cached: past the mark's interval, the next get reads the mark only.
            time.sleep(CLOSED_EVERYWHERE_WITHIN + 0.1)
            cluster.stop()
            started = time.monotonic()
            with pytest.raises(StorageUnavailable, match="database unavailable"):
                there.repos.sessions.get(session.token)
            assert time.monotonic() - started < 6
            # Still due: every get looks at the mark again while the database is away.
            with pytest.raises(StorageUnavailable):
                there.repos.sessions.get(session.token)

            cluster.start()
            assert there.repos.sessions.get(session.token) == session
            # And the mark works again: a logout in the other process reaches this one.
            here.repos.sessions.close(session.token, NOW)
            closed = time.monotonic()
            while not there.repos.sessions.get(session.token).closed:  # type: ignore[union-attr]
                assert time.monotonic() - closed < 5, "a logout after the outage never reached the cache"
                time.sleep(0.01)
            assert time.monotonic() - closed < WITHIN_A_SECOND
        finally:
            here.close()
            there.close()
