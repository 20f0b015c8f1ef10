"""The ports: what the domain needs from storage and crypto, one narrow Protocol per concept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

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

# Makes a fresh, unguessable session token (a UUID4 string in production).
TokenFactory = Callable[[], str]
# Tells the current time in epoch seconds; injected so that the domain never reads a clock.
Clock = Callable[[], float]


class UserRepository(Protocol):
    """Users by name."""

    def add(self, user: User) -> None:
        """Store a new user, atomically: raise UsernameTaken when the name already has one."""

    def get(self, name: Username) -> User | None:
        """The user of that name, or None."""

    def remove_unused(self, name: Username) -> None:
        """Delete the user if it has no session; else nothing. A login that adds a session at the same
        instant may race it (the file storage takes no lock for that instant; PostgreSQL decides it in one
        statement).

        Undoes a registration whose first session could not be stored (issue 9): a user someone has
        logged in as in the meantime is in use and stays.
        """


class SessionRepository(Protocol):
    """Sessions by token. Sessions are never deleted."""

    def add(self, session: Session) -> None:
        """Store a new session (its token is fresh and unique)."""

    def get(self, token: str) -> Session | None:
        """The session with that canonical token, or None; cheap whatever the number of sessions."""

    def for_user(self, user: Username) -> list[Session]:
        """Every session of the user, newest first."""


class SampleRepository(Protocol):
    """The CPU samples of each session, in arrival order."""

    def append(self, token: str, samples: Sequence[CpuSample]) -> None:
        """Store samples at the end of an existing session: all of them or, on failure, none.

        When this returns the samples are durable (they survive a crash of the process). The caller has
        found the session first; one that has vanished since (deleted behind the server's back) raises
        UnknownSession and stores nothing, in every storage, as a token that never named a session
        does: the client is told to log in again. StorageUnavailable is only for storage that is down.
        """

    def between(self, token: str, time_range: TimeRange) -> SampleSeries:
        """The session's samples within the range, oldest first, equal times in arrival order."""

    def buckets(self, token: str, time_range: TimeRange, step: float) -> list[Bucket]:
        """The samples within the range grouped by `bucket_start(time, step)`, oldest bucket first."""

    def summaries(self, tokens: Sequence[str]) -> dict[str, SampleSummary]:
        """Count, first and last time of each session's samples; a session without samples may be absent."""


class PasswordHasher(Protocol):
    """Slow, salted password hashing with constant-time verification."""

    def hash(self, password: str) -> str:
        """A self-describing hash of the password (algorithm, parameters, salt)."""

    def verify(self, password_hash: str, password: str) -> bool:
        """True when the password matches the hash."""


class LoginThrottle(Protocol):
    """Counts failed logins per user name and client address, and per address (PROTOCOL.md limits).

    `client` is the client's address as text, an opaque key here. Neither argument may be logged
    beside a password.
    """

    def check(self, name: Username, client: str) -> None:
        """Raise TooManyAttempts while either count of this name and client has reached its limit."""

    def record_failure(self, name: Username, client: str) -> None:
        """Count one failed login of this name from this client, in both counts."""
