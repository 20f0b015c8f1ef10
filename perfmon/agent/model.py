"""What the agent measures, keeps and learns from the server: plain values, no behaviour beyond checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One CPU reading: percent busy, and when it was taken (seconds since the Unix epoch)."""

    cpu: float
    taken_at: float


@dataclass(frozen=True)
class Batch:
    """The oldest spooled samples, with where each one's line ends, to acknowledge them by."""

    samples: tuple[Sample, ...]
    ends: tuple[int, ...]
    segment: int


@dataclass(frozen=True)
class SpoolCounts:
    """Samples waiting to be sent, dropped for room (oldest first), and set aside as refused."""

    pending: int
    dropped: int
    quarantined: int


@dataclass(frozen=True)
class StoredSession:
    """A session of the user, with the time span of its samples (None when it has none)."""

    token: str
    first: float | None
    last: float | None


def redact(token: str) -> str:
    """Enough of a session hash to tell sessions apart in a log, not enough to use it."""
    return f"{token[:8]}…"
