"""What the agent needs from a perfmon server, and the answers other than success, as a port: the HTTP
client implements it, unit tests fake it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from perfmon.entrypoints.agent.sample import Sample


class ServerError(Exception):
    """Base of what the server, or the way to it, can answer instead of success."""


class ServerUnavailable(ServerError):
    """No answer (refused, reset, timed out), a 5xx, or an answer the agent cannot use: try again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SessionExpired(ServerError):
    """401 on a data call: the server no longer knows the session; log in again."""


class CredentialsRefused(ServerError):
    """Log in or registration refused: wrong password, unknown user, or a name the server does not accept."""


class AlreadyRegistered(ServerError):
    """Registration refused because the user exists."""


class Rejected(ServerError):
    """400 or 413 on a batch: the server will never take it as it is."""

    def __init__(self, status: int, reason: str, sample_index: int | None = None) -> None:
        super().__init__(f"server answered {status}: {reason}")
        self.status = status
        self.sample_index = sample_index  # the first bad sample, when the server names it


@dataclass(frozen=True)
class StoredSession:
    """A session of the user, with the time span of its samples (None when it has none)."""

    token: str
    first: float | None
    last: float | None


def redact(token: str) -> str:
    """Enough of a session hash to tell sessions apart in a log, not enough to use it."""
    return f"{token[:8]}…"


class PerfmonServer(Protocol):
    """The calls the agent makes, for one user; the errors above are the other answers."""

    user: str

    def register(self, timeout: float | None = None) -> str: ...
    def log_in(self, timeout: float | None = None) -> str: ...
    def post_samples(self, token: str, samples: Sequence[Sample], timeout: float | None = None) -> None: ...
    def sessions(self, token: str, timeout: float | None = None) -> list[StoredSession]: ...
    def stored_samples(
        self, token: str, session: str, start: float, end: float, timeout: float | None = None
    ) -> list[Sample]: ...
