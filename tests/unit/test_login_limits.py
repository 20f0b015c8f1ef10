"""PROTOCOL.md's login limits, through Accounts over the limits-based throttle and a clock the test moves."""

from __future__ import annotations

import pytest
from limits.storage import MemoryStorage

from perfmon.adapters.login_throttle import LimitsLoginThrottle
from perfmon.adapters.memory import InMemorySessionRepository, InMemoryUserRepository
from perfmon.domain.accounts import Accounts
from perfmon.domain.errors import InvalidCredentials, TooManyAttempts
from perfmon.domain.login_limits import LoginLimits
from tests.fakes import FixedClock, memory_accounts

CLIENT = "192.0.2.1"
OTHER_CLIENT = "198.51.100.7"
WINDOW = 15 * 60
# Seconds into a window, so that the expected Retry-After is known.
START = 1_700_000_000 - 1_700_000_000 % WINDOW + 100


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(float(START))


@pytest.fixture
def accounts(clock: FixedClock) -> Accounts:
    sessions = InMemorySessionRepository()
    throttle = LimitsLoginThrottle(MemoryStorage(), clock)
    accounts = memory_accounts(InMemoryUserRepository(sessions), sessions, clock, throttle)
    accounts.register("alice", "right")
    return accounts


def _fail(accounts: Accounts, name: str, client: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            accounts.log_in(name, "wrong", client)


def test_after_ten_failures_even_the_right_password_is_refused_until_the_window_ends(
    accounts: Accounts,
) -> None:
    _fail(accounts, "alice", CLIENT, 10)
    with pytest.raises(TooManyAttempts) as refused:
        accounts.log_in("alice", "right", CLIENT)
    assert refused.value.retry_after == WINDOW - 100


def test_nine_failures_leave_the_right_password_working(accounts: Accounts) -> None:
    _fail(accounts, "alice", CLIENT, 9)
    accounts.log_in("alice", "right", CLIENT)


def test_a_blocked_name_is_blocked_from_that_address_only_and_other_names_are_not(
    accounts: Accounts,
) -> None:
    accounts.register("bob", "right")
    _fail(accounts, "alice", CLIENT, 10)
    accounts.log_in("alice", "right", OTHER_CLIENT)
    accounts.log_in("bob", "right", CLIENT)


def test_a_hundred_failures_over_many_names_block_every_name_from_that_address(accounts: Accounts) -> None:
    for i in range(10):
        _fail(accounts, f"guess-{i}", CLIENT, 10)
    with pytest.raises(TooManyAttempts):
        accounts.log_in("alice", "right", CLIENT)
    accounts.log_in("alice", "right", OTHER_CLIENT)


def test_the_block_ends_when_the_window_has_passed(accounts: Accounts, clock: FixedClock) -> None:
    _fail(accounts, "alice", CLIENT, 10)
    clock.now += WINDOW - 101
    with pytest.raises(TooManyAttempts) as refused:
        accounts.log_in("alice", "right", CLIENT)
    assert refused.value.retry_after == 1
    clock.now += 1
    accounts.log_in("alice", "right", CLIENT)


def test_refused_attempts_are_not_counted_so_they_do_not_prolong_the_block(
    accounts: Accounts, clock: FixedClock
) -> None:
    _fail(accounts, "alice", CLIENT, 10)
    for _ in range(50):
        with pytest.raises(TooManyAttempts):
            accounts.log_in("alice", "wrong", CLIENT)
    clock.now += WINDOW
    _fail(accounts, "alice", CLIENT, 9)
    accounts.log_in("alice", "right", CLIENT)


def test_limits_and_window_are_constructor_arguments(clock: FixedClock) -> None:
    throttle = LimitsLoginThrottle(MemoryStorage(), clock, LoginLimits(2, 3, 60))
    sessions = InMemorySessionRepository()
    accounts = memory_accounts(InMemoryUserRepository(sessions), sessions, clock, throttle)
    _fail(accounts, "alice", CLIENT, 2)
    with pytest.raises(TooManyAttempts):
        accounts.log_in("alice", "wrong", CLIENT)
    _fail(accounts, "bob", CLIENT, 1)
    with pytest.raises(TooManyAttempts):
        accounts.log_in("carol", "wrong", CLIENT)
