"""Unit-test wiring: the real services over in-memory adapters and fakes."""

from __future__ import annotations

import falcon.testing
import pytest
from limits.storage import MemoryStorage

from perfmon.adapters.login_throttle import LimitsLoginThrottle
from perfmon.adapters.memory import (
    InMemoryKeyRepository,
    InMemorySampleRepository,
    InMemorySessionRepository,
    InMemoryUserRepository,
)
from perfmon.domain.access import Access, KeyUsage, SessionGate
from perfmon.domain.accounts import Accounts
from perfmon.domain.history import History
from perfmon.entrypoints.http.app import create_app
from tests.fakes import FastHasher, FixedClock, SequentialKeys, SequentialTokens


@pytest.fixture
def users() -> InMemoryUserRepository:
    return InMemoryUserRepository()


@pytest.fixture
def sessions() -> InMemorySessionRepository:
    return InMemorySessionRepository()


@pytest.fixture
def samples(sessions: InMemorySessionRepository) -> InMemorySampleRepository:
    return InMemorySampleRepository(sessions)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def keys(sessions: InMemorySessionRepository) -> InMemoryKeyRepository:
    return InMemoryKeyRepository(sessions)


@pytest.fixture
def key_usage(keys: InMemoryKeyRepository, clock: FixedClock) -> KeyUsage:
    return KeyUsage(keys, clock)


@pytest.fixture
def gate(sessions: InMemorySessionRepository, key_usage: KeyUsage) -> SessionGate:
    return SessionGate(sessions, key_usage)


@pytest.fixture
def accounts(
    users: InMemoryUserRepository,
    sessions: InMemorySessionRepository,
    keys: InMemoryKeyRepository,
    key_usage: KeyUsage,
    clock: FixedClock,
) -> Accounts:
    throttle = LimitsLoginThrottle(MemoryStorage(), clock)
    return Accounts(users, sessions, FastHasher(), SequentialTokens(), clock, throttle, keys, key_usage)


@pytest.fixture
def access(
    gate: SessionGate, sessions: InMemorySessionRepository, keys: InMemoryKeyRepository, clock: FixedClock
) -> Access:
    return Access(gate, sessions, keys, SequentialKeys(), clock)


@pytest.fixture
def history(
    gate: SessionGate,
    sessions: InMemorySessionRepository,
    samples: InMemorySampleRepository,
    clock: FixedClock,
) -> History:
    return History(gate, sessions, samples, clock)


@pytest.fixture
def client(accounts: Accounts, history: History, access: Access) -> falcon.testing.TestClient:
    app = create_app(
        accounts, history, access, storage_name="memory", check_storage=lambda: None, max_body_bytes=4096
    )
    return falcon.testing.TestClient(app)
