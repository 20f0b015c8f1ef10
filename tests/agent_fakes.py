"""An in-memory perfmon server behind the agent's PerfmonServer port, answering as the real one does.

tests/integration/test_agent_server_port.py runs one behaviour suite over this fake and over the HTTP
client talking to a real server, so the reasons and rules below are the server's (PROTOCOL.md), not the
fake's own. What only the fake does (`down`, `lose_next_answer`) stands for the network failing; keys
(PROTOCOL.md part 4) are made and revoked on the FakePerfmon, as a user does on the dashboard."""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from perfmon.agent.model import CATALOGUE, Sample
from perfmon.agent.ports import (
    AlreadyRegistered,
    CredentialsRefused,
    Forbidden,
    KeyRefused,
    PerfmonServer,
    Rejected,
    ServerUnavailable,
    SessionExpired,
    StoredValue,
)

# PROTOCOL.md's reasons, exact, as the HTTP client words them into the port's errors.
ALREADY_REGISTERED = "User is already registered"
LOG_IN_REFUSED = "log in refused: Wrong credentials or user is not registered"
BAD_NAME = "Bad arguments"
POST_UNAUTHORIZED = "server answered 401: Not authorized user try to post data, please login"
GET_UNAUTHORIZED = "server answered 401: Not authorized user try to get data, please login"
TOO_LARGE = "Request body too large"
BAD_ARGUMENTS = "Bad arguments"
NO_SUCH_HOST = "server answered 404: No such host"
FORBIDDEN = "server answered 403: Forbidden"
MAX_BATCH = 10_000  # PROTOCOL.md part 3
MAX_NAME = 128  # PROTOCOL.md: a user (and host) name is 1..128 characters without control characters
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
NON_NEGATIVE = frozenset(CATALOGUE) - {"temp"}


def _tokens() -> Iterator[str]:
    return (f"00000000-0000-4000-8000-{n:012d}" for n in itertools.count())


@dataclass
class FakePerfmon:
    """The server's side: users' passwords and keys, each session's owner, host and scope ("all" for a
    password's, else its key's), the sessions closed by a revocation, and each session's samples in arrival
    order.

    Several FakeServer clients (users, hosts, or one user with another password) can share one."""

    passwords: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    tokens: Iterator[str] = field(default_factory=_tokens)
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # live key -> (user, scope)
    scopes: dict[str, str] = field(default_factory=dict)
    key_of: dict[str, str] = field(default_factory=dict)  # session -> the key that opened it
    closed: set[str] = field(default_factory=set)
    key_numbers: Iterator[int] = field(default_factory=itertools.count)

    def start_session(self, user: str, host: str, scope: str = "all", key: str | None = None) -> str:
        token = next(self.tokens)
        self.owners[token] = user
        self.hosts[token] = host
        self.scopes[token] = scope
        if key is not None:
            self.key_of[token] = key
        self.samples[token] = []
        return token

    def make_key(self, user: str, scope: str = "ingest") -> str:
        """A new key of the user, as POST /keys makes it (its text is made up, shaped as a real one's)."""
        key = f"pmk_{next(self.key_numbers):043d}"
        self.keys[key] = (user, scope)
        return key

    def revoke(self, key: str) -> None:
        """DELETE /keys/{id}: the key opens no session, and every session it opened is closed (401); their
        samples stay."""
        del self.keys[key]
        # A copy of the items: an agent's thread may be opening a session as the test revokes.
        self.closed.update(token for token, opener in list(self.key_of.items()) if opener == key)


class FakeServer(PerfmonServer):
    """One user's view of a FakePerfmon, with switches for the ways the way to a real server fails."""

    def __init__(
        self,
        user: str = "alice",
        password: str = "right",
        perfmon: FakePerfmon | None = None,
        host: str = "web-1",
    ) -> None:
        self.user: str | None = user
        self.host = host
        self.password = password
        self.perfmon = perfmon if perfmon is not None else FakePerfmon()
        self.down = False
        self.lose_next_answer = False  # store the next batch, then fail as if the answer got lost
        # The most samples a post may hold before the server's body limit answers 413 (None: no limit).
        self.largest_batch: int | None = None
        self.posts = 0
        self.key: str | None = None

    @classmethod
    def with_key(cls, key: str, perfmon: FakePerfmon, host: str = "web-1") -> FakeServer:
        """A client logging in with a key, as ServerClient.with_key: its user is the key's, unknown here."""
        server = cls("", "", perfmon, host)
        server.user, server.key = None, key
        return server

    def create_user(self) -> None:
        """The user exists on the server, with this client's password, and has no session yet."""
        assert self.user is not None, "a client with a key has no password to register"
        self.perfmon.passwords[self.user] = self.password

    def register(self, timeout: float | None = None) -> str:
        if self.user is None:
            raise ValueError("a client with a key does not register: the key's user exists")
        self._check_up()
        if not self._valid_credentials():
            raise CredentialsRefused(f"registration refused: {BAD_NAME}")
        if self.user in self.perfmon.passwords:
            raise AlreadyRegistered(ALREADY_REGISTERED)
        self.create_user()
        return self.perfmon.start_session(self.user, self.host)

    def log_in(self, timeout: float | None = None) -> str:
        self._check_up()
        if self.key is not None:
            if self.key not in self.perfmon.keys:
                raise KeyRefused(LOG_IN_REFUSED)
            user, scope = self.perfmon.keys[self.key]
            return self.perfmon.start_session(user, self.host, scope, self.key)
        if self.user is None or not self._valid_credentials():
            raise CredentialsRefused(f"log in refused: {BAD_NAME}")
        if self.perfmon.passwords.get(self.user) != self.password:
            raise CredentialsRefused(LOG_IN_REFUSED)
        return self.perfmon.start_session(self.user, self.host)

    def post_samples(self, token: str, samples: Sequence[Sample], timeout: float | None = None) -> None:
        self._check_up()
        self.posts += 1
        if self.largest_batch is not None and len(samples) > self.largest_batch:
            raise Rejected(413, TOO_LARGE)
        if not 1 <= len(samples) <= MAX_BATCH:
            located = "samples must be a list of 1..10000 samples"
            raise Rejected(400, f"{BAD_ARGUMENTS}: {located}", None, located)
        for index, sample in enumerate(samples):
            if (problem := _sample_problem(sample)) and len(samples) == 1:
                raise Rejected(400, BAD_ARGUMENTS, None, problem)  # the single form: no index to name
            if problem:
                located = f"samples[{index}].{problem}"
                raise Rejected(400, f"{BAD_ARGUMENTS}: {located}", index, located)
        if token not in self.perfmon.owners or token in self.perfmon.closed:
            raise SessionExpired(POST_UNAUTHORIZED)
        if self.perfmon.scopes[token] == "read":
            raise Forbidden(FORBIDDEN)
        self.perfmon.samples[token].extend(samples)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise ServerUnavailable("no answer from the fake server: Connection reset by peer")

    def stored_values(
        self, token: str, metrics: Sequence[str], start: float, end: float, timeout: float | None = None
    ) -> set[StoredValue]:
        """The host's values of the metrics in [start, end], every session of the host merged."""
        self._check_up()
        owner = self._owner(token)
        if self.perfmon.scopes[token] == "ingest":
            raise Forbidden(FORBIDDEN)
        mine = [
            t
            for t, user in self.perfmon.owners.items()
            if user == owner and self.perfmon.hosts[t] == self.host
        ]
        if not mine:
            raise ServerUnavailable(NO_SUCH_HOST)
        return {
            (name, sample.taken_at, value)
            for session in mine
            for sample in self.perfmon.samples[session]
            if start <= sample.taken_at <= end
            for name, value in sample.metrics.items()
            if name in metrics
        }

    def host_history(self, host: str | None = None) -> list[Sample]:
        """Every sample of the host (this client's by default), all its sessions merged, by time."""
        host = self.host if host is None else host
        every = [s for t, got in self.perfmon.samples.items() if self.perfmon.hosts[t] == host for s in got]
        return sorted(every, key=lambda s: s.taken_at)

    def all_cpus(self) -> list[float]:
        """The cpu of every sample the server holds, of every session, by time."""
        every = [s for got in self.perfmon.samples.values() for s in got]
        return [s.metrics["cpu"] for s in sorted(every, key=lambda s: s.taken_at)]

    def forget_sessions(self) -> None:
        """The sessions this user holds become unknown (as after a restore); their samples stay, under
        sessions the agent never heard of."""
        for token in [t for t, user in self.perfmon.owners.items() if user == self.user]:
            fake = self.perfmon
            replacement = fake.start_session(fake.owners[token], fake.hosts[token], fake.scopes[token])
            fake.samples[replacement] = fake.samples.pop(token)
            del fake.owners[token]

    def _owner(self, token: str) -> str:
        owner = self.perfmon.owners.get(token)
        if owner is None or token in self.perfmon.closed:
            raise SessionExpired(GET_UNAUTHORIZED)
        return owner

    def _check_up(self) -> None:
        if self.down:
            raise ServerUnavailable("no answer from the fake server: Connection refused")

    def _valid_credentials(self) -> bool:
        if self.user is None:
            return False
        return _is_valid_name(self.user) and _is_valid_name(self.host) and 1 <= len(self.password) <= 1024


def _is_valid_name(name: str) -> bool:
    control = any(unicodedata.category(char) in ("Cc", "Cs") for char in name)
    return 1 <= len(name) <= MAX_NAME and not control


def _sample_problem(sample: Sample) -> str | None:
    """PROTOCOL.md part 3's rules for one sample, the first broken one named as the server names it."""
    if not (math.isfinite(sample.taken_at) and 0 <= sample.taken_at < 1e11):
        return "time must be a finite number in [0, 1e11)"
    if not 1 <= len(sample.metrics) <= 64:
        return "metrics must hold 1..64 metrics"
    for name, value in sample.metrics.items():
        if not METRIC_NAME.fullmatch(name):
            return f"metrics: {name!r} is not a metric name: it must match [a-z][a-z0-9_]{{0,63}}"
        if not math.isfinite(value) or (value < 0 and name in NON_NEGATIVE):
            rule = ">= 0" if name in NON_NEGATIVE else ""
            return f"metrics.{name} must be a finite number {rule}".rstrip()
    return None
