"""Unit-test wiring: the real services over in-memory adapters and fakes."""

from __future__ import annotations

import falcon.testing
import pytest
from limits.storage import MemoryStorage

from perfmon.adapters.login_throttle import LimitsLoginThrottle
from perfmon.adapters.memory import (
    InMemorySampleRepository,
    InMemorySessionRepository,
    InMemoryUserRepository,
)
from perfmon.domain.accounts import Accounts
from perfmon.domain.history import History
from perfmon.entrypoints.http.app import create_app
from tests.fakes import FastHasher, FixedClock, SequentialTokens


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
def accounts(users: InMemoryUserRepository, sessions: InMemorySessionRepository) -> Accounts:
    throttle = LimitsLoginThrottle(MemoryStorage(), FixedClock())
    return Accounts(users, sessions, FastHasher(), SequentialTokens(), FixedClock(), throttle)


@pytest.fixture
def history(sessions: InMemorySessionRepository, samples: InMemorySampleRepository) -> History:
    return History(sessions, samples, FixedClock())


@pytest.fixture
def client(accounts: Accounts, history: History) -> falcon.testing.TestClient:
    app = create_app(
        accounts, history, storage_name="memory", check_storage=lambda: None, max_body_bytes=4096
    )
    return falcon.testing.TestClient(app)
