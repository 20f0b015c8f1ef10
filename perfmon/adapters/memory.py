"""In-memory repositories: the unit tests' fakes, held to the same contract as the real adapters."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from perfmon.domain.downsampling import downsample, summarize
from perfmon.domain.errors import UnknownSession, UsernameTaken
from perfmon.domain.model import (
    Bucket,
    CpuSample,
    SampleSeries,
    SampleSummary,
    Session,
    TimeRange,
    User,
    Username,
)
from perfmon.domain.ports import SampleRepository, SessionRepository, UserRepository


class InMemoryUserRepository(UserRepository):
    """Users in a dict; a lock makes add-unless-taken atomic across server threads."""

    def __init__(self, sessions: SessionRepository | None = None) -> None:
        self._users: dict[str, User] = {}
        self._lock = threading.Lock()
        # Where remove_unused looks for the user's sessions; without one, no user has any.
        self._sessions = sessions

    def add(self, user: User) -> None:
        with self._lock:
            if user.name.value in self._users:
                raise UsernameTaken()
            self._users[user.name.value] = user

    def get(self, name: Username) -> User | None:
        return self._users.get(name.value)

    def remove_unused(self, name: Username) -> None:
        with self._lock:
            if self._sessions is None or not self._sessions.for_user(name):
                self._users.pop(name.value, None)


class InMemorySessionRepository(SessionRepository):
    """Sessions in a dict keyed by token."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def add(self, session: Session) -> None:
        self._sessions[session.token] = session

    def get(self, token: str) -> Session | None:
        return self._sessions.get(token)

    def for_user(self, user: Username) -> list[Session]:
        mine = [session for session in list(self._sessions.values()) if session.user == user]
        # Newest first; among equal creation times the later added first, as dicts keep insertion order.
        return sorted(reversed(mine), key=lambda session: session.created_at, reverse=True)


class InMemorySampleRepository(SampleRepository):
    """Samples in a list per session token, for the sessions of a session repository."""

    def __init__(self, sessions: SessionRepository) -> None:
        self._samples: dict[str, list[CpuSample]] = {}
        self._lock = threading.Lock()
        # Asked on each append, as the port refuses samples for a session that is not there.
        self._sessions = sessions

    def append(self, token: str, samples: Sequence[CpuSample]) -> None:
        if not samples:
            return
        if self._sessions.get(token) is None:
            raise UnknownSession()
        with self._lock:
            self._samples.setdefault(token, []).extend(samples)

    def between(self, token: str, time_range: TimeRange) -> SampleSeries:
        with self._lock:
            stored = SampleSeries.of(self._samples.get(token, ()))
        return stored.within(time_range)

    def buckets(self, token: str, time_range: TimeRange, step: float) -> list[Bucket]:
        return downsample(self.between(token, time_range), step)

    def summaries(self, tokens: Sequence[str]) -> dict[str, SampleSummary]:
        with self._lock:
            stored = {token: SampleSeries.of(self._samples.get(token, ())) for token in tokens}
        return {token: summarize(samples) for token, samples in stored.items()}
