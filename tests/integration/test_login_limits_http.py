"""PROTOCOL.md's login limits over real HTTP, in both storage modes, and shared by processes on a database."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from limits.storage import MemoryStorage, Storage
from sqlalchemy import Engine

from perfmon.adapters.login_throttle import LimitsLoginThrottle
from perfmon.adapters.postgres.login_failures import PostgresLimitsStorage
from perfmon.config import Settings
from perfmon.domain.errors import TooManyAttempts
from perfmon.domain.model import Username
from tests.fakes import FixedClock
from tests.postgres_server import empty_tables
from tests.servers import start_server_process, threaded_server

WINDOW = 15 * 60
TOO_MANY = {"reason": "Too many attempts, retry later"}
CLIENT, OTHER_CLIENT = "198.51.100.7", "203.0.113.9"


@pytest.fixture(autouse=True)
def clear_of_a_window_edge() -> None:
    """The windows are the epoch's 15-minute ticks: start far enough from one that no test straddles it."""
    into_window = time.time() % WINDOW
    if into_window > WINDOW - 30:
        time.sleep(WINDOW - into_window + 0.5)


@pytest.fixture
def behind_proxy(server_settings: Settings) -> Iterator[str]:
    """A server that trusts 127.0.0.1, the address every test request comes from, as a reverse proxy."""
    with threaded_server(dataclasses.replace(server_settings, trusted_proxies="127.0.0.1")) as url:
        yield url


def _login(url: str, user: str, passwd: str, client: str | None = CLIENT) -> requests.Response:
    headers = {"X-Forwarded-For": client} if client else {}
    return requests.post(f"{url}/login", json={"user": user, "passwd": passwd}, headers=headers, timeout=10)


def _register(url: str, user: str) -> None:
    answer = requests.post(f"{url}/register", json={"user": user, "passwd": "right"}, timeout=10)
    assert answer.status_code == 200, answer.text


def _fail(url: str, user: str, times: int, client: str | None = CLIENT) -> None:
    for _ in range(times):
        assert _login(url, user, "wrong", client).status_code == 401


def _assert_refused(answer: requests.Response) -> None:
    assert (answer.status_code, answer.json()) == (429, TOO_MANY)
    assert 0 < int(answer.headers["Retry-After"]) <= WINDOW


def test_ten_wrong_passwords_block_the_right_one_for_that_name_and_address_only(behind_proxy: str) -> None:
    _register(behind_proxy, "alice")
    _register(behind_proxy, "bob")
    _fail(behind_proxy, "alice", 10)
    _assert_refused(_login(behind_proxy, "alice", "right"))
    assert _login(behind_proxy, "bob", "right").status_code == 200
    assert _login(behind_proxy, "alice", "right", OTHER_CLIENT).status_code == 200


def test_nine_wrong_passwords_do_not_block(behind_proxy: str) -> None:
    _register(behind_proxy, "alice")
    _fail(behind_proxy, "alice", 9)
    assert _login(behind_proxy, "alice", "right").status_code == 200


def test_a_hundred_failures_over_many_names_block_every_login_from_that_address(behind_proxy: str) -> None:
    _register(behind_proxy, "alice")
    for i in range(10):
        _fail(behind_proxy, f"guess-{i}", 10)
    _assert_refused(_login(behind_proxy, "alice", "right"))
    _assert_refused(_login(behind_proxy, "nobody-tried-this", "x"))
    assert _login(behind_proxy, "alice", "right", OTHER_CLIENT).status_code == 200


def test_an_untrusted_peer_cannot_dodge_the_limit_with_forwarded_for(server_url: str) -> None:
    _register(server_url, "alice")
    for i in range(10):
        assert _login(server_url, "alice", "wrong", f"192.0.2.{i}").status_code == 401
    _assert_refused(_login(server_url, "alice", "right", OTHER_CLIENT))


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def counter_storage(request: pytest.FixtureRequest) -> Storage:
    """Each storage the throttle counts in: limits' own memory one, and ours on PostgreSQL."""
    if request.param == "memory":
        return MemoryStorage()
    engine: Engine = request.getfixturevalue("postgres_engine")
    empty_tables(engine)
    return PostgresLimitsStorage(engine)


def test_the_block_ends_when_the_window_has_passed_in_either_storage(counter_storage: Storage) -> None:
    clock = FixedClock(float(1_700_000_000 - 1_700_000_000 % WINDOW + 10))
    throttle = LimitsLoginThrottle(counter_storage, clock)
    name = Username(f"alice-{uuid.uuid4().hex[:6]}")
    for _ in range(10):
        throttle.check(name, CLIENT)
        throttle.record_failure(name, CLIENT)
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check(name, CLIENT)
    assert refused.value.retry_after == WINDOW - 10
    clock.now += WINDOW - 10
    throttle.check(name, CLIENT)


@pytest.mark.postgres
def test_postgres_counters_expire_and_restart(postgres_engine: Engine) -> None:
    empty_tables(postgres_engine)
    clock = FixedClock(1_000.0)
    storage = PostgresLimitsStorage(postgres_engine, clock)
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert (storage.get("k"), storage.get_expiry("k")) == (3, 1_060.0)
    clock.now = 1_060.0
    assert (storage.get("k"), storage.incr("k", 60), storage.get_expiry("k")) == (0, 1, 1_120.0)
    storage.clear("k")
    assert storage.get("k") == 0 and storage.check()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_on_one_database_share_the_counts(postgres_url: str, postgres_engine: Engine) -> None:
    empty_tables(postgres_engine)
    flags = ("--storage", "db", "--database-url", postgres_url, "--trusted-proxies", "127.0.0.1")
    first = start_server_process(*flags)
    try:
        second = start_server_process(*flags)
        try:
            _register(first.url, "alice")
            for i in range(10):
                assert _login((first.url, second.url)[i % 2], "alice", "wrong").status_code == 401
            for url in (first.url, second.url):
                _assert_refused(_login(url, "alice", "right"))
            assert _login(second.url, "alice", "right", OTHER_CLIENT).status_code == 200
        finally:
            assert second.stop() == 0
    finally:
        assert first.stop() == 0
