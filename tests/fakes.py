"""Cheap deterministic stand-ins for the crypto and clock ports; storage fakes live in adapters.memory,
except a session store whose disk fails."""

from __future__ import annotations

import itertools
import uuid

from perfmon.adapters.memory import InMemoryKeyRepository, InMemorySessionRepository, InMemoryUserRepository
from perfmon.domain.access import KeyUsage
from perfmon.domain.accounts import Accounts
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.model import KEY_PREFIX, Session
from perfmon.domain.ports import Clock, KeySource, LoginThrottle, PasswordHasher


class FastHasher(PasswordHasher):
    """Not a real hash: makes unit tests fast while keeping the clear text out of the record."""

    def hash(self, password: str) -> str:
        return "fast$" + password[::-1]

    def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == self.hash(password)


class SequentialTokens:
    """Predictable UUID tokens: 00000000-0000-4000-8000-000000000001, ...002, ..."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return str(uuid.UUID(f"00000000-0000-4000-8000-{next(self._counter):012d}"))


class SequentialKeys(KeySource):
    """Predictable keys and ids: pmk_AAA...A1, pmk_AAA...A2 (43 characters after pmk_), ids
    0000000000000001, ..."""

    def __init__(self) -> None:
        self._keys = itertools.count(1)
        self._ids = itertools.count(1)

    def new_key(self) -> str:
        number = next(self._keys)
        return KEY_PREFIX + f"{number:A>43}"

    def new_id(self) -> str:
        return f"{next(self._ids):016x}"


class FixedClock:
    """A clock that reads what the test sets."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FailingSessionRepository(InMemorySessionRepository):
    """Sessions on a storage that refuses writes (a full disk) until `failing` is set back to False."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = True

    def add(self, session: Session) -> None:
        if self.failing:
            raise StorageUnavailable("the disk is full")
        super().add(session)


def memory_accounts(
    users: InMemoryUserRepository, sessions: InMemorySessionRepository, clock: Clock, throttle: LoginThrottle
) -> Accounts:
    """Accounts over in-memory users and sessions, with fast hashing, predictable tokens and a key store
    of their own (for tests of password logins)."""
    keys = InMemoryKeyRepository(sessions)
    return Accounts(
        users, sessions, FastHasher(), SequentialTokens(), clock, throttle, keys, KeyUsage(keys, clock)
    )
