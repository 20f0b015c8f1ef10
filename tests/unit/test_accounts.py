"""Registration and login over in-memory adapters."""

from __future__ import annotations

import pytest
from limits.storage import MemoryStorage

from perfmon.adapters.login_throttle import LimitsLoginThrottle
from perfmon.adapters.memory import InMemorySessionRepository, InMemoryUserRepository
from perfmon.domain.accounts import Accounts
from perfmon.domain.errors import InvalidCredentials, InvalidInput, StorageUnavailable, UsernameTaken
from perfmon.domain.model import Username
from tests.fakes import FailingSessionRepository, FixedClock, memory_accounts

CLIENT = "192.0.2.1"


def _throttle() -> LimitsLoginThrottle:
    return LimitsLoginThrottle(MemoryStorage(), FixedClock())


def test_register_stores_a_hash_not_the_password_and_opens_a_session(
    accounts: Accounts, users: InMemoryUserRepository, sessions: InMemorySessionRepository
) -> None:
    session = accounts.register("alice", "s3cret")
    stored = users.get(Username("alice"))
    assert stored is not None and "s3cret" not in stored.password_hash
    assert sessions.get(session.token) == session
    assert session.user == Username("alice") and session.created_at == 1_700_000_000.0


def test_register_twice_raises_username_taken(accounts: Accounts) -> None:
    accounts.register("alice", "s3cret")
    with pytest.raises(UsernameTaken):
        accounts.register("alice", "other")


def test_each_login_opens_a_new_session(accounts: Accounts, sessions: InMemorySessionRepository) -> None:
    first = accounts.register("alice", "s3cret")
    second = accounts.log_in("alice", "s3cret", CLIENT)
    third = accounts.log_in("alice", "s3cret", CLIENT)
    assert len({first.token, second.token, third.token}) == 3
    assert sessions.get(third.token) == third


def test_log_in_with_wrong_password_raises_invalid_credentials(accounts: Accounts) -> None:
    accounts.register("alice", "s3cret")
    with pytest.raises(InvalidCredentials):
        accounts.log_in("alice", "S3cret", CLIENT)


def test_log_in_of_unknown_user_raises_the_same_invalid_credentials(accounts: Accounts) -> None:
    with pytest.raises(InvalidCredentials):
        accounts.log_in("nobody", "s3cret", CLIENT)


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("", "pw"),
        ("x" * 129, "pw"),
        ("tab\there", "pw"),
        ("new\nline", "pw"),
        ("nul\x00", "pw"),
        ("alice", ""),
        ("alice", "p" * 1025),
    ],
)
def test_register_refuses_names_and_passwords_outside_the_limits(
    accounts: Accounts, users: InMemoryUserRepository, name: str, password: str
) -> None:
    with pytest.raises(InvalidInput):
        accounts.register(name, password)
    assert users.get(Username("alice")) is None


def test_limits_are_inclusive(accounts: Accounts) -> None:
    accounts.register("x" * 128, "p" * 1024)
    accounts.log_in("x" * 128, "p" * 1024, CLIENT)


def test_register_whose_session_cannot_be_stored_leaves_no_user_and_a_retry_succeeds() -> None:
    sessions = FailingSessionRepository()
    users = InMemoryUserRepository(sessions)
    accounts = memory_accounts(users, sessions, FixedClock(), _throttle())
    with pytest.raises(StorageUnavailable):
        accounts.register("alice", "s3cret")
    assert users.get(Username("alice")) is None
    sessions.failing = False
    session = accounts.register("alice", "s3cret")
    assert sessions.for_user(Username("alice")) == [session]
