"""An in-memory perfmon server behind the agent's PerfmonServer port, answering as the real one does.

tests/integration/test_agent_server_port.py runs one behaviour suite over this fake and over the HTTP
client talking to a real server, so the reasons and rules below are the server's (PROTOCOL.md), not the
fake's own. What only the fake does (`down`, `lose_next_answer`) stands for the network failing."""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from perfmon.agent.model import Sample, StoredSession
from perfmon.agent.ports import (
    AlreadyRegistered,
    CredentialsRefused,
    PerfmonServer,
    Rejected,
    ServerUnavailable,
    SessionExpired,
)

# PROTOCOL.md's reasons, exact, as the HTTP client words them into the port's errors.
ALREADY_REGISTERED = "User is already registered"
LOG_IN_REFUSED = "log in refused: Wrong credentials or user is not registered"
BAD_NAME = "Bad arguments"
POST_UNAUTHORIZED = "server answered 401: Not authorized user try to post data, please login"
GET_UNAUTHORIZED = "server answered 401: Not authorized user try to get data, please login"
NO_SUCH_SESSION = "server answered 404: No such session"
TOO_LARGE = "Request body too large"
BATCH_SIZE = "Bad arguments: samples must be a list of 1..10000 samples"
MAX_BATCH = 10_000  # PROTOCOL.md part 2
MAX_NAME = 128  # PROTOCOL.md: a user name is 1..128 characters without control characters


def _tokens() -> Iterator[str]:
    return (f"00000000-0000-4000-8000-{n:012d}" for n in itertools.count())


@dataclass
class FakePerfmon:
    """The server's side: users' passwords, each session's owner and its samples in arrival order.

    Several FakeServer clients (users, or one user with another password) can share one."""

    passwords: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    tokens: Iterator[str] = field(default_factory=_tokens)

    def start_session(self, user: str) -> str:
        token = next(self.tokens)
        self.owners[token] = user
        self.samples[token] = []
        return token


class FakeServer(PerfmonServer):
    """One user's view of a FakePerfmon, with switches for the ways the way to a real server fails."""

    def __init__(
        self, user: str = "alice", password: str = "right", perfmon: FakePerfmon | None = None
    ) -> None:
        self.user = user
        self.password = password
        self.perfmon = perfmon if perfmon is not None else FakePerfmon()
        self.down = False
        self.lose_next_answer = False  # store the next batch, then fail as if the answer got lost
        # The most samples a post may hold before the server's body limit answers 413 (None: no limit).
        self.largest_batch: int | None = None
        self.posts = 0

    def create_user(self) -> None:
        """The user exists on the server, with this client's password, and has no session yet."""
        self.perfmon.passwords[self.user] = self.password

    def register(self, timeout: float | None = None) -> str:
        self._check_up()
        if not _is_valid_name(self.user) or not 1 <= len(self.password) <= 1024:
            raise CredentialsRefused(f"registration refused: {BAD_NAME}")
        if self.user in self.perfmon.passwords:
            raise AlreadyRegistered(ALREADY_REGISTERED)
        self.create_user()
        return self.perfmon.start_session(self.user)

    def log_in(self, timeout: float | None = None) -> str:
        self._check_up()
        if not _is_valid_name(self.user) or not 1 <= len(self.password) <= 1024:
            raise CredentialsRefused(f"log in refused: {BAD_NAME}")
        if self.perfmon.passwords.get(self.user) != self.password:
            raise CredentialsRefused(LOG_IN_REFUSED)
        return self.perfmon.start_session(self.user)

    def post_samples(self, token: str, samples: Sequence[Sample], timeout: float | None = None) -> None:
        self._check_up()
        self.posts += 1
        if self.largest_batch is not None and len(samples) > self.largest_batch:
            raise Rejected(413, TOO_LARGE)
        if not 1 <= len(samples) <= MAX_BATCH:
            raise Rejected(400, BATCH_SIZE)
        for index, sample in enumerate(samples):
            if problem := _sample_problem(sample):
                raise Rejected(400, f"Bad arguments: samples[{index}] {problem}", index)
        if token not in self.perfmon.owners:
            raise SessionExpired(POST_UNAUTHORIZED)
        self.perfmon.samples[token].extend(samples)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise ServerUnavailable("no answer from the fake server: Connection reset by peer")

    def sessions(self, token: str, timeout: float | None = None) -> list[StoredSession]:
        """The user's sessions, newest first (as the server lists them)."""
        self._check_up()
        owner = self._owner(token)
        mine = [t for t, user in self.perfmon.owners.items() if user == owner]
        return [_span(t, self.perfmon.samples[t]) for t in reversed(mine)]

    def stored_samples(
        self, token: str, session: str, start: float, end: float, timeout: float | None = None
    ) -> list[Sample]:
        """The session's samples in [start, end], oldest first, equal times in arrival order."""
        self._check_up()
        if self.perfmon.owners.get(session) != self._owner(token):
            raise ServerUnavailable(NO_SUCH_SESSION)
        held = [s for s in self.perfmon.samples[session] if start <= s.taken_at <= end]
        return sorted(held, key=lambda s: s.taken_at)

    def all_cpus(self) -> list[float]:
        """Every sample the server holds, of every session, by time."""
        every = [s for got in self.perfmon.samples.values() for s in got]
        return [s.cpu for s in sorted(every, key=lambda s: s.taken_at)]

    def forget_sessions(self) -> None:
        """The sessions this user holds become unknown (as after a restore); their samples stay, under
        sessions the agent never heard of."""
        for token in [t for t, user in self.perfmon.owners.items() if user == self.user]:
            replacement = self.perfmon.start_session(self.user)
            self.perfmon.samples[replacement] = self.perfmon.samples.pop(token)
            del self.perfmon.owners[token]

    def _owner(self, token: str) -> str:
        owner = self.perfmon.owners.get(token)
        if owner is None:
            raise SessionExpired(GET_UNAUTHORIZED)
        return owner

    def _check_up(self) -> None:
        if self.down:
            raise ServerUnavailable("no answer from the fake server: Connection refused")


def _is_valid_name(name: str) -> bool:
    control = any(unicodedata.category(char) in ("Cc", "Cs") for char in name)
    return 1 <= len(name) <= MAX_NAME and not control


def _sample_problem(sample: Sample) -> str | None:
    if not (math.isfinite(sample.cpu) and sample.cpu >= 0):
        return "cpu must be a finite number >= 0"
    if not (math.isfinite(sample.taken_at) and 0 <= sample.taken_at < 1e11):
        return "time must be a finite number in [0, 1e11)"
    return None


def _span(token: str, samples: list[Sample]) -> StoredSession:
    if not samples:
        return StoredSession(token, None, None)
    return StoredSession(token, min(s.taken_at for s in samples), max(s.taken_at for s in samples))
