"""Failure modes: a database that goes away gives StorageUnavailable quickly and recovers; a refused write
stores nothing."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg2
import pytest
from sqlalchemy import Engine, create_engine, make_url

from perfmon.adapters.postgres.engine import CONNECT_ARGS, create_engine_for, database_url
from perfmon.adapters.postgres.repositories import DatabaseHealth, PostgresUserRepository
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.model import EVERYTHING, Point, Sample, Session, User, Username
from perfmon.domain.rollups import DAY
from tests.postgres_server import terminate_backends
from tests.storage_kinds import Repositories, postgres_repositories

pytestmark = pytest.mark.postgres


def _production_engine(url: str) -> Engine:
    return create_engine_for(url, pool_size=2)


def _engine_without_pre_ping(url: str) -> Engine:
    # Without the ping, the dead pooled connection reaches a query: the translation must catch it.
    return create_engine(database_url(url), pool_size=2, connect_args=CONNECT_ARGS)


@pytest.mark.parametrize("make_engine", [_production_engine, _engine_without_pre_ping])
def test_killed_connections_give_storage_unavailable_or_success_then_recover(
    postgres_server_url: str, postgres_url: str, make_engine: Callable[[str], Engine]
) -> None:
    engine = make_engine(postgres_url)
    try:
        repos = postgres_repositories(engine)
        user = User(Username(f"outage-{uuid.uuid4().hex}"), "hash")
        repos.users.add(user)
        assert terminate_backends(postgres_server_url, make_url(postgres_url).database or "") >= 1
        # Either outcome is right; any other exception type fails the test.
        with contextlib.suppress(StorageUnavailable):
            assert repos.users.get(user.name) == user
        assert repos.users.get(user.name) == user
        session = Session(str(uuid.uuid4()), user.name, 1.0)
        repos.sessions.add(session)
        repos.samples.append(session.token, [Sample(2.0, {"cpu": 1.0})])
        assert repos.samples.between(session.token, "cpu", EVERYTHING) == [Point(1.0, 2.0)]
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_server_port() -> Iterator[int]:
    """A port that accepts TCP connections but never says a word, like a hung database host."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("port_kind", ["closed", "silent"])
def test_unreachable_database_gives_storage_unavailable_within_seconds(
    port_kind: str, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue("silent_server_port") if port_kind == "silent" else _free_port()
    engine = create_engine_for(f"postgresql://postgres:secret@127.0.0.1:{port}/perfmon", pool_size=1)
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="database unavailable"):
            PostgresUserRepository(engine).get(Username("alice"))
        assert time.monotonic() - started < 6
    finally:
        engine.dispose()


def test_health_check_passes_while_the_database_answers_and_fails_when_it_does_not(
    postgres_engine: Engine,
) -> None:
    DatabaseHealth(postgres_engine).check()
    closed = create_engine_for(f"postgresql://postgres@127.0.0.1:{_free_port()}/perfmon", pool_size=1)
    try:
        with pytest.raises(StorageUnavailable):
            DatabaseHealth(closed).check()
    finally:
        closed.dispose()


def test_every_connection_carries_the_statement_timeout(postgres_engine: Engine) -> None:
    with postgres_engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW statement_timeout").scalar_one() == "10s"


def test_a_batch_refused_in_its_last_rows_stores_none_of_it(postgres_engine: Engine) -> None:
    repos, session = _repositories_with_a_session(postgres_engine)
    # Refused by the database after the COPY has already sent the earlier rows of the batch.
    refused = _sample_the_database_refuses()
    with pytest.raises(psycopg2.DataError):
        repos.samples.append(session.token, [Sample(float(t), {"cpu": 1.0}) for t in range(2500)] + [refused])
    assert repos.samples.between(session.token, "cpu", EVERYTHING) == []
    assert repos.samples.rollups(session.token, "cpu", 60.0, EVERYTHING) == []
    assert repos.samples.metrics(session.token) == []


def test_one_refused_write_in_a_group_commit_fails_alone(postgres_engine: Engine) -> None:
    repos, session = _repositories_with_a_session(postgres_engine)
    refused = _sample_the_database_refuses()
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def append(index: int) -> None:
        samples = [refused] if index == 0 else [Sample(float(index), {"cpu": float(index)})]
        barrier.wait()
        try:
            repos.samples.append(session.token, samples)
            outcomes.append("stored")
        except psycopg2.DataError:
            outcomes.append("refused")

    threads = [threading.Thread(target=append, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] + ["stored"] * 11
    stored = repos.samples.between(session.token, "cpu", EVERYTHING)
    assert sorted(point.value for point in stored) == [float(i) for i in range(1, 12)]
    assert sum(bucket.count for bucket in repos.samples.rollups(session.token, "cpu", DAY, EVERYTHING)) == 11


def _repositories_with_a_session(engine: Engine) -> tuple[Repositories, Session]:
    repos = postgres_repositories(engine)
    user = User(Username(f"user-{uuid.uuid4().hex}"), "hash")
    repos.users.add(user)
    session = Session(str(uuid.uuid4()), user.name, 1.0)
    repos.sessions.add(session)
    return repos, session


class _TextRefused(float):
    """A number whose text the database refuses: it stands for a value that the database cannot store."""

    def __repr__(self) -> str:
        return "not a number"


def _sample_the_database_refuses() -> Sample:
    """A sample that reaches the database as the text "not a number" for cpu, which it refuses."""
    return Sample(1.0, {"cpu": _TextRefused(1.0)})
