"""In-memory repositories: the unit tests' fakes, held to the same contract as the real adapters."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from perfmon.domain.errors import UsernameTaken
from perfmon.domain.model import CpuSample, Session, TimeRange, User, Username
from perfmon.domain.ports import SampleRepository, SessionRepository, UserRepository


class InMemoryUserRepository(UserRepository):
    """Users in a dict; a lock makes add-unless-taken atomic across server threads."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._lock = threading.Lock()

    def add(self, user: User) -> None:
        with self._lock:
            if user.name.value in self._users:
                raise UsernameTaken()
            self._users[user.name.value] = user

    def get(self, name: Username) -> User | None:
        return self._users.get(name.value)


class InMemorySessionRepository(SessionRepository):
    """Sessions in a dict keyed by token."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def add(self, session: Session) -> None:
        self._sessions[session.token] = session

    def get(self, token: str) -> Session | None:
        return self._sessions.get(token)


class InMemorySampleRepository(SampleRepository):
    """Samples in a list per session token."""

    def __init__(self) -> None:
        self._samples: dict[str, list[CpuSample]] = {}
        self._lock = threading.Lock()

    def append(self, token: str, samples: Sequence[CpuSample]) -> None:
        with self._lock:
            self._samples.setdefault(token, []).extend(samples)

    def between(self, token: str, time_range: TimeRange) -> list[CpuSample]:
        with self._lock:
            stored = list(self._samples.get(token, ()))
        chosen = [sample for sample in stored if time_range.contains(sample.taken_at)]
        # sorted() is stable, so equal times keep their arrival order.
        return sorted(chosen, key=lambda sample: sample.taken_at)
